"""The statistics that need Python: PSI and KS against the training quantiles, classification metrics, bootstrap CIs.

Everything takes and returns plain numpy arrays and floats; ``None`` where a quantity is undefined (no rows, no
positives). Reference distributions come as 101 percentiles (the manifest's ``quantiles``), never raw rows.
"""

from __future__ import annotations

import math

import numpy as np

from monitor import constants as C

METRICS = ("f1", "precision", "recall", "accuracy", "fpr", "fnr")


def reference_bins(quantiles: np.ndarray, bins: int = C.PSI_BINS) -> tuple[np.ndarray, np.ndarray]:
    """(interior edges, expected shares) of the training distribution's ``bins`` quantile bins.

    Bins are (-inf, e1], (e1, e2], ..., (ek, inf) at the training deciles. Equal edges (a point mass, e.g. a
    clipped reading) merge their bins, the merged bin expecting the shares of all of them.
    """
    step = (len(quantiles) - 1) // bins
    edges = np.asarray(quantiles[step:-1:step], dtype=np.float64)
    cumulative = np.arange(1, bins) / bins
    unique, last = np.unique(edges[::-1], return_index=True)  # last occurrence of each value carries its share
    cum = cumulative[::-1][last]
    return unique, np.diff(np.concatenate([[0.0], cum, [1.0]]))


def psi(values: np.ndarray, quantiles: np.ndarray, bins: int = C.PSI_BINS) -> float | None:
    """Population stability index of ``values`` against the training quantile bins (None for no values).

    PSI = sum over bins of (a - e) * ln(a / e), shares a (actual) and e (expected) floored at ``PSI_FLOOR``.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return None
    edges, expected = reference_bins(quantiles, bins)
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(expected))
    actual = np.maximum(counts / values.size, C.PSI_FLOOR)
    expected = np.maximum(expected, C.PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def reference_cdf(quantiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots (x, F(x)) of the training CDF, linear between percentiles; a repeated value takes its largest F."""
    probs = np.linspace(0.0, 1.0, len(quantiles))
    x, last = np.unique(np.asarray(quantiles, dtype=np.float64)[::-1], return_index=True)
    return x, probs[::-1][last]


def ks(values: np.ndarray, quantiles: np.ndarray) -> tuple[float, float] | None:
    """One-sample Kolmogorov-Smirnov test of ``values`` against the training CDF: (statistic D, p-value).

    D = max over sorted x_i of max(i/n - F(x_i), F(x_i) - (i-1)/n); the p-value treats the reference as exact
    (it is an estimate from the training split, so small p-values on large windows are common: PSI decides).
    It is the exact distribution up to ``KS_EXACT_MAX`` rows and Kolmogorov's limit above (the exact one took
    1.5 s per feature at a million rows; the two agree there to many digits).
    """
    from scipy.stats import kstwo, kstwobign

    x = np.sort(np.asarray(values, dtype=np.float64))
    n = x.size
    if n == 0:
        return None
    knots, probs = reference_cdf(quantiles)
    cdf = np.interp(x, knots, probs, left=0.0, right=1.0)
    i = np.arange(1, n + 1)
    d = float(max(np.max(i / n - cdf), np.max(cdf - (i - 1) / n)))
    return d, float(kstwo.sf(d, n) if n <= C.KS_EXACT_MAX else kstwobign.sf(d * math.sqrt(n)))


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, int]:
    y_true, y_pred = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
    return {
        "tp": int(np.sum(y_true & y_pred)),
        "fp": int(np.sum(~y_true & y_pred)),
        "tn": int(np.sum(~y_true & ~y_pred)),
        "fn": int(np.sum(y_true & ~y_pred)),
    }


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def metrics_from_cells(tp: np.ndarray, fp: np.ndarray, tn: np.ndarray, fn: np.ndarray) -> dict[str, np.ndarray]:
    """The six rates from confusion counts (arrays of any shape); NaN where a denominator is zero."""
    tp, fp, tn, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, tn, fn))
    return {
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "accuracy": _ratio(tp + tn, tp + fp + tn + fn),
        "fpr": _ratio(fp, fp + tn),
        "fnr": _ratio(fn, fn + tp),
    }


