"""Export the originals to ONNX and fuse them into one graph.

Graph (one ``session.run`` per request)::

    features (n, 30) float64, raw readings
      -> Sub/Div in float64 (skl2onnx StandardScaler, bit-identical to sklearn) -> Cast float32: scaled
      -> encoder (torch.onnx.export, dynamo): latent (n, 12) float32, attention (n, 30) float32
      -> Concat(scaled, latent) (n, 42) float32
      -> GradientBoostingClassifier (skl2onnx TreeEnsembleClassifier, no ZipMap): probabilities (n, 2)
      -> probability (n,) float32 = probabilities[:, 1]; label (n,) int64 = probability >= threshold

sklearn's trees compare ``float32(x)`` with float64 thresholds; skl2onnx stores float32 thresholds nudged with
``nextafter`` so that float32 inputs branch the same way. The float32 cast of the scaled features is therefore
exactly what sklearn's trees see, and the only source of difference is the encoder's float32 arithmetic.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from convert.model import LATENT_DIM, N_FEATURES, AutoEncoder, EncoderForExport
from runtime import artifacts

OPSET = 18  # the lowest opset the dynamo exporter supports; the runtime's onnxruntime runs it
ML_OPSET = 3  # ai.onnx.ml: TreeEnsembleClassifier
IR_VERSION = 9  # loads with onnxruntime >= 1.15
STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml"}  # what any ONNX implementation must run

INPUT_NAME = artifacts.INPUT.name


def export_encoder(ae: AutoEncoder) -> onnx.ModelProto:
    """torch.onnx.export (dynamo) of scaled (n, 30) float32 -> latent (n, 12), attention (n, 30), batch dynamic."""
    module = EncoderForExport(ae).eval()
    example = torch.zeros(4, N_FEATURES)  # batch >= 2: a batch of 1 would be specialised away
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    # In eval/no_grad nn.MultiheadAttention takes a fused fast path that the exporter rejects.
    # the exporter reports every optional torchvision op it skips; none is used here
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    prev = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                (example,),
                input_names=["scaled"],
                output_names=["latent", "attention"],
                dynamic_shapes={"x": {0: batch}},
                opset_version=OPSET,
                dynamo=True,
                external_data=False,
                optimize=True,
                verbose=False,
            )
    finally:
        torch.backends.mha.set_fastpath_enabled(prev)
    model = program.model_proto
    dim0 = model.graph.input[0].type.tensor_type.shape.dim[0]
    if dim0.HasField("dim_value"):
        raise RuntimeError(f"encoder export froze the batch dimension to {dim0.dim_value}; expected a symbolic axis")
    return model


def export_scaler(scaler) -> onnx.ModelProto:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType

    return convert_sklearn(
        scaler,
        initial_types=[("raw", DoubleTensorType([None, N_FEATURES]))],
        target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
        options={id(scaler): {"div": "div_cast"}},
    )


def export_gb(gb) -> onnx.ModelProto:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    return convert_sklearn(
        gb,
        initial_types=[("gb_input", FloatTensorType([None, N_FEATURES + LATENT_DIM]))],
        target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
        options={id(gb): {"zipmap": False}},
    )


def _prefixed(model: onnx.ModelProto, prefix: str, keep: set[str]) -> onnx.GraphProto:
    """A copy of the model's graph whose internal names carry ``prefix`` (names in ``keep`` stay)."""
    graph = onnx.GraphProto()
    graph.CopyFrom(model.graph)

    def rename(name: str) -> str:
        return name if (not name or name in keep) else prefix + name

    for node in graph.node:
        node.name = prefix + node.name
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
    for init in graph.initializer:
        init.name = rename(init.name)
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        vi.name = rename(vi.name)
    return graph


def _value_info(spec: artifacts.TensorSpec) -> onnx.ValueInfoProto:
    shape = artifacts.shapes(N_FEATURES, LATENT_DIM)[spec.name]
    return helper.make_tensor_value_info(spec.name, helper.np_dtype_to_tensor_dtype(np.dtype(spec.dtype)), shape)


