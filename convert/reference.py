"""The reference predictor: the original torch + sklearn inference path, the oracle for every parity check.

``scaler.transform`` (float64) -> float32 tensor -> ``AutoEncoder.encode`` under ``no_grad`` -> hstack(scaled,
latent) -> ``GradientBoostingClassifier.predict_proba``; the decision threshold from ``metadata.json``.
The ONNX runtime (``runtime.load``) mirrors this interface, so parity is a comparison of two ``.predict`` dicts.
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import torch

from convert.model import AutoEncoder, feature_attention
from convert.train import AE_FILE, GB_FILE, METADATA_FILE, SCALER_FILE


class ReferenceModel:
    """Loaded originals of one ``deployment_models/<version>`` folder."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = Path(model_dir)
        self.metadata = json.loads((self.model_dir / METADATA_FILE).read_text())
        self.feature_names = [f["name"] for f in self.metadata["features"]]
        self.threshold = float(self.metadata["threshold"])
        self.scaler = joblib.load(self.model_dir / SCALER_FILE)
        self.gb = joblib.load(self.model_dir / GB_FILE)
        self.autoencoder = AutoEncoder()
        state = torch.load(self.model_dir / AE_FILE, map_location="cpu", weights_only=True)
        self.autoencoder.load_state_dict(state)
        self.autoencoder.eval()

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Predict for ``X`` of shape (n, 30), raw readings in manifest feature order.

        Returns
        -------
        dict with ``probability`` (n,) float64, ``label`` (n,) int64 (probability >= threshold),
        ``latent`` (n, 12) float32 and ``attention`` (n, 30) float32 (rows sum to 1).
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(f"X has shape {X.shape}, expected (n, {len(self.feature_names)})")
        scaled = self.scaler.transform(X)
        with torch.no_grad():
            latent_t, weights = self.autoencoder.encode(torch.from_numpy(scaled.astype(np.float32)))
            attention = feature_attention(weights).numpy()
        latent = latent_t.numpy()
        proba = self.gb.predict_proba(np.hstack([scaled, latent]))[:, 1]
        return {
            "probability": proba,
            "label": (proba >= self.threshold).astype(np.int64),
            "latent": latent,
            "attention": attention,
        }


def load_reference(model_dir: Path | str) -> ReferenceModel:
    return ReferenceModel(Path(model_dir))
