"""A generated hostile-input campaign against ``lambda_handler``: over 1,000 events (hypothesis, built on the recorded
API Gateway / Function URL envelopes in tests/events/), each of which must

- never raise, and never answer 5xx (every one is the client's doing);
- never carry a non-finite number (a NaN would reach a proxy body as ``null``);
- leave the handler as it was: a good event answers identically right after each bad one.

Half of it runs with ``LOG_LEVEL=DEBUG``, where the rejected payload is logged: logging must never raise either.
"""

from __future__ import annotations

import json
import logging
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import EVENTS_DIR, make_app

EXAMPLES = 220  # per test; 5 generated tests -> 1,100 events, plus the recorded ones


class Ctx:
    aws_request_id = "req-hostile"


def load(name: str) -> dict:
    return json.loads((EVENTS_DIR / name).read_text())


ENVELOPES = ["rest_predict.json", "http_api_predict.json", "function_url_predict.json", "rest_health.json"]
NAMES = list(make_app().names)
GOOD = load("direct_named.json")


def _answer(event: object, app=None) -> tuple[int, object]:
    out = (app or make_app()).handle(event, Ctx())
    if "headers" in out:
        return out["statusCode"], json.loads(out["body"])
    return out.get("statusCode", 200), out


def _stable(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "processing_time_ms"}


BASELINE = _stable(_answer(GOOD)[1])


def _all_finite(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_all_finite(v) for v in value)
    return True


def _prediction_numbers_are_numbers(body: object) -> bool:
    """A proxy body loses NaN to ``null``: in an answer, every probability, latent and weight is a number."""
    if not isinstance(body, dict):
        return True
    rows = body.get("predictions") or ([body] if "prediction" in body else [])
    for row in rows:
        numbers = [row["prediction"]["probability"], *row["latent_features"], *row["attention_weights"].values()]
        if not all(isinstance(v, float) and math.isfinite(v) for v in numbers):
            return False
    return True


def check(event: object, app=None) -> None:
    try:
        status, body = _answer(event, app)
    except Exception as exc:  # the campaign's first property: nothing ever raises
        pytest.fail(f"lambda_handler raised {type(exc).__name__}: {exc}")
    assert status < 500, body
    assert _all_finite(body), body
    assert _prediction_numbers_are_numbers(body), body
    if status >= 400:
        assert set(body["error"]) == {"type", "message", "details", "request_id"}
        json.dumps(body["error"]["message"]).encode("utf-8")
    assert _stable(_answer(GOOD, app)[1]) == BASELINE, "a good request answered differently after a bad one"


@pytest.fixture(params=["INFO", "DEBUG"])
def log_level(request):
    """The application at this log level (at DEBUG it logs each rejected payload)."""
    logging.getLogger("diecast").setLevel(request.param)
    yield make_app(log_level=request.param)
    logging.getLogger("diecast").setLevel(logging.INFO)


# --- strategies ----------------------------------------------------------------------------------------------------

nasty_text = st.text(
    alphabet=st.characters(blacklist_categories=()),  # surrogates and control characters included
    max_size=12,
)
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | nasty_text
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text, inner, max_size=4),
    max_leaves=12,
)
# Readings that parse and validate as numbers, from ordinary to overflow-sized: the NaN campaign (D1).
extreme = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**80), 2**80)
ordinary = st.floats(-1e3, 1e4, allow_nan=False)


@st.composite
def extreme_rows(draw) -> dict:
    row = dict(GOOD["features"])
    for name in draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6, unique=True)):
        row[name] = draw(extreme | ordinary)
    return row


@st.composite
def deep(draw) -> object:
    value: object = draw(scalars)
    for _ in range(draw(st.integers(200, 1200))):
        value = [value] if draw(st.booleans()) else {"k": value}
    return value


direct_payloads = st.one_of(
    junk,
    deep(),
    st.fixed_dictionaries({"features": junk}),
    st.fixed_dictionaries({"features": extreme_rows()}),
    st.fixed_dictionaries({"instances": st.lists(extreme_rows() | junk, min_size=1, max_size=4)}),
    st.fixed_dictionaries({"inference_id": junk | nasty_text, "features": extreme_rows()}),
    st.dictionaries(st.integers() | nasty_text, junk, max_size=3),  # non-string keys (a Python caller)
)


@st.composite
def proxy_events(draw) -> dict:
    event = load(draw(st.sampled_from(ENVELOPES)))
    v2 = "rawPath" in event
    mutations = draw(st.lists(st.sampled_from(["body", "path", "method", "context", "b64", "headers"]), max_size=4))
    if "body" in mutations or not mutations:
        payload = draw(direct_payloads)
        try:
            event["body"] = json.dumps(payload, allow_nan=draw(st.booleans()))
        except (TypeError, ValueError, RecursionError):
            event["body"] = draw(nasty_text)
    if "path" in mutations:
        event["rawPath" if v2 else "path"] = draw(
            nasty_text | junk | st.sampled_from(["/admin/predict", "/p/../predict"])
        )
    if "method" in mutations:
        if v2:
            event["requestContext"]["http"]["method"] = draw(nasty_text | junk)
        else:
            event["httpMethod"] = draw(nasty_text | junk)
    if "context" in mutations:
        event["requestContext"] = draw(junk)
    if "b64" in mutations:
        event["isBase64Encoded"] = draw(junk)
    if "headers" in mutations:
        event["headers"] = draw(st.dictionaries(st.sampled_from(["Content-Type", "content-type", "x"]), junk))
    return event


SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(payload=direct_payloads)
def test_direct_invocations(log_level, payload):
    check(payload, log_level)


@SETTINGS
@given(event=proxy_events())
def test_proxy_events(log_level, event):
    check(event, log_level)


@SETTINGS
@given(row=extreme_rows())
def test_extreme_readings_never_answer_nan(row):
    check({"features": row})
    check({"instances": [row, GOOD["features"]]})


@pytest.mark.parametrize("name", sorted(p.name for p in EVENTS_DIR.glob("*.json")))
def test_every_recorded_event(log_level, name):
    check(load(name), log_level)


def test_the_d1_readings_are_refused_not_answered():
    """The readings that made the float32 encoder overflow before: each now answers 422 naming the feature."""
    for name, value in (("Process_SlowShotSpeed", 2.4e4), ("Process_Temperature", 1e21), ("Process_Pressure", -1e6)):
        row = dict(GOOD["features"], **{name: value})
        status, body = _answer({"features": row})
        assert status == 422, body
        assert body["error"]["type"] == "ReadingOutOfEnvelope"
        assert body["error"]["details"][0]["field"] == name
