"""Memory sized by measurement (AWS Lambda Power Tuning, locally): the slim image under Lambda's CPU share per size.

Lambda gives a function CPU in proportion to its memory, one full vCPU at 1,769 MB. For each memory setting the
built image runs under `docker run --cpus=<MB/1769> --memory=<MB>m` against image_test.py's Lambda Runtime API
server, with the template's production environment (prediction capture on):

- cold start, in --cold-runs fresh containers: INIT (process start -> the runtime's first /next, i.e. Python,
  awslambdaric, the handler's imports and the model load; fastest and median) and `docker run` -> first response
  (median);
- warm: --warm calls after --warmup discarded ones in one container, paced at --rate per second (default: the API
  throttle's 100/s, all of it on one environment); the server times each call from handing out the event to
  receiving the result (what Lambda's Duration covers, plus this server's own HTTP handling), and the handler's
  own processing_time_ms is kept beside it;
- cost per million predictions at the region's x86 prices (PRICES below, dated, with their source): the request
  fee plus each call's duration rounded up to the next millisecond (Lambda's billing) x GB x the GB-second price.

It recommends the cheapest setting whose warm p95 stays under P95_MARGIN of the rollback alarm's 100 ms and whose
fastest INIT stays under INIT_LIMIT_MS, prints a table and writes build/power-tune/power-tune.json.
Run as root on a machine with Docker: `make power-tune` (which builds the image first).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import image_test  # docker/image_test.py: the build steps and the Runtime API server, reused as they are

from runtime.contracts import ROLLBACK_P95_MS

# --- Constants: the settings tried, the recommendation rule, and the prices it is costed at ---
FULL_VCPU_MB = 1769  # Lambda: one full vCPU at 1,769 MB, CPU share proportional to memory below that
MEMORY_SETTINGS_MB = (256, 512, 1024, 1769)
P95_MARGIN = 0.2  # "a wide margin": warm p95 at most a fifth of the rollback alarm's line
P95_LIMIT_MS = ROLLBACK_P95_MS * P95_MARGIN
# INIT at most half the benchmark's 1 s cold-start gate: on Lambda a container image's cold start adds fetching the
# image to what is measured here (not measurable locally), so the local figure must leave that room. The rule reads
# the fastest of the cold runs: neighbours on this shared machine only ever add time to a run.
INIT_LIMIT_MS = 500.0
API_RATE_LIMIT = 100.0  # template.yaml ThrottlingRateLimit (requests/s): the most one environment can be sent
PRICES = {
    "region": "ap-northeast-2",
    "architecture": "x86_64",
    "usd_per_gb_second": 0.0000166667,  # first tier (up to 6 billion GB-seconds a month)
    "usd_per_request": 0.20 / 1_000_000,
    "as_of": "2026-11-26",
    # AWS's page renders regional prices in the browser; its worked examples and the AWS pricing whitepaper give
    # $0.0000166667/GB-s and $0.20/M, and price tables built from the page (e.g. artillery's Lambda price table)
    # list Seoul at that base rate. Not read from the live page for Seoul itself: check it before quoting a bill.
    "source": (
        "https://aws.amazon.com/lambda/pricing/ and docs.aws.amazon.com/whitepapers/latest/how-aws-pricing-works/"
        "lambda.html: x86 duration (first tier) and requests; free tier and Savings Plans not applied"
    ),
}
EVENT = image_test.REPO / "tests" / "events" / "rest_predict.json"  # an API Gateway POST /predict, as in production
OUT = image_test.REPO / "build" / "power-tune" / "power-tune.json"
CONTAINER_ENV = {"CAPTURE_PREDICTIONS": "true", "LOG_LEVEL": "INFO"}  # the template's defaults


# --- Pure arithmetic and the decision rule (unit-tested in tests/test_power_tune.py) ---
def cpu_share(memory_mb: int) -> float:
    """Lambda's CPU share for ``memory_mb`` as docker's ``--cpus``: MB / 1,769 (one full vCPU at 1,769 MB)."""
    if memory_mb < 128:
        raise ValueError(f"memory_mb must be >= 128 (Lambda's minimum), got {memory_mb}")
    return round(memory_mb / FULL_VCPU_MB, 2)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between the closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def billed_ms(duration_ms: float) -> int:
    """Lambda bills each invocation's duration rounded up to the next millisecond."""
    return max(1, math.ceil(duration_ms))


