"""The Lambda application: built once from ``Settings``, it answers events.

``App(settings)`` loads the primary model (a broken folder fails here, at INIT, not on a request), the A/B and
shadow models beside it (each checked compatible with the primary), prediction capture and the request's log line.
``App.handle(event, context)`` answers every event shape ``lambda/handler.py`` accepts:

- direct invocation: ``{"features": {...30 named readings...}}``, ``{"features": [30 numbers]}`` or
  ``{"instances": [<either form>, ...]}``; the response is the JSON object itself, and an error is returned
  as ``{"statusCode": 4xx|500, "error": {...}}`` (never raised);
- API Gateway REST (payload 1.0), HTTP API (payload 2.0) and Function URL events: ``POST /predict`` with the same
  JSON in ``body`` (base64 too), ``GET /health``; the response is ``{"statusCode", "headers", "body"}``
  (``serving/http.py`` holds the HTTP rules).

Every request writes one JSON line to stdout (``serving/telemetry.py``), then its capture lines when capture is on.
"""

from __future__ import annotations

import logging
import reprlib
import time
import uuid
from typing import Any

import numpy as np
import orjson

import runtime
from runtime import capture, routing
from runtime.contracts import CLASS_NAMES
from runtime.exceptions import ConfigurationError
from runtime.manifest import Manifest
from runtime.predictor import Answer, Predictor, merge
from runtime.validation import rows_from_payload
from serving import http
from serving.settings import Settings
from serving.telemetry import Telemetry

logger = logging.getLogger("diecast")
INTERNAL = "the model could not answer this request; it has been logged"
# What handle() returns for a request that was answered: (body, rows, defects, capture lines, extra log fields).
Answered = tuple[dict[str, Any], int, int, bytes, dict[str, Any]]


def check_compatible(primary: Manifest, other: Manifest, variable: str) -> None:
    """``ConfigurationError`` naming ``variable`` when ``other`` cannot stand in for the primary (the manifest's one
    compatibility rule: format, input, outputs, features and their order)."""
    differences = primary.differences(other)
    if differences:
        raise ConfigurationError(
            f"{variable}: {other.version} cannot stand in for the primary: {'; '.join(differences)}"
        )


