"""Shared state for the benchmarks: results gathered by each benchmark, the gates, and the comparison table.

Threads are pinned and named: onnxruntime intra/inter-op 1 (runtime.model.session_options), torch 1
(REFERENCE_TORCH_THREADS), OpenMP/OpenBLAS/MKL 1; onnxruntime on CPUExecutionProvider, torch on CPU.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from benchmarks.targets import TARGET

REPO_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("REFERENCE_TORCH_THREADS", "1")
# One thread everywhere, before numpy/torch load: idle OpenMP/OpenBLAS workers spin on the other core and slow
# whichever path is measured next on a 2-core machine.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

RESULTS: dict[str, dict] = {}
SUMMARY_JSON = REPO_ROOT / "build" / "bench" / "summary.json"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} us"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.0f} ms"


def _mb(mb: float) -> str:
    return f"{mb:,.0f} MB"


def _per_s(rate: float) -> str:
    return f"{rate:,.0f}"


# (label, RESULTS key without the onnx_/reference_ prefix, format, higher is better)
ROWS = [
    ("handler warm p50", "handler", _us, False),
    ("handler warm p90", "handler_p90", _us, False),
    ("handler warm p99", "handler_p99", _us, False),
    ("predict() warm p50, 1 row", "predict", _us, False),
    *((f"batch {n}: rows/s", f"rows_per_s_{n}", _per_s, True) for n in (1, 10, 100, 1000)),
    ("cold start to 1st response", "cold_start", _ms, False),
    ("installed serving deps", "installed_mb", _mb, False),
    ("container image", "image", _mb, False),
    ("added over the base image", "image_added", _mb, False),
    ("container cold start (docker run)", "image_cold_start", _ms, False),
]


def table() -> str:
    rows = [("measure", "ONNX runtime", "torch + sklearn", "ratio")]
    for label, key, fmt, higher_is_better in ROWS:
        on, ref = RESULTS.get(f"onnx_{key}"), RESULTS.get(f"reference_{key}")
        if on is None or ref is None:
            continue
        ratio = on / ref if higher_is_better else ref / on
        rows.append((label, fmt(on), fmt(ref), f"{ratio:,.1f}x"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


# The targets (benchmarks/targets.py), each a ratio measured in one run.
# (label, measured ratio from RESULTS, the target; a negative target is an upper bound).
TARGETS = [
    (
        "handler p50 vs the reference's bare predict()",
        lambda r: r["reference_predict"] / r["onnx_handler"],
        TARGET["handler"],
    ),
    ("handler p99 / p50", lambda r: r["onnx_handler_p99"] / r["onnx_handler"], -TARGET["p99_over_p50"]),
    ("predict() 1 row vs the reference's", lambda r: r["reference_predict"] / r["onnx_predict"], TARGET["predict"]),
    (
        "batch 1000 rows/s vs the reference's",
        lambda r: r["onnx_rows_per_s_1000"] / r["reference_rows_per_s_1000"],
        TARGET["batch"],
    ),
    ("cold start vs the reference's", lambda r: r["reference_cold_start"] / r["onnx_cold_start"], TARGET["cold"]),
]


def targets() -> list[str]:
    """One line per target: measured, wanted, met or not (a negative target is an upper bound)."""
    lines = []
    for label, measure, target in TARGETS:
        try:
            value = measure(RESULTS)
        except KeyError:
            continue
        met = value <= -target if target < 0 else value >= target
        wanted = f"<= {-target:g}x" if target < 0 else f">= {target:g}x"
        lines.append(f"  {label:<48} {value:6.1f}x  target {wanted:<8} {'met' if met else 'NOT met'}")
    return lines


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


def _profile(terminalreporter) -> None:
    """Where this run's time went, and what bounds each target it did not meet (benchmarks/profile.py)."""
    from benchmarks import profile

    if "profile" not in RESULTS:
        return
    terminalreporter.write_line(
        "where the time goes (this run; session.run of the shipped graph cut after each stage):"
    )
    for line in profile.table(RESULTS["profile"]):
        terminalreporter.write_line(line)
    try:
        bounds = profile.bound_lines(RESULTS, RESULTS["profile"], TARGET)
    except KeyError:  # a partial run: some side's figures are missing
        return
    if bounds:
        terminalreporter.write_line("what bounds each target not met:")
        for line in bounds:
            terminalreporter.write_line(line)


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
    terminalreporter.write_line("targets:")
    for line in targets():
        terminalreporter.write_line(line)
    _profile(terminalreporter)
    if "shadow_added_p50" in RESULTS:
        terminalreporter.write_line(
            f"shadow model: adds {RESULTS['shadow_added_p50'] * 1e6:.1f} us to the handler's p50 "
            f"(its own predict() {RESULTS['shadow_predict_p50'] * 1e6:.1f} us)"
        )
    if "monitor_1m_lines_s" in RESULTS:
        terminalreporter.write_line(
            f"monitor: 1,000,000 capture lines in {RESULTS['monitor_1m_lines_s']:.1f} s (gate 60 s)"
        )
    if "capture_added_p50" in RESULTS:
        terminalreporter.write_line(
            f"prediction capture: handler p50 {_us(RESULTS['capture_off_p50'])} off, {_us(RESULTS['capture_on_p50'])} "
            f"on, added {RESULTS['capture_added_p50'] * 1e6:.1f} us (same run, alternating calls; "
            f"gate {RESULTS['capture_gate'] * 1e6:.1f} us)"
        )
