"""Train the reference model: StandardScaler -> AutoEncoder (latent 12) -> GradientBoostingClassifier.

Writes ``deployment_models/<version>/`` in the original deployment's layout (``convert.originals``). torch runs
single-threaded, deterministic and at the pinned kernel level (``convert.kernels``), so one seed gives the same
files bit for bit on every x86-64 CPU.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from convert import dataset, kernels, originals
from convert.model import LATENT_DIM, AutoEncoder, focal_loss

SEED = 42
TEST_SIZE = 0.15
VAL_SIZE = 0.15
AE_LR = 3e-3
AE_BATCH = 128
AE_MAX_EPOCHS = 120
AE_PATIENCE = 8
AE_GRAD_CLIP = 1.0
FOCAL_WEIGHT = 0.5
GB_PARAMS = {"n_estimators": 200, "max_depth": 6, "learning_rate": 0.1, "subsample": 1.0}
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
) -> tuple[AutoEncoder, dict]:
    """Adam + gradient clipping; loss = MSE reconstruction + FOCAL_WEIGHT * focal(defect head); early stopping."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = AutoEncoder()
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
            _log(f"  epoch {epoch:3d}  val loss {val_loss:.4f}  (recon mse {val_mse:.4f})  best @ {best_epoch}")
        if stale >= AE_PATIENCE:
            _log(f"  early stop at epoch {epoch}: no improvement for {AE_PATIENCE} epochs")
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
    grid = np.round(np.arange(0.05, 0.951, 0.01), 2)
    scores = [f1_score(y, proba >= t, zero_division=0) for t in grid]
    return float(grid[int(np.argmax(scores))])


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


def train(
    X: np.ndarray, y: np.ndarray, seed: int = SEED, max_epochs: int = AE_MAX_EPOCHS
) -> tuple[StandardScaler, AutoEncoder, GradientBoostingClassifier, dict]:
    torch.set_num_threads(1)  # deterministic reductions, and the same result whatever the core count
    torch.use_deterministic_algorithms(True)
    parts = split(X, y, seed)
    (X_tr, y_tr), (X_val, y_val), (X_te, y_te) = parts["train"], parts["val"], parts["test"]
    _log(f"split: train {len(y_tr)}, validation {len(y_val)}, test {len(y_te)} rows")

    scaler = StandardScaler().fit(X_tr)
    S_tr, S_val, S_te = (scaler.transform(a) for a in (X_tr, X_val, X_te))

    t0 = time.perf_counter()
    _log("training the AutoEncoder (MSE + focal loss, early stopping on validation)")
    ae, ae_info = train_autoencoder(S_tr, y_tr, S_val, y_val, seed, max_epochs)
    ae_info["seconds"] = round(time.perf_counter() - t0, 1)

    def features(S: np.ndarray) -> np.ndarray:
        return np.hstack([S, latent_of(ae, S)])

    t1 = time.perf_counter()
    gb_params = {**GB_PARAMS, "random_state": seed}
    _log(f"training GradientBoostingClassifier({gb_params}) on 30 scaled + {LATENT_DIM} latent features")
    gb = GradientBoostingClassifier(**gb_params).fit(features(S_tr), y_tr)
    gb_seconds = round(time.perf_counter() - t1, 1)

    p_val, p_te = (gb.predict_proba(features(S))[:, 1] for S in (S_val, S_te))
    threshold = best_f1_threshold(y_val, p_val)
    info = {
        "threshold": threshold,
        "metrics": metrics(y_te, p_te, threshold),
        "autoencoder": ae_info,
        "gradient_boosting": {**gb_params, "seconds": gb_seconds},
        "feature_stats": feature_stats(X_tr),
        # what the model predicts on rows it never saw: the reference for prediction drift
        "probability_quantiles": [float(v) for v in np.quantile(np.concatenate([p_val, p_te]), QUANTILES)],
        "rows": {"train": len(y_tr), "validation": len(y_val), "test": len(y_te)},
        "defect_rate": round(float(y_tr.mean()), 6),
    }
    return scaler, ae, gb, info


