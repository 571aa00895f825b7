"""The serving model: one verified ONNX graph, one onnxruntime session, built once.

``load(model_dir)`` reads ``manifest.json`` and the model file named there, checks the file's sha256 against
the manifest, creates an ``InferenceSession`` tuned for a 1-2 vCPU Lambda and runs a warm-up inference.
``Model.predict`` returns the same dict as ``convert.reference.ReferenceModel.predict``, so parity is a
comparison of the two.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np
import onnxruntime as ort

from runtime.exceptions import ModelArtifactError
from runtime.validation import check_matrix

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
OUTPUTS = ("probability", "label", "latent", "attention")


def session_options(
    intra_op_threads: int = 1, inter_op_threads: int = 1, pre_optimised: bool = False
) -> ort.SessionOptions:
    """Options for a small Lambda: no thread pools, no spinning, sequential execution.

    A graph that ``make convert`` already optimised (manifest ``graph.optimization``) is loaded as it is:
    re-running ORT's optimisers on it changes nothing and cost ~15 ms of cold start in measurement.
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = inter_op_threads
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL if pre_optimised else ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    )
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


def read_manifest(model_dir: str) -> dict[str, Any]:
    path = os.path.join(model_dir, MANIFEST_FILE)
    try:
        with open(path, "rb") as fh:
            manifest = json.loads(fh.read())
    except FileNotFoundError:
        raise ModelArtifactError(
            f"no {MANIFEST_FILE} in {model_dir}: is MODEL_PATH a converted model folder?"
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelArtifactError(f"{path} is unreadable or not valid JSON: {exc}") from None
    required = ("format", "model_version", "model_file", "model_sha256", "input", "features", "threshold")
    missing = [k for k in required if k not in manifest]
    if missing:
        raise ModelArtifactError(f"{path} lacks required key(s): {', '.join(missing)}")
    if manifest["format"] != MANIFEST_FORMAT:
        raise ModelArtifactError(f"{path}: manifest format {manifest['format']}, this runtime reads {MANIFEST_FORMAT}")
    return manifest


class Model:
    """A loaded, verified model. Thread-compatible: one instance per process, built once."""

    def __init__(
        self, model_dir: str | os.PathLike[str], *, intra_op_threads: int = 1, inter_op_threads: int = 1
    ) -> None:
        self.model_dir = os.fspath(model_dir)
        self.manifest = manifest = read_manifest(self.model_dir)
        model_path = os.path.join(self.model_dir, manifest["model_file"])
        try:
            with open(model_path, "rb") as fh:
                blob = fh.read()
        except OSError as exc:
            raise ModelArtifactError(f"cannot read the model file {model_path}: {exc.strerror}") from None
        digest = hashlib.sha256(blob).hexdigest()
        if digest != manifest["model_sha256"]:
            raise ModelArtifactError(
                f"{model_path} does not match its manifest: sha256 {digest[:16]}..., "
                f"expected {manifest['model_sha256'][:16]}... (corrupt or replaced file; re-run make convert)"
            )
        try:
            pre_optimised = manifest.get("graph", {}).get("optimization") == "ort-extended"
            opts = session_options(intra_op_threads, inter_op_threads, pre_optimised)
            self.session = ort.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelArtifactError(f"onnxruntime cannot load {model_path}: {exc}") from None

        self.input_name = manifest["input"]["name"]
        got_outputs = [o.name for o in self.session.get_outputs()]
        if [i.name for i in self.session.get_inputs()] != [self.input_name] or got_outputs != list(OUTPUTS):
            raise ModelArtifactError(f"{model_path}: graph inputs/outputs do not match the manifest ({got_outputs})")

        features = manifest["features"]
        self.feature_names: tuple[str, ...] = tuple(f["name"] for f in features)
        self.n_features = len(self.feature_names)
        self.train_min = np.array([f["min"] for f in features], dtype=np.float64)
        self.train_max = np.array([f["max"] for f in features], dtype=np.float64)
        self.threshold = float(manifest["threshold"])
        self.model_version: str = manifest["model_version"]
        # The binding's run() directly: the Python wrapper re-validates the feed on every call (~7 us of a
        # ~110 us single-row run, measured), and raw_predict's callers have validated it already.
        binding = getattr(self.session, "_sess", None)
        self._run = binding.run if binding is not None else self.session.run
        self._output_names = list(OUTPUTS)
        # Warm-up: the first run allocates buffers and primes kernels; do it at load, not on a request.
        mean = np.array([[f["mean"] for f in features]], dtype=np.float64)
        self.raw_predict(mean)

    def raw_predict(self, X: np.ndarray) -> list[np.ndarray]:
        """The session's outputs ``[probability, label, latent, attention]`` for a checked, C-contiguous
        (n, 30) float64 ``X``; no validation (callers validate first)."""
        return self._run(self._output_names, {self.input_name: X}, None)

    def predict(self, X: Any) -> dict[str, np.ndarray]:
        """Predict for ``X`` of shape (n, 30), raw readings in manifest feature order.

        Returns
        -------
        dict with ``probability`` (n,) float32, ``label`` (n,) int64 (probability >= threshold),
        ``latent`` (n, 12) float32 and ``attention`` (n, 30) float32 (per-feature attention, rows sum to 1).
        """
        X = check_matrix(X, self.n_features)
        return dict(zip(OUTPUTS, self.raw_predict(X), strict=True))


def load(model_dir: str | os.PathLike[str], **kwargs: int) -> Model:
    """Load and verify ``model_dir`` (``manifest.json`` + the ONNX file it names). Raises ``ModelArtifactError``."""
    return Model(model_dir, **kwargs)
