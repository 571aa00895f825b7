"""``--reuse-ae VERSION``: keep a trained version's scaler and encoder and retrain only the GB on new data.

This is the original process's cheap monthly retrain ("reuse the existing AutoEncoder or retrain it"). The
scaler and encoder are frozen: they are loaded from the bytes whose sha256 is recorded, and copied into the new
version byte for byte (checked again after the copy), so the new manifest's ``sources`` show the same sha256.
Everything is checked before any training starts, and a bad version is refused with the fix.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from convert import dataset, originals
from convert.model import AutoEncoder

REUSED_FILES = (originals.SCALER_FILE, originals.AE_FILE)  # the original's; a version's own: Reused.files
PROVENANCE_KEYS = ("data", "data_path", "data_sha256", "seed", "rows", "torch_kernels")


class ReuseError(ValueError):
    """The version to reuse cannot be: unknown, incomplete, or trained on other features."""


@dataclass(frozen=True)
class Reused:
    """A version's frozen scaler and encoder, with the sha256 of the bytes they were loaded from."""

    version: str
    folder: Path
    scaler: object
    autoencoder: AutoEncoder
    metadata: dict
    sha256: dict[str, str]  # file name -> sha256, for the scaler and the encoder

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(self.sha256)

    @property
    def latent_dim(self) -> int:
        return self.autoencoder.encoder[-1].out_features

    def encoder_training(self) -> dict:
        """Where the encoder was trained: this version, or the one it reused in turn."""
        training = self.metadata.get("training", {})
        if "reused_from" in training:
            return training["reused_from"]["encoder_training"]
        return {"version": self.version, **{k: training[k] for k in PROVENANCE_KEYS if k in training}}

    def provenance(self) -> dict:
        """``training.reused_from`` in the new version's metadata.json."""
        return {
            "version": self.version,
            "model_version": self.metadata.get("model_version"),
            "folder": _portable(self.folder),
            "sha256": dict(self.sha256),
            "metadata_sha256": originals.sha256_file(self.folder / originals.METADATA_FILE),
            "encoder_training": self.encoder_training(),
        }


def _portable(path: Path) -> str:
    resolved = path.resolve()
    return str(resolved.relative_to(dataset.REPO_ROOT)) if resolved.is_relative_to(dataset.REPO_ROOT) else str(resolved)


def _versions(models_root: Path) -> str:
    found = sorted(p.name for p in models_root.glob("*/") if (p / originals.METADATA_FILE).is_file())
    return ", ".join(found) if found else "none"


def _folder(models_root: Path, version: str) -> Path:
    folder = models_root / version
    if not folder.is_dir():
        raise ReuseError(
            f"--reuse-ae {version}: no such version in {models_root} (versions there: {_versions(models_root)}); "
            f"train it first (make train VERSION={version}) or point --models at the folder that holds it"
        )
    missing = [name for name in (*_reused_files(folder), originals.METADATA_FILE) if not (folder / name).is_file()]
    if missing:
        raise ReuseError(
            f"--reuse-ae {version}: {folder} lacks {', '.join(missing)}, so it is not a complete trained version; "
            f"retrain it (make train VERSION={version} FORCE=1) or reuse another version"
        )
    return folder


def _check_features(version: str, metadata: object, scaler) -> None:
    features = metadata.get("features") if isinstance(metadata, dict) else None
    names = [f.get("name") if isinstance(f, dict) else None for f in features or []]
    if names != list(dataset.FEATURE_NAMES):
        missing = sorted(set(dataset.FEATURE_NAMES) - set(names))[:10]
        unknown = sorted(set(map(str, names)) - set(dataset.FEATURE_NAMES))[:10]
        what = f"missing {missing}, unknown {unknown}" if missing or unknown else "the same names in another order"
        raise ReuseError(
            f"--reuse-ae {version}: its metadata.json features differ from the {len(dataset.FEATURE_NAMES)} this "
            f"training uses ({what}); reuse a version trained on these features, or train a full model without "
            "--reuse-ae"
        )
    n_in = getattr(scaler, "n_features_in_", None)
    if n_in != len(dataset.FEATURE_NAMES) or not hasattr(scaler, "transform"):
        raise ReuseError(
            f"--reuse-ae {version}: {originals.SCALER_FILE} is not a fitted scaler of {len(dataset.FEATURE_NAMES)} "
            f"features (got {type(scaler).__name__} with n_features_in_={n_in}); retrain that version"
        )


