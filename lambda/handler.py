"""AWS Lambda entry point: ``handler.lambda_handler``.

The model is loaded once at import time (Lambda INIT); a request only parses, validates, predicts and
serialises. Accepted events:

- direct invocation: ``{"features": {...30 named readings...}}``, ``{"features": [30 numbers]}`` or
  ``{"instances": [<either form>, ...]}``; the response is the JSON object itself, and an error is returned
  as ``{"statusCode": 4xx|500, "error": {...}}`` (never raised);
- API Gateway REST (payload 1.0), HTTP API (payload 2.0) and Function URL events: ``POST /predict`` with the same
  JSON in ``body`` (base64 too), ``GET /health``; the response is ``{"statusCode", "headers", "body"}``
  (``proxy_events.py`` holds the HTTP rules).

Configuration (environment): ``MODEL_VERSION`` (default v1.0, ``v<major>[.<minor>...]``), ``MODEL_PATH`` (default:
``models_onnx/<version>`` beside this file, as in the image, or in the repository), ``LOG_LEVEL`` (default INFO),
``MAX_BATCH_SIZE`` (default 1000 rows), ``MAX_BODY_BYTES`` (default 1 MiB), ``CAPTURE_PREDICTIONS``
(``true``/``false``, default false: one JSON line per predicted row after the request's line, see
``runtime/capture.py``). A bad value fails INIT with ``ConfigurationError`` naming the variable.

Every request writes one JSON line to stdout: a structured log record that is also a CloudWatch Embedded
Metric Format (EMF) document (latency, rows, predictions by class, errors by type, cold start).
"""

from __future__ import annotations

import logging
import os
import re
import reprlib
import sys
import time
import uuid
from typing import Any

import orjson
import proxy_events

import runtime
from runtime import capture
from runtime.confidence import confidence_rule
from runtime.exceptions import (
    ConfigurationError,
    InputValidationError,
    NonFiniteOutputError,
    OutOfEnvelopeError,
    PayloadTooLargeError,
)
from runtime.validation import rows_from_payload, screen

VERSION_PATTERN = re.compile(r"v\d+(\.\d+)*")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _positive_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    if not value.isdigit() or int(value) < 1:
        raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _model_version() -> str:
    value = os.environ.get("MODEL_VERSION", "v1.0")
    if not VERSION_PATTERN.fullmatch(value):
        raise ConfigurationError(f"MODEL_VERSION must look like v1.0 (v<major>[.<minor>...]), got {value!r}")
    return value


def _log_level() -> str:
    value = os.environ.get("LOG_LEVEL", "INFO").upper()
    if value not in LOG_LEVELS:
        raise ConfigurationError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return value


MODEL_VERSION = _model_version()
LOG_LEVEL = _log_level()
MAX_BATCH_SIZE = _positive_int("MAX_BATCH_SIZE", 1000)
MAX_BODY_BYTES = _positive_int("MAX_BODY_BYTES", 1 << 20)
METRIC_NAMESPACE = os.environ.get("METRIC_NAMESPACE", "DiecastT1")


def _default_model_path() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.path.join(d, "models_onnx", MODEL_VERSION) for d in (here, os.path.dirname(here))]
    return next((p for p in candidates if os.path.isdir(p)), candidates[0])


MODEL_PATH = os.environ.get("MODEL_PATH") or _default_model_path()

logger = logging.getLogger("diecast")
logging.basicConfig(stream=sys.stderr, level=getattr(logging, LOG_LEVEL), format="%(message)s")

MODEL = runtime.load(MODEL_PATH)  # INIT: a broken model folder fails here, not on a request

_NAMES = MODEL.feature_names
_TRAIN = (MODEL.train_min, MODEL.train_max)
_PERFORMANCE = {k: MODEL.manifest["metrics"][k] for k in ("f1_score", "roc_auc", "accuracy")}
_HEADERS = {"Content-Type": "application/json"}
_CAPTURE = capture.Capture(MODEL.model_version, _NAMES) if capture.enabled(os.environ.get(capture.ENV_VAR)) else None
_confidence = confidence_rule(MODEL.manifest)  # the band rule the batch scorer shares
_cold = True

