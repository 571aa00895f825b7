"""What each model kind costs at serving, side by side: graph size, cold start and warm latency of certified model
folders, through the same handler T1 runs (``python benchmarks/kinds.py FOLDER ...``, a JSON line per folder).

- graph: ``model.onnx``'s bytes and nodes, and the trees' node count;
- cold start: a fresh process (runtime only) that builds the application and answers one event, median of
  ``COLD_STARTS``;
- warm: one event through ``App.handle`` (p50, p99 of 2,000), and ``Model.predict`` on 100 rows (p50 of 200).

The folders take turns, round by round, so that a shared machine's load falls on every folder alike; each figure
also comes as a ratio to the first folder's (``*_vs_first``), which is what a noisy machine can still compare.
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


def graph_figures(folder: Path) -> dict:
    import onnx

    graph = onnx.load(folder / "model.onnx")
    trees = next(n for n in graph.graph.node if n.op_type == "TreeEnsembleRegressor")
    manifest = json.loads((folder / "manifest.json").read_text())
    return {
        "model_version": manifest["model_version"],
        "model_onnx_bytes": (folder / "model.onnx").stat().st_size,
        "graph_nodes": len(graph.graph.node),
        "tree_nodes": len(next(a for a in trees.attribute if a.name == "nodes_modes").strings),
    }


def cold_start(folder: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", COLD, str(folder), str(EVENT)], capture_output=True, text=True, check=True, env=env
    )
    return float(done.stdout.splitlines()[-1])  # after the handler's log line


def _timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


COLD_STARTS = 7  # fresh processes per folder, in the first rounds


def measure(folders: list[Path], rounds: int = 10) -> list[dict]:
    """Every figure for every folder, the folders taking turns each round."""
    import runtime
    from serving.app import App
    from serving.settings import Settings

    event = json.loads(EVENT.read_text())
    X = np.tile(np.array([list(event["features"].values())], dtype=np.float64), (100, 1))
    apps = [App(Settings(model_path=str(f))) for f in folders]
    models = [runtime.load(f) for f in folders]
    cold: list[list[float]] = [[] for _ in folders]
    one: list[list[float]] = [[] for _ in folders]
    batch: list[list[float]] = [[] for _ in folders]
    for app in apps:
        _timed(lambda app=app: _quiet_handle(app, event), 200)  # warm-up
    for r in range(rounds):
        for i, folder in enumerate(folders):
            if r < COLD_STARTS:
                cold[i].append(cold_start(folder))
            one[i] += _timed(lambda i=i: _quiet_handle(apps[i], event), 2000 // rounds)
            batch[i] += _timed(lambda i=i: models[i].predict(X), 200 // rounds)
    rows = []
    for i, folder in enumerate(folders):
        rows.append(
            graph_figures(folder)
            | {
                "cold_start_ms": round(float(np.median(cold[i])) * 1e3, 1),
                "handler_p50_us": round(float(np.percentile(one[i], 50)) * 1e6, 1),
                "handler_p99_us": round(float(np.percentile(one[i], 99)) * 1e6, 1),
                "predict_100_rows_p50_us": round(float(np.percentile(batch[i], 50)) * 1e6, 1),
            }
        )
    for row in rows:
        for key in ("cold_start_ms", "handler_p50_us", "predict_100_rows_p50_us"):
            row[f"{key}_vs_first"] = round(row[key] / rows[0][key], 2)
    return rows


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(REPO_ROOT))
    for row in measure([Path(f) for f in argv]):
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
