"""Batch-scoring throughput (``make bench-score``, ``python -m benchmarks.score_throughput``): rows/s of
``batch.score.score_file`` at 1 and 2 worker processes and on local Ray, CSV and Parquet, end to end (read, parse,
score, write). A benchmark, not a gate: this machine is shared, so it reports medians of interleaved repeats and
the ratio within one run.

Before timing it checks that the scored output equals ``runtime.load(...).predict`` bit for bit. Threads are
pinned: each worker or actor runs one single-threaded onnxruntime session; OpenMP/OpenBLAS are pinned to 1.
Writes ``build/bench/score.json``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import runtime  # noqa: E402
from batch.job import DEFAULT_CHUNK_ROWS  # noqa: E402
from batch.score import score_file  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent

MODEL = REPO_ROOT / "models_onnx" / "v1.0"
DATA_CSV = REPO_ROOT / "data" / "die_casting.csv"
WORK = REPO_ROOT / "build" / "bench-score"
RESULT = REPO_ROOT / "build" / "bench" / "score.json"


def make_inputs(copies: int) -> dict[str, Path]:
    """The embedded data repeated ``copies`` times, as CSV and Parquet."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    WORK.mkdir(parents=True, exist_ok=True)
    table = pa.concat_tables([pacsv.read_csv(DATA_CSV)] * copies)
    paths = {"csv": WORK / "input.csv", "parquet": WORK / "input.parquet"}
    pacsv.write_csv(table, paths["csv"])
    pq.write_table(table, paths["parquet"])
    return paths


def check_correct(source: Path) -> None:
    """The scorer's output equals predict() bit for bit (2 workers, an odd chunk size)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out = WORK / "check.parquet"
    summary = score_file(source, out, model_dir=MODEL, workers=2, chunk_rows=997, progress=False, force=True)
    assert summary.rejected == 0, f"{summary.rejected} rows rejected"
    table = pacsv.read_csv(source)
    X = np.column_stack([table[name].to_numpy() for name in runtime.load(MODEL).feature_names])
    want = runtime.load(MODEL).predict(X)["probability"]
    got = pq.read_table(out)["probability"].to_numpy()
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), "scorer output differs from predict()"


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped children (worker processes; not Ray's actors)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def time_run(source: Path, fmt: str, workers: int, engine: str, chunk: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one scoring run."""
    out = WORK / f"out.{fmt}"
    t0, c0 = time.perf_counter(), _cpu_seconds()
    summary = score_file(
        source, out, model_dir=MODEL, engine=engine, workers=workers, chunk_rows=chunk, progress=False, force=True
    )
    elapsed, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    assert summary.rejected == 0, f"{summary.rejected} rows rejected"
    return elapsed, cpu


def bare_predict_rate(source: Path, chunk: int) -> float:
    """Rows/s of predict() alone in this process (no I/O): the per-core ceiling."""
    import pyarrow.parquet as pq

    model = runtime.load(MODEL)
    table = pq.read_table(source)
    X = np.column_stack([table[n].to_numpy() for n in model.feature_names])
    t0 = time.perf_counter()
    for i in range(0, len(X), chunk):
        model.predict(X[i : i + chunk])
    return len(X) / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description="Batch-scoring throughput at 1 and 2 workers and on local Ray.")
    parser.add_argument("--copies", type=int, default=40, help="copies of the 7,535-row dataset (default: 40)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per setting (default: 3)")
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray engine")
    args = parser.parse_args()
    paths = make_inputs(args.copies)
    rows = 7535 * args.copies
    check_correct(paths["csv"])
    settings = [(fmt, w, "local") for fmt in ("parquet", "csv") for w in (1, 2)]
    if not args.no_ray:
        import ray

        ray.init(
            num_cpus=2,
            include_dashboard=False,
            logging_level="WARNING",
            runtime_env={"py_modules": [str(REPO_ROOT / "batch"), str(REPO_ROOT / "runtime")]},
        )
        time_run(paths["parquet"], "parquet", 2, "ray", args.chunk_rows)  # Ray's first job start-up, not measured
        settings += [("parquet", 2, "ray"), ("csv", 2, "ray")]
    times: dict[tuple, list[float]] = {s: [] for s in settings}
    cpus: dict[tuple, list[float]] = {s: [] for s in settings}
    load_before = os.getloadavg()[0]
    for r in range(args.repeats):  # interleaved, the order reversed every other repeat: drift hits all alike
        for s in settings if r % 2 == 0 else settings[::-1]:
            wall, cpu = time_run(paths[s[0]], s[0], s[1], s[2], args.chunk_rows)
            times[s].append(wall)
            cpus[s].append(cpu)
    bare = statistics.median(bare_predict_rate(paths["parquet"], args.chunk_rows) for _ in range(args.repeats))
    load = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    report = {
        "rows": rows,
        "chunk_rows": args.chunk_rows,
        "cores": os.cpu_count(),
        "bare_predict_rows_s": bare,
        "load_average_before_after": load,
        "runs": [],
    }
    base = {fmt: rows / statistics.median(times[(fmt, 1, "local")]) for fmt in ("parquet", "csv")}
    print(
        f"{rows:,} rows, chunks of {args.chunk_rows}, {os.cpu_count()} cores, 1-min load average {load[0]} -> "
        f"{load[1]}; bare predict() {bare:,.0f} rows/s"
    )
    print(
        f"{'input':8} {'engine':6} {'workers':>7} {'rows/s':>9} {'per core':>9} {'vs 1 worker':>11} "
        f"{'rows/CPU-s':>10}  seconds"
    )
    for (fmt, workers, engine), t in times.items():
        rate = rows / statistics.median(t)
        per_cpu = rows / statistics.median(cpus[fmt, workers, engine]) if engine == "local" else float("nan")
        entry = {
            "format": fmt,
            "engine": engine,
            "workers": workers,
            "rows_s": rate,
            "rows_s_per_core": rate / workers,
            "speedup": rate / base[fmt],
            "rows_per_cpu_s": per_cpu,
            "seconds": t,
        }
        report["runs"].append(entry)
        spread = f"{min(t):.2f}-{max(t):.2f}"
        speedup = rate / base[fmt]
        print(
            f"{fmt:8} {engine:6} {workers:>7} {rate:>9,.0f} {rate / workers:>9,.0f} {speedup:>10.2f}x "
            f"{per_cpu:>10,.0f}  {spread}"
        )
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