def cost_per_million(durations_ms: Sequence[float], memory_mb: int, prices: dict = PRICES) -> dict[str, float]:
    """USD per million invocations like those measured: request fee + mean billed duration x GB x GB-second price."""
    mean_billed_s = statistics.fmean(billed_ms(d) for d in durations_ms) / 1000
    requests = 1_000_000 * prices["usd_per_request"]
    compute = 1_000_000 * mean_billed_s * (memory_mb / 1024) * prices["usd_per_gb_second"]
    return {"requests_usd": requests, "compute_usd": compute, "total_usd": requests + compute}


def recommend(
    rows: Sequence[dict], p95_limit_ms: float = P95_LIMIT_MS, init_limit_ms: float = INIT_LIMIT_MS
) -> tuple[dict | None, str]:
    """The cheapest row (ties to 1e-6 $: more memory) with warm p95 and INIT within the limits, and why."""
    fits = [r for r in rows if r["warm_p95_ms"] <= p95_limit_ms and r["init_min_ms"] <= init_limit_ms]
    limits = f"warm p95 <= {p95_limit_ms:g} ms and fastest INIT <= {init_limit_ms:g} ms"
    if not fits:
        return None, f"no setting kept {limits}"
    best = min(fits, key=lambda r: (round(r["cost_per_million_usd"], 6), -r["memory_mb"]))
    why = f"{best['memory_mb']} MB: the cheapest (${best['cost_per_million_usd']:.4f} per million) with {limits}"
    outside = [f"{r['memory_mb']} MB (p95 {r['warm_p95_ms']:.1f} ms, INIT {r['init_min_ms']:.0f} ms)" for r in rows]
    outside = [text for text, r in zip(outside, rows, strict=True) if r not in fits]
    return best, why + (f"; outside: {', '.join(outside)}" if outside else "")


def table(rows: Sequence[dict]) -> str:
    """The measurements as a Markdown table, one row per memory setting."""
    lines = [
        "| memory | CPU share | INIT fastest / median | docker run -> 1st answer | warm p50 | warm p95 | warm p99 "
        "| handler p50 | mean billed | $ per million |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['memory_mb']} MB | {r['cpu_share']:.2f} | {r['init_min_ms']:,.0f} / {r['init_ms']:,.0f} ms "
            f"| {r['cold_start_ms']:,.0f} ms "
            f"| {r['warm_p50_ms']:.2f} ms | {r['warm_p95_ms']:.2f} ms | {r['warm_p99_ms']:.2f} ms "
            f"| {r['handler_p50_ms']:.2f} ms | {r['mean_billed_ms']:.2f} ms | {r['cost_per_million_usd']:.4f} |"
        )
    return "\n".join(lines)


# --- Measurement through the Runtime API ---
def docker_limits(memory_mb: int) -> list[str]:
    """`docker run` arguments that give the container Lambda's CPU share and memory (no swap) for ``memory_mb``."""
    env = [arg for k, v in {**CONTAINER_ENV, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb)}.items()
           for arg in ("-e", f"{k}={v}")]  # fmt: skip
    limits = ["--cpus", f"{cpu_share(memory_mb)}", "--memory", f"{memory_mb}m", "--memory-swap", f"{memory_mb}m"]
    return limits + env


def _require_ok(api: image_test.RuntimeAPI, what: str) -> None:
    bad = [(kind, payload) for kind, payload in api.responses if kind != "response" or payload.get("statusCode") != 200]
    if bad:
        raise SystemExit(f"{what}: {len(bad)} call(s) did not answer 200, first: {json.dumps(bad[0])[:500]}")


def cold_starts_ms(image: str, memory_mb: int, runs: int) -> tuple[list[float], list[float]]:
    """Per fresh container: `docker run` -> first response, and process start -> ready (INIT), in ms."""
    event = json.loads(EVENT.read_text())
    totals, inits = [], []
    for _ in range(runs):
        api, seconds = image_test.run_container(image, [event], *docker_limits(memory_mb), name_prefix="diecast-pt")
        _require_ok(api, f"cold start at {memory_mb} MB")
        if api.init_s is None:
            raise SystemExit(f"cold start at {memory_mb} MB: the container's start time could not be read")
        totals.append(seconds * 1000)
        inits.append(api.init_s * 1000)
    return totals, inits


