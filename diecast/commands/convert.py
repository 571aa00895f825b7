"""``diecast convert``: export deployment_models/VERSION to one certified ONNX graph in models_onnx/VERSION."""

from __future__ import annotations

import argparse
from pathlib import Path

from convert import defaults

HELP = "convert deployment_models/VERSION to a certified ONNX model in models_onnx/VERSION"
EXTRA = "convert"

EPILOG = """\
examples:
  diecast convert                                      # v1.0's originals -> models_onnx/v1.0
  diecast convert --version v1.1 --force               # replace a published v1.1
  diecast convert --version v1.0 --out build/convert-check --force --compare-to models_onnx/v1.0
                                                       # CI: convert into a scratch folder, require the same bytes
  diecast convert --models build/demo/deployment_models --out build/demo/models_onnx --fuzz-rows 20000

exit codes:
  0  published (and, with --compare-to, model.onnx is byte-identical to that folder's)
  1  the certificate failed: nothing is published; the report says which rows and bars
  2  a bad argument, an existing version without --force, no or unloadable originals, a bad --data CSV, or a
     torch that cannot run the pinned kernels; nothing is published
  3  --compare-to: the new model.onnx differs from that folder's (the new one is published)
"""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Export deployment_models/VERSION (torch + sklearn originals) to one standard ONNX graph in "
        "models_onnx/VERSION, certify every file that ships against the originals, and publish only if every bar "
        "is met."
    )
    parser.epilog = EPILOG
    parser.add_argument("--version", default=defaults.VERSION, help="version folder to convert (default: %(default)s)")
    parser.add_argument(
        "--models", type=Path, default=defaults.DEPLOYMENT_DIR, help="originals root (default: %(default)s)"
    )
    parser.add_argument("--out", type=Path, default=defaults.MODELS_DIR, help="output root (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="replace an existing published version")
    parser.add_argument(
        "--fuzz-rows",
        type=_positive,
        default=defaults.FUZZ_ROWS,
        help="generated rows in the certificate (default: %(default)s)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="CSV whose rows must get exactly the original's labels (default: the training CSV recorded in the "
        "metadata when it is unchanged, else the embedded dataset)",
    )
    parser.add_argument(
        "--no-ort-cache",
        action="store_true",
        help="ship model.onnx alone, without onnxruntime's pre-optimised copy",
    )
    parser.add_argument(
        "--compare-to",
        type=Path,
        default=None,
        help="after publishing, require model.onnx to be byte-identical to this published model folder's "
        "(CI converts into a scratch folder and compares with the shipped artifact)",
    )
    parser.add_argument(
        "--report-dir", type=Path, default=None, help="where the full certificate goes (default: build/convert/VERSION)"
    )


def run(args: argparse.Namespace) -> int:
    from convert import pipeline

    opts = pipeline.Options(
        version=args.version,
        models_root=args.models,
        out_root=args.out,
        force=args.force,
        fuzz_rows=args.fuzz_rows,
        report_dir=args.report_dir,
        data=args.data,
        ort_cache=not args.no_ort_cache,
    )
    code = pipeline.convert(opts)
    if code == 0 and args.compare_to is not None:
        code = pipeline.compare_published(args.out / args.version, args.compare_to)
    return code
