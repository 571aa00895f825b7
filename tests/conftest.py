"""Shared fixtures. Tests are laid out by what they need:

- ``test_validation.py``, ``test_runtime.py``, ``test_handler*.py``: the runtime only (numpy + onnxruntime);
- everything marked ``convert``: the conversion side (torch, sklearn, onnx), imported inside the tests.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# CI replays the same generated examples every run (a failure there is reproducible); locally they vary.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "lambda"))  # `lambda` is a keyword: handler.py is imported as `handler`

SHIPPED_VERSION = "v1.0"
DEPLOYMENT_DIR = REPO_ROOT / "deployment_models" / SHIPPED_VERSION
ONNX_DIR = REPO_ROOT / "models_onnx" / SHIPPED_VERSION
DATA_CSV = REPO_ROOT / "data" / "die_casting.csv"
EVENTS_DIR = REPO_ROOT / "tests" / "events"


@pytest.fixture(scope="session")
def reference():
    from convert.reference import load_reference

    return load_reference(DEPLOYMENT_DIR)


@pytest.fixture(scope="session")
def dataset_xy():
    from convert.dataset import load_csv

    return load_csv(DATA_CSV)


@functools.cache
def make_app(**fields: object):
    """A serving application built with explicit settings (``Settings`` fields; ``model_path`` defaults to the shipped
    model), one per distinct settings, shared by the tests that ask for the same ones."""
    from serving.app import App
    from serving.settings import Settings

    return App(Settings(**{"model_path": str(ONNX_DIR), **fields}))


@pytest.fixture
def app():
    """The application as Lambda builds it with no settings: v1.0, capture off, no second model."""
    return make_app()


def init_handler(**env: str) -> subprocess.CompletedProcess:
    """Import lambda/handler.py (its INIT) in a fresh process under ``env``, without the suite's MODEL_PATH."""
    full = {k: v for k, v in os.environ.items() if k != "MODEL_PATH"} | env
    script = "import sys; sys.path[:0] = ['lambda', '.']; import handler"
    return subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=full, capture_output=True, text=True)
