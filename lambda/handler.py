"""AWS Lambda entry point: ``handler.lambda_handler``.

The model is loaded once at import time (Lambda INIT); a request only parses, validates, predicts and
serialises. Accepted events:

- direct invocation: ``{"features": {...30 named readings...}}``, ``{"features": [30 numbers]}`` or
  ``{"instances": [<either form>, ...]}``; the response is the JSON object itself, and an error is returned
  as ``{"statusCode": 4xx|500, "error": {...}}`` (never raised);
- API Gateway REST (payload 1.0), HTTP API (payload 2.0) and Function URL events: ``POST /predict`` with the same
  JSON in ``body`` (base64 too), ``GET /health``; the response is ``{"statusCode", "headers", "body"}``.

Configuration (environment): ``MODEL_VERSION`` (default v1.0), ``MODEL_PATH`` (default: ``models_onnx/<version>``
beside this file, as in the image, or in the repository), ``LOG_LEVEL`` (default INFO), ``MAX_BATCH_SIZE``
(default 1000 rows), ``MAX_BODY_BYTES`` (default 1 MiB).

Every request writes one JSON line to stdout: a structured log record that is also a CloudWatch Embedded
Metric Format (EMF) document (latency, rows, predictions by class, errors by type, cold start).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import sys
import time
import uuid
from typing import Any

import orjson

import runtime
from runtime.confidence import confidence_rule
from runtime.exceptions import InputValidationError, PayloadTooLargeError
from runtime.validation import range_warnings, rows_from_payload

MODEL_VERSION = os.environ.get("MODEL_VERSION", "v1.0")
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
MAX_BATCH_SIZE = int(os.environ.get("MAX_BATCH_SIZE", "1000"))
MAX_BODY_BYTES = int(os.environ.get("MAX_BODY_BYTES", str(1 << 20)))
METRIC_NAMESPACE = os.environ.get("METRIC_NAMESPACE", "DiecastT1")


def _default_model_path() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.path.join(d, "models_onnx", MODEL_VERSION) for d in (here, os.path.dirname(here))]
    return next((p for p in candidates if os.path.isdir(p)), candidates[0])


MODEL_PATH = os.environ.get("MODEL_PATH") or _default_model_path()

logger = logging.getLogger("diecast")
logging.basicConfig(stream=sys.stderr, level=getattr(logging, LOG_LEVEL, logging.INFO), format="%(message)s")

MODEL = runtime.load(MODEL_PATH)  # INIT: a broken model folder fails here, not on a request

_NAMES = MODEL.feature_names
_TRAIN_MIN, _TRAIN_MAX = MODEL.train_min, MODEL.train_max
_PERFORMANCE = {k: MODEL.manifest["metrics"][k] for k in ("f1_score", "roc_auc", "accuracy")}
_HEADERS = {"Content-Type": "application/json"}
_confidence = confidence_rule(MODEL.manifest)  # the band rule the batch scorer shares
_cold = True


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


def predict_payload(payload: object) -> tuple[dict[str, Any], int, int]:
    """A parsed request body -> (response object, rows, defects). Raises InputValidationError."""
    X, batch = rows_from_payload(payload, _NAMES, MAX_BATCH_SIZE)
    proba, label, latent, attention = MODEL.raw_predict(X)
    probs, labels, lats, atts = proba.tolist(), label.tolist(), latent.tolist(), attention.tolist()
    warnings = range_warnings(X, _TRAIN_MIN, _TRAIN_MAX, _NAMES, batch)
    defects = sum(labels)
    if batch:
        rows = zip(probs, labels, lats, atts, strict=True)
        body: dict[str, Any] = {"predictions": [_row_result(*r) for r in rows], "count": len(probs)}
    else:
        body = _row_result(probs[0], labels[0], lats[0], atts[0])
    body["model_version"] = MODEL.model_version
    body["model_performance"] = _PERFORMANCE
    body["warnings"] = warnings
    return body, len(probs), defects


def health() -> dict[str, Any]:
    return {"status": "ok", "model_version": MODEL.model_version, "features": len(_NAMES)}


def parse_json(text: str | bytes) -> object:
    """Strict RFC 8259 JSON (orjson): NaN/Infinity literals and nesting past 1024 levels are rejected."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        reason = str(exc)
        raise InputValidationError(
            f"the request body is not valid JSON: {reason}", [{"row": None, "field": "body", "reason": reason}]
        ) from None


