"""``diecast explain EVENT.json``: answer one event with the explain function (T2) locally, as deployed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from diecast import exits

HELP = "explain one event (each reading's contribution to the log-odds of defect) locally and print the response"
EXTRA = None

EPILOG = """\
examples:
  diecast explain tests/events/direct_named.json
  diecast explain --model v1.1 tests/events/batch.json
  diecast explain --quiet-log tests/events/rest_explain.json

The event is a direct invocation ({"features": ...} or {"instances": [...]}) or an API Gateway / Function URL
event for POST /explain or GET /importance. The environment configures the application as in Lambda
(MODEL_VERSION, MODEL_PATH, LOG_LEVEL, MAX_BATCH_SIZE, MAX_BODY_BYTES); --model overrides MODEL_VERSION and
MODEL_PATH. The model folder must hold explanation.json (make convert writes it).

"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Build the explain application as Lambda's INIT does and answer EVENT with it: the per-request log line goes "
        "to stdout first, then the response as JSON, its body decoded."
    )
    parser.epilog = EPILOG + exits.epilog("explain")
    parser.add_argument("event", type=Path, help="event JSON file, e.g. tests/events/direct_named.json")
    parser.add_argument(
        "--model",
        default=None,
        help="a model folder, or a version under the repository's models_onnx/ (e.g. v1.1); default: MODEL_PATH, "
        "else models_onnx/<MODEL_VERSION>",
    )
    parser.add_argument("--quiet-log", action="store_true", help="drop the per-request log/EMF line")


def run(args: argparse.Namespace) -> int:
    from diecast.commands.invoke import invoke

    try:
        event = json.loads(args.event.read_text())
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {args.event}: {exc}", file=sys.stderr)
        return exits.USAGE
    response = invoke(event, args.model, args.quiet_log, explain=True)
    if response is None:
        return exits.USAGE
    print(json.dumps(response, indent=2))
    return exits.OK if response.get("statusCode", 200) < 400 else exits.EXPLAIN_ERROR_ANSWER