def warm_calls_ms(image: str, memory_mb: int, warmup: int, calls: int, rate: float) -> tuple[list[float], list[float]]:
    """``calls`` warm invocations at ``rate`` per second (0: back to back), after the first (cold) one and ``warmup``
    more are discarded: each call's duration through the Runtime API and the handler's own processing_time_ms."""
    event = json.loads(EVENT.read_text())
    api, _ = image_test.run_container(
        image,
        [event] * (1 + warmup + calls),
        *docker_limits(memory_mb),
        timeout=600,
        name_prefix="diecast-pt",
        interval_s=1 / rate if rate else 0.0,
    )
    _require_ok(api, f"warm calls at {memory_mb} MB")
    handler = [json.loads(payload["body"])["processing_time_ms"] for _, payload in api.responses[1 + warmup :]]
    return api.durations_ms[1 + warmup :], handler


def harness_floor_ms(image: str, calls: int, rate: float) -> list[float]:
    """Durations of a handler that does nothing, in the same image at one full vCPU: what awslambdaric and this
    Runtime API server add to every measured call (Lambda's own Runtime API is not this server)."""
    event = json.loads(EVENT.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "noop.py").write_text('def handler(event, context):\n    return {"statusCode": 200}\n')
        os.chmod(tmp, 0o755)
        api, _ = image_test.run_container(
            image,
            [event] * (1 + calls),
            *docker_limits(FULL_VCPU_MB),
            "-v", f"{tmp}/noop.py:/var/task/noop.py:ro",
            name_prefix="diecast-pt",
            interval_s=1 / rate if rate else 0.0,
            command=("noop.handler",),
        )  # fmt: skip
    _require_ok(api, "the no-op handler")
    return api.durations_ms[1:]


@dataclass(frozen=True)
class Load:
    """What each memory setting is put through: ``warm`` timed calls after ``warmup`` untimed ones, at ``rate`` per
    second (0: back to back), and ``cold_runs`` fresh containers."""

    warm: int = 2000
    warmup: int = 200
    cold_runs: int = 5
    rate: float = API_RATE_LIMIT


def measure(image: str, memory_mb: int, load: Load) -> dict:
    started = time.perf_counter()
    cold, init = cold_starts_ms(image, memory_mb, load.cold_runs)
    warm, handler = warm_calls_ms(image, memory_mb, load.warmup, load.warm, load.rate)
    cost = cost_per_million(warm, memory_mb)
    return {
        "memory_mb": memory_mb,
        "cpu_share": cpu_share(memory_mb),
        "cold_start_ms": statistics.median(cold),
        "init_ms": statistics.median(init),
        "init_min_ms": min(init),
        "cold_start_runs_ms": [round(t, 1) for t in cold],
        "init_runs_ms": [round(t, 1) for t in init],
        "warm_calls": len(warm),
        "warm_p50_ms": percentile(warm, 50),
        "warm_p95_ms": percentile(warm, 95),
        "warm_p99_ms": percentile(warm, 99),
        "warm_max_ms": max(warm),
        "handler_p50_ms": percentile(handler, 50),
        "handler_p95_ms": percentile(handler, 95),
        "mean_billed_ms": statistics.fmean(billed_ms(d) for d in warm),
        "cost_per_million_usd": cost["total_usd"],
        "cost_per_million_breakdown_usd": cost,
        "seconds": round(time.perf_counter() - started, 1),
    }


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "load_average": os.getloadavg()}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python docker/power_tune.py",
        description=__doc__.split("\n\n")[0],
        epilog="Writes build/power-tune/power-tune.json; exit code 1 when no setting meets the rule.",
    )
    parser.add_argument("--image", default=image_test.SLIM, help="image tag to measure (default: %(default)s)")
    parser.add_argument("--no-build", action="store_true", help="measure --image as it is, without building it")
    parser.add_argument(
        "--memory", type=int, nargs="+", default=list(MEMORY_SETTINGS_MB), help="MB settings (default: %(default)s)"
    )
    parser.add_argument("--warm", type=int, default=2000, help="timed warm calls per setting (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed calls first (default: %(default)s)")
    parser.add_argument("--cold-runs", type=int, default=5, help="cold starts per setting (default: %(default)s)")
    parser.add_argument(
        "--rate",
        type=float,
        default=API_RATE_LIMIT,
        help="warm calls per second into the one container, 0 for back to back (default: %(default)s, the API "
        "throttle's steady rate, all of it on one execution environment)",
    )
    parser.add_argument(
        "--p95-limit-ms",
        type=float,
        default=P95_LIMIT_MS,
        help="recommend only settings whose warm p95 is at most this (default: %(default)s, a fifth of the alarm)",
    )
    parser.add_argument(
        "--init-limit-ms",
        type=float,
        default=INIT_LIMIT_MS,
        help="... and whose INIT is at most this (default: %(default)s, half the 1 s cold-start gate)",
    )
    parser.add_argument("--out", type=Path, default=OUT, help="JSON output (default: build/power-tune/power-tune.json)")
    args = parser.parse_args(argv)
    if args.warm < 20 or args.warmup < 0 or args.cold_runs < 1 or args.rate < 0:
        parser.error("--warm must be >= 20 (a p95 needs calls), --warmup >= 0, --cold-runs >= 1, --rate >= 0")
    if min(args.memory) < 128 or max(args.memory) > 10240:
        parser.error("--memory settings must be within Lambda's 128..10240 MB")
    return args


