"""The reference predictor: the original torch + sklearn inference path, the oracle for every parity check.

``scaler.transform`` (float64) -> float32 tensor -> ``AutoEncoder.encode`` under ``no_grad`` -> hstack(scaled,
latent) -> the classifier's own ``predict_proba`` (``GradientBoostingClassifier`` for v1.0; any kind of
``convert.kinds``); the decision threshold from ``metadata.json``.
The ONNX runtime (``runtime.load``) mirrors this interface, so parity is a comparison of two ``.predict`` dicts.

``truth`` evaluates the same weights in float64: the yardstick against which the certificate measures how far
the original's float32 arithmetic and the ONNX graph's each stray.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import joblib
import numpy as np
import torch

from convert import kinds
from convert.model import AutoEncoder, feature_attention
from convert.originals import METADATA_FILE, SCALER_FILE, model_files

CHUNK = 8192  # rows per encoder call: the (n, 4, 30, 30) attention scores of 100k rows would need GBs


class ReferenceModel:
    """Loaded originals of one ``deployment_models/<version>`` folder."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = Path(model_dir)
        self.metadata = json.loads((self.model_dir / METADATA_FILE).read_text())
        self.feature_names = [f["name"] for f in self.metadata["features"]]
        self.threshold = float(self.metadata["threshold"])
        self.kind, self.latent_dim = kinds.of(self.metadata)
        ae_file, _, classifier_file = model_files(self.metadata)
        self.scaler = joblib.load(self.model_dir / SCALER_FILE)
        self.gb = self.kind.load(self.model_dir / classifier_file)  # the classifier, whatever its kind
        self.autoencoder = AutoEncoder(latent_dim=self.latent_dim)
        state = torch.load(self.model_dir / ae_file, map_location="cpu", weights_only=True)
        self.autoencoder.load_state_dict(state)
        self.autoencoder.eval()
        self._autoencoder64: AutoEncoder | None = None
        self._trees: list | None = None

    def _check(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(f"X has shape {X.shape}, expected (n, {len(self.feature_names)})")
        return X

    def scaled32(self, X: np.ndarray) -> np.ndarray:
        """The float32 scaled readings the encoder and the trees see, (n, 30)."""
        return self.scaler.transform(self._check(X)).astype(np.float32)

    def _encode(self, ae: AutoEncoder, scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        latents, attentions = [], []
        with torch.no_grad():
            for i in range(0, len(scaled), CHUNK):
                latent, weights = ae.encode(torch.from_numpy(scaled[i : i + CHUNK]))
                latents.append(latent.numpy())
                attentions.append(feature_attention(weights).numpy())
        return np.concatenate(latents), np.concatenate(attentions)

    def _result(self, scaled: np.ndarray, latent: np.ndarray, attention: np.ndarray) -> dict[str, np.ndarray]:
        proba = self.gb_probability(scaled, latent)
        return {
            "probability": proba,
            "label": (proba >= self.threshold).astype(np.int64),
            "latent": latent,
            "attention": attention,
        }

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Predict for ``X`` of shape (n, 30), raw readings in manifest feature order.

        Returns
        -------
        dict with ``probability`` (n,) float64, ``label`` (n,) int64 (probability >= threshold),
        ``latent`` (n, 12) float32 and ``attention`` (n, 30) float32 (rows sum to 1).
        """
        scaled = self.scaled32(X)
        return self._result(scaled, *self._encode(self.autoencoder, scaled))

    def truth(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """The same weights in float64, on the float32 scaled readings both implementations see.

        Returns the ``predict`` dict with ``latent`` (n, 12) and ``attention`` (n, 30) in float64, and the GB's
        probability on those float64 features.
        """
        if self._autoencoder64 is None:
            self._autoencoder64 = copy.deepcopy(self.autoencoder).double().eval()
        scaled = self.scaled32(X).astype(np.float64)
        return self._result(scaled, *self._encode(self._autoencoder64, scaled))

    def log_odds(self, X: np.ndarray) -> np.ndarray:
        """The original's log-odds of "defect", (n,) float64, on the float32 pipeline's scaled readings and latents:
        the kind's own (``convert.kinds.Kind.log_odds``)."""
        scaled = self.scaled32(X)
        latent, _ = self._encode(self.autoencoder, scaled)
        features = np.hstack([scaled.astype(np.float64), latent.astype(np.float64)])
        return self.kind.log_odds(self.gb, features)

    def gb_probability(self, scaled: np.ndarray, latent: np.ndarray) -> np.ndarray:
        """The original classifier's probability on given scaled readings and latents, (n,) float64."""
        features = np.hstack([scaled.astype(np.float64), latent.astype(np.float64)])
        return np.asarray(self.kind.proba(self.gb, features), dtype=np.float64)

    def trees(self) -> list:
        """The classifier's trees, each with ``children_left``, ``children_right``, ``feature`` and ``threshold``
        (sklearn's own trees; for the other libraries, read from their converter's ONNX trees)."""
        from convert import trees

        if self._trees is None:
            self._trees = trees.of(self.kind, self.gb, len(self.feature_names) + self.latent_dim)
        return self._trees


def load_reference(model_dir: Path | str) -> ReferenceModel:
    return ReferenceModel(Path(model_dir))
