"""The serving graph, written node by node from the originals' weights: scaler -> encoder -> GB, one ONNX graph.

    features (n, 30) float64, raw readings
      -> (x - mean) / scale in float64 (sklearn's StandardScaler.transform, bit for bit) -> Clip at the envelope
      -> Cast float32: x, the scaled readings the encoder and the trees see
      -> attention: each feature token is affine in its reading (t_i = x_i w_i + b_i) and every projection after
         it is linear, so per head the query, key and value of feature i are affine in x_i too:
         q_i = x_i a_i + c_i, k_j = x_j e_j + f_j, v_j = x_j m_j + o_j, their constants folded in float64 at export;
         one Gemm gives every head's Q, V and K^T at once (a (30, 1080) weight whose columns each read one feature);
         scores Q @ K^T (n, 4, 30, 30) -> Softmax -> attention = mean over heads and queries (n, 30),
         r_i = sum over heads and keys of P v (the value path, output projection and read-out collapsed)
      -> SwiGLU MLP 30 -> 64 -> 32 -> 16 -> 12 on x + r, silu(a) * gate as a * gate / (1 + exp(-a)): latent (n, 12)
      -> Concat(x, latent) (n, 42) -> TreeEnsembleRegressor (skl2onnx's trees, float32 thresholds nudged so that
         float32 inputs branch as sklearn's float64 ones; any kind's trees, ``convert.trees``) -> Sigmoid ->
         probability (n,), label = probability >= threshold

40 nodes, all in the ``ai.onnx`` and ``ai.onnx.ml`` domains; the straight torch export had 65. The one projection Gemm
replaced a broadcast Mul + Add per side (2 nodes fewer; at batch 1000 the broadcast Mul alone took 10 % of a run).
``AutoEncoder.encode`` stays the definition: the certificate holds this graph to it, and the Clip changes nothing
inside the envelope (the runtime refuses readings beyond it).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from convert import trees
from convert.model import N_HEADS, TOKEN_DIM, AutoEncoder, SwiGLU
from runtime import artifacts

OPSET = 18
ML_OPSET = 3
IR_VERSION = 9  # loads with onnxruntime >= 1.15
PRODUCER = "diecast-t1"


class _Graph:
    """Nodes and initializers under construction; names are short and unique."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.array(value, order="C"), name))  # keeps 0-d scalars 0-d
        return name

    def op(self, op_type: str, inputs: list[str], outputs: list[str] | str, domain: str = "", **attrs) -> list[str]:
        outs = [outputs] if isinstance(outputs, str) else outputs
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=outs[0], domain=domain, **attrs))
        return outs


