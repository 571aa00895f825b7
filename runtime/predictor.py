"""One object answers rows: a loaded model, its input screen and its confidence rule, giving a typed ``Answer``.

The Lambda application, the batch scorer (every engine) and prediction capture all read an ``Answer``; nobody
re-parses a serialised response to learn a label. No HTTP here: the application maps the errors to statuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from runtime.confidence import confidence_rule
from runtime.contracts import CLASS_NAMES, PERFORMANCE_METRICS
from runtime.model import Model
from runtime.validation import Screen


@dataclass(slots=True)
class Answer:
    """One model's answer for n rows, as plain Python values (what a response serialises).

    ``probability`` (n floats), ``label`` (n ints, 1 = defect), ``latent`` (n lists of the latent size),
    ``attention`` (n lists of n_features weights, manifest order), ``confidence`` (n bands: "high", "medium",
    "low"), ``warnings`` (one ``{"row"?, "feature", "value", "range"}`` per reading outside the training range;
    ``row`` only for a batch) and the ``model_version`` that answered.

    Read-only by convention, not ``frozen``: a frozen dataclass's ``__init__`` goes through ``object.__setattr__``
    per field, about 1 us more on every request.
    """

    model_version: str
    probability: list[float]
    label: list[int]
    latent: list[list[float]]
    attention: list[list[float]]
    confidence: list[str]
    warnings: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.probability)

    def class_name(self, row: int) -> str:
        """``"defect"`` or ``"normal"`` for one row."""
        return CLASS_NAMES[self.label[row]]

    @property
    def defects(self) -> int:
        return sum(self.label)


class Predictor:
    """A model and what answering with it needs, built once: rows in, an ``Answer`` out."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.model_version = model.model_version
        self.feature_names = model.feature_names
        self.screen = Screen(model.feature_names, model.train_range, model.envelope)
        self.confidence = confidence_rule(model.threshold, model.manifest.confidence_bands)
        self.performance = {k: model.manifest.metrics[k] for k in PERFORMANCE_METRICS}

    def answer(self, X: np.ndarray, batch: bool) -> Answer:
        """The answer for validated (n, n_features) float64 rows.

        Raises ``OutOfEnvelopeError`` for a reading beyond the envelope (before any compute) and
        ``NonFiniteOutputError`` instead of a non-finite answer.
        """
        warnings = self.screen(X, batch)
        probs, labels, lats, atts = self.model.finite_lists(X)
        return Answer(self.model_version, probs, labels, lats, atts, list(map(self.confidence, probs)), warnings)

    def scores(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(probability (n,) float32, label (n,) int64, confidence bands) for validated rows inside the envelope:
        the batch scorer's columns, without the latents and attention it does not write."""
        out = self.model.predict(X)  # the serving path's own checks: the same numbers as the handler's
        band = self.confidence
        return out["probability"], out["label"], [band(p) for p in out["probability"].tolist()]


def merge(parts: Sequence[tuple[Sequence[int], Answer]], n: int, model_version: str) -> Answer:
    """One batch answered in parts (an A/B split): each part's ``Answer`` with the batch rows it answered, back in
    batch order as one ``Answer`` of ``n`` rows named ``model_version``; warnings name the batch row, sorted by it."""
    columns: list[list[Any]] = [[None] * n for _ in range(5)]
    warnings: list[dict[str, Any]] = []
    for rows, part in parts:
        warnings += [{**w, "row": rows[w["row"]]} for w in part.warnings]
        values: tuple[list[Any], ...] = (part.probability, part.label, part.latent, part.attention, part.confidence)
        for column, given in zip(columns, values, strict=True):
            for i, value in zip(rows, given, strict=True):
                column[i] = value
    warnings.sort(key=lambda w: w["row"])
    probability, label, latent, attention, confidence = columns
    return Answer(model_version, probability, label, latent, attention, confidence, warnings)
