"""T1's hostile-input properties for the explain function: generated direct and proxy events must never raise,
never answer 5xx, never carry a non-finite number, and leave the application answering a good event as before."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import EVENTS_DIR
from tests.test_explain import explain_app, good_row
from tests.test_hostile import direct_payloads, junk, nasty_text

EXAMPLES = 50  # per test: an answered example costs an explanation (~2,000 graph rows), a refused one little
ENVELOPES = [EVENTS_DIR / "explain" / name for name in ("rest_explain.json", "rest_importance.json")]
BASELINE: dict = {}


def _answer(event: object) -> tuple[int, object]:
    out = explain_app().handle(event)
    if "headers" in out:
        return out["statusCode"], json.loads(out["body"])
    return out.get("statusCode", 200), out


def _finite(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return value is not None


def _stable() -> dict:
    _, body = _answer({"features": good_row()})
    assert isinstance(body, dict)
    return {k: v for k, v in body.items() if k != "processing_time_ms"}


def check(event: object) -> None:
    if not BASELINE:
        BASELINE.update(_stable())
    try:
        status, body = _answer(event)
    except Exception as exc:
        pytest.fail(f"the explain handler raised {type(exc).__name__}: {exc}")
    assert status < 500, body
    assert isinstance(body, dict)
    if status >= 400:
        assert set(body["error"]) == {"type", "message", "details", "request_id"}
    else:
        explanations = body.get("explanations") or [body.get("explanation")]
        assert all(e is None or _finite(e["contributions"]) for e in explanations), body
    assert _stable() == BASELINE, "a good request answered differently after a bad one"


@st.composite
def proxy_events(draw) -> dict:
    event = json.loads(draw(st.sampled_from(ENVELOPES)).read_text())
    for mutation in draw(st.lists(st.sampled_from(["body", "path", "method", "b64", "headers"]), max_size=3)):
        if mutation == "body":
            try:
                event["body"] = json.dumps(draw(direct_payloads), allow_nan=draw(st.booleans()))
            except (TypeError, ValueError, RecursionError):
                event["body"] = draw(nasty_text)
        elif mutation == "path":
            event["path"] = draw(nasty_text | junk | st.sampled_from(["/predict", "/health", "/x/../explain"]))
        elif mutation == "method":
            event["httpMethod"] = draw(nasty_text | junk | st.sampled_from(["GET", "POST", "PUT"]))
        elif mutation == "b64":
            event["isBase64Encoded"] = draw(junk)
        else:
            event["headers"] = draw(st.dictionaries(st.sampled_from(["Content-Type", "x"]), junk))
    return event


SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(payload=direct_payloads)
def test_direct_invocations(payload):
    check(payload)


@SETTINGS
@given(event=proxy_events())
def test_proxy_events(event):
    check(event)