def attention_constants(ae: AutoEncoder) -> dict[str, np.ndarray]:
    """The folded query/key/value constants, computed in float64 from the float32 weights, rounded once."""
    d, h = TOKEN_DIM, N_HEADS
    dh = d // h
    f64 = lambda t: t.detach().double().numpy()  # noqa: E731
    w_tok, b_tok = f64(ae.token_weight), f64(ae.token_bias)  # (30, 16)
    mha = ae.attention
    w_in, b_in = f64(mha.in_proj_weight), f64(mha.in_proj_bias)
    wq, wk, wv = w_in[:d], w_in[d : 2 * d], w_in[2 * d :]
    bq, bk, bv = b_in[:d], b_in[d : 2 * d], b_in[2 * d :]
    scale = 1.0 / np.sqrt(dh)

    def per_head(w: np.ndarray, b: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
        """(slope, offset) of each head's projection of token i as a function of x_i: (h, 30, dh) each."""
        slope = np.einsum("fd,hed->hfe", w_tok, w.reshape(h, dh, d)) * factor
        offset = (np.einsum("fd,hed->hfe", b_tok, w.reshape(h, dh, d)) + b.reshape(h, 1, dh)) * factor
        return slope, offset

    a, c = per_head(wq, bq, scale)
    e, f = per_head(wk, bk, 1.0)
    w_read = f64(ae.readout.weight).reshape(d)
    u = (f64(mha.out_proj.weight).T @ w_read).reshape(h, dh)  # value dims -> read-out, per head
    g = np.einsum("hed,he->hd", wv.reshape(h, dh, d), u)  # (h, 16): a token's value path, per head
    beta = (bv.reshape(h, dh) * u).sum(axis=1)  # (h,)
    m = np.einsum("fd,hd->hf", w_tok, g)[..., None]  # (h, 30, 1)
    o = (np.einsum("fd,hd->hf", b_tok, g) + beta[:, None])[..., None]
    readout_bias = float(f64(mha.out_proj.bias) @ w_read + f64(ae.readout.bias)[0])
    f32 = np.float32
    return {
        "qv_slope": np.concatenate([a, m], axis=2).astype(f32),  # (h, 30, dh + 1): queries, then values
        "qv_offset": np.concatenate([c, o], axis=2).astype(f32),
        "kt_slope": e.transpose(0, 2, 1).astype(f32),  # (h, dh, 30): keys, transposed
        "kt_offset": f.transpose(0, 2, 1).astype(f32),
        "readout_bias": np.float64(readout_bias),
    }


def _scaler(g: _Graph, scaler, clip: float) -> str:
    g.op("Sub", ["features", g.const("scaler_mean", scaler.mean_.astype(np.float64))], "centred")
    g.op("Div", ["centred", g.const("scaler_scale", scaler.scale_.astype(np.float64))], "scaled64")
    g.op("Clip", ["scaled64", g.const("clip_low", np.float64(-clip)), g.const("clip_high", np.float64(clip))], "kept")
    return g.op("Cast", ["kept"], "x", to=TensorProto.FLOAT)[0]


def projection_constants(k: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """One (30, 1080) weight and bias that give every head's queries, values and transposed keys from x in one
    Gemm: each output column reads a single feature (x_i a + c), so the zeros elsewhere add nothing."""
    h, n_f, width = k["qv_slope"].shape
    dh = width - 1
    q_w = np.zeros((n_f, h, n_f, dh), np.float32)
    v_w = np.zeros((n_f, h, n_f), np.float32)
    k_w = np.zeros((n_f, h, dh, n_f), np.float32)
    for i in range(n_f):
        q_w[i, :, i, :] = k["qv_slope"][:, i, :dh]
        v_w[i, :, i] = k["qv_slope"][:, i, dh]
        k_w[i, :, :, i] = k["kt_slope"][:, :, i]
    weight = np.concatenate([q_w.reshape(n_f, -1), v_w.reshape(n_f, -1), k_w.reshape(n_f, -1)], axis=1)
    bias = np.concatenate([k["qv_offset"][..., :dh].ravel(), k["qv_offset"][..., dh].ravel(), k["kt_offset"].ravel()])
    return weight, bias.astype(np.float32), [h * n_f * dh, h * n_f, h * dh * n_f]


def _attention(g: _Graph, ae: AutoEncoder, x: str) -> tuple[str, str]:
    """(x + r, the per-feature attention) from the scaled readings x (n, 30) float32."""
    k = attention_constants(ae)
    n_f = ae.token_weight.shape[0]
    dh = TOKEN_DIM // N_HEADS
    weight, bias, widths = projection_constants(k)
    g.op("Gemm", [x, g.const("qvk_weight", weight), g.const("qvk_bias", bias)], "qvk")
    g.op("Split", ["qvk", g.const("qvk_split", np.array(widths, dtype=np.int64))], ["q2", "v2", "kt2"], axis=1)
    for name, shape in (("q", (N_HEADS, n_f, dh)), ("v", (N_HEADS, n_f, 1)), ("kt", (N_HEADS, dh, n_f))):
        g.op("Reshape", [f"{name}2", g.const(f"{name}_shape", np.array((-1, *shape), dtype=np.int64))], name)
    g.op("MatMul", ["q", "kt"], "scores")
    g.op("Softmax", ["scores"], "weights", axis=-1)
    g.op("ReduceMean", ["weights", g.const("heads_queries", np.array([1, 2], dtype=np.int64))], "attention", keepdims=0)
    g.op("MatMul", ["weights", "v"], "read")
    g.op("ReduceSum", ["read", g.const("heads_keys", np.array([1, 3], dtype=np.int64))], "r", keepdims=0)
    return g.op("Add", [x, "r"], "residual")[0], k["readout_bias"]


def _mlp(g: _Graph, ae: AutoEncoder, h: str, readout_bias: float) -> str:
    """SwiGLU layers as Gemm -> Split -> a * gate / (1 + exp(-a)); the read-out bias folded into the first bias.

    Why not Sigmoid: onnxruntime's float32 Sigmoid is a fast approximation whose small errors share a sign, so the
    next Gemm adds them up: on a drifted month of readings the latent error reached 15x the original's (9.1e-6
    against 6.0e-7). Exp is accurate to an ulp or so, and this form keeps the graph as accurate as the original
    (1.0x at every quantile). Each SwiGLU layer's weights are negated at export (exact in float32), so the Gemm
    gives -a and -gate: exp(-a) needs no Neg node, and (-a) * (-gate) = a * gate.
    """
    one = g.const("one", np.float32(1.0))
    for i, layer in enumerate(ae.encoder):
        swiglu = isinstance(layer, SwiGLU)
        w = layer.proj.weight if swiglu else layer.weight
        b = (layer.proj.bias if swiglu else layer.bias).detach().double().numpy()
        w64 = w.detach().double().numpy()
        if i == 0:
            b = b + readout_bias * w64.sum(axis=1)  # r arrives without the read-out's constant term
        sign = -1.0 if swiglu else 1.0
        weight = g.const(f"w{i}", (sign * w64).astype(np.float32))
        bias = g.const(f"b{i}", (sign * b).astype(np.float32))
        out = "latent" if i == len(ae.encoder) - 1 else f"z{i}"
        g.op("Gemm", [h, weight, bias], out, transB=1)
        if not swiglu:
            return out
        half = np.array([layer.d_out, layer.d_out], dtype=np.int64)
        g.op("Split", [out, g.const(f"halves{i}", half)], [f"neg_a{i}", f"neg_gate{i}"], axis=1)
        g.op("Exp", [f"neg_a{i}"], f"exp{i}")
        g.op("Add", [f"exp{i}", one], f"denominator{i}")
        g.op("Mul", [f"neg_a{i}", f"neg_gate{i}"], f"product{i}")
        h = g.op("Div", [f"product{i}", f"denominator{i}"], f"h{i}")[0]
    raise ValueError("the encoder must end with a Linear layer")


def _trees(g: _Graph, gb_onnx: onnx.ModelProto, x: str, threshold: float) -> None:
    """The trees on (x, latent): their raw score -> Sigmoid = P(defect) (a forest's summed class shares are the
    probability already); the label at the model's threshold."""
    attributes, link = trees.regressor_attributes(gb_onnx)
    g.op("Concat", [x, "latent"], "gb_input", axis=1)
    g.op("TreeEnsembleRegressor", ["gb_input"], "score", domain="ai.onnx.ml", **attributes)
    p_column = g.op("Sigmoid", ["score"], "p_column")[0] if link == trees.LOGISTIC else "score"
    g.op("Reshape", [p_column, g.const("flat", np.array([-1], dtype=np.int64))], "probability")
    g.op("GreaterOrEqual", ["probability", g.const("threshold", np.array(threshold, dtype=np.float32))], "is_defect")
    g.op("Cast", ["is_defect"], "label", to=TensorProto.INT64)


def build(
    scaler,
    ae: AutoEncoder,
    gb_onnx: onnx.ModelProto,
    threshold: float,
    clip: float,
    classifier: str = "GradientBoostingClassifier",
) -> onnx.ModelProto:
    """The fused graph: ``features`` (n, 30) float64 -> ``runtime.artifacts.OUTPUTS``; ``clip`` bounds the scaled
    readings (the envelope's largest extent, in standard deviations); ``classifier`` names the trees' model in the
    graph's doc string."""
    g = _Graph()
    x = _scaler(g, scaler, clip)
    h, readout_bias = _attention(g, ae, x)
    _mlp(g, ae, h, readout_bias)
    _trees(g, gb_onnx, x, threshold)
    n_f, n_latent = ae.token_weight.shape[0], ae.encoder[-1].out_features
    shapes = artifacts.shapes(n_f, n_latent)

    def info(spec: artifacts.TensorSpec) -> onnx.ValueInfoProto:
        dtype = helper.np_dtype_to_tensor_dtype(np.dtype(spec.dtype))
        return helper.make_tensor_value_info(spec.name, dtype, shapes[spec.name])

    graph = helper.make_graph(
        g.nodes, "diecast_defect", [info(artifacts.INPUT)], [info(o) for o in artifacts.OUTPUTS], g.inits
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        producer_name=PRODUCER,
        doc_string=f"StandardScaler -> AutoEncoder encoder -> {classifier}, one graph",
    )
    model.ir_version = IR_VERSION
    return model
