"""Where the serving time goes, measured in the bench's own run, and what bounds each target (benchmarks/targets.py).

- The graph cut after each stage (onnx's Extractor on the shipped ``model.onnx``), each cut timed with
  ``session.run`` at batch 1 and per row at batch 1000: a stage's cost is its cut's time less the previous cut's.
- ``session.run``'s fixed cost: a one-node (Identity) graph with the same input.
- A cold start's imports: ``import numpy`` and ``import numpy, onnxruntime`` in fresh interpreters, less an empty one.

``bound_lines`` turns these and the bench's results into one line per target not met: what it needs, what the
profile says stands in the way, and the best ratio left if everything else cost nothing.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, utils

from runtime.model import session_options

# (stage, the outputs its cut ends at); each cut holds every stage before it. None: the whole graph.
STAGES: tuple[tuple[str, list[str] | None], ...] = (
    ("scaler (float64) + Clip + Cast", ["x"]),
    ("Q/V/K projection Gemm + Q @ K^T", ["scores"]),
    ("Softmax over 4 x 30 x 30", ["weights"]),
    ("attention mean + value read-out", ["residual", "attention"]),
    ("SwiGLU MLP 30 -> 12", ["latent", "attention"]),
    ("Concat + 200 trees + Sigmoid + label", None),
)
ROUNDS_B1 = 2000
ROUNDS_B1000 = 20
IMPORT_RUNS = 5


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), session_options(), providers=["CPUExecutionProvider"])


def _median_run(sess: ort.InferenceSession, X: np.ndarray, rounds: int) -> float:
    feed = {"features": X}
    for _ in range(max(20, rounds // 10)):
        sess.run(None, feed)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _identity(width: int) -> onnx.ModelProto:
    spec = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Identity", ["features"], ["y"])],
        "floor",
        [spec("features", onnx.TensorProto.DOUBLE, [None, width])],
        [spec("y", onnx.TensorProto.DOUBLE, [None, width])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model


def cuts(model_path: Path) -> list[tuple[str, onnx.ModelProto]]:
    """(stage, the graph from ``features`` to the end of that stage) for every stage, the whole graph last."""
    full = onnx.shape_inference.infer_shapes(onnx.load(model_path))
    extractor = utils.Extractor(full)
    return [(name, full if outs is None else extractor.extract_model(["features"], outs)) for name, outs in STAGES]


def graph_stages(stage_cuts: list[tuple[str, onnx.ModelProto]], rows: np.ndarray) -> dict:
    """The session.run floor and each stage's cost at batch 1 (seconds) and at batch 1000 (seconds per row), from
    ``cuts``' graphs."""
    one, many = np.ascontiguousarray(rows[:1]), np.ascontiguousarray(rows[:1000])
    floor = _median_run(session(_identity(rows.shape[1])), one, ROUNDS_B1)
    stages, before_1, before_row = [], floor, 0.0
    for name, model in stage_cuts:
        cut = session(model)
        at_1 = _median_run(cut, one, ROUNDS_B1)
        per_row = _median_run(cut, many, ROUNDS_B1000) / len(many)
        stages.append({"stage": name, "batch_1_s": at_1 - before_1, "batch_1000_s_per_row": per_row - before_row})
        before_1, before_row = at_1, per_row
    return {"floor_s": floor, "graph_batch_1_s": before_1, "graph_batch_1000_s_per_row": before_row, "stages": stages}


