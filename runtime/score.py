"""``python -m runtime.score INPUT OUTPUT``: score a CSV or Parquet file of readings with a certified model.

Re-scoring history after a retrain, or backfilling predictions for the monitor. The output (CSV or Parquet, by
its extension) holds the input's rows in order, its non-feature columns, then ``probability`` (float32),
``label`` (int64) and ``confidence`` (the handler's band, ``runtime.confidence``), the same numbers as
``runtime.load(model).predict`` bit for bit whatever the chunking. Rows with a missing, non-numeric or
non-finite reading go to ``<output>.rejects.csv`` with their 1-based row number and the reason.

Engines: ``local`` (default) reads in the main process and scores chunks in ``--workers`` processes, one
single-threaded onnxruntime session each; ``ray`` runs the same scoring step as Ray Data actors
(``runtime.score_ray``). Batch-only: not imported by ``runtime/__init__``, not in the serving image; pyarrow,
tqdm and ray are imported lazily (``requirements-batch.txt``).

Exit codes: 0 every row scored; 3 output written, some rows rejected (listed in the rejects file); 2 bad
arguments or input (nothing written); 1 unexpected error.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import runtime
from runtime import score_io
from runtime.artifacts import read_manifest
from runtime.confidence import confidence_rule
from runtime.exceptions import BatchInputError, ModelArtifactError

if TYPE_CHECKING:
    import pyarrow as pa

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REJECTS = 0, 1, 2, 3
LISTED_REJECTS = 10  # rejected row numbers printed on stderr; the rejects file has them all
DEFAULT_MODEL = os.path.join("models_onnx", "v1.0")
DEFAULT_CHUNK_ROWS = 4096  # large enough that per-chunk overhead is <2 % of inference, small enough to stream
IN_FLIGHT_PER_WORKER = 2  # chunks queued per worker: keeps each busy without reading the whole file ahead
SINGLE_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclasses.dataclass
class Summary:
    scored: int = 0
    rejected: int = 0
    first_rejected: list[int] = dataclasses.field(default_factory=list)  # 1-based row numbers, up to LISTED_REJECTS


_worker: dict[str, Any] = {}  # per worker process: its model and band rule, built once by _init_worker


def _init_worker(model_dir: str, prefix: str) -> None:
    try:
        model = runtime.load(model_dir)  # one single-threaded session per process (runtime.load's defaults)
    except ModelArtifactError as exc:
        # Raised here, a pool would replace the dead worker for ever; raised from the first task, it reaches main.
        _worker["error"] = exc
        return
    _worker.update(model=model, band=confidence_rule(model.manifest), prefix=prefix)


def _scores_in_worker(features: pa.Table) -> pa.Table:
    if "error" in _worker:
        raise _worker["error"]
    return score_io.score_columns(_worker["model"], _worker["band"], features, _worker["prefix"])


def score_local(chunks: Iterator[pa.Table], model_dir: str, workers: int, prefix: str) -> Iterator[pa.Table]:
    """Scored chunks in input order. One worker scores in this process; more use a process pool that gets only
    each chunk's feature columns and sends back only the scores (this process keeps the rest), with a bounded
    number of chunks in flight, so memory stays flat whatever the file size."""
    if workers == 1:
        _init_worker(model_dir, prefix)
        if "error" in _worker:
            raise _worker["error"]
        for chunk in chunks:
            yield score_io.with_scores(chunk, _scores_in_worker(chunk))
        return
    import multiprocessing

    for var in SINGLE_THREAD_ENV:  # inherited by the workers: no idle BLAS/OpenMP threads on shared cores
        os.environ.setdefault(var, "1")
    features = [f["name"] for f in read_manifest(model_dir)["features"]]
    # spawn, not fork: the parent holds pyarrow's reader threads, which a forked child must not inherit.
    with multiprocessing.get_context("spawn").Pool(workers, _init_worker, (model_dir, prefix)) as pool:
        pending: collections.deque = collections.deque()
        for chunk in chunks:
            job = pool.apply_async(_scores_in_worker, (score_io.compact(chunk, features),))
            pending.append((chunk, job))
            if len(pending) >= workers * IN_FLIGHT_PER_WORKER:
                done, job = pending.popleft()
                yield score_io.with_scores(done, job.get())
        while pending:
            done, job = pending.popleft()
            yield score_io.with_scores(done, job.get())


def write_scored(
    scored: Iterator[pa.Table], output: str, schema: pa.Schema, keep: list[str], prefix: str, progress: Any
) -> Summary:
    """Split each scored chunk into output and rejects and write both atomically."""
    out = score_io.AtomicTableWriter(output, score_io.output_schema(schema, keep, prefix))
    rejects_file = score_io.rejects_path(output)
    rej = score_io.AtomicTableWriter(rejects_file, score_io.rejects_schema(schema))
    first_row, summary = 1, Summary()
    try:
        for table in scored:
            good, bad = score_io.split_scored(table, first_row, keep, prefix)
            out.write(good)
            rej.write(bad)
            room = LISTED_REJECTS - len(summary.first_rejected)
            summary.first_rejected += bad.column(score_io.ROW).to_pylist()[:room] if room > 0 else []
            first_row += table.num_rows
            progress.update(table.num_rows)
    except BaseException:
        out.abort()
        rej.abort()
        raise
    out.commit()
    if rej.rows:
        rej.commit()
    else:
        rej.abort()
        if os.path.exists(rejects_file):  # a previous run's rejects would contradict this output
            os.unlink(rejects_file)
    summary.scored, summary.rejected = out.rows, rej.rows
    return summary


def _progress(total: int | None, enabled: bool) -> Any:
    tqdm = score_io.require("tqdm")
    return tqdm.tqdm(total=total, unit="rows", unit_scale=True, disable=None if enabled else True, file=sys.stderr)


def run(args: argparse.Namespace) -> Summary:
    """Score ``args.input`` into ``args.output``."""
    _check_paths(args)
    manifest = read_manifest(args.model)
    features = [f["name"] for f in manifest["features"]]
    if args.engine == "ray":
        from runtime import score_ray

        return score_ray.run(args, features, _progress)
    schema, chunks, total = score_io.read_chunks(args.input, args.chunk_rows)
    keep = score_io.check_columns(args.input, schema.names, features, args.prefix)
    with _progress(total, args.progress) as bar:
        scored = score_local(chunks, args.model, args.workers, args.prefix)
        return write_scored(scored, args.output, schema, keep, args.prefix, bar)


def _check_paths(args: argparse.Namespace) -> None:
    score_io.table_format(args.input)
    score_io.table_format(args.output)
    if not os.path.isfile(args.input) and args.engine == "local":
        raise BatchInputError(f"{args.input}: no such file")
    if os.path.abspath(args.input) == os.path.abspath(args.output):
        raise BatchInputError("OUTPUT is the INPUT file; write the scores to another file")
    if os.path.exists(args.output) and not args.force:
        raise BatchInputError(f"{args.output} already exists; pass --force to replace it")
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.output))):
        raise BatchInputError(f"{os.path.dirname(args.output)}: no such folder for OUTPUT")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m runtime.score",
        description="Score a CSV or Parquet file of die-casting readings with a certified ONNX model. "
        "Writes the input's non-feature columns plus probability, label and confidence, in input order; rows "
        "with missing or non-numeric readings go to <OUTPUT stem>.rejects.csv.",
        epilog="Exit codes: 0 all rows scored, 3 some rows rejected (see the rejects file), 2 bad arguments or "
        "input (nothing written), 1 unexpected error.",
    )
    p.add_argument("input", help="readings: .csv or .parquet with the model's 30 feature columns (any order)")
    p.add_argument("output", help="scores: .csv or .parquet (written to a temp file, then renamed into place)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="certified model folder (default: %(default)s)")
    p.add_argument(
        "--workers",
        type=_positive,
        default=os.cpu_count() or 1,
        help="scoring processes or Ray actors, one "
        "single-threaded session each (default: every core, %(default)s here)",
    )
    p.add_argument(
        "--chunk-rows", type=_positive, default=DEFAULT_CHUNK_ROWS, help="rows per chunk (default: %(default)s)"
    )
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="local processes or Ray Data")
    p.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster to join (e.g. auto); implies --engine ray (default: a "
        "local Ray instance with --workers CPUs)",
    )
    p.add_argument("--prefix", default="", help="prefix for the score columns, e.g. new_ (default: none)")
    p.add_argument("--force", action="store_true", help="replace an existing OUTPUT")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.ray_address:
        args.engine = "ray"
    try:
        summary = run(args)
    except (BatchInputError, ModelArtifactError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {args.output}: {summary.scored} rows scored", file=sys.stderr)
    if summary.rejected:
        rows = ", ".join(map(str, summary.first_rejected))
        more = " ..." if summary.rejected > len(summary.first_rejected) else ""
        print(
            f"{summary.rejected} row(s) rejected for missing, non-numeric or non-finite readings (data rows "
            f"{rows}{more}); reasons in {score_io.rejects_path(args.output)}",
            file=sys.stderr,
        )
        return EXIT_REJECTS
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