def fuse(scaler_onnx: onnx.ModelProto, encoder_onnx: onnx.ModelProto, gb_onnx: onnx.ModelProto, threshold: float):
    """One graph: raw features (float64) -> probability, label, latent, attention."""
    for m in (scaler_onnx, encoder_onnx, gb_onnx):
        for op in m.opset_import:
            wanted = {"": OPSET, "ai.onnx.ml": ML_OPSET}.get(op.domain)
            if wanted is not None and op.version > wanted:
                raise RuntimeError(f"a sub-model uses opset {op.domain or 'ai.onnx'} {op.version} > {wanted}")

    sc = _prefixed(scaler_onnx, "scaler/", set())
    enc = _prefixed(encoder_onnx, "encoder/", {"latent", "attention"})
    gb = _prefixed(gb_onnx, "gb/", set())

    sc_in, sc_out = sc.input[0].name, sc.output[0].name
    enc_in = enc.input[0].name
    gb_in = gb.input[0].name
    gb_proba = next(o.name for o in gb.output if "prob" in o.name)

    glue_inits = [
        numpy_helper.from_array(np.array([1], dtype=np.int64), "glue/one"),
        numpy_helper.from_array(np.array(threshold, dtype=np.float32), "glue/threshold"),
    ]
    nodes = [
        helper.make_node("Identity", [INPUT_NAME], [sc_in], name="glue/input"),
        *sc.node,
        helper.make_node("Cast", [sc_out], [enc_in], to=TensorProto.FLOAT, name="glue/cast_scaled"),
        *enc.node,
        helper.make_node("Concat", [enc_in, "latent"], [gb_in], axis=1, name="glue/concat"),
        *gb.node,
        helper.make_node("Gather", [gb_proba, "glue/one"], ["glue/p1"], axis=1, name="glue/pick_defect"),
        helper.make_node("Squeeze", ["glue/p1", "glue/one"], ["probability"], name="glue/squeeze"),
        helper.make_node("GreaterOrEqual", ["probability", "glue/threshold"], ["glue/ge"], name="glue/threshold"),
        helper.make_node("Cast", ["glue/ge"], ["label"], to=TensorProto.INT64, name="glue/label"),
    ]
    graph = helper.make_graph(
        nodes,
        "diecast_defect",
        inputs=[_value_info(artifacts.INPUT)],
        outputs=[_value_info(o) for o in artifacts.OUTPUTS],
        initializer=[*sc.initializer, *enc.initializer, *gb.initializer, *glue_inits],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        producer_name="diecast-t1",
        doc_string="StandardScaler -> AutoEncoder encoder -> GradientBoostingClassifier, fused",
    )
    model.ir_version = IR_VERSION
    check_standard(model)
    return model


def check_standard(model: onnx.ModelProto) -> None:
    """A standard ONNX file: only the ai.onnx and ai.onnx.ml domains, and onnx's full check passes."""
    domains = {o.domain for o in model.opset_import} | {n.domain for n in model.graph.node}
    if not domains <= STANDARD_DOMAINS:
        raise RuntimeError(f"the graph uses non-standard domains {sorted(domains - STANDARD_DOMAINS)}")
    onnx.checker.check_model(model, full_check=True)


def embed_serving(model: onnx.ModelProto, serving_json: str) -> None:
    """Put the serving fields into the graph's metadata_props, so that the graph's sha256 covers them."""
    helper.set_model_props(model, {artifacts.SERVING_KEY: serving_json})


def ort_optimize(model: onnx.ModelProto, out_path: Path) -> None:
    """Save onnxruntime's offline-optimised graph (EXTENDED level: portable across x86-64 CPUs, but it holds
    onnxruntime-only contrib ops such as com.microsoft:QuickGelu, so it ships only as a cache)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(out_path)
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
