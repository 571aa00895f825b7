"""The report: one dict (``report.json``) built from the analysis, then written with the HTML page and the EMF line.

Each file is written to a temporary name beside it and renamed, so a reader never sees half a report.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor import constants as C
from monitor import emf, html
from monitor.manifest import ModelReference
from monitor.window import Window
from runtime.contracts import ROLLBACK_F1


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def build(
    ref: ModelReference,
    as_of: datetime,
    width: timedelta,
    summaries: dict[int, dict],
    fired: dict,
    decision: str,
    inputs: dict,
    new_labels: int,
    min_labelled: int,
    warnings: list[str] | None = None,
) -> dict:
    """``report.json``'s content. ``summaries`` maps window index (0 = current) to ``analysis.summarise``'s dict;
    ``warnings`` (``analysis.warnings``) are what the report flags without acting on."""
    current = summaries[0]
    q = current["quality"]
    shifted = current["drift"]
    drift = {
        "psi": current["psi"],
        "drifted": shifted["drifted"],
        "moderate": shifted["moderate"],
        "sufficient_rows": shifted["sufficient_rows"],
        "rows": shifted["rows"],
        "min_rows": shifted["min_rows"],
        "significance": shifted["significance"],
        "psi_critical": shifted["critical"],
        "max_psi": current["max_psi"],
        "ks": current.get("ks", {}),
        "prediction_psi": current["prediction_psi"],
        "out_of_range_share": current["out_of_range_share"],
        "out_of_range_by_feature": current["out_of_range_by_feature"],
    }
    trend = [{k: v for k, v in summaries[i].items() if k != "ks"} for i in sorted(summaries, reverse=True)]
    return {
        "schema": 1,
        "generated_at": _iso(datetime.now(UTC)),
        "decision": decision,
        "exit_code": C.EXIT_CODES[decision],
        "reasons": [f"{name}: {t['reason']}" for name, t in fired.items() if t["fired"]],
        "warnings": list(warnings or []),
        "model": {
            "version": ref.model_version,
            "path": str(ref.path),
            "trained_at": _iso(ref.trained_at),
            "test_f1": ref.test_f1,
            "threshold": ref.threshold,
        },
        "as_of": _iso(as_of),
        "window": {
            "days": width.total_seconds() / 86400,
            "start": current["start"],
            "end": current["end"],
            "predictions": current["predictions"],
            "labelled": current["labelled"],
        },
        "quality": {**q, "sufficient_labels": current["sufficient_labels"]},
        "by_model_version": current["by_model_version"],
        "shadow": current["shadow"],
        "drift": drift,
        "defect_rate": current["defect_rate"],
        "triggers": fired,
        "new_labels_since_training": new_labels,
        "days_since_training": (as_of - ref.trained_at).total_seconds() / 86400,
        "thresholds": {
            "performance_drop": C.PERFORMANCE_DROP,
            "psi_moderate": C.PSI_MODERATE,
            "psi_major": C.PSI_MAJOR,
            "new_labels": C.NEW_LABELS,
            "schedule_days": C.SCHEDULE_DAYS,
            "rollback_f1": ROLLBACK_F1,
            "min_labelled": min_labelled,
            "min_rows": shifted["min_rows"],
            "drift_significance": shifted["significance"],
        },
        "trend": trend,
        "inputs": inputs,
    }


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write(out_dir: Path, report: dict, windows: dict[int, Window], ref: ModelReference, min_labelled: int) -> str:
    """Write report.json, report.html and the EMF line into ``out_dir``; returns the EMF line. Every text is made
    before any file is written, so a failure leaves the previous run's three files as they were, never a mix."""
    line = emf.emf_line(report)
    texts = {
        C.REPORT_JSON: json.dumps(report, indent=2, default=str) + "\n",
        C.REPORT_HTML: html.render(report, windows, list(ref.names), ref.quantiles, min_labelled),
        C.METRICS_EMF: line + "\n",
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        _write(out_dir / name, text)
    return line
