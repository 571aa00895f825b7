"""serving/http.py: routing, body limits, base64, media types and hostile envelope fields, through the handler
(the status a client sees) and on the pure functions. numpy + onnxruntime only."""

from __future__ import annotations

import base64
import copy
import json

import pytest

from serving import http
from tests.conftest import EVENTS_DIR, make_app


class Ctx:
    aws_request_id = "req-proxy"


def envelope(name: str) -> dict:
    return json.loads((EVENTS_DIR / name).read_text())


REST, HTTP, URL = "rest_predict.json", "http_api_predict.json", "function_url_predict.json"
GOOD_BODY = envelope(REST)["body"]


def call(event: dict, app=None) -> tuple[int, dict]:
    out = (app or make_app()).handle(event, Ctx())
    return out["statusCode"], json.loads(out["body"])


def with_path(name: str, path: object, stage: str | None = None) -> dict:
    event = envelope(name)
    key = "path" if name == REST else "rawPath"
    event[key] = path
    if stage is not None:
        event["requestContext"]["stage"] = stage
    return event


# --- routing: the declared resources, a stage prefix, nothing broader ------------------------------------------


@pytest.mark.parametrize("name", [REST, HTTP, URL])
@pytest.mark.parametrize("path", ["/predict", "/prod/predict"])
def test_predict_answers_on_its_resource_and_behind_the_stage(name, path):
    status, body = call(with_path(name, path, stage="prod"))
    assert status == 200, body
    assert "prediction" in body or "predictions" in body


@pytest.mark.parametrize(
    "path", ["/admin/predict", "/health/../predict", "/predict/", "/predictx", "/dev/predict", "predict", "", "/"]
)
def test_anything_broader_than_the_declared_resources_is_404(path):
    status, body = call(with_path(HTTP, path, stage="prod"))
    assert status == 404, body
    assert body["error"]["type"] == "NotFound"


def test_the_wrong_method_is_405_naming_the_method_the_route_answers():
    event = envelope(REST)
    event["httpMethod"] = "DELETE"
    status, body = call(event)
    assert status == 405
    assert body["error"]["message"] == "DELETE /predict: /predict answers POST"


# --- hostile envelope fields: 400, never a crash ---------------------------------------------------------------


@pytest.mark.parametrize("context", [None, [], "ctx", 7])
def test_a_request_context_that_is_not_an_object_is_400(context):
    event = envelope(HTTP)
    event["requestContext"] = context
    status, body = call(event)
    if context is None:  # absent context: the path alone routes (payload 1.0 without a context)
        assert status in {400, 404}
    else:
        assert status == 400
        assert body["error"]["details"][0]["field"] == "requestContext"


@pytest.mark.parametrize("path", [None, 7, ["/predict"], {"p": 1}])
@pytest.mark.parametrize("name", [REST, HTTP])
def test_a_path_that_is_not_a_string_is_400(name, path):
    status, body = call(with_path(name, path))
    assert status == 400
    assert body["error"]["details"][0]["field"] == "path"


@pytest.mark.parametrize("text", ["/pre\ud800dict", "/\udfff", "/predict\x00", "/\u202epredict"])
def test_lone_surrogates_and_control_characters_in_the_path_are_answered_escaped(text):
    status, body = call(with_path(HTTP, text))
    assert status == 404
    assert json.dumps(body).isascii() or "\ud800" not in json.dumps(body)
    body["error"]["message"].encode("utf-8")  # valid UTF-8: no lone surrogate survives


def test_a_surrogate_in_the_method_is_a_4xx():
    event = envelope(HTTP)
    event["requestContext"]["http"]["method"] = "PO\ud800ST"
    status, body = call(event)
    assert status == 405
    body["error"]["message"].encode("utf-8")


# --- body size: bytes, not characters; the exact base64 bound --------------------------------------------------


def test_the_limit_counts_utf8_bytes_not_characters():
    event = envelope(REST)
    event["body"] = '{"x": "' + "\u20ac" * 400 + '"}'  # 408 characters, 1,210 bytes
    status, body = call(event, make_app(max_body_bytes=1000))
    assert status == 413
    assert body["error"]["type"] == "PayloadTooLarge"


def test_a_body_of_exactly_the_limit_passes_as_text_and_as_base64():
    payload = GOOD_BODY.encode()
    padded = payload + b" " * (3 * 1000 + 1 - len(payload))  # 3001 bytes: base64 needs padding
    exact = make_app(max_body_bytes=len(padded))
    event = envelope(REST)
    event["body"] = padded.decode()
    assert call(event, exact)[0] == 200
    event["body"], event["isBase64Encoded"] = base64.b64encode(padded).decode(), True
    assert call(event, exact)[0] == 200
    assert call(event, make_app(max_body_bytes=len(padded) - 1))[0] == 413


@pytest.mark.parametrize("flag", ["false", "true", 1, 0, None, [], {}])
def test_is_base64_encoded_must_be_a_boolean(flag):
    event = envelope(REST)
    event["isBase64Encoded"] = flag
    status, body = call(event)
    assert status == 400, body  # null is not a boolean either
    assert body["error"]["details"][0]["field"] == "isBase64Encoded"


# --- media type ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json", 200),
        ("Application/JSON; charset=utf-8", 200),
        ("application/vnd.plant+json", 200),
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("", 415),
    ],
)
def test_a_content_type_other_than_json_is_415(content_type, status):
    event = envelope(HTTP)
    event["headers"] = {**event.get("headers", {}), "content-type": content_type}
    got, body = call(event)
    assert got == status, body
    rest = envelope(REST)
    rest["headers"] = {"Content-Type": content_type}
    assert call(rest)[0] == status


def test_duplicate_json_keys_the_last_one_wins():
    features = json.loads(GOOD_BODY)["features"]
    text = json.dumps({"features": features})[:-1] + ', "features": ' + json.dumps(features) + "}"
    event = envelope(REST)
    event["body"] = text
    assert call(event)[0] == 200


# --- the pure functions --------------------------------------------------------------------------------------------


def test_printable_escapes_what_cannot_be_shown():
    assert http.printable("/predict") == "/predict"
    assert http.printable("a\ud800b") == "a\\ud800b"
    assert http.printable("x" * 500, 10) == "x" * 10
    assert http.printable(["/p"]) == "list"


def test_routes_are_exactly_the_template_s():
    assert http.ROUTES == {"/predict": "POST", "/health": "GET"}
    assert http.route_of("GET", "/v2/health", "v2") == "/health"
    with pytest.raises(http.RouteNotFoundError):
        http.route_of("GET", "/v2/health", "prod")


def test_events_are_not_mutated():
    event = envelope(HTTP)
    before = copy.deepcopy(event)
    call(event)
    assert event == before


def test_the_response_body_is_written_even_when_client_text_cannot_be_encoded():
    """The last line of defence behind the escaping at the source: a lone surrogate anywhere in a body."""
    text = http.dumps({"error": {"message": "bad key \ud800", "details": [{"field": "\udfff"}]}})
    assert json.loads(text) == {"error": {"message": "bad key \\ud800", "details": [{"field": "\\udfff"}]}}
