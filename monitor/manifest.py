"""The served model's reference: what the monitor compares production with, read from its ``Manifest``.

``runtime.manifest.Manifest`` reads and validates the serving fields; this module checks the monitoring fields
``make convert`` writes beside them: ``trained_at`` (ISO 8601 UTC), each feature's ``quantiles`` (101 floats: the
0th..100th percentiles of the feature on the training split) and ``prediction_quantiles`` (101 percentiles of the
predicted probability on the held-out validation + test split).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from monitor.clock import parse_utc
from monitor.exceptions import ManifestError
from runtime.exceptions import ModelArtifactError
from runtime.manifest import FILE, Manifest

N_QUANTILES = 101
FIX = "re-run `make convert` for this version (it writes the monitoring fields)"
MONITORING_FIELDS = ("trained_at", "prediction_quantiles")

__all__ = ["ModelReference", "load_reference", "parse_utc"]


@dataclass(frozen=True)
class ModelReference:
    """The training distribution and the promises the monitor checks production against."""

    path: Path
    model_version: str
    threshold: float
    test_f1: float
    trained_at: datetime  # aware, UTC
    names: tuple[str, ...]
    train_min: np.ndarray  # (n_features,) float64
    train_max: np.ndarray  # (n_features,) float64
    quantiles: np.ndarray  # (n_features, 101) float64, each row non-decreasing
    prediction_quantiles: np.ndarray  # (101,) float64


def _quantiles(value: object, where: str, path: Path) -> np.ndarray:
    if not isinstance(value, (list, tuple)) or len(value) != N_QUANTILES:
        got = f"{len(value)} values" if isinstance(value, (list, tuple)) else type(value).__name__
        raise ManifestError(f"{path}: {where} must be a list of {N_QUANTILES} percentiles, got {got}; {FIX}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ManifestError(f"{path}: {where} holds a value that is not a number; {FIX}") from None
    if not np.isfinite(arr).all() or (np.diff(arr) < 0).any():
        raise ManifestError(f"{path}: {where} must be finite and non-decreasing; {FIX}")
    return arr


def _read(model_dir: Path) -> Manifest:
    try:
        return Manifest.read(model_dir)
    except ModelArtifactError as exc:
        if not (model_dir / FILE).is_file():
            raise ManifestError(
                f"{model_dir / FILE}: no such file; --model must be a converted folder such as models_onnx/v1.0"
            ) from None
        raise ManifestError(f"{model_dir / FILE}: {exc}") from None


def _trained_at(manifest: Manifest, path: Path) -> datetime:
    try:
        return parse_utc(str(manifest.trained_at))
    except ValueError:
        raise ManifestError(f"{path}: trained_at {manifest.trained_at!r} is not ISO 8601; {FIX}") from None


def load_reference(model_dir: str | Path) -> ModelReference:
    """Read and check ``model_dir/manifest.json``. Raises ``ManifestError`` naming the missing field and the fix."""
    model_dir = Path(model_dir)
    path = model_dir / FILE
    manifest = _read(model_dir)
    missing = [key for key in MONITORING_FIELDS if manifest.data.get(key) is None]
    if missing:
        raise ManifestError(f"{path} lacks {', '.join(missing)}: this model was converted before monitoring; {FIX}")
    lacking = [f.name for f in manifest.features if f.quantiles is None]
    if lacking:
        raise ManifestError(f"{path}: features without 'quantiles': {', '.join(lacking[:5])}; {FIX}")
    features = manifest.features
    return ModelReference(
        path=model_dir,
        model_version=manifest.model_version,
        threshold=manifest.threshold,
        test_f1=float(manifest.metrics["f1_score"]),  # Manifest checked it lies in [0, 1]
        trained_at=_trained_at(manifest, path),
        names=manifest.feature_names,
        train_min=np.array([f.min for f in features], dtype=np.float64),
        train_max=np.array([f.max for f in features], dtype=np.float64),
        quantiles=np.stack([_quantiles(f.quantiles, f"features[{f.name}].quantiles", path) for f in features]),
        prediction_quantiles=_quantiles(manifest.data["prediction_quantiles"], "prediction_quantiles", path),
    )
