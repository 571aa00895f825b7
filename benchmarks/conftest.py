"""Shared state for the benchmarks: results gathered by each benchmark, the gates, and the comparison table.

Threads are pinned and named: onnxruntime intra/inter-op 1 (runtime.model.session_options), torch 1
(REFERENCE_TORCH_THREADS), OpenMP/OpenBLAS/MKL 1; onnxruntime on CPUExecutionProvider, torch on CPU.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "lambda"))
os.environ.setdefault("REFERENCE_TORCH_THREADS", "1")
# One thread everywhere, before numpy/torch load: idle OpenMP/OpenBLAS workers spin on the other core and slow
# whichever path is measured next on a 2-core machine.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

RESULTS: dict[str, dict] = {}
SUMMARY_JSON = REPO_ROOT / "build" / "bench" / "summary.json"


def _fmt_us(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:,.0f} us"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{b / a:,.1f}x"


def table() -> str:
    r = RESULTS
    rows = [("measure", "ONNX runtime", "torch + sklearn", "ratio")]
    for key, label in (("handler", "handler warm p50"), ("handler_p90", "handler warm p90")):
        on, ref = r.get(f"onnx_{key}"), r.get(f"reference_{key}")
        rows.append((label, _fmt_us(on), _fmt_us(ref), _ratio(on, ref)))
    on, ref = r.get("onnx_handler_p99"), r.get("reference_handler_p99")
    rows.append(("handler warm p99", _fmt_us(on), _fmt_us(ref), _ratio(on, ref)))
    on, ref = r.get("onnx_predict"), r.get("reference_predict")
    rows.append(("predict() warm p50, 1 row", _fmt_us(on), _fmt_us(ref), _ratio(on, ref)))
    for n in (1, 10, 100, 1000):
        on, ref = r.get(f"onnx_rows_per_s_{n}"), r.get(f"reference_rows_per_s_{n}")
        rows.append(
            (
                f"batch {n}: rows/s",
                "-" if on is None else f"{on:,.0f}",
                "-" if ref is None else f"{ref:,.0f}",
                "-" if not on or not ref else f"{on / ref:,.1f}x",
            )
        )
    on, ref = r.get("onnx_cold_start"), r.get("reference_cold_start")
    rows.append(
        (
            "cold start to 1st response",
            "-" if on is None else f"{on * 1e3:,.0f} ms",
            "-" if ref is None else f"{ref * 1e3:,.0f} ms",
            _ratio(on, ref),
        )
    )
    on, ref = r.get("onnx_installed_mb"), r.get("reference_installed_mb")
    rows.append(
        (
            "installed serving deps",
            "-" if on is None else f"{on:,.0f} MB",
            "-" if ref is None else f"{ref:,.0f} MB",
            _ratio(on, ref),
        )
    )
    for key, label, unit, scale in (
        ("image", "container image", "MB", 1),
        ("image_added", "added over the base image", "MB", 1),
        ("image_cold_start", "container cold start (docker run)", "ms", 1e3),
    ):
        on, ref = r.get(f"onnx_{key}"), r.get(f"reference_{key}")
        if on is not None and ref is not None:
            rows.append((label, f"{on * scale:,.0f} {unit}", f"{ref * scale:,.0f} {unit}", _ratio(on, ref)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


IMAGE_SUMMARY = REPO_ROOT / "build" / "image" / "summary.json"


def _image_results() -> None:
    """Fold in `make image-test`'s figures (container size and cold start), when that ran first."""
    if not IMAGE_SUMMARY.exists():
        return
    image = json.loads(IMAGE_SUMMARY.read_text())
    for side in ("onnx", "reference"):
        if f"{side}_image_mb" in image:
            RESULTS[f"{side}_image"] = image[f"{side}_image_mb"]
            RESULTS[f"{side}_image_added"] = image[f"{side}_image_added_mb"]
            RESULTS[f"{side}_image_cold_start"] = image[f"{side}_image_cold_start_s"]


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    _image_results()
    SUMMARY_JSON.parent.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    SUMMARY_JSON.write_text(json.dumps({"machine": machine, "results": RESULTS}, indent=2) + "\n")
    terminalreporter.write_sep("=", "ONNX runtime vs torch + sklearn (same run)")
    terminalreporter.write_line(f"machine: {machine}")
    terminalreporter.write_line(table())
