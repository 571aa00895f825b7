"""The statistics of a classifier on labelled rows and of its inputs against training, for the monitor and ``compare``.

- Classification: the confusion cells and the rates built from them, ROC-AUC, each with a bootstrap interval under
  the one policy of ``evaluation.policy``; a paired bootstrap of two models on the same rows; McNemar's exact test
  (scipy's ``binomtest``); the Wilson interval of a share (scipy's ``BinomTestResult.proportion_ci``).
- Drift: the population stability index (PSI) against the training quantile bins, with the size-aware limit it must
  pass (``psi_limit``: the rule of thumb or PSI's chi-square critical value at the window's size), and the one-sample
  Kolmogorov-Smirnov test (scipy's ``ks_1samp``) against the training CDF. Reference distributions come as 101
  percentiles (the manifest's ``quantiles``), never raw rows.

Resampling. A resample draws the n labelled rows with replacement. Statistics of the confusion cells alone resample
the cells (a multinomial draw of n over the cells: the same distribution as resampling rows, at a cost that does not
grow with n); ROC-AUC resamples row weights (``resample_weights``), and above ``AUC_BOOTSTRAP_MAX`` rows takes the
Hanley-McNeil normal interval instead. ``None`` stands where a quantity is undefined (no rows, no positives).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from evaluation.policy import CONFIDENCE, METRICS, RESAMPLES, SEED

RATES = ("f1", "precision", "recall", "accuracy", "fpr", "fnr")  # built from the confusion cells alone
TYPE_PREFIX = "recall:"  # per-defect-type recall keys in the metric arrays
NO_TYPE = {"", "none"}  # defect_type values that name no defect
CELLS_PER_BLOCK = 4_000_000  # resample weights held at once (resamples x rows), ~32 MB of float64
AUC_BOOTSTRAP_MAX = 20_000  # labelled rows; above, the Hanley-McNeil interval (a resample costs O(n log n))
PSI_BINS = 10  # deciles of the training distribution
PSI_FLOOR = 1e-4  # an empty bin counts as this share, so that ln(a / e) stays finite
KS_EXACT_MAX = 10_000  # rows; above, Kolmogorov's limiting distribution (the exact one grows costly, agreeing closely)


@dataclass(frozen=True)
class Scores:
    """One model's outputs on the labelled rows: ``probability`` (n,) float and ``label`` (n,) 0/1."""

    probability: np.ndarray
    label: np.ndarray


# --- the confusion cells and their rates ------------------------------------------------------------------------


