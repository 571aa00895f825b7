"""`make power-tune`'s arithmetic and decision rule (docker/power_tune.py), and the Runtime API server's per-call
timing it relies on (docker/image_test.py). No Docker needed: the server is driven by a small client here."""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest

from runtime.contracts import ROLLBACK_P95_MS
from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "docker"))
import image_test
import power_tune as pt


def row(memory_mb: int, cost: float, p95: float = 3.0, init: float = 200.0) -> dict:
    return {"memory_mb": memory_mb, "cost_per_million_usd": cost, "warm_p95_ms": p95, "init_min_ms": init}


# --- Lambda's CPU share and billing ---
@pytest.mark.parametrize(("memory_mb", "share"), [(1769, 1.0), (1024, 0.58), (512, 0.29), (256, 0.14), (3538, 2.0)])
def test_cpu_share_is_memory_over_1769_mb(memory_mb, share):
    assert pt.cpu_share(memory_mb) == share


def test_cpu_share_refuses_less_than_lambdas_minimum():
    with pytest.raises(ValueError, match="memory_mb must be >= 128"):
        pt.cpu_share(64)


@pytest.mark.parametrize(("duration", "billed"), [(0.0, 1), (0.2, 1), (1.0, 1), (1.01, 2), (6.5, 7)])
def test_billed_duration_rounds_up_to_the_next_millisecond(duration, billed):
    assert pt.billed_ms(duration) == billed


def test_cost_per_million_by_hand():
    # Given 0.5 ms calls at 1024 MB: billed 1 ms each, 1 GB -> 1e6 x 0.001 s x 1 GB x $0.0000166667 = $0.0166667
    cost = pt.cost_per_million([0.5] * 10, 1024)
    assert cost["requests_usd"] == pytest.approx(0.20)
    assert cost["compute_usd"] == pytest.approx(0.0166667)
    assert cost["total_usd"] == pytest.approx(0.2166667)
    # Given 0.5 and 1.5 ms at 512 MB: billed 1 and 2 ms, mean 1.5 ms x 0.5 GB -> $0.0125 per million
    assert pt.cost_per_million([0.5, 1.5], 512)["compute_usd"] == pytest.approx(0.0125, rel=1e-5)


def test_cost_uses_the_prices_it_is_given():
    prices = {**pt.PRICES, "usd_per_gb_second": 0.00002, "usd_per_request": 0.0}
    assert pt.cost_per_million([2.0], 2048, prices)["total_usd"] == pytest.approx(1e6 * 0.002 * 2 * 0.00002)


def test_prices_are_dated_and_sourced():
    assert pt.PRICES["region"] == "ap-northeast-2"
    assert pt.PRICES["architecture"] == "x86_64"
    assert pt.PRICES["as_of"][:4].isdigit()
    assert "aws.amazon.com/lambda/pricing" in pt.PRICES["source"]


# --- Percentiles ---
def test_percentile_matches_numpys_linear_interpolation():
    values = np.random.default_rng(7).lognormal(size=501).tolist()
    for q in (0, 50, 95, 99, 100):
        assert pt.percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert pt.percentile(list(range(1, 101)), 95) == pytest.approx(95.05)


def test_percentile_refuses_nothing_and_out_of_range():
    with pytest.raises(ValueError, match="no values"):
        pt.percentile([], 50)
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        pt.percentile([1.0], 101)


# --- The recommendation rule ---
def test_recommends_the_cheapest_setting_within_both_limits():
    rows = [row(256, 0.21, init=1700), row(512, 0.22, p95=25), row(1024, 0.24), row(1769, 0.27)]
    best, why = pt.recommend(rows, p95_limit_ms=20, init_limit_ms=500)
    assert best is not None
    assert best["memory_mb"] == 1024
    assert "256 MB (p95 3.0 ms, INIT 1700 ms)" in why
    assert "512 MB (p95 25.0 ms" in why


def test_a_limit_reached_exactly_still_fits():
    best, _ = pt.recommend([row(512, 0.22, p95=20.0, init=500.0), row(1024, 0.24)], 20, 500)
    assert best is not None
    assert best["memory_mb"] == 512


