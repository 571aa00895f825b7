"""CloudWatch Embedded Metric Format: one JSON line the monitor's log turns into metrics for alarms and dashboards.

A metric is left out when it is undefined: ``ModelF1``, ``FalsePositiveRate`` and ``FalseNegativeRate`` only when
the window has enough labels, so that an alarm on ``ModelF1 < 0.65`` never acts on noise (missing data is
"not breaching" in template.yaml). In a window of two versions (A/B) they are the served version's, the rows its
``ModelVersion`` dimension names. ``ShadowAgreement`` is there when a shadow model scored the window.
"""

from __future__ import annotations

import json
import time

from monitor import constants as C

UNITS = {
    "ModelF1": "None",
    "FalsePositiveRate": "None",
    "FalseNegativeRate": "None",
    "MaxFeaturePSI": "None",
    "PredictedDefectRate": "None",
    "LabelledPredictions": "Count",
    "ShadowAgreement": "None",
}


def metrics(report: dict) -> dict[str, float]:
    drift = report["drift"]
    per_version = report.get("by_model_version")
    no_rows = {"labelled": 0, "sufficient_labels": False}
    q = per_version.get(report["model"]["version"], no_rows) if per_version else report["quality"]
    values: dict[str, float | None] = {
        "MaxFeaturePSI": drift["max_psi"],
        "PredictedDefectRate": report["defect_rate"]["predicted"],
        "LabelledPredictions": q["labelled"],
        "ShadowAgreement": (report.get("shadow") or {}).get("agreement"),
    }
    if q["sufficient_labels"]:
        values |= {"ModelF1": q["f1"], "FalsePositiveRate": q["fpr"], "FalseNegativeRate": q["fnr"]}
    return {k: float(v) for k, v in values.items() if v is not None}


def emf_line(report: dict, timestamp_ms: int | None = None) -> str:
    values = metrics(report)
    document = {
        "_aws": {
            "Timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": C.METRIC_NAMESPACE,
                    "Dimensions": [[C.METRIC_DIMENSION]],
                    "Metrics": [{"Name": k, "Unit": UNITS[k]} for k in values],
                }
            ],
        },
        C.METRIC_DIMENSION: report["model"]["version"],
        "decision": report["decision"],
        **values,
    }
    return json.dumps(document, separators=(",", ":"))