def _fresh(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def import_times() -> dict[str, float]:
    """Median seconds a fresh interpreter takes to start, and what importing numpy (and onnxruntime) adds."""
    codes = {"python": "pass", "numpy": "import numpy", "numpy_onnxruntime": "import numpy, onnxruntime"}
    medians = {k: statistics.median(_fresh(c) for _ in range(IMPORT_RUNS)) for k, c in codes.items()}
    return {k: v if k == "python" else max(0.0, v - medians["python"]) for k, v in medians.items()}


def table(profile: dict) -> list[str]:
    lines = [f"  {'stage':<40} {'batch 1':>9} {'batch 1000, per row':>20}"]
    lines.append(f"  {'session.run fixed cost (1 Identity node)':<40} {profile['floor_s'] * 1e6:7.1f} us {'':>20}")
    for s in profile["stages"]:
        lines.append(f"  {s['stage']:<40} {s['batch_1_s'] * 1e6:7.1f} us {s['batch_1000_s_per_row'] * 1e6:15.2f} us")
    lines.append(
        f"  {'the whole graph':<40} {profile['graph_batch_1_s'] * 1e6:7.1f} us "
        f"{profile['graph_batch_1000_s_per_row'] * 1e6:15.2f} us"
    )
    imports = profile["imports"]
    lines.append(
        f"  cold start: an empty interpreter {imports['python'] * 1e3:.0f} ms; importing numpy adds "
        f"{imports['numpy'] * 1e3:.0f} ms, numpy + onnxruntime {imports['numpy_onnxruntime'] * 1e3:.0f} ms"
    )
    return lines


def _stage(profile: dict, prefix: str) -> dict:
    return next(s for s in profile["stages"] if s["stage"].startswith(prefix))


def bound_lines(results: dict, profile: dict, targets: dict[str, float]) -> list[str]:
    """One line per target not met: the budget, the profile's part that exceeds it, the best ratio left."""
    r, lines = results, []
    ref_predict, graph_1 = r["reference_predict"], profile["graph_batch_1_s"]
    budget = ref_predict / targets["handler"]
    if r["onnx_handler"] > budget:
        rest = r["onnx_handler"] - graph_1
        room = (
            f"leaving {(budget - graph_1) * 1e6:.0f} us"
            if budget > graph_1
            else "more than the budget alone, leaving 0 us"
        )
        lines.append(
            f"  handler: {targets['handler']:g}x needs <= {budget * 1e6:.0f} us; session.run of the graph takes "
            f"{graph_1 * 1e6:.0f} us, {room} for the handler's Python around it (JSON in and out, validation, the "
            f"log line), which takes {rest * 1e6:.0f} us"
        )
    budget = ref_predict / targets["predict"]
    if r["onnx_predict"] > budget:
        fixed = profile["floor_s"]
        lines.append(
            f"  predict(): {targets['predict']:g}x needs <= {budget * 1e6:.0f} us; session.run takes "
            f"{graph_1 * 1e6:.0f} us ({fixed * 1e6:.0f} us fixed + {(graph_1 - fixed) * 1e6:.0f} us over the graph's "
            f"nodes): at most {ref_predict / graph_1:.1f}x with no Python at all"
        )
    ref_row = 1.0 / r["reference_rows_per_s_1000"]
    budget = ref_row / targets["batch"]
    if 1.0 / r["onnx_rows_per_s_1000"] > budget:
        floor = sum(_stage(profile, p)["batch_1000_s_per_row"] for p in ("Softmax", "Concat"))
        lines.append(
            f"  batch 1000: {targets['batch']:g}x needs <= {budget * 1e6:.1f} us/row; the Softmax and the trees "
            f"alone take {floor * 1e6:.1f} us/row: at most {ref_row / floor:.1f}x if all else cost nothing"
        )
    budget = r["reference_cold_start"] / targets["cold"]
    if r["onnx_cold_start"] > budget:
        imports = profile["imports"]
        floor = imports["python"] + imports["numpy_onnxruntime"]
        lines.append(
            f"  cold start: {targets['cold']:g}x needs <= {budget * 1e3:.0f} ms; starting Python and importing numpy "
            f"+ onnxruntime take {floor * 1e3:.0f} ms: at most {r['reference_cold_start'] / floor:.1f}x if the "
            "handler, the model's load and the first answer cost nothing"
        )
    return lines
