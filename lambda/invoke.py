"""Invoke the Lambda handler locally on an event file and print its response (`make invoke EVENT=...`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class LocalContext:
    """The few attributes of a Lambda context object the handler reads."""

    aws_request_id = "local-invoke"
    function_name = "diecast-t1-local"
    memory_limit_in_mb = 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python lambda/invoke.py",
        description="Run handler.lambda_handler on a JSON event (direct payload or API Gateway / Function URL "
        "envelope) and print the response. MODEL_PATH / MODEL_VERSION choose the model as in Lambda.",
    )
    parser.add_argument("event", type=Path, help="event JSON file, e.g. tests/events/direct_named.json")
    parser.add_argument("--quiet-log", action="store_true", help="drop the per-request log/EMF line")
    args = parser.parse_args(argv)
    try:
        event = json.loads(args.event.read_text())
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {args.event}: {exc}", file=sys.stderr)
        return 2
    import handler

    if args.quiet_log:
        handler._emit = lambda *a, **k: None
    response = handler.lambda_handler(event, LocalContext())
    if isinstance(response.get("body"), str):
        response = {**response, "body": json.loads(response["body"])}
    print(json.dumps(response, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
