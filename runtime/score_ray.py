"""The batch scorer on Ray Data: ``python -m runtime.score IN OUT --engine ray`` (or ``--ray-address auto``).

``ray.data.read_csv`` / ``read_parquet`` -> ``map_batches(Scorer, compute=ActorPoolStrategy(size=workers))``:
each actor opens its single-threaded onnxruntime session once, in ``__init__`` (an ``InferenceSession`` cannot
be pickled, so it is built where it runs), and scores batches with ``score_io.score_table``, the local engine's
own step. Order is preserved (``DataContext.execution_options.preserve_order``), so the driver numbers the
rejected rows and writes the output with the same atomic writers as the local engine.

On a cluster the model folder and the input must be readable from every node (the job's working directory, a
shared file system, or an ``s3://`` input); the output and rejects are written by the driver.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runtime import score_io

if TYPE_CHECKING:
    import pyarrow as pa


class Scorer:
    """A Ray Data actor: one model and session per actor, built once."""

    def __init__(self, model_dir: str, prefix: str) -> None:
        import runtime
        from runtime.confidence import confidence_rule

        self.model = runtime.load(model_dir, intra_op_threads=1, inter_op_threads=1)
        self.band = confidence_rule(self.model.manifest)
        self.prefix = prefix

    def __call__(self, batch: pa.Table) -> pa.Table:
        return score_io.score_table(self.model, self.band, batch, self.prefix)


def _dataset(ray: Any, path: str, names: list[str] | None) -> Any:
    # Reading reserves no CPU: the scoring actors hold one each, and a read waiting for a free CPU would wait for
    # ever when they hold them all (measured with --workers equal to the instance's CPUs); reads are light.
    if score_io.table_format(path) == "parquet":
        return ray.data.read_parquet(path, num_cpus=0)
    pa, pacsv = score_io.require("pyarrow"), score_io.require("pyarrow.csv")
    # Every column as text, as the local engine reads it: readings are parsed by score_io, ids pass unchanged.
    return ray.data.read_csv(
        path,
        num_cpus=0,
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names or []}, strings_can_be_null=False
        ),
    )


def _connect(ray: Any, address: str | None, workers: int) -> None:
    """Join ``address``, or start a private local instance with ``workers`` CPUs, shipping this package to the
    actors (``py_modules``: cluster nodes need not have the repository). A Ray that the caller started already
    is used as it is: its runtime environment must make ``runtime`` importable (e.g. ``ray job submit
    --working-dir .``)."""
    import logging

    import runtime

    if not ray.is_initialized():
        env = {"py_modules": [os.path.dirname(os.path.abspath(runtime.__file__))]}
        if address:
            ray.init(address=address, runtime_env=env, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, runtime_env=env, logging_level=logging.WARNING)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the driver numbers rejects and writes rows in input order
    # Ray 2.60's V2 file reader adds a ListFiles step that needs a whole CPU; with one actor per CPU it waits for
    # ever (measured on Parquet, --workers equal to the instance's CPUs). The V1 reader honours num_cpus=0.
    context.use_datasource_v2 = False
    context.enable_progress_bars = False  # the scorer's own bar counts written rows
    logging.getLogger("ray.data").setLevel(logging.WARNING)


def run(args: argparse.Namespace, features: list[str], progress: Callable[[int | None, bool], Any]) -> Any:
    """Score ``args.input`` into ``args.output`` on Ray; returns ``runtime.score.Summary``."""
    from runtime.score import write_scored

    ray = score_io.require("ray")
    pa = score_io.require("pyarrow")
    _connect(ray, args.ray_address, args.workers)
    names = score_io.csv_header(args.input) if score_io.table_format(args.input) == "csv" else None
    local = not args.ray_address  # a private instance reads local paths; a cluster resolves them itself
    source = os.path.abspath(args.input) if local else args.input
    ds = _dataset(ray, source, names)
    schema = pa.schema([(n, pa.string()) for n in names]) if names else ds.schema().base_schema
    keep = score_io.check_columns(args.input, schema.names, features, args.prefix)
    scored = ds.map_batches(
        Scorer,
        fn_constructor_args=(os.path.abspath(args.model) if local else args.model, args.prefix),
        batch_size=args.chunk_rows,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=args.workers),
        num_cpus=1,
        udf_modifying_row_count=False,
    )
    batches = scored.iter_batches(batch_format="pyarrow", batch_size=None)
    total = score_io.count_lines(args.input) - 1 if names else None
    with progress(total, args.progress) as bar:
        return write_scored(batches, args.output, schema, keep, args.prefix, bar)
