"""One comparison: two certified models scored on the same labelled rows, the statistics, the verdict.

``diecast compare`` parses the command line, shows progress, writes the outputs and turns the verdict into the exit
code; ``compare()`` does the rest with typed arguments.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import runtime
from compare import data, defaults, latency, report
from compare.contract import check_compatible
from compare.verdict import Rules, checks, decide
from evaluation import stats
from runtime.manifest import Manifest

STEPS = ("load models", "score rows", "bootstrap", "latency", "report")


@dataclass(frozen=True)
class Resampling:
    """How many resamples and timed rounds the comparison draws, and from which seed."""

    bootstrap_rounds: int = defaults.BOOTSTRAP_ROUNDS
    latency_rounds: int = defaults.LATENCY_ROUNDS
    seed: int = defaults.SEED


def labels(old: Manifest, new: Manifest) -> tuple[str, str]:
    """The two models' names in the report: their versions, told apart when equal."""
    return (
        (f"{old.version} (old)", f"{new.version} (new)") if old.version == new.version else (old.version, new.version)
    )


def _model_entry(model: runtime.Model, path: Path, est: dict[str, dict], types: list[str]) -> dict:
    entry: dict = {m: est[m]["value"] for m in stats.METRICS}
    entry["ci"] = {m: est[m]["ci"] for m in stats.METRICS}
    entry["recall_by_defect_type"] = {t: est[stats.TYPE_PREFIX + t] for t in types}
    entry["model"] = {
        "path": str(path),
        "model_version": model.model_version,
        "threshold": model.threshold,
        "model_sha256": model.manifest.files["model"]["sha256"],
    }
    return entry


def _by_type(boot: dict, y: np.ndarray, types: np.ndarray | None, kinds: list[str]) -> dict:
    out = {}
    for kind in kinds:
        key = stats.TYPE_PREFIX + kind
        defects = int(((y == 1) & (types == kind)).sum())  # type: ignore[operator]
        out[kind] = {
            "defects": defects,
            "too_few_rows": defects < defaults.MIN_TYPE_ROWS,
            "old": boot["old"][key],
            "new": boot["new"][key],
            "difference": boot["difference"][key],
        }
    return out


def compare(
    old: Path,
    new: Path,
    labelled: Path | None,
    rules: Rules,
    resampling: Resampling,
    progress: Callable[[str], None],
) -> tuple[dict, dict[str, str]]:
    """Compare the model in folder ``new`` with the one in ``old`` on the ``labelled`` CSV (None:
    the embedded test split). Returns (compare.json's content, the report's charts as {title: base64 PNG}).
    ``progress`` is told each step of ``STEPS`` after the first as it starts."""
    started = time.perf_counter()
    paths = {"old": old, "new": new}
    manifests = {k: Manifest.read(p) for k, p in paths.items()}
    pair = labels(manifests["old"], manifests["new"])
    check_compatible(manifests["old"], manifests["new"], pair)
    names = dict(zip(("old", "new"), pair, strict=True))
    models = {k: runtime.load(p) for k, p in paths.items()}
    features = manifests["old"].feature_names
    rows = data.user_csv(labelled, features) if labelled else data.embedded_test_split(features)
    progress("score rows")
    X = np.ascontiguousarray(rows.X)
    outs = {k: m.predict(X) for k, m in models.items()}
    scores = {k: stats.Scores(o["probability"].astype(np.float64), o["label"]) for k, o in outs.items()}
    progress("bootstrap")
    boot = stats.paired_bootstrap(
        rows.y, scores["old"], scores["new"], rows.types, resampling.bootstrap_rounds, rules.confidence, resampling.seed
    )
    progress("latency")
    lat = latency.side_by_side(
        models["old"],
        models["new"],
        X,
        resampling.latency_rounds,
        defaults.LATENCY_WARMUP,
        rules.confidence,
        resampling.seed,
    )
    positives = int(rows.y.sum())
    found = checks(boot, lat, positives, rules)
    verdict, reasons = decide(found)
    kinds = stats.defect_types(rows.y, rows.types)
    result = {
        "verdict": verdict,
        "reasons": reasons,
        "checks": [c.__dict__ for c in found],
        "rules": rules.as_dict(),
        "old": names["old"],
        "new": names["new"],
        "data": {
            "source": rows.source,
            "rows": len(rows.y),
            "defects": positives,
            "held_out_note": rows.held_out_note,
        },
        "models": {names[k]: _model_entry(models[k], paths[k], boot[k], kinds) for k in ("old", "new")},
        "difference": {m: boot["difference"][m] for m in stats.METRICS},
        "recall_by_defect_type": _by_type(boot, rows.y, rows.types, kinds),
        "agreement": boot["agreement"]["value"],
        "agreement_ci": boot["agreement"]["ci"],
        "mcnemar": {
            **stats.mcnemar(rows.y, scores["old"].label, scores["new"].label),
            "b_means": "rows OLD labels correctly and NEW does not",
            "c_means": "rows NEW labels correctly and OLD does not",
        },
        "latency": lat,
        "bootstrap": {"rounds": resampling.bootstrap_rounds, "confidence": rules.confidence, "seed": resampling.seed},
    }
    progress("report")
    thresholds = {k: m.threshold for k, m in models.items()}
    images = report.charts(rows.y, scores, thresholds, result)
    result["elapsed_s"] = round(time.perf_counter() - started, 2)
    return result, images