class _HttpError(InputValidationError):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message, [])
        self.status_code = status
        self.error_type = error_type


def _proxy_request(event: dict) -> tuple[str, str, object]:
    """(method, path, parsed body or None) of an API Gateway v1/v2 or Function URL event."""
    http = event.get("requestContext", {}).get("http")
    if isinstance(http, dict):  # payload 2.0 and Function URLs
        method, path = http.get("method", ""), event.get("rawPath") or http.get("path", "")
    else:
        method, path = event.get("httpMethod", ""), event.get("path") or ""
    method = str(method).upper()
    body = event.get("body")
    if body is None or method != "POST":
        return method, path, None
    if not isinstance(body, str):
        raise InputValidationError("the request body must be a JSON string", [{"field": "body", "reason": "not text"}])
    if len(body) > MAX_BODY_BYTES * (4 / 3 if event.get("isBase64Encoded") else 1):
        raise PayloadTooLargeError(
            f"the request body is over {MAX_BODY_BYTES} bytes; send fewer rows per request",
            [{"row": None, "field": "body", "reason": f"{len(body)} bytes"}],
        )
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InputValidationError(
                "the request body is marked base64 but does not decode", [{"field": "body", "reason": "bad base64"}]
            ) from None
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLargeError(f"the request body is over {MAX_BODY_BYTES} bytes; send fewer rows per request")
        return method, path, parse_json(raw)
    return method, path, parse_json(body)


def _error_body(exc: InputValidationError, request_id: str) -> dict[str, Any]:
    return {"error": {"type": exc.error_type, "message": exc.message, "details": exc.details, "request_id": request_id}}


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


def _emit(request_id: str, started: float, outcome: str, status: int, rows: int, defects: int, error: str = "") -> None:
    """One line per request: a structured log record and a CloudWatch EMF document."""
    global _cold
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
    if _cold:
        record["ColdStart"] = 1
    record["_aws"] = {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": _EMF_DIRECTIVES[status < 400, _cold]}
    _cold = False
    sys.stdout.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE).decode())


def lambda_handler(event: Any, context: Any = None) -> dict[str, Any]:
    started = time.perf_counter()
    request_id = getattr(context, "aws_request_id", None) or str(uuid.uuid4())
    proxy = isinstance(event, dict) and ("requestContext" in event or "httpMethod" in event or "rawPath" in event)
    rows = defects = 0
    try:
        if proxy:
            method, path, payload = _proxy_request(event)
            route = path.rstrip("/").rsplit("/", 1)[-1]
            if route == "health":
                if method != "GET":
                    raise _HttpError(405, "MethodNotAllowed", f"{method} {path}: /health answers GET")
                body, status = health(), 200
            elif route == "predict":
                if method != "POST":
                    raise _HttpError(405, "MethodNotAllowed", f"{method} {path}: /predict answers POST")
                if payload is None:
                    raise InputValidationError(
                        "POST /predict needs a JSON body", [{"field": "body", "reason": "missing"}]
                    )
                body, rows, defects = predict_payload(payload)
                status = 200
            else:
                raise _HttpError(404, "NotFound", f"no route for {method} {path}; use POST /predict or GET /health")
        else:
            body, rows, defects = predict_payload(event)
            status = 200
        if rows:
            body["processing_time_ms"] = round((time.perf_counter() - started) * 1e3, 3)
        _emit(request_id, started, "ok", status, rows, defects)
    except InputValidationError as exc:
        status, body = exc.status_code, _error_body(exc, request_id)
        _emit(request_id, started, "rejected", status, rows, 0, exc.error_type)
        if LOG_LEVEL == "DEBUG":
            logger.debug(
                orjson.dumps({"request_id": request_id, "event": event}, default=str)[:4096].decode("utf-8", "replace")
            )
    except Exception:
        logger.exception("unexpected error, request_id=%s", request_id)
        status = 500
        body = {
            "error": {
                "type": "InternalError",
                "message": "the model could not answer this request; it has been logged",
                "details": [],
                "request_id": request_id,
            }
        }
        _emit(request_id, started, "error", status, rows, 0, "InternalError")
    if proxy:
        return {
            "statusCode": status,
            "headers": {**_HEADERS, "X-Request-Id": request_id},
            "body": orjson.dumps(body).decode(),
        }
    if status != 200:
        body["statusCode"] = status
    return body
