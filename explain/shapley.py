"""Interventional Shapley values of a batched model over its readings, by antithetic permutation sampling.

The value of a coalition S of readings for a part x is the model's output with x's readings in S and a background
row's readings elsewhere. One sample is a permutation of the readings and a background row b: starting from b, the
readings of x are switched in one at a time in the permutation's order, and each step's change of the output is
the contribution of the reading switched in. The steps of one sample telescope from f(b) to f(x), so the mean over
the samples gives exactly ``base_value + sum(contributions) == f(x)``, with ``base_value`` the mean of f over the
background rows (every background row is paired with the same number of permutations).

Permutations come in antithetic pairs (an order and its reverse), which cancels most of the sampling error of the
first and last positions. Everything here is numpy: the model is any function from (n, d) rows to (n,) outputs,
evaluated once on all the switched rows of a part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Probabilities are clipped this far from 0 and 1 before the log-odds, so that a saturated float32 probability
# (exactly 0.0 or 1.0) still has a finite log-odds; float32 resolves 1 - 1e-7 from 1.
PROBABILITY_CLIP = 1e-7
# base_value + sum(contributions) equals the output to float64 rounding; what the tests and the docs allow.
ADDITIVITY_TOLERANCE = 1e-9

Function = Callable[[np.ndarray], np.ndarray]


def log_odds(probability: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) in float64 of probabilities (any float dtype), clipped by ``PROBABILITY_CLIP``."""
    p = np.clip(np.asarray(probability, dtype=np.float64), PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
    return np.log(p) - np.log1p(-p)


def antithetic_orders(n_features: int, pairs: int, seed: int) -> np.ndarray:
    """(2 * pairs, n_features) permutations: each seeded permutation followed by its reverse."""
    rng = np.random.default_rng(seed)
    forward = np.stack([rng.permutation(n_features) for _ in range(pairs)])
    return np.stack([forward, forward[:, ::-1]], axis=1).reshape(2 * pairs, n_features)


@dataclass(frozen=True)
class Plan:
    """What every explanation of one model shares: the background rows and the samples drawn against them.

    ``owner[s]`` is sample s's background row; ``ranks[s, i]`` the step at which sample s switches reading i in;
    ``switched[s, j, i]`` whether reading i is x's after step j + 1 (the d - 1 rows strictly between b and x).
    """

    background: np.ndarray  # (K, d) float64
    orders: np.ndarray  # (M, d) permutations
    owner: np.ndarray  # (M,) background row of each sample
    ranks: np.ndarray  # (M, d)
    switched: np.ndarray  # (M, d - 1, d) bool

    @property
    def samples(self) -> int:
        return len(self.orders)

    @property
    def rows_per_part(self) -> int:
        """Model rows evaluated for one part (the background's own outputs are computed once)."""
        return self.samples * (self.background.shape[1] - 1)


def make_plan(background: np.ndarray, pairs_per_row: int, seed: int) -> Plan:
    """Pair every background row with ``pairs_per_row`` antithetic pairs of seeded permutations."""
    background = np.ascontiguousarray(background, dtype=np.float64)
    k, d = background.shape
    if k < 1 or d < 2 or pairs_per_row < 1:
        raise ValueError(f"a plan needs background rows, 2+ readings and 1+ pairs, got {k}x{d}, {pairs_per_row}")
    orders = antithetic_orders(d, k * pairs_per_row, seed)
    owner = np.repeat(np.arange(k), 2 * pairs_per_row)
    ranks = np.argsort(orders, axis=1)
    steps = np.arange(1, d)[None, :, None]
    switched = ranks[:, None, :] < steps
    return Plan(background, orders, owner, ranks, switched)


def switched_rows(plan: Plan, X: np.ndarray) -> np.ndarray:
    """(n * M * (d - 1), d) rows: for each part of ``X`` (n, d) and each sample, the rows between b and x."""
    X = np.asarray(X, dtype=np.float64)
    start = plan.background[plan.owner][None, :, None, :]
    rows = np.where(plan.switched[None], X[:, None, None, :], start)
    return rows.reshape(-1, X.shape[1])


def attribute(plan: Plan, background_out: np.ndarray, between: np.ndarray, out: np.ndarray) -> tuple[float, np.ndarray]:
    """(base_value, contributions (n, d)) from the outputs on the background (K,), on ``switched_rows`` and on the
    parts themselves (n,)."""
    n, m = len(out), plan.samples
    chain = np.empty((n, m, plan.ranks.shape[1] + 1))
    chain[:, :, 0] = background_out[plan.owner][None, :]
    chain[:, :, 1:-1] = np.asarray(between, dtype=np.float64).reshape(n, m, -1)
    chain[:, :, -1] = np.asarray(out, dtype=np.float64)[:, None]
    steps = np.diff(chain, axis=2)  # steps[p, s, j]: the change when sample s switches in its j-th reading
    per_reading = np.take_along_axis(steps, np.broadcast_to(plan.ranks, steps.shape), axis=2)
    return float(np.mean(background_out)), per_reading.mean(axis=1)


def explain(
    f: Function, plan: Plan, X: np.ndarray, background_out: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """(base_value, contributions (n, d), outputs (n,)) of ``f`` for the parts ``X``, in one call of ``f`` (plus one
    on the background when ``background_out`` is not given)."""
    X = np.asarray(X, dtype=np.float64)
    if background_out is None:
        background_out = f(plan.background)
    values = f(np.vstack([switched_rows(plan, X), X]))
    between, out = values[: -len(X)], values[-len(X) :]
    base, phi = attribute(plan, background_out, between, out)
    return base, phi, out
