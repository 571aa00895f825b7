"""``diecast ui``: the operator page (``ui/app.py``) served by Streamlit on this machine."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from diecast import exits
from diecast.commands import MODELS_DIR, InputError, model_folder

HELP = "the operator web page: one part, a CSV batch and this session's history, on the handler or the deployed API"
EXTRA = "ui"
PAGE = Path(__file__).resolve().parents[2] / "ui" / "app.py"
DEFAULT_PORT = 8501

EPILOG = """\
examples:
  diecast ui                                   # http://127.0.0.1:8501, the handler embedded on v1.0
  diecast ui --port 8600 --model v1.1
  diecast ui --api-url https://abc123.execute-api.ap-northeast-2.amazonaws.com/prod

Embedded (the default), the page calls the serving application in this process on the model folder, exactly as
the deployed function answers. With --api-url (or DIECAST_API_URL) it calls the deployed API instead, each request
signed with SigV4 using the AWS credentials of the environment (region: AWS_REGION, else read from the URL).
PORT and MODEL_VERSION in the environment give the defaults of --port and --model.

"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Start Streamlit on the operator page and keep serving it until interrupted (Ctrl-C). The page shows the "
        "handler's answers: class, probability (4 decimals), confidence, warnings, attention and, when the "
        "explanation service is there, each reading's contribution."
    )
    parser.epilog = EPILOG + exits.epilog("ui")
    parser.add_argument(
        "--port", type=_port, default=None, help=f"port to listen on (default: PORT, else {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--model",
        default=None,
        help="a model folder, or a version under models_onnx/ (default: MODEL_VERSION, else v1.0); the embedded "
        "back end serves it and the form reads its training ranges",
    )
    parser.add_argument("--api-url", default=None, help="the deployed API's URL (the main stack's PredictUrl output)")
    parser.add_argument("--address", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"must be a TCP port (1-65535), got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    import streamlit  # noqa: F401  (a missing extra is reported before the server starts)

    port = args.port or _env_port()
    model = args.model or os.environ.get("MODEL_VERSION") or "v1.0"
    env = {**os.environ, "MODEL_PATH": str(model_folder(model, MODELS_DIR, "--model").resolve())}
    if args.api_url:
        env["DIECAST_API_URL"] = args.api_url
    command = [sys.executable, "-m", "streamlit", "run", str(PAGE), *server_flags(args.address, port)]
    print(f"diecast ui: http://{args.address}:{port}  (Ctrl-C stops it)", file=sys.stderr, flush=True)
    os.execve(sys.executable, command, env)
    return exits.UNEXPECTED  # execve returns only by raising


def _env_port() -> int:
    text = os.environ.get("PORT", "")
    if not text:
        return DEFAULT_PORT
    try:
        return _port(text)
    except (ValueError, argparse.ArgumentTypeError):
        raise InputError(f"PORT={text!r} is not a TCP port (1-65535); fix the environment or pass --port") from None


def server_flags(address: str, port: int) -> list[str]:
    """Streamlit's settings for the page, here and in ui/Dockerfile: no browser opened, no usage statistics, no
    traceback on the page (the page shows messages; the log keeps the traceback)."""
    return [
        f"--server.address={address}",
        f"--server.port={port}",
        "--server.headless=true",
        "--browser.gatherUsageStats=false",
        "--client.showErrorDetails=none",
        "--client.toolbarMode=minimal",
    ]