class App:
    """The serving application: models, router (A/B split, shadow), capture and telemetry, built once."""

    def __init__(self, settings: Settings, quiet_log: bool = False) -> None:
        self.settings = settings
        self.predictor = Predictor(runtime.load(settings.model_dir))
        self.model_version = self.predictor.model_version
        self.names = self.predictor.feature_names
        self.max_batch = settings.max_batch_size
        self.capture = capture.Capture(self.model_version, self.names) if settings.capture else None
        self.ab = Predictor(self._second("AB_SPLIT", settings.ab_version)) if settings.ab_version else None
        self.ab_share = settings.ab_share
        self.shadow = self._second("SHADOW_MODEL_VERSION", settings.shadow_version) if settings.shadow_version else None
        self.telemetry = Telemetry(self.model_version, settings.metric_namespace, quiet=quiet_log)
        self._cold = True

    def _second(self, variable: str, version: str) -> runtime.Model:
        model = runtime.load(self.settings.second_model_dir(version))
        check_compatible(self.predictor.model.manifest, model.manifest, variable)
        return model

    # --- one request -------------------------------------------------------------------------------------------

    def handle(self, event: Any, context: Any = None) -> dict[str, Any]:
        """The Lambda response for ``event``; never raises (an unexpected failure is a logged, generic 500)."""
        cold, self._cold = self._cold, False
        started = time.perf_counter()
        request_id = getattr(context, "aws_request_id", None) or str(uuid.uuid4())
        proxy = http.is_proxy(event)
        try:
            body, rows, defects, captured, extra = self._answer(event, proxy, request_id)
            if rows:
                body["processing_time_ms"] = round((time.perf_counter() - started) * 1e3, 3)
            self.telemetry.emit(request_id, started, cold, "ok", 200, rows, defects, captured=captured, extra=extra)
            status = 200
        except Exception as exc:
            status, error_type = http.status_of(exc)
            if status == 500:
                logger.exception("unexpected error, request_id=%s", request_id)
                body = http.error_body(error_type, INTERNAL, [], request_id)
            else:
                body = http.error_body(error_type, getattr(exc, "message", ""), getattr(exc, "details", []), request_id)
                self._debug_payload(request_id, event)
            outcome = "rejected" if status < 500 else "error"
            self.telemetry.emit(request_id, started, cold, outcome, status, 0, 0, error_type)
        return http.respond(proxy, status, body, request_id)

    def _answer(self, event: Any, proxy: bool, request_id: str) -> Answered:
        """Route step: a valid request's answer; raises otherwise."""
        if not proxy:
            return self.predict(event, request_id)
        request = http.request_of(event, self.settings.max_body_bytes)
        if request.route == "/health":
            return self.health(), 0, 0, b"", {}
        return self.predict(request.payload, request_id)

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "model_version": self.model_version, "features": len(self.names)}

    def predict(self, payload: object, request_id: str = "") -> Answered:
        """A parsed request body -> its answer. Raises ``InputValidationError`` (and its kinds)."""
        payload, ids = capture.split_ids(payload, self.max_batch)
        X, batch = rows_from_payload(payload, self.names, self.max_batch)
        answer, served, versions = self._route(X, batch, ids, request_id)
        body = self._body(answer, served, versions, batch)
        shadow = extra = None
        if self.shadow is not None:
            shadow = self._shadow_rows(X)
            extra = self._shadow_log(shadow, answer.label)
        captured = b""
        if self.capture and ids:
            captured = self.capture.lines(request_id, payload, X, batch, ids, answer, versions, shadow)
        return body, len(answer.probability), answer.defects, captured, extra or {}

    def _route(
        self, X: np.ndarray, batch: bool, ids: list[str | None] | None, request_id: str
    ) -> tuple[Answer, Predictor, list[str] | None]:
        """(the answer, the model whose metrics the response carries, the version of each row under an A/B split)."""
        if self.ab is None:
            return self.predictor.answer(X, batch), self.predictor, None
        names = routing.row_ids(ids or [None] * len(X), request_id, batch)
        who = [self.ab if routing.goes_to_b(i, self.ab_share) else self.predictor for i in names]
        versions = [p.model_version for p in who]
        if all(p is who[0] for p in who):
            return who[0].answer(X, batch), who[0], versions
        parts = []
        for served in (self.predictor, self.ab):
            rows = [i for i, p in enumerate(who) if p is served]
            parts.append((rows, served.answer(X[rows], batch=True)))
        return merge(parts, len(who), "mixed"), self.predictor, versions

    def _body(self, answer: Answer, served: Predictor, versions: list[str] | None, batch: bool) -> dict[str, Any]:
        """The response object; under an A/B split each batch row names its model, and a split batch says "mixed"."""
        names = self.names
        if not batch:
            cls = CLASS_NAMES[answer.label[0]]
            body: dict[str, Any] = {
                "prediction": {"class": cls, "probability": answer.probability[0], "confidence": answer.confidence[0]},
                "latent_features": answer.latent[0],
                "attention_weights": dict(zip(names, answer.attention[0], strict=True)),
            }
        else:
            rows = [
                {
                    "prediction": {"class": CLASS_NAMES[label], "probability": p, "confidence": band},
                    "latent_features": latent,
                    "attention_weights": dict(zip(names, attention, strict=True)),
                }
                for p, label, band, latent, attention in zip(
                    answer.probability, answer.label, answer.confidence, answer.latent, answer.attention, strict=True
                )
            ]
            if versions:
                for item, version in zip(rows, versions, strict=True):
                    item["model_version"] = version
            body = {"predictions": rows, "count": len(rows)}
        body["model_version"] = answer.model_version
        body["model_performance"] = served.performance
        body["warnings"] = answer.warnings
        return body

    def _shadow_rows(self, X: np.ndarray) -> list[dict[str, Any]] | None:
        """The shadow's answer for every row, or None when it failed (logged, counted; the request goes on)."""
        shadow = self.shadow
        assert shadow is not None
        try:
            probs, labels, _, _ = shadow.finite_lists(X)
            version = shadow.model_version
            return [
                {"model_version": version, "probability": p, "label": label}
                for p, label in zip(probs, labels, strict=True)
            ]
        except Exception:
            logger.warning("shadow model %s failed on this request", shadow.model_version, exc_info=True)
            return None

    def _shadow_log(self, shadow: list[dict[str, Any]] | None, labels: list[int]) -> dict[str, Any]:
        if shadow is None:
            return {"ShadowErrors": 1, "shadow_version": self.shadow.model_version if self.shadow else ""}
        agree = sum(s["label"] == label for s, label in zip(shadow, labels, strict=True))
        return {"shadow_version": shadow[0]["model_version"], "shadow_agree": agree}

    def _debug_payload(self, request_id: str, event: Any) -> None:
        """At DEBUG, the rejected payload (at most 4 KiB); logging never raises, whatever the payload holds."""
        if self.settings.log_level != "DEBUG":
            return
        try:
            text = orjson.dumps({"request_id": request_id, "event": event}, default=str, option=orjson.OPT_NON_STR_KEYS)
            preview = text[:4096].decode("utf-8", "replace")
        except Exception:  # too deep, a 65-bit integer, a lone surrogate: a bounded repr instead
            preview = f"request_id={request_id} event={http.printable(reprlib.repr(event), 4096)}"
        logger.debug(preview)

    # --- around INIT ---------------------------------------------------------------------------------------------

    def warm(self) -> None:
        """One request's path through every model, so that the first real request does not pay for first touches."""
        row = {"features": dict(zip(self.names, self.predictor.model.manifest_means(), strict=True))}
        X = rows_from_payload(row, self.names, self.max_batch)[0]
        for served in (self.predictor, self.ab):
            if served is not None:
                served.answer(X, batch=False)
        if self.shadow is not None:
            self._shadow_rows(X)

    def restored(self) -> None:
        """A SnapStart restore is a new start for the metrics: the next request reports ColdStart."""
        self._cold = True


def register_snapstart_hooks(app: App) -> bool:
    """Warm before the snapshot, reset the cold-start flag after restore. The hooks exist only in AWS's Python 3.12+
    runtime (``snapshot_restore_py``); elsewhere this is a no-op that returns False."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot  # type: ignore
    except ImportError:
        return False
    register_before_snapshot(app.warm)
    register_after_restore(app.restored)
    return True