def _portable(path: Path) -> str:
    """The path relative to the repository when it lies inside it (the embedded data), else absolute."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(dataset.REPO_ROOT))
    except ValueError:
        return str(resolved)


def metadata(version: str, data_path: Path, info: dict, seed: int, level: str, seconds: float) -> dict:
    return {
        "version": version,
        "model_version": f"{version}_{LATENT_DIM}D_GB",
        "trained_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "features": [
            {"name": f.name, "group": f.group, "unit": f.unit, "description": f.description} for f in dataset.FEATURES
        ],
        "threshold": info["threshold"],
        "confidence_bands": CONFIDENCE_BANDS,
        "metrics": info["metrics"],
        "feature_stats": info["feature_stats"],
        "probability_quantiles": info["probability_quantiles"],
        "training": {
            "data": data_path.name,
            "data_path": _portable(data_path),
            "data_sha256": originals.sha256_file(data_path),
            "rows": info["rows"],
            "defect_rate": info["defect_rate"],
            "seed": seed,
            "autoencoder": info["autoencoder"],
            "gradient_boosting": info["gradient_boosting"],
            "seconds": seconds,
            "torch_kernels": level,
            "cpu": kernels.cpu_description(),
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
        },
    }


def write_version(
    out_dir: Path, version: str, data_path: Path, force: bool, seed: int = SEED, max_epochs: int = AE_MAX_EPOCHS
) -> Path:
    """Train on ``data_path`` and publish ``out_dir/version`` atomically."""
    target = out_dir / version
    originals.refuse_to_replace(target, force, "train")
    level = kernels.require()
    X, y = dataset.load_csv(data_path)  # validates before any training starts
    _log(f"loaded {data_path}: {len(y)} rows, {int(y.sum())} defects ({y.mean():.1%}); torch kernels: {level}")
    started = time.perf_counter()
    scaler, ae, gb, info = train(X, y, seed, max_epochs)
    meta = metadata(version, data_path, info, seed, level, round(time.perf_counter() - started, 1))
    with originals.staging(out_dir, version) as staging:
        originals.save(staging, scaler, ae, gb, meta)
        originals.publish(staging, target)
    return target


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m convert.train",
        description="Train the scaler + AutoEncoder + GradientBoosting reference model into deployment_models/. "
        f"torch's CPU kernels are pinned ({kernels.LEVEL_VAR}, default {kernels.DEFAULT_LEVEL}) so that one seed "
        "gives the same files on every x86-64 CPU.",
    )
    parser.add_argument("--version", default="v1.0", help="version folder name (default: %(default)s)")
    parser.add_argument("--data", type=Path, default=dataset.DEFAULT_CSV, help="training CSV (default: embedded)")
    parser.add_argument("--out", type=Path, default=originals.DEPLOYMENT_DIR, help="output root (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="replace an existing version")
    parser.add_argument(
        "--seed", type=int, default=SEED, help="split, initialisation and GB seed (default: %(default)s)"
    )
    parser.add_argument(
        "--max-epochs",
        type=_positive,
        default=AE_MAX_EPOCHS,
        help="AutoEncoder epoch cap; early stopping usually ends sooner (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        target = write_version(args.out, args.version, args.data, args.force, args.seed, args.max_epochs)
    except (dataset.DataValidationError, FileExistsError, kernels.KernelPinError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    meta = json.loads((target / originals.METADATA_FILE).read_text())
    m = meta["metrics"]
    print(f"wrote {target} ({meta['model_version']}) in {meta['training']['seconds']} s")
    print(f"threshold {meta['threshold']:.2f} (best F1 on validation)")
    print("test split: " + "  ".join(f"{k} {v:.4f}" for k, v in m.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
