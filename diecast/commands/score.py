"""``diecast score INPUT OUTPUT``: score a CSV or Parquet file of readings with a certified model (``batch``)."""

from __future__ import annotations

import argparse
import sys

from diecast import exits
from diecast.commands import MODELS_DIR, add_progress, model_folder, positive_int, progress
from runtime.contracts import DEFAULT_VERSION

HELP = "score a CSV or Parquet file of readings with a certified model, in worker processes or on Ray"
EXTRA = "batch"

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REJECTS = exits.OK, exits.UNEXPECTED, exits.USAGE, exits.SCORE_REJECTS

EPILOG = f"""\
examples:
  diecast score history.parquet build/scores/history.parquet --model v1.1 --workers 2
  diecast score history.csv scores.csv --chunk-rows 4096 --prefix v1_1_   # beside older score columns
  diecast score readings.parquet scores.parquet --ray-address auto        # on a running Ray cluster

{exits.epilog("score")}"""


def configure(parser: argparse.ArgumentParser) -> None:
    from batch.engines import ENGINES
    from batch.job import DEFAULT_CHUNK_ROWS, default_workers

    parser.description = (
        "Score a CSV or Parquet file of die-casting readings with a certified ONNX model. Writes the input's "
        "non-feature columns plus probability, label, confidence and model_version, in input order; rows with "
        "missing or non-numeric readings go to <OUTPUT stem>.rejects.csv beside it."
    )
    parser.epilog = EPILOG
    parser.add_argument("input", help="readings: .csv or .parquet with the model's 30 feature columns (any order)")
    parser.add_argument(
        "output",
        help="scores: .csv or .parquet, its folder created if missing (written to a temp file, then renamed)",
    )
    parser.add_argument(
        "--model",
        default=DEFAULT_VERSION,
        metavar="VERSION|DIR",
        help="the certified model: a version under models_onnx/ or a model folder (default: %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=default_workers(),
        help="scoring processes or Ray actors, one "
        "single-threaded session each (default: every core, %(default)s here)",
    )
    parser.add_argument(
        "--chunk-rows", type=positive_int, default=DEFAULT_CHUNK_ROWS, help="rows per chunk (default: %(default)s)"
    )
    parser.add_argument("--engine", choices=tuple(ENGINES), default="local", help="local processes or Ray Data")
    parser.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster to join (e.g. auto); implies --engine ray (default: a "
        "local Ray instance with --workers CPUs)",
    )
    parser.add_argument("--prefix", default="", help="prefix for the score columns, e.g. new_ (default: none)")
    parser.add_argument("--force", action="store_true", help="replace an existing OUTPUT")
    add_progress(parser)


def run(args: argparse.Namespace) -> int:
    model = model_folder(args.model, MODELS_DIR, "--model")
    from batch.io import rejects_path
    from batch.job import BatchInputError
    from batch.score import score_file
    from runtime.exceptions import ModelArtifactError

    try:
        summary = score_file(
            args.input,
            args.output,
            model_dir=model,
            engine="ray" if args.ray_address else args.engine,
            workers=args.workers,
            chunk_rows=args.chunk_rows,
            prefix=args.prefix,
            progress=progress(args),
            ray_address=args.ray_address,
            force=args.force,
        )
    except (BatchInputError, ModelArtifactError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {args.output}: {summary.scored} rows scored", file=sys.stderr)
    if not summary.rejected:
        return EXIT_OK
    rows = ", ".join(map(str, summary.first_rejected))
    more = " ..." if summary.rejected > len(summary.first_rejected) else ""
    print(
        f"{summary.rejected} row(s) rejected for missing, non-numeric or non-finite readings (data rows "
        f"{rows}{more}); reasons in {rejects_path(args.output)}",
        file=sys.stderr,
    )
    return EXIT_REJECTS