def share(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` elementwise, NaN where ``den`` is 0 (a resample without defects has no recall).

    Parameters
    ----------
    num, den : array_like of float, one shape (or broadcastable)

    Returns
    -------
    numpy.ndarray of float64, the broadcast shape
    """
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, int]:
    """The four confusion cells.

    Parameters
    ----------
    y_true, y_pred : (n,) array_like of 0/1 (or bool)
        The labels and the predictions of the same rows.

    Returns
    -------
    dict
        ``{"tp", "fp", "tn", "fn"}``: int counts.
    """
    y_true, y_pred = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
    return {
        "tp": int(np.sum(y_true & y_pred)),
        "fp": int(np.sum(~y_true & y_pred)),
        "tn": int(np.sum(~y_true & ~y_pred)),
        "fn": int(np.sum(y_true & ~y_pred)),
    }


def rates(tp: np.ndarray, fp: np.ndarray, tn: np.ndarray, fn: np.ndarray) -> dict[str, np.ndarray]:
    """The six ``RATES`` from confusion counts; NaN where a denominator is 0.

    Parameters
    ----------
    tp, fp, tn, fn : array_like of float, one shape
        Counts, e.g. (B,) over B resamples.

    Returns
    -------
    dict of str to numpy.ndarray
        ``{"f1", "precision", "recall", "accuracy", "fpr", "fnr"}``, each float64 of the counts' shape.
    """
    return {
        "f1": share(2 * tp, 2 * tp + fp + fn),
        "precision": share(tp, tp + fp),
        "recall": share(tp, tp + fn),
        "accuracy": share(tp + tn, tp + fp + tn + fn),
        "fpr": share(fp, fp + tn),
        "fnr": share(fn, fn + tp),
    }


def weighted_auc(w: np.ndarray, y: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC-AUC under each row of weights, for all rows in one pass (the bootstrap's B resamples).

    The Mann-Whitney statistic with ties counted half: each row equals scikit-learn's
    ``roc_auc_score(y, score, sample_weight=w[b])``, which takes one weight vector per call.

    Parameters
    ----------
    w : (B, n) array_like of float
        Row weights: how often each row counts in each of B resamples (a row of ones is the sample itself).
    y : (n,) array_like of 0/1
    score : (n,) array_like of float

    Returns
    -------
    (B,) numpy.ndarray of float64
        NaN where a row of weights leaves one class only.
    """
    score = np.asarray(score, dtype=np.float64)
    order = np.argsort(score, kind="stable")
    s = score[order]
    starts = np.r_[0, np.nonzero(np.diff(s))[0] + 1]  # one group per distinct score
    ws, positive = np.asarray(w, dtype=np.float64)[:, order], np.asarray(y)[order] == 1
    pos = np.add.reduceat(ws * positive, starts, axis=1)
    neg = np.add.reduceat(ws * ~positive, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    return share((pos * (below + 0.5 * neg)).sum(axis=1), pos.sum(axis=1) * neg.sum(axis=1))


def roc_auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """ROC-AUC of the rows themselves.

    Parameters
    ----------
    y : (n,) array_like of 0/1
    score : (n,) array_like of float

    Returns
    -------
    float or None
        None when the rows hold one class only.
    """
    y = np.asarray(y) == 1
    if y.all() or not y.any():
        return None
    return float(weighted_auc(np.ones((1, y.size)), y, score)[0])


def hanley_mcneil(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of ROC-AUC (Hanley & McNeil 1982), used where resampling every row costs too much.

    Parameters
    ----------
    auc : float
    n_pos, n_neg : int
        Defects and normal parts among the rows.

    Returns
    -------
    float
    """
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


# --- resampling -------------------------------------------------------------------------------------------------


def resample_weights(n: int, rounds: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Bootstrap resamples of n rows, as weights: how many times each row is drawn in each resample.

    Parameters
    ----------
    n : int
        Rows; each resample draws n of them with replacement.
    rounds : int
        Resamples in all.
    rng : numpy.random.Generator

    Yields
    ------
    (b, n) numpy.ndarray of float64
        Blocks of b resamples, ``CELLS_PER_BLOCK`` weights at most, ``rounds`` resamples together.
    """
    block = max(1, CELLS_PER_BLOCK // max(n, 1))
    for start in range(0, rounds, block):
        b = min(block, rounds - start)
        draws = rng.integers(0, n, size=(b, n)) + n * np.arange(b)[:, None]
        yield np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)


def resample_cells(counts: np.ndarray, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """The cells' counts in each of ``rounds`` resamples of the rows they hold (a multinomial draw of n over them).

    Parameters
    ----------
    counts : (k,) array_like of int
        Rows in each cell, n in all (n > 0).
    rounds : int
    rng : numpy.random.Generator

    Returns
    -------
    (rounds, k) numpy.ndarray of float64
    """
    counts = np.asarray(counts, dtype=np.float64)
    n = int(counts.sum())
    return rng.multinomial(n, counts / n, size=rounds).astype(np.float64)


def interval(samples: np.ndarray, level: float = CONFIDENCE) -> list[float] | None:
    """The two-sided percentile interval of bootstrap samples, undefined (NaN) resamples left out.

    Parameters
    ----------
    samples : (B,) array_like of float
    level : float
        Two-sided level, e.g. 0.95.

    Returns
    -------
    [lo, hi] or None
        None when no resample defines the quantity.
    """
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if not samples.size:
        return None
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(samples, [tail, 1.0 - tail])
    return [float(lo), float(hi)]


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


# --- one model: the monitor's quality section ----------------------------------------------------------------------


def quality(
    y_true: np.ndarray,
    proba: np.ndarray,
    y_pred: np.ndarray,
    rounds: int = RESAMPLES,
    level: float = CONFIDENCE,
    seed: int = SEED,
) -> dict:
    """Confusion cells, the six rates and ROC-AUC of one model on labelled rows, each with its interval.

    Parameters
    ----------
    y_true : (n,) array_like of 0/1
    proba : (n,) array_like of float
        P(defect).
    y_pred : (n,) array_like of 0/1
    rounds, level, seed
        The resampling policy (``evaluation.policy``).

    Returns
    -------
    dict
        ``{rate: float | None for RATES, "roc_auc": float | None, "labelled": n, "confusion": {...},
        "ci": {metric: [lo, hi] | None}}``; ``ci`` is empty for no rows.
    """
    cells = confusion(y_true, y_pred)
    n = sum(cells.values())
    counts = np.array([cells["tp"], cells["fp"], cells["tn"], cells["fn"]], dtype=np.float64)
    point = {k: _finite(float(v)) for k, v in rates(*counts).items()}
    auc = roc_auc(y_true, proba)
    out: dict = {**point, "roc_auc": _finite(auc), "labelled": n, "confusion": cells}
    if n == 0:
        out["ci"] = {}
        return out
    rng = np.random.default_rng(seed)
    draws = resample_cells(counts, rounds, rng)
    boot = rates(*draws.T)
    ci: dict = {name: interval(boot[name], level) for name in RATES}
    ci["roc_auc"] = _auc_interval(y_true, proba, rounds, level, rng) if out["roc_auc"] is not None else None
    out["ci"] = ci
    return out


def _auc_interval(
    y_true: np.ndarray, proba: np.ndarray, rounds: int, level: float, rng: np.random.Generator
) -> list[float] | None:
    y, n = np.asarray(y_true) == 1, len(y_true)
    if n > AUC_BOOTSTRAP_MAX:
        auc = float(roc_auc(y, proba))  # type: ignore[arg-type]
        n_pos = int(y.sum())
        half = float(sps.norm.ppf((1 + level) / 2)) * hanley_mcneil(auc, n_pos, n - n_pos)
        return [max(0.0, auc - half), min(1.0, auc + half)]
    aucs = [weighted_auc(w, y, proba) for w in resample_weights(n, rounds, rng)]
    return interval(np.concatenate(aucs), level)


# --- two models on the same rows -----------------------------------------------------------------------------------


def defect_types(y: np.ndarray, types: np.ndarray | None) -> list[str]:
    """The defect types that occur among the defects, sorted.

    Parameters
    ----------
    y : (n,) numpy.ndarray of 0/1
    types : (n,) numpy.ndarray of str, or None
        None when the data has no type column (then no types).

    Returns
    -------
    list of str
    """
    if types is None:
        return []
    return sorted(set(types[y == 1].tolist()) - NO_TYPE)


def metric_arrays(w: np.ndarray, y: np.ndarray, s: Scores, types: np.ndarray | None) -> dict[str, np.ndarray]:
    """Each of ``METRICS``, and the recall of each defect type, under each row of weights.

    Parameters
    ----------
    w : (B, n) numpy.ndarray of float
        Row weights (``resample_weights``; a row of ones is the sample itself).
    y : (n,) numpy.ndarray of 0/1
    s : Scores
        One model's outputs on the same rows.
    types : (n,) numpy.ndarray of str, or None

    Returns
    -------
    dict of str to (B,) numpy.ndarray of float64
        ``METRICS`` in order, then ``recall:<type>`` per defect type.
    """
    positive, predicted = y == 1, s.label == 1
    tp, fp = w @ (positive & predicted), w @ (~positive & predicted)
    fn, tn = w @ (positive & ~predicted), w @ (~positive & ~predicted)
    by_name = rates(tp, fp, tn, fn) | {"roc_auc": weighted_auc(w, y, s.probability)}
    out = {name: by_name[name] for name in METRICS}
    for kind in defect_types(y, types):
        of_kind = positive & (types == kind)
        out[TYPE_PREFIX + kind] = share(w @ (of_kind & predicted), w @ of_kind)
    return out


def _estimate(point: float, samples: np.ndarray, level: float) -> dict:
    return {"value": float(point), "ci": interval(samples, level)}


def paired_bootstrap(
    y: np.ndarray,
    old: Scores,
    new: Scores,
    types: np.ndarray | None = None,
    rounds: int = RESAMPLES,
    level: float = CONFIDENCE,
    seed: int = SEED,
) -> dict[str, dict]:
    """Point estimates and intervals for two models, their difference (NEW - OLD) and their agreement.

    Both models are scored under the same resample weights, so a difference is paired resample by resample and its
    interval reflects the correlation between the two models' errors.

    Parameters
    ----------
    y : (n,) numpy.ndarray of 0/1
    old, new : Scores
        The two models' outputs on the same rows.
    types : (n,) numpy.ndarray of str, or None
    rounds, level, seed
        The resampling policy (``evaluation.policy``).

    Returns
    -------
    dict
        ``{"old": {metric: {"value", "ci"}}, "new": {...}, "difference": {...}, "agreement": {"value", "ci"}}``,
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


def paired_f1_difference(
    y_true: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    rounds: int = RESAMPLES,
    level: float = CONFIDENCE,
    seed: int = SEED,
) -> dict:
    """F1(b) - F1(a) of two models on the same labelled rows, with its paired interval.

    The rows are resampled jointly through the eight (truth, a, b) cells, which keeps the pairing.

    Parameters
    ----------
    y_true, a, b : (n,) array_like of 0/1
        The labels and the two models' predictions.
    rounds, level, seed
        The resampling policy (``evaluation.policy``).

    Returns
    -------
    dict
        ``{"value": float | None, "ci": [lo, hi] | None}``.
    """
    y, a, b = (np.asarray(v).astype(np.int64) for v in (y_true, a, b))
    cells = np.bincount(4 * y + 2 * a + b, minlength=8).astype(np.float64)
    out: dict = {"value": _finite(float(_f1_difference(cells[None, :])[0])), "ci": None}
    if cells.sum():
        out["ci"] = interval(_f1_difference(resample_cells(cells, rounds, np.random.default_rng(seed))), level)
    return out


def _f1_difference(cells: np.ndarray) -> np.ndarray:
    """(B, 8) counts indexed 4*truth + 2*a + b -> (B,) F1(b) - F1(a)."""
    index = np.arange(8)
    truth, a, b = (index >> 2) & 1, (index >> 1) & 1, index & 1

    def f1(pred: np.ndarray) -> np.ndarray:
        tp = cells[:, (truth == 1) & (pred == 1)].sum(axis=1)
        fp = cells[:, (truth == 0) & (pred == 1)].sum(axis=1)
        fn = cells[:, (truth == 1) & (pred == 0)].sum(axis=1)
        return share(2 * tp, 2 * tp + fp + fn)

    return f1(b) - f1(a)


def mcnemar(y: np.ndarray, first: np.ndarray, second: np.ndarray) -> dict:
    """McNemar's exact test on the rows where exactly one of two models is right.

    Under "equally accurate" b ~ Binomial(b + c, 1/2): the two-sided exact p-value is scipy's ``binomtest``
    (statsmodels' ``mcnemar(exact=True)`` gives the same). With no such rows there is no evidence either way: p = 1.

    Parameters
    ----------
    y, first, second : (n,) array_like of 0/1
        The labels and the two models' predictions.

    Returns
    -------
    dict
        ``{"b": rows only first gets right, "c": rows only second gets right, "p_value": float}``.
    """
    y = np.asarray(y).astype(bool)
    right_first, right_second = np.asarray(first).astype(bool) == y, np.asarray(second).astype(bool) == y
    b, c = int(np.sum(right_first & ~right_second)), int(np.sum(~right_first & right_second))
    p = 1.0 if b + c == 0 else float(sps.binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)
    return {"b": b, "c": c, "p_value": p}


def wilson(successes: int, n: int, level: float = CONFIDENCE) -> list[float] | None:
    """Wilson score interval of a share: unlike the normal one it stays inside [0, 1] and is honest near 0 or 1,
    where an agreement rate lives (scipy's ``proportion_ci(method="wilson")``).

    Parameters
    ----------
    successes, n : int
    level : float

    Returns
    -------
    [lo, hi] or None
        None for n = 0.
    """
    if n == 0:
        return None
    ci = sps.binomtest(successes, n).proportion_ci(confidence_level=level, method="wilson")
    return [max(0.0, float(ci.low)), min(1.0, float(ci.high))]


# --- drift against the training distribution -----------------------------------------------------------------------


def reference_bins(quantiles: np.ndarray, bins: int = PSI_BINS) -> tuple[np.ndarray, np.ndarray]:
    """The training distribution's quantile bins: (-inf, e1], (e1, e2], ..., (ek, inf) at its deciles.

    Equal edges (a point mass, e.g. a clipped reading) merge their bins, the merged bin expecting the shares of all
    of them.

    Parameters
    ----------
    quantiles : (101,) array_like of float
        The 0th..100th percentiles, non-decreasing.
    bins : int

    Returns
    -------
    edges : (k,) numpy.ndarray of float64
        The distinct interior edges, increasing (k <= bins - 1).
    expected : (k + 1,) numpy.ndarray of float64
        Each bin's training share; they sum to 1.
    """
    step = (len(quantiles) - 1) // bins
    edges = np.asarray(quantiles[step:-1:step], dtype=np.float64)
    cumulative = np.arange(1, bins) / bins
    unique, last = np.unique(edges[::-1], return_index=True)  # last occurrence of each value carries its share
    cum = cumulative[::-1][last]
    return unique, np.diff(np.concatenate([[0.0], cum, [1.0]]))


def psi(values: np.ndarray, quantiles: np.ndarray, bins: int = PSI_BINS) -> float | None:
    """Population stability index against the training quantile bins.

    PSI = sum over bins of (a - e) * ln(a / e), shares a (actual) and e (expected) floored at ``PSI_FLOOR``.

    Parameters
    ----------
    values : (n,) array_like of float
    quantiles : (101,) array_like of float
    bins : int

    Returns
    -------
    float or None
        None for no values.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return None
    edges, expected = reference_bins(quantiles, bins)
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(expected))
    actual = np.maximum(counts / values.size, PSI_FLOOR)
    expected = np.maximum(expected, PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def psi_critical(rows: int, bins: int, significance: float) -> float:
    """The PSI that ``rows`` values drawn from the reference distribution itself exceed with chance ``significance``.

    For a fixed reference with shares e and a sample's shares a, a second-order expansion of ln(a / e) gives
    PSI = sum (a - e) ln(a / e) ~ sum (a - e)^2 / e, Pearson's statistic divided by n. So under no drift n * PSI is
    approximately chi-square with ``bins - 1`` degrees of freedom, and PSI's mean is about (bins - 1) / n: the rule
    of thumb (0.1, 0.25) assumes n large enough for that to be negligible. The approximation needs every bin
    populated: an empty bin, floored at ``PSI_FLOOR``, adds ~0.69 on deciles, which is why the monitor waits for a
    minimum of rows (``monitor.constants.MIN_ROWS``) before it reads PSI at all.

    Parameters
    ----------
    rows : int
        The window's values, n > 0.
    bins : int
        The reference's bins (``reference_bins``' expected shares: fewer than ``PSI_BINS`` where edges merged).
    significance : float
        The chance of exceeding it under no drift, e.g. 0.01 / 30 for one of 30 features at 1 % for all.

    Returns
    -------
    float
        chi2.ppf(1 - significance, bins - 1) / rows.
    """
    return float(sps.chi2.ppf(1.0 - significance, max(bins - 1, 1)) / rows)


def psi_limit(threshold: float, rows: int, bins: int, significance: float) -> float:
    """The PSI above which a window of ``rows`` values counts as shifted: the rule of thumb ``threshold`` (a shift
    that matters), or, when larger, ``psi_critical`` (a shift that chance alone does not explain at this size).

    Parameters
    ----------
    threshold : float
        The rule of thumb, e.g. 0.25 for a major shift.
    rows, bins, significance
        As in ``psi_critical``.

    Returns
    -------
    float
    """
    return max(threshold, psi_critical(rows, bins, significance))


def reference_cdf(quantiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The training CDF's knots, linear between percentiles; a repeated value takes its largest F.

    Parameters
    ----------
    quantiles : (101,) array_like of float

    Returns
    -------
    x, F : (k,) numpy.ndarray of float64
        Distinct values, increasing, and F(x) at each.
    """
    probs = np.linspace(0.0, 1.0, len(quantiles))
    x, last = np.unique(np.asarray(quantiles, dtype=np.float64)[::-1], return_index=True)
    return x, probs[::-1][last]


def ks(values: np.ndarray, quantiles: np.ndarray) -> tuple[float, float] | None:
    """One-sample Kolmogorov-Smirnov test against the training CDF (scipy's ``ks_1samp``).

    The p-value treats the reference as exact (it is an estimate from the training split, so small p-values on large
    windows are common: PSI decides). It is the exact distribution up to ``KS_EXACT_MAX`` rows and Kolmogorov's
    limit above, where the two agree to many digits.

    Parameters
    ----------
    values : (n,) array_like of float
    quantiles : (101,) array_like of float

    Returns
    -------
    (statistic D, p-value) or None
        None for no values.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return None
    knots, probs = reference_cdf(quantiles)
    result = sps.ks_1samp(
        values,
        lambda x: np.interp(x, knots, probs, left=0.0, right=1.0),
        method="exact" if values.size <= KS_EXACT_MAX else "asymp",
    )
    return float(result.statistic), float(result.pvalue)
