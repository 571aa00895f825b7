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

import gc
import logging
import math
import os
import re
import reprlib
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import proxy_events

import runtime
from runtime import capture, routing
from runtime.confidence import confidence_rule
from runtime.exceptions import (
    ConfigurationError,
    InputValidationError,
    NonFiniteOutputError,
    OutOfEnvelopeError,
    PayloadTooLargeError,
)
from runtime.validation import Screen, rows_from_payload

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
_HEADERS = {"Content-Type": "application/json"}
_CAPTURE = capture.Capture(MODEL.model_version, _NAMES) if capture.enabled(os.environ.get(capture.ENV_VAR)) else None
_cold = True

# Exception type -> (HTTP status, error type), most specific first; the runtime's errors carry no HTTP.
_STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (PayloadTooLargeError, 413, "PayloadTooLarge"),
    (OutOfEnvelopeError, 422, "ReadingOutOfEnvelope"),
    (NonFiniteOutputError, 422, "NonFiniteOutput"),
    (InputValidationError, 400, "InvalidInput"),
    (proxy_events.HttpError, 400, ""),  # its own status and type
)


@dataclass(frozen=True)
class Served:
    """A loaded model and what answering with it needs, built once at INIT."""

    model: runtime.Model
    screen: Screen
    confidence: Callable[[float], str]
    performance: dict[str, float]

    @classmethod
    def of(cls, model: runtime.Model) -> Served:
        metrics = {k: model.manifest["metrics"][k] for k in ("f1_score", "roc_auc", "accuracy")}
        return cls(
            model,
            Screen(model.feature_names, model.train_range, model.envelope),
            confidence_rule(model.manifest),
            metrics,
        )


def _second_model(variable: str, version: str) -> runtime.Model:
    """Another version beside the primary (models_onnx/<version> next to MODEL_PATH), checked compatible."""
    model = runtime.load(os.path.join(os.path.dirname(os.path.abspath(MODEL_PATH)), version))
    routing.check_compatible(MODEL.manifest, model.manifest, variable)
    return model


PRIMARY = Served.of(MODEL)
_split = os.environ.get("AB_SPLIT")
_ab_version, AB_SHARE = routing.parse_split(_split) if _split else ("", 0.0)
AB = Served.of(_second_model("AB_SPLIT", _ab_version)) if _split else None
_shadow_version = os.environ.get("SHADOW_MODEL_VERSION")
SHADOW = (
    _second_model("SHADOW_MODEL_VERSION", routing.parse_version("SHADOW_MODEL_VERSION", _shadow_version))
    if _shadow_version
    else None
)


def _row_result(served: Served, p: float, label: int, latent: list[float], attention: list[float]) -> dict[str, Any]:
    return {
        "prediction": {"class": "defect" if label else "normal", "probability": p, "confidence": served.confidence(p)},
        "latent_features": latent,
        "attention_weights": dict(zip(_NAMES, attention, strict=True)),
    }


def _score(served: Served, X: np.ndarray, batch: bool) -> tuple[list[dict], list[list]]:
    """(range warnings, [probabilities, labels, latents, attentions] as lists) for rows one model answers."""
    warnings = served.screen(X, batch)  # refuses readings beyond the envelope
    lists = served.model.raw_lists(X)
    probs, _, lats, atts = lists
    # Finite outputs, checked on the lists about to be served (a NaN makes a sum NaN; latents stay far below
    # overflow inside the envelope): ~1 us here against ~4 us for numpy's checks on arrays this small.
    if not math.isfinite(sum(probs) + sum(map(sum, lats)) + sum(map(sum, atts))):
        served.model.check_finite([np.array(values) for values in lists])  # names the rows
    return warnings, lists


