"""Train the reference model: StandardScaler -> AutoEncoder (latent 12) -> GradientBoostingClassifier.

Writes ``deployment_models/<version>/`` in the original deployment's layout:

- ``autoencoder_latent12.pth``: the AutoEncoder's ``state_dict``;
- ``scaler.pkl``: the fitted ``StandardScaler`` (joblib);
- ``gradient_boosting_model.pkl``: the fitted ``GradientBoostingClassifier`` (joblib) on 30 scaled + 12 latent;
- ``metadata.json``: features, threshold, confidence bands, test metrics, per-feature training statistics.

The version folder is written to a temporary sibling and renamed into place, so a failed or interrupted run
leaves nothing half-written; an existing version is kept unless ``--force``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
import sklearn
import torch
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from convert import dataset
from convert.model import LATENT_DIM, AutoEncoder, focal_loss

DEPLOYMENT_DIR = dataset.REPO_ROOT / "deployment_models"
AE_FILE = "autoencoder_latent12.pth"
SCALER_FILE = "scaler.pkl"
GB_FILE = "gradient_boosting_model.pkl"
METADATA_FILE = "metadata.json"

SEED = 42
TEST_SIZE = 0.15
VAL_SIZE = 0.15
AE_LR = 3e-3
AE_BATCH = 128
AE_MAX_EPOCHS = 120
AE_PATIENCE = 8
AE_GRAD_CLIP = 1.0
FOCAL_WEIGHT = 0.5
GB_PARAMS = {"n_estimators": 200, "max_depth": 6, "learning_rate": 0.1, "subsample": 1.0, "random_state": SEED}
# A prediction's confidence is its distance from the decision threshold as a share of the room on its side:
# (p - t) / (1 - t) for a defect, (t - p) / t for a normal part; "high" from 0.6, "medium" from 0.3, else "low".
CONFIDENCE_BANDS = {"high": 0.6, "medium": 0.3}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def split(X: np.ndarray, y: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Stratified train / validation / test split, seeded."""
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=TEST_SIZE, random_state=SEED, stratify=y)
    val_share = VAL_SIZE / (1 - TEST_SIZE)
    X_tr, X_val, y_tr, y_val = train_test_split(X_rest, y_rest, test_size=val_share, random_state=SEED, stratify=y_rest)
    return {"train": (X_tr, y_tr), "val": (X_val, y_val), "test": (X_test, y_test)}


def train_autoencoder(
    X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray
) -> tuple[AutoEncoder, dict]:
    """Adam + gradient clipping; loss = MSE reconstruction + FOCAL_WEIGHT * focal(defect head); early stopping."""
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    model = AutoEncoder()
    opt = torch.optim.Adam(model.parameters(), lr=AE_LR)
    xt, yt = torch.tensor(X_train, dtype=torch.float32), torch.tensor(y_train, dtype=torch.float32)
    xv, yv = torch.tensor(X_val, dtype=torch.float32), torch.tensor(y_val, dtype=torch.float32)

    def loss_of(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        recon, _, logit, _ = model(x)
        mse = torch.mean((recon - x) ** 2)
        return mse + FOCAL_WEIGHT * focal_loss(logit, y), mse

    best, best_state, best_epoch, stale = float("inf"), None, 0, 0
    epoch = 0
    for epoch in range(1, AE_MAX_EPOCHS + 1):
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
            best, best_epoch, stale = val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best_mse = val_mse
        else:
            stale += 1
        if epoch % 5 == 0 or stale == 0:
            _log(f"  epoch {epoch:3d}  val loss {val_loss:.4f}  (recon mse {val_mse:.4f})  best @ {best_epoch}")
        if stale >= AE_PATIENCE:
            _log(f"  early stop at epoch {epoch}: no improvement for {AE_PATIENCE} epochs")
            break
    assert best_state is not None
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
        "f1_score": round(float(f1_score(y, pred)), 4),
        "roc_auc": round(float(roc_auc_score(y, proba)), 4),
        "accuracy": round(float(accuracy_score(y, pred)), 4),
        "precision": round(float(precision_score(y, pred)), 4),
        "recall": round(float(recall_score(y, pred)), 4),
    }


