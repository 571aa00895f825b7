"""CloudWatch Embedded Metric Format: one JSON line the monitor's log turns into metrics for alarms and dashboards.

A metric is left out when it is undefined: ``ModelF1``, ``ModelF1Upper`` (the upper end of F1's 95 % interval),
``FalsePositiveRate`` and ``FalseNegativeRate`` only when the window has enough labels (missing data is "not
breaching" in template.yaml). The rollback alarm reads ``ModelF1Upper`` below the rollback line, the monitor's own
rule: F1 significantly below it, its whole interval, not the point estimate that noise alone can push under. In a
window of two versions (A/B) they are the served version's, the rows its ``ModelVersion`` dimension names.
``ShadowAgreement`` is there when a shadow model scored the window.
"""

from __future__ import annotations

import json
import time

from runtime.contracts import METRIC_DIMENSION, METRIC_NAMESPACE, Metric

UNITS = {
    Metric.MODEL_F1: "None",
    Metric.MODEL_F1_UPPER: "None",
    Metric.FALSE_POSITIVE_RATE: "None",
    Metric.FALSE_NEGATIVE_RATE: "None",
    Metric.MAX_FEATURE_PSI: "None",
    Metric.PREDICTED_DEFECT_RATE: "None",
    Metric.LABELLED_PREDICTIONS: "Count",
    Metric.SHADOW_AGREEMENT: "None",
}


def metrics(report: dict) -> dict[str, float]:
    """The metric values of one report, by name; undefined ones left out."""
    drift = report["drift"]
    per_version = report.get("by_model_version")
    no_rows = {"labelled": 0, "sufficient_labels": False}
    q = per_version.get(report["model"]["version"], no_rows) if per_version else report["quality"]
    values: dict[str, float | None] = {
        Metric.MAX_FEATURE_PSI: drift["max_psi"],
        Metric.PREDICTED_DEFECT_RATE: report["defect_rate"]["predicted"],
        Metric.LABELLED_PREDICTIONS: q["labelled"],
        Metric.SHADOW_AGREEMENT: (report.get("shadow") or {}).get("agreement"),
    }
    if q["sufficient_labels"]:
        values |= {
            Metric.MODEL_F1: q["f1"],
            Metric.MODEL_F1_UPPER: _upper((q.get("ci") or {}).get("f1")),
            Metric.FALSE_POSITIVE_RATE: q["fpr"],
            Metric.FALSE_NEGATIVE_RATE: q["fnr"],
        }
    return {k: float(v) for k, v in values.items() if v is not None}


def _upper(interval: list[float] | None) -> float | None:
    return None if interval is None else interval[1]


def emf_line(report: dict, timestamp_ms: int | None = None) -> str:
    """The EMF document of one report, as one JSON line (``timestamp_ms`` defaults to now)."""
    values = metrics(report)
    document = {
        "_aws": {
            "Timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": METRIC_NAMESPACE,
                    "Dimensions": [[METRIC_DIMENSION]],
                    "Metrics": [{"Name": k, "Unit": UNITS[k]} for k in values],
                }
            ],
        },
        METRIC_DIMENSION: report["model"]["version"],
        "decision": report["decision"],
        **values,
    }
    return json.dumps(document, separators=(",", ":"))
