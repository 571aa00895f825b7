"""``diecast explain EVENT.json``: answer one event with the explain function (T2) locally, as deployed."""

from __future__ import annotations

import argparse

from diecast import exits
from diecast.commands.invoke import add_event_arguments, answer

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
    add_event_arguments(parser, "drop the per-request log/EMF line")


def run(args: argparse.Namespace) -> int:
    return answer(args, explain=True, error_exit=exits.EXPLAIN_ERROR_ANSWER)
