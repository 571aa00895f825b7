"""One served model's explainer: the plan (background rows and samples) built once, then each part's
contributions from one batched run of the model's graph.

The function explained is the log-odds of the graph's ``probability`` (``shapley.log_odds``). Each part's switched
rows run in their own ``session.run``, so a part's contributions are the same bits alone or inside a batch, and
the part's own output is the probability the prediction answered with, so ``output`` is that prediction's log-odds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from explain import shapley
from explain.artifact import Stored
from runtime.exceptions import NonFiniteOutputError
from runtime.model import Model


class Explainer:
    """Contributions of each reading to a part's log-odds of "defect" for one loaded model."""

    def __init__(self, model: Model, stored: Stored) -> None:
        self.model = model
        self.stored = stored
        self.plan = shapley.make_plan(stored.background, stored.pairs_per_row, stored.seed)
        self.background_out = self.log_odds(self.plan.background)
        self.base_value = float(np.mean(self.background_out))

    def log_odds(self, X: np.ndarray) -> np.ndarray:
        """The graph's log-odds of "defect" for rows ``X`` (inside the envelope)."""
        probability = self.model.session.run(["probability"], {self.model.input_name: np.ascontiguousarray(X)})[0]
        return shapley.log_odds(probability)

    def contributions(self, X: np.ndarray, probabilities: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """(contributions (n, d), outputs (n,)) for validated rows ``X`` whose served probabilities are given."""
        outputs = shapley.log_odds(np.asarray(probabilities, dtype=np.float64))
        phi = np.empty(X.shape)
        for i in range(len(X)):
            between = self.log_odds(shapley.switched_rows(self.plan, X[i : i + 1]))
            phi[i] = shapley.attribute(self.plan, self.background_out, between, outputs[i : i + 1])[1][0]
        if not np.isfinite(phi).all():
            bad = np.flatnonzero(~np.isfinite(phi).all(axis=1))
            raise NonFiniteOutputError(
                "the explanation is not finite for these readings; check them against the training ranges",
                [{"row": int(r), "field": None, "reason": "non-finite contribution"} for r in bad[:10]],
            )
        return phi, outputs
