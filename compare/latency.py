"""Single-row latency of two loaded graphs, measured side by side.

Interleaved: each round runs one row through both models, the order alternating between rounds, so drift in the
machine's load hits both alike. The figures are medians and p90s of the
bare ``session.run`` of a (1, 30) row (``Model.raw_predict``), plus the NEW/OLD ratio of medians with a
bootstrap interval over rounds. Noisy machines move absolute times; the ratio within one run is what to read.
"""

from __future__ import annotations

import time

import numpy as np

from evaluation.policy import RESAMPLES
from evaluation.stats import interval
from runtime import Model


def _time_rounds(old: Model, new: Model, rows: list[np.ndarray], rounds: int, warmup: int) -> np.ndarray:
    """(rounds, 2) nanoseconds: column 0 OLD, column 1 NEW."""
    clock = time.perf_counter_ns
    for i in range(warmup):
        old.raw_predict(rows[i % len(rows)])
        new.raw_predict(rows[i % len(rows)])
    out = np.empty((rounds, 2), dtype=np.int64)
    pair = ((0, old), (1, new))
    for r in range(rounds):
        row = rows[r % len(rows)]
        for col, model in pair if r % 2 == 0 else pair[::-1]:
            t0 = clock()
            model.raw_predict(row)
            out[r, col] = clock() - t0
    return out


def side_by_side(old: Model, new: Model, X: np.ndarray, rounds: int, warmup: int, level: float, seed: int) -> dict:
    """Latency of each model on single rows of ``X`` and their ratio. Times in microseconds."""
    rows = [np.ascontiguousarray(X[i : i + 1]) for i in range(min(len(X), 256))]
    ns = _time_rounds(old, new, rows, rounds, warmup)
    us = ns / 1e3
    summary: dict = {
        name: {"median_us": float(np.median(us[:, k])), "p90_us": float(np.percentile(us[:, k], 90))}
        for k, name in ((0, "old"), (1, "new"))
    }
    picks = np.random.default_rng(seed).integers(0, rounds, size=(RESAMPLES, rounds))
    ratios = np.median(us[picks, 1], axis=1) / np.median(us[picks, 0], axis=1)
    summary["ratio"] = {
        "value": summary["new"]["median_us"] / summary["old"]["median_us"],
        "ci": interval(ratios, level),
    }
    summary["rounds"] = rounds
    return summary
