"""Torch-free, pickle-free inference for the die-casting defect model (onnxruntime + numpy only).

>>> model = runtime.load("models_onnx/v1.0")
>>> out = model.predict(X)   # X: (n, 30) float64 in manifest feature order
>>> out["probability"], out["label"], out["latent"], out["attention"]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.exceptions import InputValidationError, ModelArtifactError, PayloadTooLargeError

if TYPE_CHECKING:
    from runtime.model import Model, load

__all__ = ["InputValidationError", "Model", "ModelArtifactError", "PayloadTooLargeError", "load"]


def __getattr__(name: str) -> Any:
    """``Model`` and ``load`` import onnxruntime on first use, so that reading ``runtime.contracts`` or
    ``runtime.manifest`` (the monitor's and the command line's needs) does not load it."""
    if name in ("Model", "load"):
        from runtime import model

        return getattr(model, name)
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")