def _split_rows(X: np.ndarray, to_b: list[bool]) -> tuple[list[dict], list[list], list[Served]]:
    """A batch answered by two models: each scores its rows; results and warnings come back in request order."""
    assert AB is not None
    who = [AB if b else PRIMARY for b in to_b]
    warnings: list[dict] = []
    merged: list[list] = [[None] * len(to_b) for _ in range(4)]
    for served in (PRIMARY, AB):
        rows = [i for i, s in enumerate(who) if s is served]
        if not rows:
            continue
        part_warnings, lists = _score(served, X[rows], batch=True)
        warnings += [{**w, "row": rows[w["row"]]} for w in part_warnings]
        for column, values in zip(merged, lists, strict=True):
            for i, value in zip(rows, values, strict=True):
                column[i] = value
    warnings.sort(key=lambda w: w["row"])
    return warnings, merged, who


def _answer_rows(X: np.ndarray, batch: bool, ids: list[str | None] | None, request_id: str):
    """(warnings, lists, the Served of each row or None when the primary answered them all)."""
    if AB is None:
        return (*_score(PRIMARY, X, batch), None)
    names = routing.row_ids(ids or [None] * len(X), request_id, batch)
    to_b = [routing.goes_to_b(i, AB_SHARE) for i in names]
    if not batch:
        served = AB if to_b[0] else PRIMARY
        return (*_score(served, X, batch), [served])
    return _split_rows(X, to_b)


def _shadow_rows(X: np.ndarray) -> list[dict[str, Any]] | None:
    """The shadow model's answer for every row, or None when it failed (logged, counted; the request goes on)."""
    assert SHADOW is not None
    try:
        outs = SHADOW.raw_predict(X)
        SHADOW.check_finite(outs)
        version = SHADOW.model_version
        return [
            {"model_version": version, "probability": p, "label": label}
            for p, label in zip(outs[0].tolist(), outs[1].tolist(), strict=True)
        ]
    except Exception:
        logger.warning("shadow model %s failed on this request", SHADOW.model_version, exc_info=True)
        return None


def predict_payload(payload: object, request_id: str = "") -> tuple[dict[str, Any], int, int, bytes, dict[str, Any]]:
    """A parsed request body -> (response object, rows, defects, capture lines or b"", extra log fields).
    Raises InputValidationError."""
    payload, ids = capture.split_ids(payload, MAX_BATCH_SIZE)
    X, batch = rows_from_payload(payload, _NAMES, MAX_BATCH_SIZE)
    warnings, lists, who = _answer_rows(X, batch, ids, request_id)
    body = _body(lists, who, batch, warnings)
    shadow = _shadow_rows(X) if SHADOW is not None else None
    extra = _shadow_log(shadow, lists[1]) if SHADOW is not None else {}
    captured = b""
    if _CAPTURE and ids:
        versions = [s.model.model_version for s in who] if who else None
        captured = _CAPTURE.lines(request_id, payload, X, batch, ids, body, versions, shadow)
    return body, len(lists[0]), sum(lists[1]), captured, extra


def _body(lists: list[list], who: list[Served] | None, batch: bool, warnings: list[dict]) -> dict[str, Any]:
    """The response object; under an A/B split each batch row names its model, and a split batch says "mixed"."""
    probs, labels, lats, atts = lists
    uniform = not who or all(s is who[0] for s in who)
    served = who[0] if who and uniform else PRIMARY
    if batch:
        each = who or [PRIMARY] * len(probs)
        rows = [_row_result(*r) for r in zip(each, probs, labels, lats, atts, strict=True)]
        if who:
            for item, s in zip(rows, who, strict=True):
                item["model_version"] = s.model.model_version
        body: dict[str, Any] = {"predictions": rows, "count": len(probs)}
    else:
        body = _row_result(served, probs[0], labels[0], lats[0], atts[0])
    body["model_version"] = served.model.model_version if uniform else "mixed"
    body["model_performance"] = served.performance
    body["warnings"] = warnings
    return body


