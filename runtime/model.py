"""The serving model: one verified ONNX graph, one onnxruntime session, built once.

``load(model_dir)`` reads ``manifest.json``, picks the graph (onnxruntime's pre-optimised cache when the installed
onnxruntime is the release that wrote it, else the standard ``model.onnx``), checks its size and sha256 against
the manifest, creates an ``InferenceSession`` tuned for a 1-2 vCPU Lambda, checks that the serving fields embedded
in the graph agree with the manifest, and runs a warm-up inference. ``Model.predict`` returns the same dict as
``convert.reference.ReferenceModel.predict``, so parity is a comparison of the two.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnxruntime as ort

from runtime import artifacts
from runtime.exceptions import ModelArtifactError, NonFiniteOutputError
from runtime.manifest import Manifest
from runtime.validation import Bounds, check_envelope, check_finite, check_matrix


def session_options(
    intra_op_threads: int = 1, inter_op_threads: int = 1, pre_optimised: bool = False
) -> ort.SessionOptions:
    """Options for a small Lambda: no thread pools, no spinning, sequential execution.

    A graph that ``make convert`` already optimised (the cache) is loaded as it is: re-running ORT's optimisers
    on it changes nothing and would lengthen the cold start.
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = inter_op_threads
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL if pre_optimised else ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    )
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


def choose_graph(manifest: Manifest, use_ort_cache: bool = True) -> tuple[str, Mapping[str, Any]]:
    """("model" | "ort_cache", its file entry): the cache only when this onnxruntime is the one that wrote it."""
    files = manifest.files
    cache = files.get("ort_cache")
    if use_ort_cache and cache is not None and cache.get("onnxruntime") == ort.__version__:
        return "ort_cache", cache
    return "model", files["model"]


class Model:
    """A loaded, verified model. Thread-compatible: one instance per process, built once."""

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        *,
        intra_op_threads: int = 1,
        inter_op_threads: int = 1,
        use_ort_cache: bool = True,
    ) -> None:
        self.model_dir = os.fspath(model_dir)
        self.manifest = manifest = Manifest.read(self.model_dir)
        self.graph_kind, entry = choose_graph(manifest, use_ort_cache)
        self.graph_file = entry["path"]
        blob = artifacts.read_file(self.model_dir, self.graph_file, artifacts.MAX_GRAPH_BYTES, entry["bytes"])
        digest = artifacts.sha256_bytes(blob)
        if digest != entry["sha256"]:
            raise ModelArtifactError(
                f"{self.graph_file} does not match its manifest: sha256 {digest[:16]}..., expected "
                f"{entry['sha256'][:16]}... (corrupt or replaced file; re-run make convert)"
            )
        opts = session_options(intra_op_threads, inter_op_threads, pre_optimised=self.graph_kind == "ort_cache")
        try:
            self.session = ort.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelArtifactError(f"onnxruntime cannot load {self.graph_file}: {exc}") from None
        self._check_contract()

        features = manifest.features
        self.feature_names: tuple[str, ...] = manifest.feature_names
        self.n_features = len(self.feature_names)
        self.train_min = np.array([f.min for f in features], dtype=np.float64)
        self.train_max = np.array([f.max for f in features], dtype=np.float64)
        self.train_range = Bounds(self.train_min, self.train_max)
        self.envelope = Bounds(*artifacts.envelope(manifest.data))
        self.threshold = manifest.threshold
        self.model_version: str = manifest.model_version
        self.input_name = artifacts.INPUT.name
        # The binding's run() directly: the Python wrapper re-validates the feed on every call, a visible share of a
        # single-row run, and raw_predict's callers have validated it already.
        binding = getattr(self.session, "_sess", None)
        self._run = binding.run if binding is not None else self.session.run
        self._output_names = list(artifacts.OUTPUT_NAMES)
        # Warm-up: the first run allocates buffers and primes kernels; do it at load, not on a request.
        means = np.array([self.manifest_means()], dtype=np.float64)
        self._one = _OneRow(self.session, means, self._output_names, self.raw_predict(means))

    def manifest_means(self) -> list[float]:
        """The training mean of every feature, in manifest order: an ordinary row."""
        return [f.mean for f in self.manifest.features]

    def _check_contract(self) -> None:
        """The graph's inputs, outputs and embedded serving fields agree with the manifest."""
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != [artifacts.INPUT.name] or outputs != list(artifacts.OUTPUT_NAMES):
            raise ModelArtifactError(
                f"{self.graph_file}: graph inputs {inputs} / outputs {outputs}; expected "
                f"[{artifacts.INPUT.name!r}] / {list(artifacts.OUTPUT_NAMES)}"
            )
        width = self.session.get_inputs()[0].shape[-1]
        if width != len(self.manifest.features):
            raise ModelArtifactError(
                f"{artifacts.MANIFEST_FILE}: features lists {len(self.manifest.features)} features; the graph "
                f"{self.graph_file} reads {width}"
            )
        embedded = self.session.get_modelmeta().custom_metadata_map.get(artifacts.SERVING_KEY)
        if embedded is None:
            raise ModelArtifactError(f"{self.graph_file} carries no {artifacts.SERVING_KEY!r}; re-run make convert")
        if embedded != artifacts.canonical_json(artifacts.serving_fields(self.manifest.data)):
            raise ModelArtifactError(
                f"{artifacts.MANIFEST_FILE} disagrees with the serving fields embedded in {self.graph_file} "
                "(edited manifest?); re-run make convert"
            )

    def raw_predict(self, X: np.ndarray) -> list[np.ndarray]:
        """The session's outputs ``[probability, label, latent, attention]`` for a checked, C-contiguous
        (n, n_features) float64 ``X`` inside the envelope. No checks on the way in or out: callers validate first
        and check the outputs are finite (``check_finite``; the handler does it on the lists it serialises)."""
        return self._run(self._output_names, {self.input_name: X}, None)

    def raw_lists(self, X: np.ndarray) -> list[list]:
        """``raw_predict``'s outputs as Python lists (what a response serialises). One row runs through buffers
        bound once (``_OneRow``), with the same numbers and no output arrays to allocate. (Arrays copied out of the
        buffers would gain nothing over ``raw_predict``, so it keeps ``session.run``.)"""
        if X.shape[0] == 1:
            lists = self._one.run(X)
            if lists is not None:
                return lists
        return [o.tolist() for o in self.raw_predict(X)]

    def finite_lists(self, X: np.ndarray) -> list[list]:
        """``raw_lists``, raising ``NonFiniteOutputError`` (naming the rows) if any output is NaN or infinite."""
        lists = self.raw_lists(X)
        probs, _, lats, atts = lists
        # Checked on the lists about to be served (a NaN makes a sum NaN; latents stay far below overflow inside the
        # envelope): cheaper than numpy's checks on arrays this small.
        if not math.isfinite(sum(probs) + sum(map(sum, lats)) + sum(map(sum, atts))):
            self.check_finite([np.array(values) for values in lists])
        return lists

    @staticmethod
    def check_finite(outs: list[np.ndarray]) -> None:
        """``NonFiniteOutputError`` naming the rows if any output is NaN or infinite: never an answer."""
        # A non-finite attention weight makes the latent non-finite (it feeds the MLP) and the probability is a
        # sigmoid of finite leaf sums, so one reduction over the latent decides (it cannot overflow on its own:
        # latents stay below ~1e23 inside the envelope); the rows are looked up only when it fails.
        if np.isfinite(outs[2].sum()):
            return
        bad = ~np.isfinite(outs[0]) | ~np.isfinite(outs[2]).all(axis=1) | ~np.isfinite(outs[3]).all(axis=1)
        raise NonFiniteOutputError(
            "the model cannot give a finite answer for these readings; check them against the training ranges",
            [{"row": int(r), "field": None, "reason": "non-finite model output"} for r in np.flatnonzero(bad)[:10]],
        )

    def predict(self, X: Any) -> dict[str, np.ndarray]:
        """Predict for ``X`` of shape (n, n_features), raw readings in manifest feature order.

        Returns
        -------
        dict with ``probability`` (n,) float32, ``label`` (n,) int64 (probability >= threshold),
        ``latent`` (n, 12) float32 and ``attention`` (n, n_features) float32 (per-feature attention, rows sum
        to 1). Raises ``InputValidationError`` (``OutOfEnvelopeError`` for a reading beyond the envelope) before
        any compute, and ``NonFiniteOutputError`` instead of a non-finite answer.
        """
        X = check_matrix(X, self.n_features)
        if not self.envelope.holds(X):  # also false for NaN: then say which it is
            check_finite(X)
            check_envelope(X, self.envelope, self.feature_names, batch=True)
        outs = self.raw_predict(X)
        self.check_finite(outs)
        return dict(zip(artifacts.OUTPUT_NAMES, outs, strict=True))