def _clean(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def roc_auc(y_true: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray | float | None:
    """ROC-AUC (ties count one half). With ``weights`` of shape (B, n): one AUC per row of weights."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.all() or not y.any():
        return None
    order = np.argsort(s, kind="stable")
    s, y = s[order], y[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # groups of equal scores
    w = np.ones((1, s.size)) if weights is None else np.asarray(weights, dtype=np.float64)[:, order]
    pos = np.add.reduceat(w * y, starts, axis=1)
    neg = np.add.reduceat(w * ~y, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = np.sum(pos * (below + 0.5 * neg), axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))
    return float(auc[0]) if weights is None else auc


def quality(y_true: np.ndarray, proba: np.ndarray, y_pred: np.ndarray, seed: int = C.SEED) -> dict:
    """Confusion matrix, the six rates and ROC-AUC on labelled rows, each rate with a bootstrap CI.

    Rates: multinomial resampling of the four confusion cells (the same as resampling rows, at no cost per row).
    ROC-AUC: Poisson(1) weights per row, or the Hanley-McNeil normal interval above ``AUC_BOOTSTRAP_MAX`` rows.
    """
    cells = confusion(y_true, y_pred)
    n = sum(cells.values())
    point = {k: _clean(float(v)) for k, v in metrics_from_cells(**cells).items()}
    out: dict = {**point, "roc_auc": _clean(roc_auc(y_true, proba) or math.nan), "labelled": n, "confusion": cells}
    if n == 0:
        out["ci"] = {}
        return out
    rng = np.random.default_rng(seed)
    counts = np.array([cells["tp"], cells["fp"], cells["tn"], cells["fn"]], dtype=np.float64)
    draws = rng.multinomial(n, counts / n, size=C.BOOTSTRAP_REPS)
    boot = metrics_from_cells(*draws.T)
    lo, hi = 100 * (1 - C.CI_LEVEL) / 2, 100 * (1 + C.CI_LEVEL) / 2
    ci = {}
    for name in METRICS:
        values = boot[name][np.isfinite(boot[name])]
        ci[name] = [float(np.percentile(values, lo)), float(np.percentile(values, hi))] if values.size else None
    ci["roc_auc"] = _auc_ci(y_true, proba, rng, lo, hi) if out["roc_auc"] is not None else None
    out["ci"] = ci
    return out


def hanley_mcneil(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of ROC-AUC (Hanley & McNeil 1982), used where bootstrapping every row costs too much."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def _auc_ci(y_true: np.ndarray, proba: np.ndarray, rng: np.random.Generator, lo: float, hi: float) -> list[float]:
    n = len(y_true)
    if n > C.AUC_BOOTSTRAP_MAX:
        from scipy.stats import norm

        auc = float(roc_auc(y_true, proba))  # type: ignore[arg-type]
        n_pos = int(np.sum(y_true))
        half = norm.ppf(hi / 100) * hanley_mcneil(auc, n_pos, n - n_pos)
        return [max(0.0, auc - half), min(1.0, auc + half)]
    per_chunk = max(1, min(C.BOOTSTRAP_REPS_AUC, 5_000_000 // max(n, 1)))  # bound memory to ~40 MB of weights
    aucs = []
    for start in range(0, C.BOOTSTRAP_REPS_AUC, per_chunk):
        reps = min(per_chunk, C.BOOTSTRAP_REPS_AUC - start)
        aucs.append(roc_auc(y_true, proba, rng.poisson(1.0, size=(reps, n))))
    values = np.concatenate(aucs)
    values = values[np.isfinite(values)]
    return [float(np.percentile(values, lo)), float(np.percentile(values, hi))]


def _percentiles(values: np.ndarray) -> list[float] | None:
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    lo, hi = 100 * (1 - C.CI_LEVEL) / 2, 100 * (1 + C.CI_LEVEL) / 2
    return [float(np.percentile(values, lo)), float(np.percentile(values, hi))]


def wilson(successes: int, n: int) -> list[float] | None:
    """Wilson score interval of a share: unlike the normal one it stays inside [0, 1] and is honest near 0 or 1,
    where an agreement rate lives."""
    if n == 0:
        return None
    from scipy.stats import norm

    z = float(norm.ppf((1 + C.CI_LEVEL) / 2))
    share = successes / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return [max(0.0, centre - half), min(1.0, centre + half)]


def paired_f1_difference(y_true: np.ndarray, a: np.ndarray, b: np.ndarray, seed: int = C.SEED) -> dict:
    """F1(b) - F1(a) on the same labelled rows, with a paired bootstrap CI.

    Resampling rows jointly keeps the pairing; it equals multinomial resampling of the eight (truth, a, b) cells,
    so its cost does not grow with the rows.
    """
    y, a, b = (np.asarray(v).astype(np.int64) for v in (y_true, a, b))
    cells = np.bincount(4 * y + 2 * a + b, minlength=8).astype(np.float64)
    n = int(cells.sum())
    point = _f1_difference(cells[None, :])[0]
    out: dict = {"value": _clean(point), "ci": None}
    if n:
        draws = np.random.default_rng(seed).multinomial(n, cells / n, size=C.BOOTSTRAP_REPS)
        out["ci"] = _percentiles(_f1_difference(draws.astype(np.float64)))
    return out


def _f1_difference(cells: np.ndarray) -> np.ndarray:
    """(B, 8) counts indexed 4*truth + 2*a + b -> (B,) F1(b) - F1(a)."""
    truth, a, b = (np.arange(8) >> 2) & 1, (np.arange(8) >> 1) & 1, np.arange(8) & 1

    def f1(pred: np.ndarray) -> np.ndarray:
        tp = cells[:, (truth == 1) & (pred == 1)].sum(axis=1)
        fp = cells[:, (truth == 0) & (pred == 1)].sum(axis=1)
        fn = cells[:, (truth == 1) & (pred == 0)].sum(axis=1)
        return _ratio(2 * tp, 2 * tp + fp + fn)

    return f1(b) - f1(a)


def mcnemar(y_true: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict:
    """McNemar's exact test on the labelled rows where exactly one model is right (statsmodels' exact form).

    ``b``: rows only the first model gets right, ``c``: rows only the second does; p = min(1, 2 P(X <= min(b, c)))
    for X ~ Binomial(b + c, 1/2).
    """
    from scipy.stats import binom

    y = np.asarray(y_true).astype(bool)
    right_a, right_b = np.asarray(a).astype(bool) == y, np.asarray(b).astype(bool) == y
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    n = only_a + only_b
    p = 1.0 if n == 0 else min(1.0, 2 * float(binom.cdf(min(only_a, only_b), n, 0.5)))
    return {"b": only_a, "c": only_b, "p_value": p}
