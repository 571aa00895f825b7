"""convert.kernels: torch's kernel level is pinned before torch loads, and a CPU that cannot run it is refused."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from convert import kernels
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.convert


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS"}}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, env=clean | env, check=False
    )


def test_importing_convert_pins_torch_before_it_loads():
    proc = _python(
        "import convert, os, torch; from convert import kernels; "
        "print(kernels.require(), torch.backends.cpu.get_cpu_capability(), os.environ['MKL_ENABLE_INSTRUCTIONS'])"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["avx2", "AVX2", "AVX2"]


def test_the_portable_level_runs_torch_default_kernels():
    proc = _python(
        "import convert, torch; from convert import kernels; print(kernels.require(), "
        "torch.backends.cpu.get_cpu_capability())",
        DIECAST_TORCH_KERNELS="default",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["default", "DEFAULT"]


def test_torch_imported_before_the_pin_is_refused_rather_than_trusted():
    proc = _python(
        "import torch, convert; from convert import kernels; kernels.require()",
        DIECAST_TORCH_KERNELS="default",
    )
    assert proc.returncode != 0
    assert "torch runs AVX2 kernels, not the pinned default" in proc.stderr


def test_a_cpu_without_the_level_s_instructions_gets_a_clear_error(monkeypatch):
    monkeypatch.setattr(kernels, "cpu_flags", lambda: {"sse4_2", "avx"})
    monkeypatch.setenv(kernels.LEVEL_VAR, "avx2")
    why = kernels.problem()
    assert why is not None
    assert "this CPU lacks avx2, fma" in why
    assert "DIECAST_TORCH_KERNELS=default" in why
    with pytest.raises(kernels.KernelPinError, match="lacks avx2"):
        kernels.require()


def test_every_level_names_what_torch_reports_once_pinned():
    assert set(kernels.LEVELS) == {"avx2", "avx512", "default"}
    assert kernels.DEFAULT_LEVEL == "avx2"
    for name, level in kernels.LEVELS.items():
        assert level.torch_reports == name.upper()
