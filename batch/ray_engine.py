"""The Ray engine: Ray Data reads the input and scores it in actors, on a private local instance or a cluster.

``ray.data.read_csv`` / ``read_parquet`` -> ``map_batches(Scorer, compute=ActorPoolStrategy(size=workers))``:
each actor builds its ``Predictor`` (one single-threaded onnxruntime session) once, in ``__init__`` (an
``InferenceSession`` cannot be pickled, so it is built where it runs), and scores batches with
``batch.step.score_table``, the local engine's own step. Order is preserved
(``DataContext.execution_options.preserve_order``), so the driver numbers the rejected rows and writes the
output with the same atomic writers as the local engine.

On a cluster the model folder and the input must be readable from every node (the job's working directory, a
shared file system, or an ``s3://`` input); the output and rejects are written by the driver.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from batch import io, step
from batch.job import Job, Stream

if TYPE_CHECKING:
    import pyarrow as pa


class Scorer:
    """A Ray Data actor: one predictor and session per actor, built once."""

    def __init__(self, model_dir: str, prefix: str) -> None:
        import runtime
        from runtime.predictor import Predictor

        self.predictor = Predictor(runtime.load(model_dir, intra_op_threads=1, inter_op_threads=1))
        self.prefix = prefix

    def __call__(self, batch: pa.Table) -> pa.Table:
        return step.score_table(self.predictor, batch, self.prefix)


class RayEngine:
    """Ray Data reads ``job.input`` and ``job.workers`` ``Scorer`` actors score it, in input order."""

    local_input = False  # a cluster may read what this machine cannot, e.g. s3://

    def open(self, job: Job, features: Sequence[str]) -> Stream:
        ray = io.require("ray")
        pa = io.require("pyarrow")
        _connect(ray, job.ray_address, job.workers)
        names = io.csv_header(job.input) if io.table_format(job.input) == "csv" else None
        local = not job.ray_address  # a private instance reads local paths; a cluster resolves them itself
        ds = _dataset(ray, os.path.abspath(job.input) if local else job.input, names)
        schema = pa.schema([(n, pa.string()) for n in names]) if names else ds.schema().base_schema
        total = io.count_lines(job.input) - 1 if names else None
        model_dir = os.path.abspath(job.model_dir) if local else job.model_dir
        return Stream(schema, total, _scored(ray, ds, model_dir, job))


def _scored(ray: Any, ds: Any, model_dir: str, job: Job) -> Iterator[pa.Table]:
    """The dataset's scored batches in order; nothing runs until the first is asked for."""
    scored = ds.map_batches(
        Scorer,
        fn_constructor_args=(model_dir, job.prefix),
        batch_size=job.chunk_rows,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=job.workers),
        num_cpus=1,
        udf_modifying_row_count=False,
    )
    yield from scored.iter_batches(batch_format="pyarrow", batch_size=None)


def _dataset(ray: Any, path: str, names: list[str] | None) -> Any:
    # Reading reserves no CPU: the scoring actors hold one each, and a read waiting for a free CPU would wait for
    # ever when they hold them all (with --workers equal to the instance's CPUs); reads are light.
    if io.table_format(path) == "parquet":
        return ray.data.read_parquet(path, num_cpus=0)
    pa, pacsv = io.require("pyarrow"), io.require("pyarrow.csv")
    # Every column as text, as the local engine reads it: readings are parsed by batch.step, ids pass unchanged.
    return ray.data.read_csv(
        path,
        num_cpus=0,
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names or []}, strings_can_be_null=False
        ),
    )


def _connect(ray: Any, address: str | None, workers: int) -> None:
    """Join ``address``, or start a private local instance with ``workers`` CPUs, shipping the ``batch`` and
    ``runtime`` packages to the actors (``py_modules``: cluster nodes need not have the repository). A Ray that
    the caller started already is used as it is: its runtime environment must make both importable (e.g.
    ``ray job submit --working-dir .``)."""
    import logging

    import batch
    import runtime

    if not ray.is_initialized():
        env = {"py_modules": [os.path.abspath(p.__path__[0]) for p in (batch, runtime)]}  # the package folders
        if address:
            ray.init(address=address, runtime_env=env, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, runtime_env=env, logging_level=logging.WARNING)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the driver numbers rejects and writes rows in input order
    # Ray 2.60's V2 file reader adds a ListFiles step that needs a whole CPU; with one actor per CPU it waits for
    # ever (on Parquet, --workers equal to the instance's CPUs). The V1 reader honours num_cpus=0.
    context.use_datasource_v2 = False
    context.enable_progress_bars = False  # the scorer's own bar counts written rows
    logging.getLogger("ray.data").setLevel(logging.WARNING)