class _OneRow:
    """A single-row run into output buffers bound once (onnxruntime's IO binding): no output arrays to allocate and
    wrap per request, a tenth or so of a single-row run. The buffers are shared, so one thread at a time uses
    them; ``run`` returns None to a caller that finds them busy (it takes the ordinary path instead)."""

    def __init__(self, session: ort.InferenceSession, X: np.ndarray, output_names: list[str], outs: list) -> None:
        """Bind buffers shaped like a single-row input ``X`` and its outputs ``outs``."""
        self._input = np.empty_like(X)
        self._outputs = [np.empty_like(o) for o in outs]
        binding = session.io_binding()
        binding.bind_cpu_input(artifacts.INPUT.name, self._input)
        for name, buffer in zip(output_names, self._outputs, strict=True):
            binding.bind_output(name, "cpu", 0, buffer.dtype, buffer.shape, buffer.ctypes.data)
        self._binding = binding  # kept alive with the arrays it points at
        native = getattr(session, "_sess", None)
        self._run = (
            (lambda: native.run_with_iobinding(binding._iobinding, None))
            if native is not None
            else (lambda: session.run_with_iobinding(binding))
        )
        self._lock = threading.Lock()

    def run(self, X: np.ndarray) -> list[list] | None:
        """The outputs for the row ``X`` as lists (the buffers are reused), or None when another thread has them."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            self._input[:] = X
            self._run()
            return [o.tolist() for o in self._outputs]
        finally:
            self._lock.release()


def load(
    model_dir: str | os.PathLike[str],
    *,
    intra_op_threads: int = 1,
    inter_op_threads: int = 1,
    use_ort_cache: bool = True,
) -> Model:
    """Load and verify ``model_dir`` (``manifest.json`` + the graph it names). Raises ``ModelArtifactError``."""
    return Model(
        model_dir, intra_op_threads=intra_op_threads, inter_op_threads=inter_op_threads, use_ort_cache=use_ort_cache
    )