# Exception type -> (HTTP status, error type), most specific first; the runtime's errors carry no HTTP.
_STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (PayloadTooLargeError, 413, "PayloadTooLarge"),
    (OutOfEnvelopeError, 422, "ReadingOutOfEnvelope"),
    (NonFiniteOutputError, 422, "NonFiniteOutput"),
    (InputValidationError, 400, "InvalidInput"),
    (proxy_events.HttpError, 400, ""),  # its own status and type
)


def _row_result(p: float, label: int, latent: list[float], attention: list[float]) -> dict[str, Any]:
    return {
        "prediction": {
            "class": "defect" if label else "normal",
            "probability": p,
            "confidence": _confidence(p),
        },
        "latent_features": latent,
        "attention_weights": dict(zip(_NAMES, attention, strict=True)),
    }


def predict_payload(payload: object, request_id: str = "") -> tuple[dict[str, Any], int, int, bytes]:
    """A parsed request body -> (response object, rows, defects, capture lines or b""). Raises InputValidationError."""
    payload, ids = capture.split_ids(payload, MAX_BATCH_SIZE)
    X, batch = rows_from_payload(payload, _NAMES, MAX_BATCH_SIZE)
    warnings = screen(X, _TRAIN, MODEL.envelope, _NAMES, batch)  # refuses readings beyond the envelope
    proba, label, latent, attention = MODEL.raw_predict(X)
    probs, labels, lats, atts = proba.tolist(), label.tolist(), latent.tolist(), attention.tolist()
    defects = sum(labels)
    if batch:
        rows = zip(probs, labels, lats, atts, strict=True)
        body: dict[str, Any] = {"predictions": [_row_result(*r) for r in rows], "count": len(probs)}
    else:
        body = _row_result(probs[0], labels[0], lats[0], atts[0])
    body["model_version"] = MODEL.model_version
    body["model_performance"] = _PERFORMANCE
    body["warnings"] = warnings
    captured = _CAPTURE.lines(request_id, payload, X, batch, ids, body) if _CAPTURE and ids else b""
    return body, len(probs), defects, captured


def health() -> dict[str, Any]:
    return {"status": "ok", "model_version": MODEL.model_version, "features": len(_NAMES)}


def _answer(event: Any, proxy: bool, request_id: str) -> tuple[dict[str, Any], int, int, bytes]:
    """Route step: (body, rows, defects, capture lines) for a valid request; raises for anything else."""
    if not proxy:
        return predict_payload(event, request_id)
    request = proxy_events.request_of(event, MAX_BODY_BYTES)
    if request.route == "/health":
        return health(), 0, 0, b""
    return predict_payload(request.payload, request_id)


def _status_of(exc: Exception) -> tuple[int, str]:
    for kind, status, error_type in _STATUS:
        if isinstance(exc, kind):
            if isinstance(exc, proxy_events.HttpError):
                return exc.status, exc.error_type
            return status, error_type
    return 500, "InternalError"


def _error_body(exc: Exception, error_type: str, request_id: str) -> dict[str, Any]:
    details = getattr(exc, "details", [])
    return {
        "error": {
            "type": error_type,
            "message": getattr(exc, "message", ""),
            "details": details,
            "request_id": request_id,
        }
    }


_INTERNAL = "the model could not answer this request; it has been logged"


def lambda_handler(event: Any, context: Any = None) -> dict[str, Any]:
    global _cold
    cold, _cold = _cold, False
    started = time.perf_counter()
    request_id = getattr(context, "aws_request_id", None) or str(uuid.uuid4())
    proxy = proxy_events.is_proxy(event)
    try:
        body, rows, defects, captured = _answer(event, proxy, request_id)
        if rows:
            body["processing_time_ms"] = round((time.perf_counter() - started) * 1e3, 3)
        _emit(request_id, started, cold, "ok", 200, rows, defects, captured=captured)
        status = 200
    except Exception as exc:
        status, error_type = _status_of(exc)
        if status == 500:
            logger.exception("unexpected error, request_id=%s", request_id)
            body = {"error": {"type": error_type, "message": _INTERNAL, "details": [], "request_id": request_id}}
        else:
            body = _error_body(exc, error_type, request_id)
            _debug_payload(request_id, event)
        _emit(request_id, started, cold, "rejected" if status < 500 else "error", status, 0, 0, error_type)
    return _respond(proxy, status, body, request_id)


