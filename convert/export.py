"""Export the originals to one standard ONNX graph, and onnxruntime's optimised copy of it.

The graph itself is written node by node in ``convert.graph`` (scaler and encoder from their weights); the trees
come from their kind's converter (``convert.kinds``): the original GB's from skl2onnx, which stores float32
thresholds nudged with ``nextafter`` so that float32 inputs branch as sklearn's float64 ones (sklearn's trees
compare ``float32(x)`` with float64 thresholds). The float32 cast of the scaled readings is therefore exactly what
the trees see, and the only source of difference is the encoder's float32 arithmetic, which the certificate
measures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from convert import graph, kinds
from convert.model import LATENT_DIM, N_FEATURES, AutoEncoder
from runtime import artifacts

STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml"}  # what any ONNX implementation must run
CLIP_MARGIN = 1 + 1e-9  # readings exactly on the envelope's edge stay untouched by the Clip


def export_gb(gb, kind: kinds.Kind = kinds.KINDS[kinds.DEFAULT_KIND], latent_dim: int = LATENT_DIM) -> onnx.ModelProto:
    """The classifier's trees through its kind's converter (skl2onnx for the original GB)."""
    return kind.to_onnx(gb, N_FEATURES + latent_dim)


def clip_bound(scaler, fields: dict) -> float:
    """The envelope's largest extent in standard deviations: the Clip that keeps the float32 encoder finite for any
    input while leaving every reading the runtime answers as it is."""
    low, high = (np.array(bound) for bound in artifacts.envelope(fields))
    extent = np.maximum(np.abs(low - scaler.mean_), np.abs(high - scaler.mean_)) / scaler.scale_
    return float(extent.max() * CLIP_MARGIN)


def export(
    scaler,
    autoencoder: AutoEncoder,
    gb,
    threshold: float,
    fields: dict,
    kind: kinds.Kind = kinds.KINDS[kinds.DEFAULT_KIND],
) -> onnx.ModelProto:
    """The fused, standard graph with the manifest's serving fields embedded in its metadata_props."""
    latent_dim = autoencoder.encoder[-1].out_features
    classifier = type(gb).__name__ if kind.name == kinds.DEFAULT_KIND else kind.name
    trees = export_gb(gb, kind, latent_dim)
    model = graph.build(scaler, autoencoder, trees, threshold, clip_bound(scaler, fields), classifier)
    helper.set_model_props(model, {artifacts.SERVING_KEY: artifacts.canonical_json(artifacts.serving_fields(fields))})
    check_standard(model)
    return model


def check_standard(model: onnx.ModelProto) -> None:
    """A standard ONNX file: only the ai.onnx and ai.onnx.ml domains, and onnx's full check passes."""
    domains = {o.domain for o in model.opset_import} | {n.domain for n in model.graph.node}
    if not domains <= STANDARD_DOMAINS:
        raise RuntimeError(f"the graph uses non-standard domains {sorted(domains - STANDARD_DOMAINS)}")
    onnx.checker.check_model(model, full_check=True)


def ort_optimize(model: onnx.ModelProto, out_path: Path) -> None:
    """Save onnxruntime's offline-optimised graph (EXTENDED level: portable across x86-64 CPUs, but it may hold
    onnxruntime-only contrib ops such as com.microsoft:QuickGelu, so it ships only as a cache; it saves the
    optimiser's work at INIT)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(out_path)
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
