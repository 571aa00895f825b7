"""What each model kind costs at serving, side by side: graph size, cold start and warm latency of certified model
folders, through the same handler T1 runs (``python benchmarks/kinds.py FOLDER ...``, a JSON line per folder).

- graph: ``model.onnx``'s bytes and nodes, and the trees' node count;
- cold start: a fresh process (runtime only) that builds the application and answers one event, median of 5;
- warm: one event through ``App.handle`` (p50, p99 of 2,000), and ``Model.predict`` on 100 rows (p50 of 200).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402  (after the thread variables, which numpy reads at import)

REPO_ROOT = Path(__file__).resolve().parent.parent
EVENT = REPO_ROOT / "tests" / "events" / "direct_named.json"
COLD = (
    "import json, sys, time; t = time.perf_counter(); from serving.app import App; from serving.settings import "
    "Settings; App(Settings(model_path=sys.argv[1])).handle(json.load(open(sys.argv[2]))); "
    "print(time.perf_counter() - t)"
)


def _quiet_handle(app, event: dict) -> dict:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # the handler's log line
        return app.handle(event)


def measure(folder: Path) -> dict:
    import onnx

    import runtime
    from serving.app import App
    from serving.settings import Settings

    graph = onnx.load(folder / "model.onnx")
    trees = next(n for n in graph.graph.node if n.op_type == "TreeEnsembleRegressor")
    tree_nodes = len(next(a for a in trees.attribute if a.name == "nodes_modes").strings)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    cold = [
        float(
            subprocess.run(
                [sys.executable, "-c", COLD, str(folder), str(EVENT)],
                capture_output=True,
                text=True,
                check=True,
                env=env,
                cwd=REPO_ROOT,
            ).stdout.splitlines()[-1]  # after the handler's log line
        )
        for _ in range(5)
    ]
    app, event = App(Settings(model_path=str(folder))), json.loads(EVENT.read_text())
    for _ in range(200):
        _quiet_handle(app, event)
    one = []
    for _ in range(2000):
        t = time.perf_counter()
        _quiet_handle(app, event)
        one.append(time.perf_counter() - t)
    model = runtime.load(folder)
    X = np.tile(np.array([list(event["features"].values())], dtype=np.float64), (100, 1))
    batch = []
    for _ in range(200):
        t = time.perf_counter()
        model.predict(X)
        batch.append(time.perf_counter() - t)
    manifest = json.loads((folder / "manifest.json").read_text())
    return {
        "model_version": manifest["model_version"],
        "model_onnx_bytes": (folder / "model.onnx").stat().st_size,
        "graph_nodes": len(graph.graph.node),
        "tree_nodes": tree_nodes,
        "cold_start_ms": round(float(np.median(cold)) * 1e3, 1),
        "handler_p50_us": round(float(np.percentile(one, 50)) * 1e6, 1),
        "handler_p99_us": round(float(np.percentile(one, 99)) * 1e6, 1),
        "predict_100_rows_p50_us": round(float(np.percentile(batch, 50)) * 1e6, 1),
    }


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(REPO_ROOT))
    for folder in argv:
        print(json.dumps(measure(Path(folder))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
