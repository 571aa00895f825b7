"""Latency, throughput, cold start and size: the ONNX serving path against torch + sklearn, in one run.

Every benchmark first asserts that its output is correct. The gates at the end compare ratios measured in
this run (absolute times on a shared 2-core machine swing by ~2x between quiet and noisy windows).
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import statistics
import subprocess
import sys
import time
from importlib import metadata

import numpy as np
import pytest

from benchmarks.conftest import REPO_ROOT, RESULTS

EVENT = json.loads((REPO_ROOT / "tests" / "events" / "rest_predict.json").read_text())
ROUNDS_ONNX = 5000
ROUNDS_REFERENCE = 800  # ~1.5 s: long enough that one noisy second on a shared machine moves the median little
COLD_RUNS = 5
BATCHES = (1, 10, 100, 1000)

# Gates, checked in CI. They hold on a noisy shared machine; never loosen one to pass.
GATE_P99_S = 15e-3
GATE_MEDIAN_S = 1e-3
GATE_SPEEDUP = 5.0
GATE_COLD_S = 1.0
GATE_COLD_SPEEDUP = 5.0
GATE_CAPTURE_ADDED_S = 10e-6  # prediction capture adds <= 10 us to the handler's warm p50 ...
# ... on a host whose handler warm p50 is GATE_CAPTURE_REFERENCE_HANDLER_S. Capture is ~25 Python steps whose cost
# scales with the host like the rest of the handler, and a shared machine's handler p50 swings by ~3x between days.
# On a slower host the gate scales with this run's handler p50 (the same 11 % share of a request); on the reference
# speed or faster it is 10 us exactly.
GATE_CAPTURE_REFERENCE_HANDLER_S = 89e-6
GATE_SHADOW_ADDED = 1.5  # a shadow model adds at most 1.5x its own predict() to the handler's warm p50
SHADOW_VERSION = "v1.1"
ROUNDS_CAPTURE = 6000  # per side, drawn at random: ~3 s
CAPTURE_WARMUP = 300


class Ctx:
    aws_request_id = "bench"


@pytest.fixture(scope="module")
def onnx_handler():
    """lambda/handler.py as Lambda runs it (its INIT once: the application, warm-up, gc.freeze)."""
    spec = importlib.util.spec_from_file_location("handler", REPO_ROOT / "lambda" / "handler.py")
    assert spec is not None
    assert spec.loader is not None
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)
    _spin(handler.lambda_handler, EVENT)
    return handler


def _spin(call, event, seconds: float = 2.0) -> None:
    """Run the path under test for a while before it is timed: an idle CPU ramps its clock up over the first
    second or so (the first benchmark on a quiet machine can read twice what the same handler reads later)."""
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        call(event, Ctx())


@pytest.fixture(scope="module")
def reference_handler():
    from benchmarks import reference_handler

    _spin(lambda event, ctx: reference_handler.lambda_handler(event), EVENT)
    return reference_handler


def _record(prefix: str, benchmark) -> None:
    data = sorted(benchmark.stats.stats.data)
    RESULTS[f"{prefix}"] = statistics.median(data)
    RESULTS[f"{prefix}_p90"] = data[int(0.90 * (len(data) - 1))]
    RESULTS[f"{prefix}_p99"] = data[int(0.99 * (len(data) - 1))]
    benchmark.extra_info.update({"p90": RESULTS[f"{prefix}_p90"], "p99": RESULTS[f"{prefix}_p99"]})


def _expected_probability(reference_handler) -> float:
    features = json.loads(EVENT["body"])["features"]
    return float(
        reference_handler.MODEL.predict(np.array([[features[n] for n in reference_handler.NAMES]]))["probability"][0]
    )


def test_warm_handler_onnx(benchmark, onnx_handler, reference_handler, capsys):
    out = onnx_handler.lambda_handler(EVENT, Ctx())
    assert out["statusCode"] == 200
    assert json.loads(out["body"])["prediction"]["probability"] == pytest.approx(
        _expected_probability(reference_handler), abs=1e-5
    )
    benchmark.pedantic(onnx_handler.lambda_handler, args=(EVENT, Ctx()), rounds=ROUNDS_ONNX, warmup_rounds=300)
    capsys.readouterr()  # drop the per-request log lines
    _record("onnx_handler", benchmark)


def _paired_p50(handler, event, switch, capsys) -> tuple[float, float]:
    """Warm handler p50 with a feature off and on, the side drawn at random call by call (seeded), so both sides see
    the same machine noise and no periodic effect favours one. ``switch(on)`` turns it on or off."""
    draw = random.Random(11)
    times: dict[bool, list[float]] = {False: [], True: []}
    try:
        for i in range(CAPTURE_WARMUP + 2 * ROUNDS_CAPTURE):
            side = draw.random() < 0.5
            switch(side)
            started = time.perf_counter()
            handler.lambda_handler(event, Ctx())
            elapsed = time.perf_counter() - started
            if i >= CAPTURE_WARMUP:
                times[side].append(elapsed)
            if i % 1000 == 0:
                capsys.readouterr()
    finally:
        switch(False)
        capsys.readouterr()
    return statistics.median(times[False]), statistics.median(times[True])


def test_capture_cost(onnx_handler, capsys):
    """Warm p50 with capture on minus off, for the same event (with an inference id)."""
    from runtime import capture

    event = {**EVENT, "body": json.dumps({"inference_id": "SN-BENCH-0001", **json.loads(EVENT["body"])})}
    app = onnx_handler.APP
    saved = app.capture
    on = capture.Capture(app.model_version, app.names)
    app.capture = on
    capsys.readouterr()
    onnx_handler.lambda_handler(event, Ctx())
    [_, line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["inference_id"] == "SN-BENCH-0001"

    def switch(side: bool) -> None:
        app.capture = on if side else saved

    off_p50, on_p50 = _paired_p50(onnx_handler, event, switch, capsys)
    RESULTS["capture_off_p50"], RESULTS["capture_on_p50"] = off_p50, on_p50
    RESULTS["capture_added_p50"] = added = on_p50 - off_p50
    RESULTS["capture_gate"] = gate = capture_gate(off_p50)
    assert added <= gate, (
        f"capture adds {added * 1e6:.1f} us to the handler's p50 ({off_p50 * 1e6:.0f} -> {on_p50 * 1e6:.0f} us); "
        f"gate {gate * 1e6:.1f} us"
    )


def capture_gate(handler_p50: float) -> float:
    """10 us at the reference speed, scaled up only on a host slower than that (see the constant)."""
    return GATE_CAPTURE_ADDED_S * max(1.0, handler_p50 / GATE_CAPTURE_REFERENCE_HANDLER_S)


def test_shadow_cost(onnx_handler, capsys):
    """A shadow model runs a second graph on every row: what it adds to the warm p50, against its own public
    predict() of one row measured in the same run. The shadow runs the same graph through the one-row bound
    buffers, so it may cost less than that; it should not cost much more."""
    import runtime

    shadow = runtime.load(REPO_ROOT / "models_onnx" / SHADOW_VERSION)
    app = onnx_handler.APP
    saved = app.shadow

    def switch(side: bool) -> None:
        app.shadow = shadow if side else saved

    X = _rows(1)
    predict: list[float] = []
    for _ in range(2000):
        started = time.perf_counter()
        shadow.predict(X)
        predict.append(time.perf_counter() - started)
    off_p50, on_p50 = _paired_p50(onnx_handler, EVENT, switch, capsys)
    added, predict_p50 = on_p50 - off_p50, statistics.median(predict)
    RESULTS["shadow_added_p50"], RESULTS["shadow_predict_p50"] = added, predict_p50
    assert added <= GATE_SHADOW_ADDED * predict_p50, (
        f"the shadow adds {added * 1e6:.1f} us to the handler's p50; gate {GATE_SHADOW_ADDED} x the shadow's own "
        f"predict() ({predict_p50 * 1e6:.1f} us)"
    )


def test_warm_handler_reference(benchmark, reference_handler):
    out = reference_handler.lambda_handler(EVENT)
    assert out["statusCode"] == 200
    assert json.loads(out["body"])["prediction"]["probability"] == pytest.approx(
        _expected_probability(reference_handler), abs=0
    )
    benchmark.pedantic(reference_handler.lambda_handler, args=(EVENT,), rounds=ROUNDS_REFERENCE, warmup_rounds=30)
    _record("reference_handler", benchmark)


def _rows(n: int) -> np.ndarray:
    from convert import dataset

    X, _ = dataset.load_csv(dataset.DEFAULT_CSV)
    return np.ascontiguousarray(X[:n])


def test_warm_predict_onnx(benchmark, onnx_handler, reference_handler):
    X = _rows(1)
    got = onnx_handler.APP.predictor.model.predict(X)
    np.testing.assert_allclose(got["probability"], reference_handler.MODEL.predict(X)["probability"], atol=1e-5)
    benchmark.pedantic(onnx_handler.APP.predictor.model.predict, args=(X,), rounds=ROUNDS_ONNX, warmup_rounds=300)
    _record("onnx_predict", benchmark)


def test_warm_predict_reference(benchmark, reference_handler):
    X = _rows(1)
    assert reference_handler.MODEL.predict(X)["latent"].shape == (1, 12)
    benchmark.pedantic(reference_handler.MODEL.predict, args=(X,), rounds=ROUNDS_REFERENCE, warmup_rounds=30)
    _record("reference_predict", benchmark)


@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("side", ["onnx", "reference"])
def test_batch_throughput(benchmark, side, n, onnx_handler, reference_handler):
    X = _rows(n)
    ref_model = reference_handler.MODEL
    model = onnx_handler.APP.predictor.model if side == "onnx" else ref_model
    out = model.predict(X)
    np.testing.assert_array_equal(out["label"], ref_model.predict(X)["label"])
    rounds = max(20, min(2000, 20_000 // n)) if side == "onnx" else max(10, min(200, 2000 // n))
    benchmark.pedantic(model.predict, args=(X,), rounds=rounds, warmup_rounds=5)
    RESULTS[f"{side}_rows_per_s_{n}"] = n / benchmark.stats.stats.median


COLD_SCRIPT = """
import json, runpy, sys
h = runpy.run_path({path!r})
event = json.loads(open({event!r}).read())
out = h["lambda_handler"](event, None)
assert out["statusCode"] == 200, out
sys.stdout.write("READY\\n"); sys.stdout.flush()
"""


def _cold_start(module: str) -> float:
    """Seconds from process spawn to the first response of a fresh interpreter, run in the repository (which
    puts its packages on the path)."""
    script = COLD_SCRIPT.format(path=module, event=str(REPO_ROOT / "tests/events/rest_predict.json"))
    env = dict(os.environ)
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "READY":
            elapsed = time.perf_counter() - started
            break
    else:
        raise AssertionError(f"{module}: no response (exit {proc.wait()})")
    proc.wait()
    return elapsed


@pytest.mark.parametrize(
    ("side", "module"), [("onnx", "lambda/handler.py"), ("reference", "benchmarks/reference_handler.py")]
)
def test_cold_start(benchmark, side, module):
    benchmark.pedantic(_cold_start, args=(module,), rounds=COLD_RUNS, iterations=1, warmup_rounds=1)
    RESULTS[f"{side}_cold_start"] = benchmark.stats.stats.median


def _installed_mb(roots: list[str]) -> float:
    """Installed size of the distributions ``roots`` and everything they require (no extras), in MB."""
    seen: set[str] = set()
    todo = list(roots)
    total = 0
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        dist = metadata.distribution(name)
        total += sum(f.size or 0 for f in dist.files or [])
        for req in dist.requires or []:
            if "extra ==" in req:
                continue
            dep = req.split(";")[0].split("[")[0]
            for sep in "<>=!~ (":
                dep = dep.split(sep)[0]
            try:
                metadata.distribution(dep.strip())
            except metadata.PackageNotFoundError:
                continue
            todo.append(dep.strip())
    return total / 1e6


def test_installed_size():
    runtime_reqs = [
        line.split("==")[0]
        for line in (REPO_ROOT / "requirements-runtime.txt").read_text().splitlines()
        if "==" in line
    ]
    RESULTS["onnx_installed_mb"] = _installed_mb(runtime_reqs)
    RESULTS["reference_installed_mb"] = _installed_mb(["torch", "scikit-learn", "numpy"])
    assert 0 < RESULTS["onnx_installed_mb"] < RESULTS["reference_installed_mb"]


def test_profile(onnx_handler):
    """Where the time goes (benchmarks/profile.py): every cut computes what the whole graph computes, and
    session.run's fixed cost is below the graph's. make bench prints it with the targets' bounds."""
    from pathlib import Path

    from benchmarks import profile

    rows = _rows(1000)
    model_path = Path(onnx_handler.APP.predictor.model.model_dir) / "model.onnx"
    cuts = profile.cuts(model_path)
    answers = [profile.session(cut).run(None, {"features": rows[:7]}) for _, cut in cuts]
    full = dict(zip([o.name for o in cuts[-1][1].graph.output], answers[-1], strict=True))
    for (_, cut), outs in zip(cuts, answers, strict=True):
        for spec, value in zip(cut.graph.output, outs, strict=True):
            if spec.name in full:
                np.testing.assert_array_equal(value, full[spec.name], err_msg=spec.name)
    result = profile.graph_stages(cuts, rows)
    result["imports"] = profile.import_times()
    assert 0 < result["floor_s"] < result["graph_batch_1_s"]
    assert result["imports"]["numpy_onnxruntime"] > 0
    RESULTS["profile"] = result


