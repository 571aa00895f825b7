"""The serving path runs with requirements-runtime.txt alone: a fresh venv with it (plus pytest and hypothesis,
the test tools) runs the runtime, handler and explain tests, with no torch, sklearn or onnx importable there."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv

import pytest

from tests.conftest import REPO_ROOT

RUNTIME_TESTS = [
    "tests/test_validation.py",
    "tests/test_runtime.py",
    "tests/test_handler.py",
    "tests/test_capture.py",
    "tests/test_proxy_events.py",
    "tests/test_hostile.py",
    "tests/test_second_model.py",
    "tests/test_tamper.py",
    "tests/test_explain.py",  # the explain function needs nothing beyond the runtime set either
]


@pytest.mark.slow
def test_runtime_and_handler_tests_pass_with_only_the_runtime_requirements(tmp_path):
    env_dir = tmp_path / "runtime-venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = str(env_dir / "bin" / "python")
    pins = {
        line.split("==")[0]: line.strip()
        for line in (REPO_ROOT / "requirements-dev.txt").read_text().splitlines()
        if "==" in line
    }
    install = [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run(
        [*install, "-r", str(REPO_ROOT / "requirements-runtime.txt"), pins["pytest"], pins["hypothesis"]],
        check=True,
        capture_output=True,
    )
    probe = "import importlib.util as u; print([m for m in ('torch','sklearn','onnx','skl2onnx') if u.find_spec(m)])"
    assert subprocess.run([py, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    proc = subprocess.run(
        [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", *RUNTIME_TESTS],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    # Every test collected here must have run and passed there: a test skipped for a missing package would hide one.
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *RUNTIME_TESTS],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.count("::")
    summary = proc.stdout.strip().splitlines()[-1]
    assert re.match(rf"{collected} passed in ", summary), (collected, summary)
