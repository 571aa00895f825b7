"""``diecast importance``: print a model's global importance (mean |contribution| per reading), as stored."""

from __future__ import annotations

import argparse
import sys

from diecast import exits

HELP = "print the global importance of the readings (mean |contribution| over held-out rows), largest first"
EXTRA = None

EPILOG = """\
examples:
  diecast importance
  diecast importance --model v1.1
  diecast importance --model build/demo/models_onnx/v1.0 --json

The numbers are the ones GET /importance answers: make convert computes them and stores them in the model
folder's explanation.json (covered by the manifest's sha256).

"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = "Read a certified model folder's explanation.json and print its global importance ranking."
    parser.epilog = EPILOG + exits.epilog("importance")
    parser.add_argument(
        "--model",
        default="v1.0",
        help="a model folder, or a version under the repository's models_onnx/ (default v1.0)",
    )
    parser.add_argument("--json", action="store_true", help="print the GET /importance body as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    import json

    from diecast.commands import MODELS_DIR, model_folder
    from explain import artifact
    from runtime.exceptions import ModelArtifactError
    from runtime.manifest import Manifest

    folder = model_folder(args.model, MODELS_DIR, "--model")
    try:
        manifest = Manifest.read(folder)
        stored = artifact.read(str(folder), manifest)
    except ModelArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exits.USAGE
    if args.json:
        print(json.dumps(artifact.importance_body(stored, manifest.model_version), indent=2))
        return exits.OK
    print(f"{manifest.model_version}: mean |contribution| to the log-odds of defect over {stored.importance_source}")
    top = stored.importance[0][1] or 1.0
    for rank, (feature, value) in enumerate(stored.importance, 1):
        print(f"{rank:>3}  {feature:<30} {value:8.4f}  {'#' * round(40 * value / top)}")
    return exits.OK
