"""Torch-free, pickle-free inference for the die-casting defect model (onnxruntime + numpy only).

>>> model = runtime.load("models_onnx/v1.0")
>>> out = model.predict(X)   # X: (n, 30) float64 in manifest feature order
>>> out["probability"], out["label"], out["latent"], out["attention"]
"""

from runtime.exceptions import InputValidationError, ModelArtifactError, PayloadTooLargeError
from runtime.model import Model, load

__all__ = ["InputValidationError", "Model", "ModelArtifactError", "PayloadTooLargeError", "load"]