def test_equal_cost_goes_to_more_memory():
    best, _ = pt.recommend([row(1024, 0.2400001), row(1769, 0.24)], 20, 500)
    assert best is not None
    assert best["memory_mb"] == 1769


def test_no_setting_within_the_limits_is_no_recommendation():
    best, why = pt.recommend([row(256, 0.21, init=1700), row(512, 0.22, p95=90)], 20, 500)
    assert best is None
    assert why == "no setting kept warm p95 <= 20 ms and fastest INIT <= 500 ms"


def test_the_default_rule_is_a_wide_margin_under_the_alarm():
    assert pytest.approx(ROLLBACK_P95_MS / 5) == pt.P95_LIMIT_MS
    assert pt.INIT_LIMIT_MS <= 500


# --- What the container is given, the table, the CLI ---
def test_docker_limits_give_lambdas_share_memory_without_swap_and_the_production_env():
    args = pt.docker_limits(1024)
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    assert pairs["--cpus"] == "0.58"
    assert pairs["--memory"] == pairs["--memory-swap"] == "1024m"
    env = {a for a, flag in zip(args[1:], args, strict=False) if flag == "-e"}
    assert {"CAPTURE_PREDICTIONS=true", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1024"} <= env


def test_table_has_a_row_per_setting():
    full = {
        "cpu_share": 0.58,
        "init_ms": 400.0,
        "cold_start_ms": 700.0,
        "warm_p50_ms": 2.0,
        "warm_p99_ms": 5.0,
        "handler_p50_ms": 0.6,
        "mean_billed_ms": 2.5,
    }
    text = pt.table([{**row(1024, 0.2411), **full}, {**row(1769, 0.27), **full}])
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[2].startswith("| 1024 MB | 0.58 | 200 / 400 ms | 700 ms | 2.00 ms | 3.00 ms | 5.00 ms | 0.60 ms")
    assert lines[2].endswith("| 0.2411 |")


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--warm", "5"], "--warm must be >= 20"), (["--memory", "64"], "within Lambda's 128..10240 MB")],
)
def test_cli_refuses_settings_that_cannot_measure(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        pt.parse_args(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


# --- The Runtime API server's timing (what the warm figures are made of) ---
def _runtime_client(address: str, calls: int, work_s: float) -> None:
    """A stand-in runtime: fetch an event, 'work', post the result; ``calls`` times."""
    for _ in range(calls):
        with urllib.request.urlopen(f"http://{address}{image_test.API}/invocation/next", timeout=10) as reply:
            request_id = reply.headers["Lambda-Runtime-Aws-Request-Id"]
        time.sleep(work_s)
        url = f"http://{address}{image_test.API}/invocation/{request_id}/response"
        body = json.dumps({"statusCode": 200}).encode()
        urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=10).close()


def test_runtime_api_times_each_call_and_paces_the_events():
    # Given a server pacing 5 events 50 ms apart and a runtime that takes 10 ms per call
    api = image_test.RuntimeAPI([{"n": i} for i in range(5)], interval_s=0.05)
    started = time.perf_counter()
    client = threading.Thread(target=_runtime_client, args=(api.address, 5, 0.01))
    client.start()
    try:
        assert api.done.wait(10)
    finally:
        client.join(10)
        api.close()
    # Then every call is timed from handing out its event to its result (>= the 10 ms of work, well under the pace)
    assert len(api.durations_ms) == 5
    assert all(10 <= d < 45 for d in api.durations_ms), api.durations_ms
    # And the pacing holds the 5 events at least 4 x 50 ms apart in all
    assert time.perf_counter() - started >= 0.2
    assert api.first_next_epoch is not None
    assert api.init_s is None  # no container start time was read


def test_docker_time_parses_nanoseconds_and_refuses_the_zero_time():
    assert image_test.docker_time_epoch("1970-01-01T00:00:10.123456789Z") == pytest.approx(10.123456789)
    assert image_test.docker_time_epoch("2026-11-26T05:17:11.5Z\n") == pytest.approx(1795670231.5)
    assert image_test.docker_time_epoch("0001-01-01T00:00:00Z") is None
    assert image_test.docker_time_epoch("") is None