def run(
    image: str,
    memory_settings_mb: Sequence[int] = MEMORY_SETTINGS_MB,
    load: Load = Load(),  # frozen: one shared default is safe
    p95_limit_ms: float = P95_LIMIT_MS,
    init_limit_ms: float = INIT_LIMIT_MS,
) -> dict:
    """Measure every setting and the harness floor; the report that power-tune.json holds."""
    load_before = os.getloadavg()
    rows = []
    for memory_mb in sorted(set(memory_settings_mb)):
        rows.append(measure(image, memory_mb, load))
        print(f"{memory_mb} MB: warm p95 {rows[-1]['warm_p95_ms']:.2f} ms, INIT {rows[-1]['init_min_ms']:.0f} ms "
              f"({rows[-1]['seconds']:.0f} s)", flush=True)  # fmt: skip
    floor = harness_floor_ms(image, load.warm, load.rate)
    best, why = recommend(rows, p95_limit_ms, init_limit_ms)
    return {
        "image": image,
        "machine": {**machine(), "load_average_before": load_before},
        "load": f"{load.warm} warm calls per setting at {load.rate:g}/s (0: back to back) after {load.warmup} "
        f"untimed; {load.cold_runs} cold starts; event {EVENT.name}; env {CONTAINER_ENV}",
        "prices": PRICES,
        "rule": {"warm_p95_limit_ms": p95_limit_ms, "init_limit_ms": init_limit_ms},
        "settings": rows,
        "harness_floor_ms": {"p50": percentile(floor, 50), "p95": percentile(floor, 95)},
        "recommended_memory_mb": best["memory_mb"] if best else None,
        "recommendation": why,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    if not args.no_build:
        image_test.build_slim(args.image)
    load = Load(warm=args.warm, warmup=args.warmup, cold_runs=args.cold_runs, rate=args.rate)
    report = run(args.image, args.memory, load, args.p95_limit_ms, args.init_limit_ms)
    report["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    floor = report["harness_floor_ms"]
    print(table(report["settings"]))
    print(f"harness floor (a no-op handler through awslambdaric and this Runtime API server, 1 vCPU): "
          f"p50 {floor['p50']:.2f} ms, p95 {floor['p95']:.2f} ms")  # fmt: skip
    print(f"recommendation: {report['recommendation']}")
    print(f"prices: {PRICES['region']} {PRICES['architecture']} as of {PRICES['as_of']}; {report['seconds']:.0f} s; "
          f"wrote {args.out}")  # fmt: skip
    return 0 if report["recommended_memory_mb"] else 1


if __name__ == "__main__":
    sys.exit(main())
