"""``diecast convert``: export deployment_models/VERSION to one certified ONNX graph in models_onnx/VERSION."""

from __future__ import annotations

import argparse
from pathlib import Path

from convert import defaults
from diecast import exits
from diecast.commands import ORIGINALS, InputError, model_folder, positive_int, version_problem

HELP = "convert deployment_models/VERSION to a certified ONNX model in models_onnx/VERSION"
EXTRA = "convert"

EPILOG = f"""\
examples:
  diecast convert                                      # deployment_models/v1.0 -> models_onnx/v1.0
  diecast convert --model v1.1 --force                 # replace a published v1.1
  diecast convert --out build/convert-check/v1.0 --force --compare-to v1.0
                                                       # CI: convert into a scratch folder, require the same bytes
  diecast convert --model build/demo/deployment_models/v1.0 --out build/demo/models_onnx/v1.0 --fuzz-rows 20000

{exits.epilog("convert")}"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Export deployment_models/VERSION (torch + sklearn originals) to one standard ONNX graph in "
        "models_onnx/VERSION, certify every file that ships against the originals, and publish only if every bar "
        "is met."
    )
    parser.epilog = EPILOG
    parser.add_argument(
        "--model",
        default=defaults.VERSION,
        metavar="VERSION|DIR",
        help="the originals to convert: a version under --models or a folder (default: %(default)s)",
    )
    parser.add_argument("--version", dest="model", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # older name
    parser.add_argument(
        "--models",
        type=Path,
        default=defaults.DEPLOYMENT_DIR,
        help="the folder of the originals' versions, for --model (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"the model folder to publish, created if missing (default: {defaults.MODELS_DIR}/VERSION)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing published version")
    parser.add_argument(
        "--fuzz-rows",
        type=positive_int,
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
        default=None,
        metavar="VERSION|DIR",
        help="after publishing, require model.onnx to be byte-identical to this published model's (a version under "
        "models_onnx/ or a folder; CI converts into a scratch folder and compares with the shipped artifact)",
    )
    parser.add_argument(
        "--report-dir", type=Path, default=None, help="where the full certificate goes (default: build/convert/VERSION)"
    )


def run(args: argparse.Namespace) -> int:
    source = model_folder(args.model, args.models, "--model", holds=ORIGINALS)
    problem = version_problem("--model", source.resolve().name)  # the originals' folder is named by its version
    if problem:
        raise InputError(problem)
    shipped = model_folder(args.compare_to, defaults.MODELS_DIR, "--compare-to") if args.compare_to else None
    from convert import pipeline

    target = args.out or defaults.MODELS_DIR / source.resolve().name
    if shipped is not None and Path(target).resolve() == shipped.resolve():
        raise InputError(
            f"--compare-to {args.compare_to} is the folder this conversion publishes into ({target}); "
            "convert into another folder (--out) to compare with it"
        )
    opts = pipeline.Options(
        source=source.resolve(),
        target=target,
        force=args.force,
        fuzz_rows=args.fuzz_rows,
        report_dir=args.report_dir,
        data=args.data,
        ort_cache=not args.no_ort_cache,
    )
    code = pipeline.convert(opts)
    if code == exits.OK and shipped is not None:
        from runtime.exceptions import ModelArtifactError

        try:
            code = pipeline.compare_published(target, shipped)
        except ModelArtifactError as exc:
            raise InputError(f"--compare-to {args.compare_to}: {exc}") from None
    return code
