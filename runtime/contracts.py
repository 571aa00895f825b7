"""The contracts between this project's processes, each written down once. Dependency-free (standard library only).

The handler writes what the monitor reads, the monitor emits what the template alarms on, and ``make compare`` guards
what the canary rolls back on. Every one of those agreements is named here; ``tests/test_template.py`` checks
``template.yaml`` against this module.
"""

from __future__ import annotations

import re

# Model versions: ``v<major>[.<minor>...]``, the name of a folder under ``models_onnx/``.
VERSION_PATTERN = re.compile(r"v\d+(\.\d+)*")

# The version served, trained and converted unless told otherwise.
DEFAULT_VERSION = "v1.0"

# The manifest's held-out metrics that every response carries as ``model_performance``.
PERFORMANCE_METRICS = ("f1_score", "roc_auc", "accuracy")

# CloudWatch: the namespace and dimension every metric is published under.
METRIC_NAMESPACE = "DiecastT1"
METRIC_DIMENSION = "ModelVersion"


class Metric:
    """Metric names, as the handler and the monitor publish them and the template alarms on them."""

    LATENCY = "Latency"
    ROWS = "Rows"
    DEFECTS = "DefectPredictions"
    NORMALS = "NormalPredictions"
    ERRORS = "Errors"
    COLD_START = "ColdStart"
    SHADOW_ERRORS = "ShadowErrors"
    MODEL_F1 = "ModelF1"
    MODEL_F1_UPPER = "ModelF1Upper"  # the upper end of F1's 95 % interval: the rollback alarm's metric
    FALSE_POSITIVE_RATE = "FalsePositiveRate"
    FALSE_NEGATIVE_RATE = "FalseNegativeRate"
    PREDICTED_DEFECT_RATE = "PredictedDefectRate"
    MAX_FEATURE_PSI = "MaxFeaturePSI"
    LABELLED_PREDICTIONS = "LabelledPredictions"
    SHADOW_AGREEMENT = "ShadowAgreement"


# The rollback lines of the original design: a canary or a live model past any of them is rolled back.
ROLLBACK_F1 = 0.65  # F1 on labelled predictions below this
ROLLBACK_ERROR_RATE = 0.05  # share of invocations that end in an error above this
ROLLBACK_P95_MS = 100.0  # p95 latency in milliseconds above this

# Capture records (one JSON line per predicted row; ``runtime/capture.py`` writes them, ``monitor`` reads them).
CAPTURE_RECORD = "prediction"
CAPTURE_SCHEMA = 1
CAPTURE_FIELDS = (
    "record",
    "schema",
    "inference_id",
    "request_id",
    "timestamp",
    "model_version",
    "features",
    "probability",
    "label",
    "class",
    "confidence",
    "out_of_range",
)
CAPTURE_OPTIONAL_FIELDS = ("shadow",)  # present only when a shadow model runs beside the primary
CLASS_NAMES = ("normal", "defect")  # label 0, label 1


def is_version(value: str) -> bool:
    """Whether ``value`` names a model version (``v1.0``, ``v2.3.1``)."""
    return VERSION_PATTERN.fullmatch(value) is not None


def version_problem(name: str, value: str) -> str | None:
    """The one message for a model version that is not ``v<major>[.<minor>...]``, naming ``name`` (an environment
    variable or a flag); None when ``value`` is a version."""
    if is_version(value):
        return None
    return f"{name} must look like v1.0 (v<major>[.<minor>...]), got {value!r}"
