"""CloudWatch Embedded Metric Format: one JSON line the monitor's log turns into metrics for alarms and dashboards.

A metric is left out when it is undefined: ``ModelF1``, ``FalsePositiveRate`` and ``FalseNegativeRate`` only when
the window has enough labels, so that an alarm on ``ModelF1 < 0.65`` never acts on noise (missing data is
"not breaching" in template.yaml).
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
}


def metrics(report: dict) -> dict[str, float]:
    q, drift = report["quality"], report["drift"]
    values: dict[str, float | None] = {
        "MaxFeaturePSI": drift["max_psi"],
        "PredictedDefectRate": report["defect_rate"]["predicted"],
        "LabelledPredictions": q["labelled"],
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
