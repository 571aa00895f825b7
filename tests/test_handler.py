"""The serving application (serving/app.py, as lambda/handler.py builds it): replays tests/events/, the response
contract, errors, logging. numpy + onnxruntime only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.confidence import confidence_rule
from serving import http
from tests.conftest import EVENTS_DIR, REPO_ROOT, init_handler, make_app


class FakeContext:
    aws_request_id = "req-123"
    function_name = "diecast-t1-test"


def invoke(event, app=None):
    """(status, body dict, is_proxy) whatever the event shape; the default application unless told."""
    out = (app or make_app()).handle(event, FakeContext())
    if "headers" in out:
        assert out["headers"]["Content-Type"] == "application/json"
        return out["statusCode"], json.loads(out["body"]), True
    return out.get("statusCode", 200), out, False


def load_event(name):
    return json.loads((EVENTS_DIR / name).read_text())


EXPECTED = {
    "direct_named.json": 200,
    "direct_list.json": 200,
    "batch.json": 200,
    "rest_predict.json": 200,
    "rest_health.json": 200,
    "http_api_predict.json": 200,
    "http_api_predict_base64.json": 200,
    "http_api_health.json": 200,
    "function_url_predict.json": 200,
    "bad_missing_feature.json": 400,
    "bad_string_value.json": 400,
    "bad_wrong_count.json": 400,
    "bad_empty_batch.json": 400,
    "bad_wrong_type.json": 400,
    "rest_bad_not_json.json": 400,
    "rest_bad_nan.json": 400,
    "rest_bad_route.json": 404,
    "function_url_bad_method.json": 405,
}


def test_every_sample_event_has_an_expectation():
    assert sorted(p.name for p in EVENTS_DIR.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize(("name", "status"), sorted(EXPECTED.items()))
def test_replay_sample_events(name, status):
    got, body, _ = invoke(load_event(name))
    assert got == status, body
    if status >= 400:
        assert set(body["error"]) == {"type", "message", "details", "request_id"}
        assert body["error"]["request_id"] == "req-123"
    elif "health" in name:
        assert body == {"status": "ok", "model_version": "v1.0_12D_GB", "features": 30}
    elif "predictions" in body:
        assert body["count"] == len(body["predictions"]) == 3
        for item in body["predictions"]:
            assert_row_contract(item)
    else:
        assert_row_contract(body)


def assert_row_contract(item):
    model = make_app().predictor.model
    pred = item["prediction"]
    assert pred["class"] in {"defect", "normal"}
    assert 0.0 <= pred["probability"] <= 1.0
    rule = confidence_rule(model.threshold, model.manifest.confidence_bands)
    assert pred["confidence"] == rule(pred["probability"])
    assert (pred["class"] == "defect") == (pred["probability"] >= model.threshold)
    assert len(item["latent_features"]) == 12
    weights = item["attention_weights"]
    assert list(weights) == list(model.feature_names)
    assert abs(sum(weights.values()) - 1.0) < 1e-5


def test_single_row_response_contract_and_shared_fields():
    status, body, _ = invoke(load_event("direct_named.json"))
    assert status == 200
    assert set(body) == {
        "prediction",
        "latent_features",
        "attention_weights",
        "processing_time_ms",
        "model_version",
        "model_performance",
        "warnings",
    }
    assert body["model_version"] == "v1.0_12D_GB"
    assert set(body["model_performance"]) == {"f1_score", "roc_auc", "accuracy"}
    assert body["prediction"]["class"] == "defect"
    assert body["warnings"] == []
    assert body["processing_time_ms"] > 0


def test_handler_agrees_with_the_runtime(app):
    event = load_event("direct_list.json")
    _, body, _ = invoke(event, app)
    out = app.predictor.model.predict([event["features"]])
    assert body["prediction"]["probability"] == pytest.approx(float(out["probability"][0]), abs=0)
    assert body["latent_features"] == pytest.approx(out["latent"][0].tolist(), abs=0)


def test_out_of_range_readings_are_warned_but_predicted():
    event = load_event("direct_named.json")
    event["features"]["Process_Temperature"] = 900.0
    status, body, _ = invoke(event)
    assert status == 200
    assert body["prediction"]["class"] in {"defect", "normal"}
    [warning] = body["warnings"]
    assert warning["feature"] == "Process_Temperature"
    assert warning["value"] == 900.0
    assert warning["range"][1] < 900.0


def test_batch_warnings_name_the_row():
    event = load_event("batch.json")
    event["instances"][2]["Sensor_Vibration"] = -5.0
    status, body, _ = invoke(event)
    assert status == 200
    assert [(w["row"], w["feature"]) for w in body["warnings"]] == [(2, "Sensor_Vibration")]


def test_batch_over_the_limit_is_413():
    status, body, _ = invoke(load_event("batch.json"), make_app(max_batch_size=2))
    assert status == 413
    assert body["error"]["type"] == "PayloadTooLarge"


def test_oversized_body_is_413():
    status, body, proxy = invoke(load_event("rest_predict.json"), make_app(max_body_bytes=100))
    assert proxy
    assert status == 413
    assert "over 100 bytes" in body["error"]["message"]


def test_unexpected_failure_is_a_generic_500_with_the_request_id(app, monkeypatch, caplog):
    def boom(X):
        raise RuntimeError("/var/task/secret/path onnxruntime internal detail")

    monkeypatch.setattr(app.predictor.model, "raw_lists", boom)
    status, body, _ = invoke(load_event("rest_predict.json"), app)
    assert status == 500
    assert body["error"]["type"] == "InternalError"
    assert body["error"]["request_id"] == "req-123"
    text = json.dumps(body)
    assert "secret" not in text
    assert "Traceback" not in text
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]  # the traceback goes to the log only
    assert record.exc_info is not None
    assert "req-123" in record.getMessage()


def test_one_structured_log_line_with_emf_per_request(capsys):
    capsys.readouterr()
    invoke(load_event("batch.json"))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["request_id"] == "req-123"
    assert record["rows"] == 3
    assert record["outcome"] == "ok"
    assert record["DefectPredictions"] + record["NormalPredictions"] == 3
    directive = record["_aws"]["CloudWatchMetrics"][0]
    assert {m["Name"] for m in directive["Metrics"]} >= {"Latency", "Rows", "DefectPredictions"}
    assert "features" not in lines[0]  # never the raw payload at INFO
    invoke(load_event("bad_wrong_count.json"))
    record = json.loads(capsys.readouterr().out)
    assert record["ErrorType"] == "InvalidInput"
    assert ["ModelVersion", "ErrorType"] in record["_aws"]["CloudWatchMetrics"][0]["Dimensions"]


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
junk = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)
feature_names = st.sampled_from([*list(make_app().names), "features", "instances", "x"])
near_miss = st.one_of(
    st.fixed_dictionaries({"features": junk}),
    st.fixed_dictionaries({"instances": st.lists(junk, max_size=4)}),
    st.fixed_dictionaries({"features": st.dictionaries(feature_names, junk, max_size=31)}),
    st.fixed_dictionaries({"features": st.lists(junk, min_size=29, max_size=31)}),
    junk,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=near_miss)
def test_generated_junk_always_gets_a_4xx_error_object(payload):
    status, body, _ = invoke(payload)
    if status == 200:  # a generated payload can be valid by chance: 30 numbers in range
        assert "prediction" in body or "predictions" in body
        return
    assert 400 <= status < 500, body
    assert set(body["error"]) == {"type", "message", "details", "request_id"}
    assert "Traceback" not in json.dumps(body)


@settings(max_examples=200, deadline=None)
@given(body=st.text(max_size=60) | st.binary(max_size=60).map(lambda b: b.decode("latin-1")))
def test_generated_junk_bodies_through_api_gateway_get_a_4xx(body):
    event = load_event("rest_predict.json")
    event["body"] = body
    status, payload, _ = invoke(event)
    assert 400 <= status < 500
    assert payload["error"]["type"] in {"InvalidInput", "PayloadTooLarge"}


def test_deeply_nested_json_is_a_400():
    event = load_event("rest_predict.json")
    event["body"] = "[" * 100_000 + "]" * 100_000
    status, body, _ = invoke(event)
    assert status == 400
    assert "not valid JSON" in body["error"]["message"]


AUDIT = """
import sys
seen = []
sys.addaudithook(lambda event, args: seen.append((event, str(args[0]) if args else "")))
sys.path[:0] = ["lambda", "."]
import handler
handler.lambda_handler({"features": handler.APP.predictor.model.manifest_means()})
heavy = [m for m in ("torch", "sklearn", "joblib", "skl2onnx", "onnx", "scipy") if m in sys.modules]
unpickled = [a for e, a in seen if e == "pickle.find_class"]
opened = [a for e, a in seen if e == "open" and a.endswith((".pkl", ".pth", ".joblib"))]
print("heavy=" + ",".join(heavy))
print("unpickled=" + ",".join(unpickled))
print("opened=" + ",".join(opened))
"""


def test_handler_imports_no_torch_sklearn_and_unpickles_nothing():
    proc = subprocess.run([sys.executable, "-c", AUDIT], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines()[-3:] == ["heavy=", "unpickled=", "opened="]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MODEL_VERSION", "../../../tmp/x", "MODEL_VERSION must look like v1.0"),
        ("MODEL_VERSION", "/tmp/impostor", "MODEL_VERSION must look like v1.0"),
        ("MODEL_VERSION", "v1.0/../../x", "MODEL_VERSION must look like v1.0"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR"),
        ("MAX_BATCH_SIZE", "-5", "MAX_BATCH_SIZE must be a positive integer"),
        ("MAX_BODY_BYTES", "1MB", "MAX_BODY_BYTES must be a positive integer"),
    ],
)
def test_a_bad_setting_fails_init_naming_the_variable(variable, value, message):
    proc = init_handler(**{variable: value})
    assert proc.returncode != 0
    assert "ConfigurationError" in proc.stderr
    assert message in proc.stderr


def test_http_statuses_are_decided_by_the_handler_not_the_runtime():
    import runtime.exceptions as errors

    for name in ("InputValidationError", "PayloadTooLargeError", "OutOfEnvelopeError", "NonFiniteOutputError"):
        assert not hasattr(getattr(errors, name), "status_code"), name
    assert http.status_of(errors.PayloadTooLargeError("x")) == (413, "PayloadTooLarge")
    assert http.status_of(errors.OutOfEnvelopeError("x")) == (422, "ReadingOutOfEnvelope")
    assert http.status_of(errors.NonFiniteOutputError("x")) == (422, "NonFiniteOutput")
    assert http.status_of(errors.InputValidationError("x")) == (400, "InvalidInput")
    assert http.status_of(KeyError("x")) == (500, "InternalError")


@pytest.mark.parametrize("event", ["rest_predict.json", "batch.json"])
def test_a_non_finite_model_output_is_a_422_never_an_answer(app, monkeypatch, event):
    """A NaN latent from the graph, on the single-row path (bound buffers) and the batch path (session.run)."""
    import numpy as np

    model = app.predictor.model
    run, one = model._run, model._one

    def poisoned(names, feed, options):
        outs = run(names, feed, options)
        outs[2][:, 3] = np.nan
        return outs

    def poisoned_one(bound_run=one._run):
        bound_run()
        one._outputs[2][:, 3] = np.nan

    monkeypatch.setattr(model, "_run", poisoned)
    monkeypatch.setattr(one, "_run", poisoned_one)
    status, body, _ = invoke(load_event(event), app)
    assert status == 422
    assert body["error"]["type"] == "NonFiniteOutput"
    assert "nan" not in json.dumps(body).lower()


@pytest.mark.parametrize(("model", "version"), [(None, "v1.0_12D_GB"), ("v1.1", "v1.1_12D_GB")])
def test_invoke_answers_from_any_directory_and_an_error_answer_exits_non_zero(tmp_path, model, version):
    """``python lambda/invoke.py`` (``diecast invoke``) outside the repository: the response JSON, whatever its
    status; the exit code says whether it was an error answer (so ``make demo`` can catch one)."""
    from diecast import exits

    command = [sys.executable, str(REPO_ROOT / "lambda" / "invoke.py"), "--quiet-log"]
    command += ["--model", model] if model else []
    for name, status in (("rest_predict.json", 200), ("bad_wrong_count.json", 400)):
        env = {k: v for k, v in os.environ.items() if k not in ("MODEL_PATH", "MODEL_VERSION")}
        proc = subprocess.run(
            [*command, str(EVENTS_DIR / name)], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
        )
        assert proc.returncode == (exits.OK if status == 200 else exits.INVOKE_ERROR_ANSWER), proc.stderr
        response = json.loads(proc.stdout)
        assert response.get("statusCode", 200) == status
        if status == 200:
            assert response["body"]["model_version"] == version  # the proxy body comes back decoded


def test_settings_read_every_variable_in_one_place():
    from serving.settings import Settings

    assert Settings.from_env({}) == Settings()
    environ = {
        "MODEL_VERSION": "v1.1",
        "MODEL_PATH": "/opt/model",
        "LOG_LEVEL": "debug",
        "MAX_BATCH_SIZE": "10",
        "MAX_BODY_BYTES": "2048",
        "METRIC_NAMESPACE": "Elsewhere",
        "CAPTURE_PREDICTIONS": "TRUE",
        "AB_SPLIT": "v1.1:0.25",
        "SHADOW_MODEL_VERSION": "v2.0",
    }
    assert Settings.from_env(environ) == Settings(
        model_version="v1.1",
        model_path="/opt/model",
        log_level="DEBUG",
        max_batch_size=10,
        max_body_bytes=2048,
        metric_namespace="Elsewhere",
        capture=True,
        ab_version="v1.1",
        ab_share=0.25,
        shadow_version="v2.0",
    )
    assert Settings(model_version="v1.1").model_dir == str(REPO_ROOT / "models_onnx" / "v1.1")
    assert Settings(model_path="/opt/model/v1.0").second_model_dir("v1.1") == "/opt/model/v1.1"


def test_the_metric_namespace_setting_reaches_the_emf_line(capsys):
    invoke(load_event("direct_named.json"), make_app(metric_namespace="Elsewhere"))
    record = json.loads(capsys.readouterr().out)
    assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Elsewhere"


@pytest.mark.parametrize(
    ("variable", "value"), [("MODEL_VERSION", "1.1"), ("LOG_LEVEL", "loud"), ("AB_SPLIT", "v1.1:2")]
)
def test_invoke_reports_a_bad_setting_in_one_line_naming_the_variable(tmp_path, variable, value):
    """A configuration error is the application's own message on one line, exit 2: never a traceback."""
    from diecast import exits

    env = {**os.environ, variable: value}
    proc = subprocess.run(
        [sys.executable, "-m", "diecast", "invoke", str(EVENTS_DIR / "direct_named.json")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == exits.USAGE
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: {variable} ")


def test_quiet_log_drops_the_log_line_and_keeps_the_capture_lines(tmp_path):
    """``--quiet-log`` silences the request's log/EMF line only: every captured row is still written."""
    env = {**os.environ, "CAPTURE_PREDICTIONS": "true"}
    event = tmp_path / "batch.json"
    features = load_event("direct_named.json")["features"]
    instances = [{"inference_id": f"SN-{i}", "features": features} for i in range(20)]
    event.write_text(json.dumps({"instances": instances}))
    proc = subprocess.run(
        [sys.executable, "-m", "diecast", "invoke", "--quiet-log", str(event)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{"record"')]
    assert [r["inference_id"] for r in lines] == [f"SN-{i}" for i in range(20)]
    assert '"message":"request"' not in proc.stdout
