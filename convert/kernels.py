"""Pin torch's CPU kernels, so that training and export give the same bits on every x86-64 CPU.

torch picks its kernels by instruction set: the ATen kernels (``ATEN_CPU_CAPABILITY``) and MKL's BLAS each have
AVX2 and AVX-512 code paths that round differently, so one seed trained a different v1.0 on an AVX-512 machine
than on an AVX2 one. Both are chosen once, when torch loads, so the pin must be set before ``import torch``:
``convert/__init__.py`` calls ``pin()``, and the training and conversion entry points call ``require()`` after
importing torch, which fails loudly instead of training a silently different model.

MKL is capped (``MKL_ENABLE_INSTRUCTIONS``), not forced onto one code path: ``MKL_CBWR=AVX2`` would make every
vendor run Intel's AVX2 kernels, but on the AMD EPYC machines that trained v1.0 it changed the result (MKL runs
other AVX2 kernels on AMD by default), so it would have broken the shipped model's reproduction there. The cap
keeps an AVX-512 CPU off MKL's AVX-512 kernels and changes nothing on AVX2 machines. On Intel CPUs MKL takes
its Intel kernels, whose rounding differs from those it takes on AMD: bit-for-bit reproduction of files trained
on one vendor is verified on that vendor only (``tests/test_train.py`` says which it checks).

The level comes from ``DIECAST_TORCH_KERNELS``: ``avx2`` (the default, and what trained the shipped models),
``avx512`` or ``default`` (torch's portable kernels, any x86-64 CPU). The variant tests use the other levels.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass

LEVEL_VAR = "DIECAST_TORCH_KERNELS"
DEFAULT_LEVEL = "avx2"


@dataclass(frozen=True)
class Level:
    aten: str  # ATEN_CPU_CAPABILITY
    mkl_cap: str  # MKL_ENABLE_INSTRUCTIONS
    cpu_flags: tuple[str, ...]  # /proc/cpuinfo flags the kernels execute
    torch_reports: str  # torch.backends.cpu.get_cpu_capability() once pinned


LEVELS = {
    "avx2": Level("avx2", "AVX2", ("avx2", "fma"), "AVX2"),
    "avx512": Level("avx512", "AVX512", ("avx512f", "avx512bw", "avx512vl", "avx512dq"), "AVX512"),
    "default": Level("default", "SSE4_2", ("sse4_2",), "DEFAULT"),
}


class KernelPinError(RuntimeError):
    """torch cannot run at the pinned kernel level here; the message says why and what to do."""


def requested() -> str:
    return os.environ.get(LEVEL_VAR, DEFAULT_LEVEL).strip().lower() or DEFAULT_LEVEL


def _cpuinfo(key: str) -> str | None:
    """The first ``key`` line's value in /proc/cpuinfo, or None where that cannot be read (not Linux)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        return None
    return ""


def cpu_flags() -> set[str] | None:
    flags = _cpuinfo("flags")
    return None if flags is None else set(flags.split())


def cpu_description() -> str:
    """Vendor and model, e.g. "AuthenticAMD AMD EPYC", for provenance and for the reproduction test."""
    return f"{_cpuinfo('vendor_id') or '?'} {_cpuinfo('model name') or platform.processor() or '?'}"


def problem() -> str | None:
    """Why the requested level cannot be pinned here, or None when it can."""
    name = requested()
    if name not in LEVELS:
        return f"{LEVEL_VAR}={name!r} is not a kernel level; use one of {', '.join(LEVELS)}"
    if platform.machine().lower() not in {"x86_64", "amd64"}:
        return f"torch kernel levels are x86-64 instruction sets; this is {platform.machine()}"
    flags = cpu_flags()
    missing = [f for f in LEVELS[name].cpu_flags if flags is not None and f not in flags]
    if missing:
        return (
            f"this CPU lacks {', '.join(missing)}, which the {name} kernels need; set {LEVEL_VAR}=default to use "
            "torch's portable kernels (a model trained so will not reproduce the shipped files bit for bit)"
        )
    return None


def pin() -> None:
    """Set torch's kernel level in the environment; a no-op when it cannot be pinned (``require`` says why)."""
    if problem() is not None or "torch" in sys.modules:
        return
    level = LEVELS[requested()]
    os.environ["ATEN_CPU_CAPABILITY"] = level.aten
    os.environ["MKL_ENABLE_INSTRUCTIONS"] = level.mkl_cap


def require() -> str:
    """The pinned level's name, after checking that the imported torch runs it; ``KernelPinError`` otherwise."""
    why = problem()
    if why:
        raise KernelPinError(why)
    import torch

    name = requested()
    got = torch.backends.cpu.get_cpu_capability()
    if got != LEVELS[name].torch_reports:
        raise KernelPinError(
            f"torch runs {got} kernels, not the pinned {name} (was torch imported before the convert package?); "
            "run training and conversion as diecast train and diecast convert"
        )
    return name


CPU_INDEX = "https://download.pytorch.org/whl/cpu"  # where the CPU build of torch comes from


def cuda_build_warning(version: str, cuda: str | None) -> str | None:
    """One line when the installed torch (``torch.__version__``, ``torch.version.cuda``) is a CUDA build: gigabytes
    of GPU libraries this project never uses. None for the CPU build."""
    if cuda is None:
        return None
    release = version.split("+")[0]
    return (
        f"warning: torch {version} is a CUDA build (CUDA {cuda}); this project uses the CPU build: "
        f"pip install torch=={release} --index-url {CPU_INDEX}"
    )


def warn_if_cuda_build() -> None:
    """``make venv``'s check after installing: the warning on stderr, never a failure."""
    import torch

    warning = cuda_build_warning(torch.__version__, torch.version.cuda)
    if warning:
        print(warning, file=sys.stderr)
