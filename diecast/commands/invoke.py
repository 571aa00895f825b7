"""``diecast invoke EVENT.json``: answer one Lambda event locally, exactly as the deployed function would."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from diecast import exits

if TYPE_CHECKING:
    from serving.settings import Settings

HELP = "answer one Lambda event (direct or API Gateway / Function URL) locally and print the response"
EXTRA = None

EPILOG = """\
examples:
  diecast invoke tests/events/direct_named.json
  diecast invoke --model v1.1 tests/events/batch.json
  diecast invoke --model build/demo/models_onnx/v1.0 --quiet-log tests/events/rest_predict.json

The environment configures the application as in Lambda (MODEL_VERSION, MODEL_PATH, AB_SPLIT,
SHADOW_MODEL_VERSION, CAPTURE_PREDICTIONS, LOG_LEVEL, MAX_BATCH_SIZE, MAX_BODY_BYTES); --model overrides
MODEL_VERSION and MODEL_PATH.

"""


class LocalContext:
    """The few attributes of a Lambda context object the application reads."""

    aws_request_id = "local-invoke"
    function_name = "diecast-t1-local"
    memory_limit_in_mb = 1024


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Build the serving application as Lambda's INIT does and answer EVENT with it: the per-request log line "
        "(and capture lines, when capture is on) go to stdout first, then the response as JSON, its body decoded."
    )
    parser.epilog = EPILOG + exits.epilog("invoke")
    add_event_arguments(parser, "drop the per-request log/EMF line (capture lines are still written)")


def run(args: argparse.Namespace) -> int:
    return answer(args, explain=False, error_exit=exits.INVOKE_ERROR_ANSWER)


def add_event_arguments(parser: argparse.ArgumentParser, quiet_help: str) -> None:
    """EVENT, ``--model`` and ``--quiet-log``: what ``invoke`` and ``explain`` both take."""
    parser.add_argument("event", type=Path, help="event JSON file, e.g. tests/events/direct_named.json")
    parser.add_argument(
        "--model",
        default=None,
        help="a model folder, or a version under the repository's models_onnx/ (e.g. v1.1); default: MODEL_PATH, "
        "else models_onnx/<MODEL_VERSION>",
    )
    parser.add_argument("--quiet-log", action="store_true", help=quiet_help)


def answer(args: argparse.Namespace, explain: bool, error_exit: int) -> int:
    """Read the event, answer it, print the response; ``error_exit`` when the application answers >= 400."""
    try:
        event = json.loads(args.event.read_text())
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {args.event}: {exc}", file=sys.stderr)
        return exits.USAGE
    response = invoke(event, args.model, args.quiet_log, explain=explain)
    if response is None:
        return exits.USAGE
    print(json.dumps(response, indent=2))
    return exits.OK if response.get("statusCode", 200) < 400 else error_exit


def invoke(event: object, model: str | None, quiet_log: bool, explain: bool = False) -> dict | None:
    """The application's response to ``event`` (a proxy body decoded), or None when it could not start (said on
    stderr). ``model`` is a folder or a version under models_onnx/ (None: the environment's); ``explain`` picks the
    explain function's application (``explain.app``) instead of the predict function's."""
    import logging

    from runtime.exceptions import ConfigurationError, ModelArtifactError
    from serving.settings import Settings

    if explain:
        from explain.app import App
    else:
        from serving.app import App

    try:
        settings = Settings.from_env(os.environ)
        if model is not None:
            settings = _with_model(settings, model)
        logging.basicConfig(stream=sys.stderr, level=getattr(logging, settings.log_level), format="%(message)s")
        app = App(settings, quiet_log=quiet_log)
    except (ConfigurationError, ModelArtifactError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    response = app.handle(event, LocalContext())
    if isinstance(response.get("body"), str):
        response = {**response, "body": json.loads(response["body"])}
    return response


def _with_model(settings: Settings, model: str) -> Settings:
    """``--model`` in the settings: the one resolver's folder (a path, or a version under models_onnx/)."""
    import dataclasses

    from diecast.commands import MODELS_DIR, model_folder

    return dataclasses.replace(settings, model_path=str(model_folder(model, MODELS_DIR, "--model").resolve()))