def test_gates():
    """(a) handler p99 <= 15 ms, (b) median <= 1 ms, (c) >= 5x faster than the reference handler in this run,
    (d) cold start <= 1 s and >= 5x faster than the reference handler's."""
    r = RESULTS
    needed = ("onnx_handler", "reference_handler", "onnx_cold_start", "reference_cold_start")
    missing = [k for k in needed if k not in r]
    assert not missing, f"run the whole benchmark module; missing results: {missing}"
    failures = []
    if r["onnx_handler_p99"] > GATE_P99_S:
        failures.append(f"handler p99 {r['onnx_handler_p99'] * 1e3:.2f} ms > {GATE_P99_S * 1e3:.0f} ms")
    if r["onnx_handler"] > GATE_MEDIAN_S:
        failures.append(f"handler median {r['onnx_handler'] * 1e3:.3f} ms > {GATE_MEDIAN_S * 1e3:.0f} ms")
    speedup = r["reference_handler"] / r["onnx_handler"]
    if speedup < GATE_SPEEDUP:
        failures.append(f"handler only {speedup:.1f}x faster than the reference (gate {GATE_SPEEDUP}x)")
    if r["onnx_cold_start"] > GATE_COLD_S:
        failures.append(f"cold start {r['onnx_cold_start']:.2f} s > {GATE_COLD_S} s")
    cold_speedup = r["reference_cold_start"] / r["onnx_cold_start"]
    if cold_speedup < GATE_COLD_SPEEDUP:
        failures.append(f"cold start only {cold_speedup:.1f}x faster than the reference (gate {GATE_COLD_SPEEDUP}x)")
    assert not failures, "; ".join(failures)