def _shadow_log(shadow: list[dict[str, Any]] | None, labels: list[int]) -> dict[str, Any]:
    if shadow is None:
        return {"ShadowErrors": 1, "shadow_version": SHADOW.model_version if SHADOW else ""}
    agree = sum(s["label"] == label for s, label in zip(shadow, labels, strict=True))
    return {"shadow_version": shadow[0]["model_version"], "shadow_agree": agree}


def health() -> dict[str, Any]:
    return {"status": "ok", "model_version": MODEL.model_version, "features": len(_NAMES)}


def _answer(event: Any, proxy: bool, request_id: str) -> tuple[dict[str, Any], int, int, bytes, dict[str, Any]]:
    """Route step: (body, rows, defects, capture lines, extra log fields) for a valid request; raises otherwise."""
    if not proxy:
        return predict_payload(event, request_id)
    request = proxy_events.request_of(event, MAX_BODY_BYTES)
    if request.route == "/health":
        return health(), 0, 0, b"", {}
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
        body, rows, defects, captured, extra = _answer(event, proxy, request_id)
        if rows:
            body["processing_time_ms"] = round((time.perf_counter() - started) * 1e3, 3)
        _emit(request_id, started, cold, "ok", 200, rows, defects, captured=captured, extra=extra)
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


def _emf_directives(ok: bool, cold: bool, shadow_failed: bool = False) -> list[dict[str, Any]]:
    metrics = [{"Name": "Latency", "Unit": "Milliseconds"}, {"Name": "Rows", "Unit": "Count"}]
    if shadow_failed:
        metrics.append({"Name": "ShadowErrors", "Unit": "Count"})
    if ok:
        metrics += [{"Name": "DefectPredictions", "Unit": "Count"}, {"Name": "NormalPredictions", "Unit": "Count"}]
        dimensions = [["ModelVersion"]]
    else:
        metrics.append({"Name": "Errors", "Unit": "Count"})
        dimensions = [["ModelVersion"], ["ModelVersion", "ErrorType"]]
    if cold:
        metrics.append({"Name": "ColdStart", "Unit": "Count"})
    return [{"Namespace": METRIC_NAMESPACE, "Dimensions": dimensions, "Metrics": metrics}]


# The EMF directive for each (success, cold start, shadow failed) case, built once.
_EMF_DIRECTIVES = {
    (ok, cold, shadow): _emf_directives(ok, cold, shadow)
    for ok in (True, False)
    for cold in (True, False)
    for shadow in (True, False)
}


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
    extra: dict[str, Any] | None = None,
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
    if extra:
        record.update(extra)
    directives = _EMF_DIRECTIVES[status < 400, cold, "ShadowErrors" in record]
    record["_aws"] = {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": directives}
    sys.stdout.write((orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE) + captured).decode())


# --- after INIT -----------------------------------------------------------------------------------------------------


def _warm() -> None:
    """One request's path through every model, so that the first real request does not pay for first touches."""
    row = {"features": dict(zip(_NAMES, MODEL.manifest_means(), strict=True))}
    for served in (PRIMARY, AB):
        if served is not None:
            _score(served, rows_from_payload(row, _NAMES, MAX_BATCH_SIZE)[0], batch=False)
    if SHADOW is not None:
        _shadow_rows(rows_from_payload(row, _NAMES, MAX_BATCH_SIZE)[0])


def _after_restore() -> None:
    """A SnapStart restore is a new start for the metrics: the next request reports ColdStart."""
    global _cold
    _cold = True


def _register_snapstart_hooks() -> bool:
    """Warm before the snapshot, reset after restore. The hooks exist only in AWS's Python 3.12+ runtime
    (``snapshot_restore_py``); elsewhere this is a no-op."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot  # type: ignore
    except ImportError:
        return False
    register_before_snapshot(_warm)
    register_after_restore(_after_restore)
    return True


SNAPSTART_HOOKS = _register_snapstart_hooks()
_warm()
# Everything INIT built lives as long as the process: freeze it out of the garbage collector's generations, so that a
# collection during a request walks only the request's own objects (no gc.collect() first: it cost 7-17 ms of INIT).
gc.freeze()
