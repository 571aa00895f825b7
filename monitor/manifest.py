"""The served model's reference: what the monitor compares production with, read from ``manifest.json``.

Fields used (``make convert`` writes them): ``model_version``, ``threshold``, ``metrics.f1_score`` (test split),
``trained_at`` (ISO 8601 UTC), ``features[i]`` with ``name``, ``min``, ``max`` and ``quantiles`` (101 floats: the
0th..100th percentiles of the feature on the training split), and ``prediction_quantiles`` (101 percentiles of
the predicted probability on the held-out validation + test split).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from monitor.exceptions import ManifestError

N_QUANTILES = 101
FIX = "re-run `make convert` for this version (it writes the monitoring fields)"


@dataclass(frozen=True)
class ModelReference:
    """The training distribution and the promises the monitor checks production against."""

    path: Path
    model_version: str
    threshold: float
    test_f1: float
    trained_at: datetime  # aware, UTC
    names: tuple[str, ...]
    train_min: np.ndarray  # (30,) float64
    train_max: np.ndarray  # (30,) float64
    quantiles: np.ndarray  # (30, 101) float64, each row non-decreasing
    prediction_quantiles: np.ndarray  # (101,) float64


def parse_utc(text: str) -> datetime:
    """ISO 8601 -> aware UTC datetime; a time without an offset is taken as UTC."""
    stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def _quantiles(value: object, where: str, path: Path) -> np.ndarray:
    if not isinstance(value, list) or len(value) != N_QUANTILES:
        got = f"{len(value)} values" if isinstance(value, list) else type(value).__name__
        raise ManifestError(f"{path}: {where} must be a list of {N_QUANTILES} percentiles, got {got}; {FIX}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ManifestError(f"{path}: {where} holds a value that is not a number; {FIX}") from None
    if not np.isfinite(arr).all() or (np.diff(arr) < 0).any():
        raise ManifestError(f"{path}: {where} must be finite and non-decreasing; {FIX}")
    return arr


def _require(manifest: dict, keys: list[str], path: Path) -> None:
    missing = []
    for key in keys:
        node: object = manifest
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            missing.append(key)
    if missing:
        raise ManifestError(f"{path} lacks {', '.join(missing)}: this model was converted before monitoring; {FIX}")


def load_reference(model_dir: str | Path) -> ModelReference:
    """Read and check ``model_dir/manifest.json``. Raises ``ManifestError`` naming the missing field and the fix."""
    model_dir = Path(model_dir)
    path = model_dir / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ManifestError(
            f"{path}: no such file; --model must be a converted folder such as models_onnx/v1.0"
        ) from None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path}: unreadable or not JSON ({exc})") from None
    _require(manifest, ["model_version", "threshold", "metrics.f1_score", "trained_at", "prediction_quantiles"], path)
    features = manifest.get("features")
    if not isinstance(features, list) or not features:
        raise ManifestError(f"{path}: 'features' must list the model's features; {FIX}")
    lacking = [str(f.get("name", i)) for i, f in enumerate(features) if "quantiles" not in f]
    if lacking:
        raise ManifestError(f"{path}: features without 'quantiles': {', '.join(lacking[:5])}; {FIX}")
    try:
        trained_at = parse_utc(str(manifest["trained_at"]))
    except ValueError:
        raise ManifestError(f"{path}: trained_at {manifest['trained_at']!r} is not ISO 8601; {FIX}") from None
    f1 = float(manifest["metrics"]["f1_score"])
    if not (0.0 <= f1 <= 1.0 and math.isfinite(f1)):
        raise ManifestError(f"{path}: metrics.f1_score must lie in [0, 1], got {f1}; {FIX}")
    return ModelReference(
        path=model_dir,
        model_version=str(manifest["model_version"]),
        threshold=float(manifest["threshold"]),
        test_f1=f1,
        trained_at=trained_at,
        names=tuple(str(f["name"]) for f in features),
        train_min=np.array([f["min"] for f in features], dtype=np.float64),
        train_max=np.array([f["max"] for f in features], dtype=np.float64),
        quantiles=np.stack([_quantiles(f["quantiles"], f"features[{f['name']}].quantiles", path) for f in features]),
        prediction_quantiles=_quantiles(manifest["prediction_quantiles"], "prediction_quantiles", path),
    )
