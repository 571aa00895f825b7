"""Score a CSV or Parquet file of readings with a certified model: ``score_file(input, output, ...)``.

Re-scoring history after a retrain, or backfilling predictions for the monitor. The output (CSV or Parquet, by
its extension) holds the input's rows in order, its non-feature columns, then ``probability`` (float32),
``label`` (int64), ``confidence`` (the handler's band) and ``model_version`` (the manifest's, as the handler
answers it), the same numbers as ``runtime.load(model).predict``
bit for bit whatever the engine and chunking. Rows with a missing, non-numeric, non-finite or out-of-envelope
reading go to ``<output stem>.rejects.csv`` with their 1-based row number and the reason. Both files are written
under a temporary name and renamed into place: nothing half-written is ever visible.

The engine (``batch.engines.ENGINES``: "local" worker processes or "ray") reads and scores; this module checks
the paths and columns and writes what the engine streams. The command line is ``diecast score``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from batch import io
from batch.engines import engine as get_engine
from batch.job import DEFAULT_CHUNK_ROWS, LISTED_REJECTS, BatchInputError, Job, Summary, default_workers
from runtime.manifest import Manifest

if TYPE_CHECKING:
    import pyarrow as pa

PathLike = str | os.PathLike[str]


def score_file(
    input_path: PathLike,
    output_path: PathLike,
    *,
    model_dir: PathLike,
    engine: str = "local",
    workers: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    prefix: str = "",
    progress: bool = True,
    ray_address: str | None = None,
    force: bool = False,
) -> Summary:
    """Score ``input_path`` into ``output_path`` (see ``batch.job.Job`` for each argument; ``workers`` None: every
    core). Raises ``BatchInputError`` (bad paths, columns or input; nothing written) or ``ModelArtifactError``."""
    job = Job(
        input=os.fspath(input_path),
        output=os.fspath(output_path),
        model_dir=os.fspath(model_dir),
        engine=engine,
        workers=default_workers() if workers is None else workers,
        chunk_rows=chunk_rows,
        prefix=prefix,
        progress=progress,
        ray_address=ray_address,
        force=force,
    )
    return score(job)


def score(job: Job) -> Summary:
    """Run ``job``: check its paths, read the model's features, and write what its engine scores."""
    scorer = get_engine(job.engine)
    check_paths(job, scorer.local_input)
    features = Manifest.read(job.model_dir).feature_names
    stream = scorer.open(job, features)
    keep = io.check_columns(job.input, stream.schema.names, features, job.prefix)
    os.makedirs(os.path.dirname(os.path.abspath(job.output)), exist_ok=True)  # every check passed: OUTPUT's folder
    with _progress(stream.total, job.progress) as bar:
        return write_scored(stream.chunks, job.output, stream.schema, keep, job.prefix, bar)


def check_paths(job: Job, local_input: bool) -> None:
    """``BatchInputError`` naming the fix for an input or output that cannot be used (checked before any work)."""
    io.table_format(job.input)
    io.table_format(job.output)
    if local_input and not os.path.isfile(job.input):
        raise BatchInputError(f"{job.input}: no such file")
    if os.path.abspath(job.input) == os.path.abspath(job.output):
        raise BatchInputError("OUTPUT is the INPUT file; write the scores to another file")
    if os.path.exists(job.output) and not job.force:
        raise BatchInputError(f"{job.output} already exists; pass --force to replace it")
    folder = os.path.dirname(os.path.abspath(job.output))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise BatchInputError(f"{os.path.dirname(job.output)}: not a folder, so OUTPUT cannot be written there")


def write_scored(
    scored: Iterator[pa.Table], output: str, schema: pa.Schema, keep: Sequence[str], prefix: str, progress: Any
) -> Summary:
    """Split each scored chunk into output and rejects and write both atomically; a previous run's rejects file
    is removed when this run rejects nothing."""
    out = io.AtomicTableWriter(output, io.output_schema(schema, keep, prefix))
    rejects_file = io.rejects_path(output)
    rej = io.AtomicTableWriter(rejects_file, io.rejects_schema(schema))
    first_row, summary = 1, Summary()
    try:
        for table in scored:
            good, bad = io.split_scored(table, first_row, keep, prefix)
            out.write(good)
            rej.write(bad)
            room = LISTED_REJECTS - len(summary.first_rejected)
            summary.first_rejected += bad.column(io.ROW).to_pylist()[:room] if room > 0 else []
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
    tqdm = io.require("tqdm")
    return tqdm.tqdm(total=total, unit="rows", unit_scale=True, disable=not enabled, file=sys.stderr)
