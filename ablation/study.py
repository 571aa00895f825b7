"""Running the grid: each unit (one latent size on one fold) trains its encoder once, then scores every classifier
and feature selection on it, with ``make train``'s protocol.

The protocol (``convert.train`` / ``convert.tuning``): the training + validation rows of ``make train``'s split
(its test split stays out), its stratified folds and seed. Inside a fold, on the fold's training rows only:

- the scaler, and the AutoEncoder trained as ``make train`` trains it (early stopping on the same validation
  share the threshold rule splits off, so the encoder never sees the held-out fold);
- the feature selection: the k readings with the largest ANOVA F statistic against the defect label
  (``sklearn.feature_selection.f_classif``) on the fold's scaled training rows; the classifier then sees those
  k scaled readings plus every latent (the encoder reads all 30 readings: it is shared by every selection);
- the classifier with ``make train``'s threshold rule (``convert.tuning.ThresholdedGB``: best F1 on the split-off
  validation share), scored on the held-out fold: F1, ROC-AUC, accuracy, precision, recall, and the fit and
  predict times.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ablation.grid import NO_LATENTS, Grid


def _quiet(_line: str) -> None:
    """The encoders' epoch lines would bury the progress bar; each unit's encoder summary is in the report."""


@dataclass(frozen=True)
class Data:
    X: np.ndarray  # raw readings (n, 30)
    y: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]  # (training rows, held-out rows) per fold


def prepare(X: np.ndarray, y: np.ndarray, grid: Grid, seed: int) -> Data:
    """``make train``'s training + validation rows (a stratified sample of them for the quick grid) and its folds."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    from convert import train

    parts = train.split(X, y, seed)
    X_dev = np.vstack([parts["train"][0], parts["val"][0]])
    y_dev = np.concatenate([parts["train"][1], parts["val"][1]])
    if grid.rows is not None and grid.rows < len(y_dev):
        X_dev, _, y_dev, _ = train_test_split(X_dev, y_dev, train_size=grid.rows, random_state=seed, stratify=y_dev)
    folds = list(StratifiedKFold(n_splits=grid.folds, shuffle=True, random_state=seed).split(X_dev, y_dev))
    return Data(X_dev, y_dev, folds)


def encode(X_tr, y_tr, X_te, latent_dim: int, grid: Grid, protocol) -> tuple[np.ndarray, np.ndarray, dict]:
    """The fold's scaled readings + latents (training rows, held-out rows) and what the encoder's training did."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from convert import train

    scaler = StandardScaler().fit(X_tr)
    S_tr, S_te = scaler.transform(X_tr), scaler.transform(X_te)
    if latent_dim == NO_LATENTS:
        return S_tr, S_te, {"seconds": 0.0}
    S_fit, S_val, y_fit, y_val = train_test_split(
        S_tr, y_tr, test_size=protocol.val_share, random_state=protocol.seed, stratify=y_tr
    )
    started = time.perf_counter()
    ae, info = train.train_autoencoder(
        S_fit, y_fit, S_val, y_val, protocol.seed, grid.max_epochs, latent_dim, log=_quiet
    )
    info["seconds"] = round(time.perf_counter() - started, 1)
    return np.hstack([S_tr, train.latent_of(ae, S_tr)]), np.hstack([S_te, train.latent_of(ae, S_te)]), info


def select(S_tr: np.ndarray, y_tr: np.ndarray, k: int) -> np.ndarray:
    """The k readings (column indices, ascending) with the largest ANOVA F against the label; ties by position."""
    from sklearn.feature_selection import f_classif

    scores, _ = f_classif(S_tr, y_tr)
    order = np.lexsort((np.arange(len(scores)), -np.nan_to_num(scores, nan=-np.inf)))
    return np.sort(order[:k])


def score(kind: str, params: dict, F_tr, y_tr, F_te, y_te, protocol) -> dict:
    """One classifier on one fold: the held-out metrics and the times."""
    import dataclasses

    from convert import train

    est = dataclasses.replace(protocol, kind=kind).estimator(params)
    started = time.perf_counter()
    est.fit(F_tr, y_tr)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    proba = est.predict_proba(F_te)[:, 1]
    predict_s = time.perf_counter() - started
    return train.metrics(y_te, proba, est.threshold_) | {
        "fit_seconds": round(fit_s, 3),
        "predict_us_per_row": round(predict_s / len(y_te) * 1e6, 3),
    }


def run_unit(data: Data, latent_dim: int, fold: int, grid: Grid, protocol, deadline: float) -> dict:
    """One latent size on one fold; skipped (nothing run) when the budget's deadline has passed."""
    if time.time() > deadline:
        return {"latent_dim": latent_dim, "fold": fold, "skipped": True, "results": []}
    from convert import kernels

    kernels.require()  # before torch is imported in this worker: the pinned kernels, as make train
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    train_idx, test_idx = data.folds[fold]
    X_tr, y_tr, X_te, y_te = data.X[train_idx], data.y[train_idx], data.X[test_idx], data.y[test_idx]
    F_tr, F_te, encoder = encode(X_tr, y_tr, X_te, latent_dim, grid, protocol)
    n_readings = X_tr.shape[1]
    results = []
    for k in grid.features:
        keep = select(F_tr[:, :n_readings], y_tr, k)
        cols = np.concatenate([keep, np.arange(n_readings, F_tr.shape[1])])
        for kind in grid.kinds:
            figures = score(kind, grid.params_of(kind), F_tr[:, cols], y_tr, F_te[:, cols], y_te, protocol)
            results.append({"model": kind, "features": k, "selected": keep.tolist(), **figures})
    return {"latent_dim": latent_dim, "fold": fold, "skipped": False, "encoder": encoder, "results": results}


def run(
    data: Data,
    grid: Grid,
    protocol,
    budget: float,
    jobs: int,
    progress: bool,
    finished: dict[tuple[int, int], dict],
    save: Callable[[dict], None],
) -> list[dict]:
    """Every unit not ``finished`` earlier, ``jobs`` at a time, each ``save``d as it ends; units not started within
    ``budget`` seconds are skipped and listed. Returns every unit, finished earlier or now, in the grid's order."""
    from joblib import Parallel, delayed
    from tqdm import tqdm

    deadline = time.time() + budget
    todo = [u for u in grid.units() if u not in finished]
    work = Parallel(n_jobs=jobs, return_as="generator_unordered")(  # each unit is saved as soon as it ends
        delayed(run_unit)(data, d, fold, grid, protocol, deadline) for d, fold in todo
    )
    done = dict(finished)
    total = len(grid.units())
    with tqdm(total=total, initial=len(finished), desc="ablation", unit="unit", disable=not progress) as bar:
        for unit in work:
            save(unit)
            done[(unit["latent_dim"], unit["fold"])] = unit
            bar.set_postfix_str(f"latent {unit['latent_dim']} fold {unit['fold']}" + (" skipped" * unit["skipped"]))
            bar.update()
    return [done[u] for u in grid.units()]
