"""Train the reference model: StandardScaler -> AutoEncoder (latent 12) -> GradientBoostingClassifier.

``Options.kind`` and ``Options.latent_dim`` train another candidate of ``convert.kinds`` (XGBoost, LightGBM,
CatBoost, random forest) on an encoder of another latent size (4, 8, 16); the defaults train the shipped v1.0.

Writes ``deployment_models/<version>/`` in the original deployment's layout (``convert.originals``). torch runs
single-threaded, deterministic and at the pinned kernel level (``convert.kernels``), so one seed gives the same
files bit for bit on every x86-64 CPU.

``--reuse-ae`` keeps a version's scaler and encoder and retrains only the GB (``convert.reuse``); ``--cv-folds`` and
``--search-budget`` cross-validate the GB stage and search its hyperparameters (``convert.tuning``). Every constant
they use is here, except those the command line shows as defaults (``convert.defaults``). ``diecast train`` parses
the command line and calls ``write_version``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from convert import dataset, kernels, kinds, originals, reuse, tuning
from convert.defaults import AE_MAX_EPOCHS, CV_FOLDS, SEED
from convert.model import LATENT_DIM, AutoEncoder, focal_loss

TEST_SIZE = 0.15
VAL_SIZE = 0.15
AE_LR = 3e-3
AE_BATCH = 128
AE_PATIENCE = 8
AE_GRAD_CLIP = 1.0
FOCAL_WEIGHT = 0.5
GB_PARAMS = kinds.KINDS[kinds.DEFAULT_KIND].default
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)  # the decision threshold: best F1 on validation
# The hyperparameter search (--search-budget): successive halving over candidates drawn from the kind's space
# (convert.kinds), the default always among them. Depth and trees are capped so that no candidate costs more than
# ~2x the default.
SEARCH_SPACE = kinds.KINDS[kinds.DEFAULT_KIND].space
SEARCH_MAX_CANDIDATES = 27  # 3^3: four halving rounds when the budget allows
SEARCH_FACTOR = 3  # each round keeps the best third on three times the rows
SEARCH_MIN_ROWS = 300  # a first round on fewer rows has too few defects per fold to rank candidates
# A prediction's confidence is its distance from the decision threshold as a share of the room on its side:
# (p - t) / (1 - t) for a defect, (t - p) / t for a normal part; "high" from 0.6, "medium" from 0.3, else "low".
CONFIDENCE_BANDS = {"high": 0.6, "medium": 0.3}
QUANTILES = np.linspace(0.0, 1.0, 101)  # percentiles kept for drift monitoring (PSI bins, KS)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def split(X: np.ndarray, y: np.ndarray, seed: int = SEED) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Stratified train / validation / test split, seeded."""
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=TEST_SIZE, random_state=seed, stratify=y)
    val_share = VAL_SIZE / (1 - TEST_SIZE)
    X_tr, X_val, y_tr, y_val = train_test_split(X_rest, y_rest, test_size=val_share, random_state=seed, stratify=y_rest)
    return {"train": (X_tr, y_tr), "val": (X_val, y_val), "test": (X_test, y_test)}


