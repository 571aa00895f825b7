"""The explain function's stored file (``explanation.json``): background rows, samples and global importance.

- Background: ``BACKGROUND_ROWS`` training rows, a seeded sample stratified by label, stored as the CSV's own
  values, so the rows are the same bytes on every CPU.
- Samples: each background row is paired with ``PAIRS_PER_ROW`` antithetic pairs of seeded permutations
  (``explain.shapley``); the served explainer rebuilds the same plan from the stored seed.
- Global importance: the mean |contribution| of each reading over ``IMPORTANCE_ROWS`` held-out (test split) rows,
  computed with the originals (scaler -> torch encoder under the pinned kernels -> the GB's decision function,
  which is the log-odds without an ``exp``) and rounded to ``SIGNIFICANT`` significant digits, so that last-bit
  differences between CPUs do not change the file's bytes.
"""

from __future__ import annotations

import numpy as np

from explain import artifact, shapley

BACKGROUND_ROWS = 16
PAIRS_PER_ROW = 2
BACKGROUND_SEED = 19
SAMPLES_SEED = 23
IMPORTANCE_ROWS = 200
IMPORTANCE_SEED = 29
SIGNIFICANT = 3
CHUNK_PARTS = 25  # parts explained per call of the originals (each is BACKGROUND_ROWS * 2 * PAIRS_PER_ROW * 29 rows)


def stratified_rows(y: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` sorted row indices, each label's share as in ``y`` (at least one of each label present)."""
    rng = np.random.default_rng(seed)
    labels = np.unique(y)
    shares = [max(1, round(count * np.mean(y == label))) for label in labels[:-1]]
    shares.append(count - sum(shares))
    picks = [
        rng.choice(np.flatnonzero(y == label), size, replace=False) for label, size in zip(labels, shares, strict=True)
    ]
    return np.sort(np.concatenate(picks))


def rounded(values: np.ndarray, digits: int = SIGNIFICANT) -> list[float]:
    """Each value to ``digits`` significant digits (as Python floats)."""
    return [float(f"{v:.{digits - 1}e}") for v in values]


def ranking(names: tuple[str, ...] | list[str], mean_abs: np.ndarray) -> list[tuple[str, float]]:
    """(feature, rounded mean |contribution|), largest first; ties in name order."""
    pairs = list(zip(names, rounded(mean_abs), strict=True))
    return sorted(pairs, key=lambda p: (-p[1], p[0]))


def mean_abs_contributions(f: shapley.Function, plan: shapley.Plan, X: np.ndarray) -> np.ndarray:
    """Mean |contribution| per reading of ``f`` over the parts ``X``, a few parts per call of ``f``."""
    background_out = f(plan.background)
    total = np.zeros(X.shape[1])
    for start in range(0, len(X), CHUNK_PARTS):
        _, phi, _ = shapley.explain(f, plan, X[start : start + CHUNK_PARTS], background_out)
        total += np.abs(phi).sum(axis=0)
    return total / len(X)


def _split(reference, X: np.ndarray, y: np.ndarray) -> tuple[int, dict]:
    from convert import train

    seed = int(reference.metadata.get("training", {}).get("seed", train.SEED))
    return seed, train.split(X, y, seed)


def held_out_rows(reference, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The test-split rows the global importance is computed over."""
    X_test, y_test = _split(reference, X, y)[1]["test"]
    return X_test[stratified_rows(y_test, min(IMPORTANCE_ROWS, len(y_test)), IMPORTANCE_SEED)]


def build(reference, X: np.ndarray, y: np.ndarray, data_name: str) -> dict:
    """The ``explanation.json`` document for the originals ``reference`` and their training data ``X``, ``y``."""
    seed, parts = _split(reference, X, y)
    X_train, y_train = parts["train"]
    background = X_train[stratified_rows(y_train, BACKGROUND_ROWS, BACKGROUND_SEED)]
    held_out = held_out_rows(reference, X, y)
    plan = shapley.make_plan(background, PAIRS_PER_ROW, SAMPLES_SEED)
    mean_abs = mean_abs_contributions(reference.log_odds, plan, held_out)
    sources = {
        "background": f"{BACKGROUND_ROWS} rows of the training split of {data_name} (split seed {seed}), a sample "
        f"stratified by label (seed {BACKGROUND_SEED})",
        "importance": f"{len(held_out)} held-out rows of the test split of {data_name}, stratified by label (seed "
        f"{IMPORTANCE_SEED}), computed with the originals and rounded to {SIGNIFICANT} significant digits",
    }
    return artifact.document(
        background, PAIRS_PER_ROW, SAMPLES_SEED, ranking(reference.feature_names, mean_abs), len(held_out), sources
    )
