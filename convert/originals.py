"""The originals' folder, ``deployment_models/<version>/``, in the original deployment's layout, and publishing.

- ``autoencoder_latent<dim>.pth``: the AutoEncoder's ``state_dict`` (``autoencoder_latent12.pth`` for v1.0);
- ``scaler.pkl``: the fitted ``StandardScaler`` (joblib);
- the classifier on 30 scaled + <dim> latent, in its library's own format (``convert.kinds``):
  ``gradient_boosting_model.pkl`` (joblib) for the original's ``GradientBoostingClassifier``;
- ``metadata.json``: features, threshold, confidence bands, test metrics, training statistics and provenance.

Every version folder (originals here, served models in ``models_onnx/``) is written into a hidden staging
sibling and renamed into place by ``publish``, so a failed or interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from convert import defaults

DEPLOYMENT_DIR = defaults.DEPLOYMENT_DIR
AE_FILE = "autoencoder_latent12.pth"
SCALER_FILE = "scaler.pkl"
GB_FILE = "gradient_boosting_model.pkl"
METADATA_FILE = "metadata.json"
MODEL_FILES = (AE_FILE, SCALER_FILE, GB_FILE)  # the original GB at latent 12


def model_files(metadata: dict) -> tuple[str, str, str]:
    """The encoder, scaler and classifier files of the version whose metadata.json this is."""
    from convert import kinds

    kind, latent_dim = kinds.of(metadata)
    return kinds.encoder_file(latent_dim), SCALER_FILE, kind.file


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n")


def save(folder: Path, scaler, autoencoder, gb, metadata: dict) -> None:
    """Write the originals into ``folder`` (a staging folder)."""
    import joblib
    import torch

    torch.save(autoencoder.state_dict(), folder / model_files(metadata)[0])
    joblib.dump(scaler, folder / SCALER_FILE)
    save_gb(folder, gb, metadata)


def save_gb(folder: Path, gb, metadata: dict) -> None:
    """Write the classifier and the metadata into ``folder``: all a retrain with a reused scaler and encoder
    writes."""
    from convert import kinds

    kind, _ = kinds.of(metadata)
    kind.save(gb, folder / kind.file)
    write_json(folder / METADATA_FILE, metadata)


def refuse_to_replace(target: Path, force: bool, make_target: str) -> None:
    if target.exists() and not force:
        raise FileExistsError(f"{target} already exists; pass --force (make {make_target} FORCE=1) to replace it")


@contextlib.contextmanager
def staging(out_root: Path, version: str) -> Iterator[Path]:
    """A fresh hidden folder beside ``out_root/version``, removed afterwards unless it was published."""
    out_root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{version}.staging-", dir=out_root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def publish(staging_dir: Path, target: Path) -> None:
    """Move a fully written ``staging_dir`` to ``target``; a replaced target is removed only afterwards."""
    os.chmod(staging_dir, 0o755)
    if target.exists():
        backup = target.with_name(f".{target.name}.replaced")
        shutil.rmtree(backup, ignore_errors=True)
        target.rename(backup)
        staging_dir.rename(target)
        shutil.rmtree(backup)
    else:
        staging_dir.rename(target)