def train_autoencoder(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    seed: int = SEED,
    max_epochs: int = AE_MAX_EPOCHS,
    latent_dim: int = LATENT_DIM,
    log: Callable[[str], None] = _log,
) -> tuple[AutoEncoder, dict]:
    """Adam + gradient clipping; loss = MSE reconstruction + FOCAL_WEIGHT * focal(defect head); early stopping.
    ``log`` takes the epoch lines (the ablation drops them: its progress bar reports the units)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = AutoEncoder(latent_dim=latent_dim)
    opt = torch.optim.Adam(model.parameters(), lr=AE_LR)
    xt, yt = torch.tensor(X_train, dtype=torch.float32), torch.tensor(y_train, dtype=torch.float32)
    xv, yv = torch.tensor(X_val, dtype=torch.float32), torch.tensor(y_val, dtype=torch.float32)

    def loss_of(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        recon, _, logit, _ = model(x)
        mse = torch.mean((recon - x) ** 2)
        return mse + FOCAL_WEIGHT * focal_loss(logit, y), mse

    best, best_state, best_epoch, best_mse, stale = float("inf"), None, 0, float("nan"), 0
    epoch = 0
    for epoch in range(1, max_epochs + 1):
        model.train()
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), AE_BATCH):
            idx = order[start : start + AE_BATCH]
            loss, _ = loss_of(xt[idx], yt[idx])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), AE_GRAD_CLIP)
            opt.step()
        model.eval()
        with torch.no_grad():
            val_loss, val_mse = (float(v) for v in loss_of(xv, yv))
        if val_loss < best - 1e-5:
            best, best_epoch, best_mse, stale = val_loss, epoch, val_mse, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        if epoch % 5 == 0 or stale == 0:
            log(f"  epoch {epoch:3d}  val loss {val_loss:.4f}  (recon mse {val_mse:.4f})  best @ {best_epoch}")
        if stale >= AE_PATIENCE:
            log(f"  early stop at epoch {epoch}: no improvement for {AE_PATIENCE} epochs")
            break
    if best_state is None:
        raise RuntimeError("the AutoEncoder's validation loss was never finite; check the training data")
    model.load_state_dict(best_state)
    model.eval()
    return model, {"epochs_run": epoch, "best_epoch": best_epoch, "val_loss": best, "val_recon_mse": best_mse}


def latent_of(model: AutoEncoder, X_scaled: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        latent, _ = model.encode(torch.tensor(X_scaled, dtype=torch.float32))
    return latent.numpy()


def best_f1_threshold(y: np.ndarray, proba: np.ndarray) -> float:
    """The decision threshold (on a 0.01 grid) with the best F1 on the given split."""
    return tuning.best_f1_threshold(y, proba, THRESHOLD_GRID)


def metrics(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    pred = proba >= threshold
    return {
        "f1_score": round(float(f1_score(y, pred, zero_division=0)), 4),
        "roc_auc": round(float(roc_auc_score(y, proba)), 4),
        "accuracy": round(float(accuracy_score(y, pred)), 4),
        "precision": round(float(precision_score(y, pred, zero_division=0)), 4),
        "recall": round(float(recall_score(y, pred, zero_division=0)), 4),
    }


def feature_stats(X_train: np.ndarray) -> dict[str, dict]:
    """Per feature: the training split's range, mean, std and percentiles (drift monitoring's reference)."""
    return {
        name: {
            "min": float(X_train[:, j].min()),
            "max": float(X_train[:, j].max()),
            "mean": float(X_train[:, j].mean()),
            "std": float(X_train[:, j].std()),
            "quantiles": [float(v) for v in np.quantile(X_train[:, j], QUANTILES)],
        }
        for j, name in enumerate(dataset.FEATURE_NAMES)
    }


@dataclass(frozen=True)
class Options:
    """How to train; the defaults train the shipped v1.0."""

    seed: int = SEED
    max_epochs: int = AE_MAX_EPOCHS
    cv_folds: int = CV_FOLDS
    search_budget: float = 0.0  # seconds; 0: no search
    reused: reuse.Reused | None = None  # --reuse-ae: a frozen scaler and encoder
    kind: str = kinds.DEFAULT_KIND  # the classifier (convert.kinds)
    latent_dim: int = kinds.DEFAULT_LATENT_DIM
    params: dict | None = None  # the classifier's hyperparameters instead of its kind's defaults (small runs)

    def classifier_params(self) -> dict:
        return dict(self.params if self.params is not None else self.classifier().default)

    def classifier(self) -> kinds.Kind:
        return kinds.get(self.kind)

    def protocol(self) -> tuning.Protocol:
        """The CV and search protocol: the shipped validation share and threshold grid inside each fold."""
        return tuning.Protocol(self.cv_folds, self.seed, VAL_SIZE / (1 - TEST_SIZE), tuple(THRESHOLD_GRID), self.kind)

    def search_settings(self) -> tuning.SearchSettings:
        k = self.classifier()
        return tuning.SearchSettings(
            self.search_budget,
            self.classifier_params(),
            k.space,
            SEARCH_MAX_CANDIDATES,
            SEARCH_FACTOR,
            SEARCH_MIN_ROWS,
            self.kind,
        )


def fit_encoder(parts: dict, opts: Options) -> tuple[StandardScaler, AutoEncoder, dict]:
    """The scaler on the training split, then the AutoEncoder (validation split for early stopping)."""
    (X_tr, y_tr), (X_val, y_val) = parts["train"], parts["val"]
    scaler = StandardScaler().fit(X_tr)
    t0 = time.perf_counter()
    _log("training the AutoEncoder (MSE + focal loss, early stopping on validation)")
    ae, ae_info = train_autoencoder(
        scaler.transform(X_tr), y_tr, scaler.transform(X_val), y_val, opts.seed, opts.max_epochs, opts.latent_dim
    )
    ae_info["seconds"] = round(time.perf_counter() - t0, 1)
    return scaler, ae, ae_info


def frozen_encoder(reused: reuse.Reused) -> tuple[StandardScaler, AutoEncoder, dict]:
    """The reused version's scaler and encoder, unchanged, and what its metadata says of the encoder's training."""
    _log(f"reusing {reused.version}'s scaler and encoder (frozen); retraining the GB only")
    info = reused.metadata.get("training", {}).get("autoencoder", {})
    return reused.scaler, reused.autoencoder, {"reused_from": reused.version, **info}


def reuse_provenance(reused: reuse.Reused, parts: dict) -> dict:
    """``training.reused_from``: the version, its files' sha256, and how many rows of each new split trained its
    encoder. The encoder's defect head saw those rows' labels, so their latents flatter the GB: a warning when
    the test split holds any."""
    named = {"train": parts["train"], "validation": parts["val"], "test": parts["test"]}
    seen = reuse.rows_seen_by_encoder(reused, named, split)
    if seen is None:
        _log(f"  {reused.version}'s encoder training CSV is not available: cannot count rows it trained on")
    elif seen["test"]:
        _log(f"  warning: {seen['test']} test rows trained {reused.version}'s encoder; test metrics are optimistic")
    return {**reused.provenance(), "rows_seen_by_encoder": seen}


def gb_features(scaler: StandardScaler, ae: AutoEncoder, X: np.ndarray) -> np.ndarray:
    """The classifier's input: 30 scaled readings + the latents, (n, 30 + latent size) float64."""
    S = scaler.transform(X)
    return np.hstack([S, latent_of(ae, S)])