def train(X: np.ndarray, y: np.ndarray) -> tuple[StandardScaler, AutoEncoder, GradientBoostingClassifier, dict]:
    torch.set_num_threads(1)  # deterministic reductions, and the same result whatever the core count
    torch.use_deterministic_algorithms(True)
    parts = split(X, y)
    (X_tr, y_tr), (X_val, y_val), (X_te, y_te) = parts["train"], parts["val"], parts["test"]
    _log(f"split: train {len(y_tr)}, validation {len(y_val)}, test {len(y_te)} rows")

    scaler = StandardScaler().fit(X_tr)
    S_tr, S_val, S_te = (scaler.transform(a) for a in (X_tr, X_val, X_te))

    t0 = time.perf_counter()
    _log("training the AutoEncoder (MSE + focal loss, early stopping on validation)")
    ae, ae_info = train_autoencoder(S_tr, y_tr, S_val, y_val)
    ae_info["seconds"] = round(time.perf_counter() - t0, 1)

    def features(S: np.ndarray) -> np.ndarray:
        return np.hstack([S, latent_of(ae, S)])

    t1 = time.perf_counter()
    _log(f"training GradientBoostingClassifier({GB_PARAMS}) on 30 scaled + {LATENT_DIM} latent features")
    gb = GradientBoostingClassifier(**GB_PARAMS).fit(features(S_tr), y_tr)
    gb_seconds = round(time.perf_counter() - t1, 1)

    threshold = best_f1_threshold(y_val, gb.predict_proba(features(S_val))[:, 1])
    test_metrics = metrics(y_te, gb.predict_proba(features(S_te))[:, 1], threshold)
    info = {
        "threshold": threshold,
        "metrics": test_metrics,
        "autoencoder": ae_info,
        "gb_seconds": gb_seconds,
        "feature_stats": {
            name: {
                "min": float(X_tr[:, j].min()),
                "max": float(X_tr[:, j].max()),
                "mean": float(X_tr[:, j].mean()),
                "std": float(X_tr[:, j].std()),
            }
            for j, name in enumerate(dataset.FEATURE_NAMES)
        },
        "rows": {"train": len(y_tr), "validation": len(y_val), "test": len(y_te)},
    }
    return scaler, ae, gb, info


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def publish(staging: Path, target: Path) -> None:
    """Move a fully written ``staging`` folder to ``target``; a replaced target is removed only afterwards."""
    os.chmod(staging, 0o755)
    if target.exists():
        backup = target.with_name(f".{target.name}.replaced")
        shutil.rmtree(backup, ignore_errors=True)
        target.rename(backup)
        staging.rename(target)
        shutil.rmtree(backup)
    else:
        staging.rename(target)


def write_version(out_dir: Path, version: str, data_path: Path, force: bool) -> Path:
    """Train on ``data_path`` and publish ``out_dir/version`` atomically."""
    target = out_dir / version
    if target.exists() and not force:
        raise FileExistsError(f"{target} already exists; pass --force (make train FORCE=1) to replace it")
    X, y = dataset.load_csv(data_path)  # validates before any training starts
    _log(f"loaded {data_path}: {len(y)} rows, {int(y.sum())} defects ({y.mean():.1%})")
    started = time.perf_counter()
    scaler, ae, gb, info = train(X, y)
    seconds = round(time.perf_counter() - started, 1)

    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=out_dir))
    try:
        torch.save(ae.state_dict(), staging / AE_FILE)
        joblib.dump(scaler, staging / SCALER_FILE)
        joblib.dump(gb, staging / GB_FILE)
        meta = {
            "version": version,
            "model_version": f"{version}_{LATENT_DIM}D_GB",
            "features": [
                {"name": f.name, "group": f.group, "unit": f.unit, "description": f.description}
                for f in dataset.FEATURES
            ],
            "threshold": info["threshold"],
            "confidence_bands": CONFIDENCE_BANDS,
            "metrics": info["metrics"],
            "feature_stats": info["feature_stats"],
            "training": {
                "data": data_path.name,
                "data_sha256": sha256_file(data_path),
                "rows": info["rows"],
                "seed": SEED,
                "autoencoder": info["autoencoder"],
                "gradient_boosting": {**GB_PARAMS, "seconds": info["gb_seconds"]},
                "seconds": seconds,
                "torch": torch.__version__,
                "sklearn": sklearn.__version__,
                "numpy": np.__version__,
            },
        }
        (staging / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        publish(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m convert.train",
        description="Train the scaler + AutoEncoder + GradientBoosting reference model into deployment_models/.",
    )
    parser.add_argument("--version", default="v1.0", help="version folder name (default: %(default)s)")
    parser.add_argument("--data", type=Path, default=dataset.DEFAULT_CSV, help="training CSV (default: embedded)")
    parser.add_argument("--out", type=Path, default=DEPLOYMENT_DIR, help="output root (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="replace an existing version")
    args = parser.parse_args(argv)
    try:
        target = write_version(args.out, args.version, args.data, args.force)
    except (dataset.DataValidationError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    meta = json.loads((target / METADATA_FILE).read_text())
    m = meta["metrics"]
    print(f"wrote {target} ({meta['model_version']}) in {meta['training']['seconds']} s")
    print(f"threshold {meta['threshold']:.2f} (best F1 on validation)")
    print("test split: " + "  ".join(f"{k} {v:.4f}" for k, v in m.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