def _load_file(version: str, path: Path, loader: Callable[[Path], object]) -> object:
    try:
        return loader(path)
    except Exception as exc:
        raise ReuseError(
            f"--reuse-ae {version}: cannot load {path.name} ({type(exc).__name__}: {str(exc)[:200]}); "
            f"retrain that version (make train VERSION={version} FORCE=1)"
        ) from exc


def _reused_files(folder: Path) -> tuple[str, str]:
    """The scaler and encoder files of the version in ``folder`` (its metadata names the latent size)."""
    try:
        metadata = json.loads((folder / originals.METADATA_FILE).read_text())
    except (OSError, ValueError):
        return REUSED_FILES
    encoder, scaler, _ = originals.model_files(metadata if isinstance(metadata, dict) else {})
    return scaler, encoder


def _autoencoder(path: Path, latent_dim: int) -> AutoEncoder:
    import torch

    ae = AutoEncoder(latent_dim=latent_dim)
    ae.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return ae.eval()


def load(models_root: Path, version: str) -> Reused:
    """Check and load ``models_root/version``'s scaler and encoder; ``ReuseError`` names what is wrong."""
    import joblib

    from convert import kinds

    folder = _folder(models_root, version)
    files = _reused_files(folder)
    sha256 = {name: originals.sha256_file(folder / name) for name in files}
    metadata = _load_file(version, folder / originals.METADATA_FILE, lambda p: json.loads(p.read_text()))
    scaler = _load_file(version, folder / originals.SCALER_FILE, joblib.load)
    _check_features(version, metadata, scaler)
    _, latent_dim = kinds.of(metadata)
    ae = _load_file(version, folder / files[1], lambda p: _autoencoder(p, latent_dim))
    return Reused(version, folder, scaler, ae, metadata, sha256)


def copy_into(reused: Reused, staging: Path) -> None:
    """Copy the scaler and encoder byte for byte; refuse if they changed since they were loaded."""
    for name in reused.files:
        shutil.copyfile(reused.folder / name, staging / name)
        if originals.sha256_file(staging / name) != reused.sha256[name]:
            raise ReuseError(
                f"--reuse-ae {reused.version}: {name} changed while training (sha256 differs from the file that "
                "was loaded); nothing was published, run the retrain again"
            )


def rows_seen_by_encoder(reused: Reused, parts: dict, split: Callable) -> dict[str, int] | None:
    """How many rows of each new split the reused encoder trained on (its defect head saw their labels, so their
    latents are optimistic); None when the encoder's training CSV is no longer where, and as, it was."""
    origin = reused.encoder_training()
    path = Path(origin.get("data_path", ""))
    path = path if path.is_absolute() else dataset.REPO_ROOT / path
    if origin.get("seed") is None or not origin.get("data_path") or not path.is_file():
        return None
    if originals.sha256_file(path) != origin.get("data_sha256"):
        return None
    X_old, y_old = dataset.load_csv(path)
    seen = {row.tobytes() for row in split(X_old, y_old, origin.get("seed"))["train"][0]}
    return {name: int(sum(row.tobytes() in seen for row in X)) for name, (X, _) in parts.items()}


def check_latent_size(reused: Reused, latent_dim: int) -> None:
    """An encoder serves one latent size: refuse a reuse that asks for another, naming both."""
    if reused.latent_dim != latent_dim:
        raise ReuseError(
            f"--reuse-ae {reused.version}: its encoder has latent size {reused.latent_dim}, but this training asks "
            f"for --latent-dim {latent_dim}; pass --latent-dim {reused.latent_dim} (make train LATENT_DIM="
            f"{reused.latent_dim}) or reuse a version whose encoder has latent size {latent_dim}"
        )