def check_folds(parts: dict, folds: int) -> None:
    """Stratified folds need each class in every fold: refuse before any training rather than fail after it."""
    y_dev = np.concatenate([parts["train"][1], parts["val"][1]])
    fewest = int(min(y_dev.sum(), len(y_dev) - y_dev.sum()))
    if folds > fewest:
        raise dataset.DataValidationError(
            f"--cv-folds {folds}: the training + validation rows hold only {fewest} of their rarer class, and each "
            f"stratified fold needs one; pass --cv-folds {fewest if fewest >= 2 else 0} or fewer (0 skips it)"
        )


def tune(F: dict, parts: dict, opts: Options) -> tuple[dict | None, dict | None]:
    """Cross-validation and the optional search, on the training + validation rows (the test split stays out)."""
    if not opts.cv_folds:
        return None, None
    F_dev = np.vstack([F["train"], F["val"]])
    y_dev = np.concatenate([parts["train"][1], parts["val"][1]])
    cv = tuning.cross_validate_gb(F_dev, y_dev, opts.classifier_params(), opts.protocol())
    found = tuning.search_gb(F_dev, y_dev, opts.protocol(), cv, opts.search_settings()) if opts.search_budget else None
    return cv, found


def fit_gb(scaler: StandardScaler, ae: AutoEncoder, parts: dict, opts: Options) -> tuple[object, dict]:
    """CV and search (which never touch the final model), then the classifier on the training split, the threshold
    on validation and the metrics on test."""
    F = {name: gb_features(scaler, ae, X) for name, (X, _) in parts.items()}
    (_, y_tr), (_, y_val), (_, y_te) = parts["train"], parts["val"], parts["test"]
    metrics_cv, found = tune(F, parts, opts)
    kind = opts.classifier()
    params = dict(found["params"]) if found else opts.classifier_params()
    t1 = time.perf_counter()
    _log(f"training {kind.name}({params}, seed {opts.seed}) on 30 scaled + {ae.encoder[-1].out_features} latents")
    gb = kind.build(params, opts.seed).fit(F["train"], y_tr)
    gb_seconds = round(time.perf_counter() - t1, 1)
    p_val, p_te = (np.asarray(kind.proba(gb, F[name]), dtype=np.float64) for name in ("val", "test"))
    threshold = best_f1_threshold(y_val, p_val)
    return gb, {
        "threshold": threshold,
        "metrics": metrics(y_te, p_te, threshold),
        "metrics_cv": metrics_cv,
        "search": found,
        "classifier": {**params, "random_state": opts.seed, "seconds": gb_seconds},
        # what the model predicts on rows it never saw: the reference for prediction drift
        "probability_quantiles": [float(v) for v in np.quantile(np.concatenate([p_val, p_te]), QUANTILES)],
    }


