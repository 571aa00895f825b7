"""The explain function's application (T2): ``POST /explain``, ``GET /importance`` and direct invocation.

``App(settings)`` is the predict application (``serving.app.App``: validation, errors, telemetry, the same
answers) on the primary model alone, with the explainer of that model beside it; A/B split, shadow and capture are
the predict function's business and are off here. A model folder without ``explanation.json`` fails at INIT with
``ModelArtifactError`` (re-run make convert). Errors are T1's: the same bodies and statuses (``serving/http.py``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from explain import artifact
from explain.explainer import Explainer
from runtime import capture
from runtime.validation import rows_from_payload
from serving import app as serving_app
from serving import http
from serving.settings import Settings


class App(serving_app.App):
    """Answers explanation requests with the predict function's rules."""

    def __init__(self, settings: Settings, quiet_log: bool = False) -> None:
        primary_only = dataclasses.replace(settings, ab_version="", ab_share=0.0, shadow_version="", capture=False)
        super().__init__(primary_only, quiet_log=quiet_log)
        model = self.predictor.model
        self.explainer = Explainer(model, artifact.read(model.model_dir, model.manifest))

    def _answer(self, event: Any, proxy: bool, request_id: str) -> serving_app.Answered:
        if not proxy:
            return self.explain(event, request_id)
        request = http.request_of(event, self.settings.max_body_bytes, http.EXPLAIN_ROUTES)
        if request.route == "/importance":
            return self.importance(), 0, 0, b"", {}
        return self.explain(request.payload, request_id)

    def importance(self) -> dict[str, Any]:
        return artifact.importance_body(self.explainer.stored, self.model_version)

    def explain(self, payload: object, request_id: str = "") -> serving_app.Answered:
        """A parsed request body -> predictions as ``/predict`` answers them, with each part's explanation."""
        predicted, rows, defects, _, _ = self.predict(payload, request_id)
        features, _ = capture.split_ids(payload, self.max_batch)  # as predict reads it: ids taken out
        X, batch = rows_from_payload(features, self.names, self.max_batch)
        items = predicted["predictions"] if batch else [predicted]
        phi, outputs = self.explainer.contributions(X, [item["prediction"]["probability"] for item in items])
        explanations = [self._explanation(p, out) for p, out in zip(phi.tolist(), outputs.tolist(), strict=True)]
        body: dict[str, Any]
        if batch:
            body = {"explanations": explanations, "predictions": items, "count": len(items)}
        else:
            body = {"explanation": explanations[0], "prediction": predicted["prediction"]}
        body["model_version"] = predicted["model_version"]
        body["warnings"] = predicted["warnings"]
        return body, rows, defects, b"", {}

    def _explanation(self, contributions: list[float], output: float) -> dict[str, Any]:
        return {
            "base_value": self.explainer.base_value,
            "output": artifact.OUTPUT,
            "output_value": output,
            "contributions": dict(zip(self.names, contributions, strict=True)),
        }

    def warm(self) -> None:
        """The predict path, then one explanation, so that the first request does not pay for first touches."""
        super().warm()
        row = {"features": dict(zip(self.names, self.predictor.model.manifest_means(), strict=True))}
        self.explain(row)
