"""The statistics of a paired model comparison: metrics with bootstrap intervals, McNemar's exact test.

Every metric is computed from row weights: a (B, n) matrix holding how often each of the n labelled rows occurs
in each of B bootstrap resamples (a row of ones is the sample itself). Both models are scored under the same
weights, so a difference NEW - OLD is paired resample by resample, and its percentile interval reflects the
correlation between the two models' errors. Intervals are percentile intervals of B resamples.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

METRICS = ("f1", "precision", "recall", "accuracy", "roc_auc", "fpr", "fnr")
TYPE_PREFIX = "recall:"  # per-defect-type recall keys in the metric arrays
NO_TYPE = {"", "none"}  # defect_type values that name no defect
CELLS_PER_BLOCK = 4_000_000  # resample weights held at once (rounds x rows), ~32 MB of float64


@dataclass(frozen=True)
class Scores:
    """One model's outputs on the labelled rows: ``probability`` (n,) float and ``label`` (n,) 0/1."""

    probability: np.ndarray
    label: np.ndarray


def _share(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 (e.g. a resample without defects has no recall)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def weighted_auc(w: np.ndarray, y: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC-AUC of ``score`` under each row of weights ``w`` (B, n): the Mann-Whitney statistic, ties counted
    half, so a row of ones gives sklearn's ``roc_auc_score``."""
    order = np.argsort(score, kind="stable")
    s = score[order]
    starts = np.r_[0, np.nonzero(np.diff(s))[0] + 1]  # one group per distinct score
    ws, positive = w[:, order], y[order] == 1
    pos = np.add.reduceat(ws * positive, starts, axis=1)
    neg = np.add.reduceat(ws * ~positive, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    return _share((pos * (below + 0.5 * neg)).sum(axis=1), pos.sum(axis=1) * neg.sum(axis=1))


def metric_arrays(w: np.ndarray, y: np.ndarray, s: Scores, types: np.ndarray | None) -> dict[str, np.ndarray]:
    """Each metric under each row of weights ``w`` (B, n): {name: (B,) float64}; per-type recall as
    ``recall:<type>``."""
    positive, predicted = y == 1, s.label == 1
    tp, fp = w @ (positive & predicted), w @ (~positive & predicted)
    fn, tn = w @ (positive & ~predicted), w @ (~positive & ~predicted)
    out = {
        "f1": _share(2 * tp, 2 * tp + fp + fn),
        "precision": _share(tp, tp + fp),
        "recall": _share(tp, tp + fn),
        "accuracy": _share(tp + tn, tp + fp + fn + tn),
        "roc_auc": weighted_auc(w, y, s.probability),
        "fpr": _share(fp, fp + tn),
        "fnr": _share(fn, fn + tp),
    }
    for kind in defect_types(y, types):
        of_kind = positive & (types == kind)
        out[TYPE_PREFIX + kind] = _share(w @ (of_kind & predicted), w @ of_kind)
    return out


def defect_types(y: np.ndarray, types: np.ndarray | None) -> list[str]:
    """The defect types that occur among the defects, sorted; none when the data has no type column."""
    if types is None:
        return []
    return sorted(set(types[y == 1].tolist()) - NO_TYPE)


def resample_weights(n: int, rounds: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Bootstrap weights in blocks of (b, n): how many times each row is drawn in each resample of n rows."""
    block = max(1, CELLS_PER_BLOCK // max(n, 1))
    for start in range(0, rounds, block):
        b = min(block, rounds - start)
        draws = rng.integers(0, n, size=(b, n)) + n * np.arange(b)[:, None]
        yield np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)


def interval(samples: np.ndarray, level: float) -> list[float]:
    """The two-sided percentile interval of bootstrap ``samples`` (NaN resamples ignored)."""
    tail = (1.0 - level) / 2.0
    lo, hi = np.nanquantile(samples, [tail, 1.0 - tail])
    return [float(lo), float(hi)]


def _estimate(point: float, samples: np.ndarray, level: float) -> dict:
    return {"value": float(point), "ci": interval(samples, level)}


def paired_bootstrap(
    y: np.ndarray, old: Scores, new: Scores, types: np.ndarray | None, rounds: int, level: float, seed: int
) -> dict[str, dict]:
    """Point estimates and intervals for both models, their difference (NEW - OLD) and their agreement.

    Returns ``{"old": {metric: {"value", "ci"}}, "new": {...}, "difference": {...}, "agreement": {...}}``,
    metric names as in ``metric_arrays``.
    """
    ones = np.ones((1, len(y)))
    point_old, point_new = metric_arrays(ones, y, old, types), metric_arrays(ones, y, new, types)
    samples: dict[str, list[np.ndarray]] = {}
    same = (old.label == new.label).astype(np.float64)
    for w in resample_weights(len(y), rounds, np.random.default_rng(seed)):
        arr_old, arr_new = metric_arrays(w, y, old, types), metric_arrays(w, y, new, types)
        for name in arr_old:
            samples.setdefault("old:" + name, []).append(arr_old[name])
            samples.setdefault("new:" + name, []).append(arr_new[name])
            samples.setdefault("diff:" + name, []).append(arr_new[name] - arr_old[name])
        samples.setdefault("agreement", []).append(w @ same / len(y))
    pooled = {k: np.concatenate(v) for k, v in samples.items()}
    out: dict[str, dict] = {"old": {}, "new": {}, "difference": {}}
    for name in point_old:
        a, b = point_old[name][0], point_new[name][0]
        out["old"][name] = _estimate(a, pooled["old:" + name], level)
        out["new"][name] = _estimate(b, pooled["new:" + name], level)
        out["difference"][name] = _estimate(b - a, pooled["diff:" + name], level)
    out["agreement"] = _estimate(same.mean(), pooled["agreement"], level)
    return out


def mcnemar(y: np.ndarray, old_label: np.ndarray, new_label: np.ndarray) -> dict:
    """McNemar's exact test on the rows where exactly one model is right.

    ``b``: OLD right and NEW wrong; ``c``: OLD wrong and NEW right. Under "equally accurate" b ~ Binomial(b + c,
    1/2); the two-sided exact p-value is scipy's ``binomtest`` (statsmodels' ``mcnemar(exact=True)`` gives the
    same). With no such rows there is no evidence either way: p = 1.
    """
    old_right, new_right = old_label == y, new_label == y
    b, c = int((old_right & ~new_right).sum()), int((~old_right & new_right).sum())
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)
    return {"b": b, "c": c, "p_value": p}
