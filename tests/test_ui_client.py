"""The UI's client: the embedded back end answers as the handler does; the deployed back end signs every request
with SigV4 (checked by a local stub that recomputes the signature), retries 429/5xx with backoff, and fails with a
message naming the fix when the API is unreachable, slow, or refuses the credentials."""

from __future__ import annotations

import json
import socket

import pytest
from botocore.credentials import Credentials

from serving.app import App
from serving.settings import Settings
from tests import ui_stub
from tests.conftest import make_app
from ui import client as clients
from ui import form

SAMPLE = {"features": form.sample_part()}


@pytest.fixture
def app() -> App:
    return make_app()


@pytest.fixture
def api(app):
    with ui_stub.StubApi(app) as stub:
        yield stub


def deployed(url: str, secret: str = ui_stub.SECRET_KEY, **kw) -> clients.Deployed:
    credentials = Credentials(ui_stub.ACCESS_KEY, secret)
    return clients.Deployed(url, ui_stub.REGION, credentials=credentials, backoff_s=0.01, **kw)


def test_embedded_answers_as_the_handler_does(app):
    # Given the sample part, When the embedded client predicts, Then its reply is the handler's REST answer.
    reply = clients.Embedded(Settings().model_dir).predict(SAMPLE)
    direct = app.handle(SAMPLE)
    assert reply.status == 200
    assert reply.body["prediction"] == direct["prediction"]
    assert reply.body["attention_weights"] == direct["attention_weights"]


def test_embedded_errors_are_the_handlers_error_body():
    reply = clients.Embedded(Settings().model_dir).predict({"features": {"Process_Temperature": 1.0}})
    assert reply.status == 400
    assert reply.body["error"]["type"] == "InvalidInput"
    assert "Process_Pressure" in reply.error_text()  # a missing reading is named


def test_a_signed_request_is_verified_and_answered_like_the_embedded_one(api, app):
    reply = deployed(api.url).predict(SAMPLE)
    assert reply.status == 200, reply.body
    assert reply.body["prediction"] == app.handle(SAMPLE)["prediction"]
    path, signed, authorization = api.requests[-1]
    assert (path, signed) == ("/prod/predict", True)
    assert f"Credential={ui_stub.ACCESS_KEY}/" in authorization
    assert f"/{ui_stub.REGION}/execute-api/aws4_request" in authorization


def test_the_stub_rejects_a_signature_made_with_another_secret(api):
    with pytest.raises(clients.BackendError, match=r"refused these credentials \(403: The request signature"):
        deployed(api.url, secret="not-the-secret").predict(SAMPLE)
    assert api.requests[-1][1] is False


def test_a_role_without_invoke_is_told_what_it_needs(api):
    api.plan.deny = True
    with pytest.raises(clients.BackendError, match=r"needs execute-api:Invoke on POST /predict"):
        deployed(api.url).predict(SAMPLE)


def test_429_and_5xx_are_retried_and_each_retry_is_signed_afresh(api):
    api.plan.statuses = [429, 503]
    reply = deployed(api.url, retries=3).predict(SAMPLE)
    assert reply.status == 200
    assert [signed for _, signed, _ in api.requests] == [True, True, True]


def test_retries_end_with_the_last_answer(api):
    api.plan.statuses = [503] * 10
    reply = deployed(api.url, retries=2).predict(SAMPLE)
    assert reply.status == 503
    assert len(api.requests) == 3
    assert "Service Unavailable" in reply.error_text()


def test_an_unreachable_api_names_the_url_and_the_fix():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the request: nothing listens there
    url = f"http://127.0.0.1:{port}/prod"
    with pytest.raises(clients.BackendError, match=rf"cannot reach the API at {url}: .*DIECAST_API_URL"):
        deployed(url, retries=0).predict(SAMPLE)


def test_a_slow_api_times_out_with_a_message(api):
    api.plan.delay_s = 1.0
    with pytest.raises(clients.BackendError, match="cannot reach the API"):
        deployed(api.url, timeout_s=0.2, retries=0).predict(SAMPLE)


def test_explain_through_the_stub_has_the_documented_schema(api):
    reply = deployed(api.url).explain(SAMPLE)
    assert reply is not None
    assert reply.ok
    contributions = reply.body["explanation"]["contributions"]
    assert set(contributions) == set(SAMPLE["features"])
    assert form.explanation_words(contributions).startswith("Readings that moved this prediction most: Process_Temp")


def test_an_api_without_explain_says_so(api):
    api.plan.explain = False
    client = deployed(api.url)
    assert client.explain(SAMPLE) is None
    assert "no /explain route" in client.explain_note


def test_settings_choose_the_back_end_and_the_region():
    assert clients.region_of("https://abc.execute-api.ap-northeast-2.amazonaws.com/prod") == "ap-northeast-2"
    assert clients.region_of("http://127.0.0.1:9/prod") == ""
    with pytest.raises(clients.BackendError, match="AWS_REGION is not set"):
        clients.from_env({"DIECAST_API_URL": "http://127.0.0.1:9/prod"}, Settings().model_dir)
    with pytest.raises(clients.BackendError, match="not an http"):
        clients.Deployed("ftp://x", "eu-west-1", credentials=object())
    assert isinstance(clients.from_env({}, Settings().model_dir), clients.Embedded)
    given = "https://abc.execute-api.eu-west-1.amazonaws.com/prod/predict"  # the main stack's PredictUrl output
    assert clients.Deployed(given, "eu-west-1", credentials=object()).url == given.removesuffix("/predict")


def test_reply_error_text_names_the_fields():
    body = {"error": {"type": "InvalidInput", "message": "bad", "details": [{"field": "Sensor_Vibration"}]}}
    assert clients.Reply(400, body).error_text() == "InvalidInput: bad (fields: Sensor_Vibration)"
    assert json.loads(json.dumps(clients.proxy_event("POST", "/predict", SAMPLE)["body"]))  # a JSON text body