def train(X: np.ndarray, y: np.ndarray, opts: Options = Options()) -> tuple[StandardScaler, AutoEncoder, object, dict]:
    torch.set_num_threads(1)  # deterministic reductions, and the same result whatever the core count
    torch.use_deterministic_algorithms(True)
    parts = split(X, y, opts.seed)
    _log(f"split: train {len(parts['train'][1])}, validation {len(parts['val'][1])}, test {len(parts['test'][1])} rows")
    check_folds(parts, opts.cv_folds)
    if opts.reused:
        scaler, ae, ae_info = frozen_encoder(opts.reused)
        info = {"reused_from": reuse_provenance(opts.reused, parts)}
    else:
        scaler, ae, ae_info = fit_encoder(parts, opts)
        info = {}
    gb, gb_info = fit_gb(scaler, ae, parts, opts)
    X_tr, y_tr = parts["train"]
    return (
        scaler,
        ae,
        gb,
        {
            **info,
            **gb_info,
            "autoencoder": ae_info,
            "feature_stats": feature_stats(X_tr),
            "rows": {"train": len(y_tr), "validation": len(parts["val"][1]), "test": len(parts["test"][1])},
            "defect_rate": round(float(y_tr.mean()), 6),
        },
    )


def _portable(path: Path) -> str:
    """The path relative to the repository when it lies inside it (the embedded data), else absolute."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(dataset.REPO_ROOT))
    except ValueError:
        return str(resolved)


def metadata(version: str, data_path: Path, info: dict, opts: Options, level: str, seconds: float) -> dict:
    seed, kind = opts.seed, opts.classifier()
    return {
        "version": version,
        "model_version": f"{version}_{opts.latent_dim}D_{kind.short}",
        "model": kinds.describe(kind, opts.latent_dim),
        "trained_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "features": [
            {"name": f.name, "group": f.group, "unit": f.unit, "description": f.description} for f in dataset.FEATURES
        ],
        "threshold": info["threshold"],
        "confidence_bands": CONFIDENCE_BANDS,
        "metrics": info["metrics"],
        "metrics_cv": info["metrics_cv"],
        "search": info["search"],
        "feature_stats": info["feature_stats"],
        "probability_quantiles": info["probability_quantiles"],
        "training": {
            "data": data_path.name,
            "data_path": _portable(data_path),
            "data_sha256": originals.sha256_file(data_path),
            "rows": info["rows"],
            "defect_rate": info["defect_rate"],
            "seed": seed,
            **({"reused_from": info["reused_from"]} if "reused_from" in info else {}),
            "autoencoder": info["autoencoder"],
            kind.name: info["classifier"],
            "seconds": seconds,
            "torch_kernels": level,
            "cpu": kernels.cpu_description(),
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
        },
    }


def _reused(models_root: Path, reuse_ae: str, out_dir: Path, version: str) -> reuse.Reused:
    if reuse_ae == version and models_root.resolve() == out_dir.resolve():
        raise reuse.ReuseError(
            f"--reuse-ae {reuse_ae} would replace the version it reuses; write the retrain to a new version "
            "(e.g. --model v1.1)"
        )
    return reuse.load(models_root, reuse_ae)


def write_version(
    out_dir: Path,
    version: str,
    data_path: Path,
    force: bool,
    opts: Options = Options(),
    reuse_ae: str | None = None,
    models_root: Path | None = None,
) -> Path:
    """Train on ``data_path`` (reusing ``models_root/reuse_ae``'s scaler and encoder if given) and publish
    ``out_dir/version`` atomically. Every input is checked before training starts."""
    target = out_dir / version
    originals.refuse_to_replace(target, force, "train")
    level = kernels.require()
    if reuse_ae:
        opts = dataclasses.replace(opts, reused=_reused(models_root or out_dir, reuse_ae, out_dir, version))
        reuse.check_latent_size(opts.reused, opts.latent_dim)
    X, y = dataset.load_csv(data_path)  # validates before any training starts
    _log(f"loaded {data_path}: {len(y)} rows, {int(y.sum())} defects ({y.mean():.1%}); torch kernels: {level}")
    started = time.perf_counter()
    scaler, ae, gb, info = train(X, y, opts)
    meta = metadata(version, data_path, info, opts, level, round(time.perf_counter() - started, 1))
    with originals.staging(out_dir, version) as staging:
        if opts.reused:
            reuse.copy_into(opts.reused, staging)  # byte for byte, never re-serialised
            originals.save_gb(staging, gb, meta)
        else:
            originals.save(staging, scaler, ae, gb, meta)
        originals.publish(staging, target)
    return target


def main(argv: list[str] | None = None) -> int:
    """``python -m convert.train``: an alias of ``diecast train``, which parses the command line."""
    from diecast import cli

    return cli.main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