def _respond(proxy: bool, status: int, body: dict[str, Any], request_id: str) -> dict[str, Any]:
    """Respond step: a proxy response (status, headers, JSON body) or, for direct invocations, the object itself
    (with ``statusCode`` on errors)."""
    if proxy:
        return {"statusCode": status, "headers": {**_HEADERS, "X-Request-Id": request_id}, "body": _dumps(body)}
    if status != 200:
        body["statusCode"] = status
    return body


def _dumps(body: dict[str, Any]) -> str:
    """The response body as JSON text; never raises (client text that reached a message is escaped if need be)."""
    try:
        return orjson.dumps(body).decode()
    except (TypeError, orjson.JSONEncodeError):
        return orjson.dumps(_printable_tree(body)).decode()


def _printable_tree(value: Any, depth: int = 0) -> Any:
    """A copy of a response fragment whose strings are valid, printable UTF-8 (for the rare client text)."""
    if depth > 20:
        return "..."
    if isinstance(value, str):
        return proxy_events.printable(value, 1000)
    if isinstance(value, dict):
        return {proxy_events.printable(str(k), 200): _printable_tree(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable_tree(v, depth + 1) for v in value]
    return value


def _debug_payload(request_id: str, event: Any) -> None:
    """At DEBUG, the rejected payload (at most 4 KiB); logging never raises, whatever the payload holds."""
    if LOG_LEVEL != "DEBUG":
        return
    try:
        text = orjson.dumps({"request_id": request_id, "event": event}, default=str, option=orjson.OPT_NON_STR_KEYS)
        preview = text[:4096].decode("utf-8", "replace")
    except Exception:  # too deep, a 65-bit integer, a lone surrogate: a bounded repr instead
        preview = f"request_id={request_id} event={proxy_events.printable(reprlib.repr(event), 4096)}"
    logger.debug(preview)


def _emf_directives(ok: bool, cold: bool) -> list[dict[str, Any]]:
    metrics = [{"Name": "Latency", "Unit": "Milliseconds"}, {"Name": "Rows", "Unit": "Count"}]
    if ok:
        metrics += [{"Name": "DefectPredictions", "Unit": "Count"}, {"Name": "NormalPredictions", "Unit": "Count"}]
        dimensions = [["ModelVersion"]]
    else:
        metrics.append({"Name": "Errors", "Unit": "Count"})
        dimensions = [["ModelVersion"], ["ModelVersion", "ErrorType"]]
    if cold:
        metrics.append({"Name": "ColdStart", "Unit": "Count"})
    return [{"Namespace": METRIC_NAMESPACE, "Dimensions": dimensions, "Metrics": metrics}]


# The EMF directive for each (success, cold start) case, built once.
_EMF_DIRECTIVES = {(ok, cold): _emf_directives(ok, cold) for ok in (True, False) for cold in (True, False)}


def _emit(
    request_id: str,
    started: float,
    cold: bool,
    outcome: str,
    status: int,
    rows: int,
    defects: int,
    error: str = "",
    captured: bytes = b"",
) -> None:
    """One line per request: a structured log record and a CloudWatch EMF document, then the capture lines
    (written in the same call: a second write cost ~4 us in a warm request)."""
    latency_ms = round((time.perf_counter() - started) * 1e3, 3)
    record: dict[str, Any] = {
        "level": "INFO" if status < 500 else "ERROR",
        "message": "request",
        "request_id": request_id,
        "ModelVersion": MODEL.model_version,
        "outcome": outcome,
        "status": status,
        "rows": rows,
        "latency_ms": latency_ms,
        "Latency": latency_ms,
        "Rows": rows,
    }
    if status < 400:
        record["DefectPredictions"], record["NormalPredictions"] = defects, rows - defects
    else:
        record["ErrorType"], record["Errors"] = error, 1
    if cold:
        record["ColdStart"] = 1
    record["_aws"] = {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": _EMF_DIRECTIVES[status < 400, cold]}
    sys.stdout.write((orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE) + captured).decode())
