"""Prediction capture (runtime/capture.py and its use in serving/app.py). numpy + onnxruntime + orjson only."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime

import pytest

from runtime import capture
from runtime.contracts import CAPTURE_FIELDS
from runtime.exceptions import ConfigurationError, InputValidationError
from serving.settings import Settings
from tests.conftest import EVENTS_DIR, init_handler, make_app

pytestmark = pytest.mark.capture

KEYS = list(CAPTURE_FIELDS)  # the contract the monitor reads: the writer must follow it, key for key
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


class FakeContext:
    aws_request_id = "req-123"


MODEL = make_app().predictor.model


@pytest.fixture
def capture_on():
    """The application with capture on (the default one has it off)."""
    return make_app(capture=True)


def event(name):
    return json.loads((EVENTS_DIR / name).read_text())


def call(payload, capsys, app=None):
    """(response, request log record, capture records, capture lines) for one direct invocation."""
    capsys.readouterr()
    out = (app or make_app()).handle(payload, FakeContext())
    lines = capsys.readouterr().out.splitlines()
    return out, json.loads(lines[0]), [json.loads(line) for line in lines[1:]], lines[1:]


# --- the switch ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(None, False), ("true", True), ("TRUE", True), ("False", False)])
def test_switch_reads_true_and_false_in_any_case(value, expected):
    environ = {} if value is None else {"CAPTURE_PREDICTIONS": value}
    assert Settings.from_env(environ).capture is expected


@pytest.mark.parametrize("value", ["yes", "1", "", " true", "on"])
def test_switch_rejects_anything_else_naming_the_variable(value):
    with pytest.raises(ConfigurationError, match=r"CAPTURE_PREDICTIONS must be 'true' or 'false'"):
        Settings.from_env({"CAPTURE_PREDICTIONS": value})


def test_a_bad_switch_fails_init_not_a_request():
    proc = init_handler(CAPTURE_PREDICTIONS="enabled")
    assert proc.returncode != 0
    assert "CAPTURE_PREDICTIONS must be 'true' or 'false'" in proc.stderr
    assert "'enabled'" in proc.stderr


def test_capture_is_off_by_default(capsys):
    assert "CAPTURE_PREDICTIONS" not in os.environ
    assert make_app().capture is None
    out, log, records, _ = call(event("batch.json"), capsys)
    assert out["count"] == 3
    assert log["message"] == "request"
    assert records == []


# --- the record ---------------------------------------------------------------------------------------------


def test_single_row_record_has_the_schema_keys_in_order(capture_on, capsys):
    payload = {"inference_id": "SN-0001", **event("direct_named.json")}
    before = datetime.now(UTC)
    out, log, [record], [line] = call(payload, capsys, capture_on)
    assert log["message"] == "request"  # the request line comes first
    assert list(record) == KEYS
    assert record["record"] == "prediction"
    assert record["schema"] == 1
    assert record["inference_id"] == "SN-0001"
    assert record["request_id"] == "req-123"
    assert record["model_version"] == MODEL.model_version
    assert list(record["features"]) == list(MODEL.feature_names)
    assert record["features"] == payload["features"]
    pred = out["prediction"]
    assert record["probability"] == pred["probability"]
    assert record["class"] == pred["class"]
    assert record["confidence"] == pred["confidence"]
    assert record["label"] == (1 if pred["class"] == "defect" else 0)
    assert record["out_of_range"] == []
    assert TIMESTAMP.match(record["timestamp"])
    stamped = datetime.fromisoformat(record["timestamp"])
    assert before <= stamped <= datetime.now(UTC)
    assert "\n" not in line


def test_without_an_id_the_request_id_names_the_row(capture_on, capsys):
    _, _, [record], _ = call(event("direct_list.json"), capsys, capture_on)
    assert record["inference_id"] == "req-123"


def test_list_features_are_named_in_manifest_order(capture_on, capsys):
    payload = event("direct_list.json")
    _, _, [record], _ = call(payload, capsys, capture_on)
    assert list(record["features"].values()) == payload["features"]
    assert list(record["features"]) == list(MODEL.feature_names)


def test_values_are_recorded_as_received(capture_on, capsys):
    payload = event("direct_named.json")
    payload["features"]["Process_ClampingForce"] = 8000  # an int stays an int
    _, _, _, [line] = call(payload, capsys, capture_on)
    assert '"Process_ClampingForce":8000,' in line


def test_an_integer_past_64_bits_is_refused_and_nothing_is_captured(capture_on, capsys):
    """No feature's envelope reaches 2**64, so such a reading never gets as far as a capture line."""
    payload = event("direct_named.json")
    payload["features"]["Process_ClampingForce"] = 10**20
    out, log, records, _ = call(payload, capsys, capture_on)
    assert out["statusCode"] == 422
    assert out["error"]["type"] == "ReadingOutOfEnvelope"
    assert log["outcome"] == "rejected"
    assert records == []


def test_batch_mixes_wrappers_and_bare_rows(capture_on, capsys):
    payload = event("batch.json")
    bare = payload["instances"]
    payload["instances"] = [{"inference_id": "SN-A", "features": bare[0]}, bare[1], {"features": bare[2]}]
    out, log, records, _ = call(payload, capsys, capture_on)
    assert log["rows"] == 3
    assert [r["inference_id"] for r in records] == ["SN-A", "req-123:1", "req-123:2"]
    assert [r["probability"] for r in records] == [p["prediction"]["probability"] for p in out["predictions"]]
    names = MODEL.feature_names
    named = [dict(zip(names, row, strict=True)) if isinstance(row, list) else row for row in bare]
    assert [list(r["features"].items()) for r in records] == [[(n, row[n]) for n in names] for row in named]
    assert len({r["timestamp"] for r in records}) == 1  # one request, one time


def test_out_of_range_names_belong_to_their_row(capture_on, capsys):
    payload = event("batch.json")
    payload["instances"][2]["Sensor_Vibration"] = -5.0
    payload["instances"][2]["Process_Temperature"] = 900.0
    _, _, records, _ = call(payload, capsys, capture_on)
    assert [r["out_of_range"] for r in records] == [[], [], ["Process_Temperature", "Sensor_Vibration"]]


def test_rejected_requests_capture_nothing(capture_on, capsys):
    out, log, records, _ = call(event("bad_wrong_count.json"), capsys, capture_on)
    assert out["statusCode"] == 400
    assert log["outcome"] == "rejected"
    assert records == []


def test_proxy_events_are_captured_too(capture_on, capsys):
    proxy = event("rest_predict.json")
    body = json.loads(proxy["body"])
    proxy["body"] = json.dumps({"inference_id": "SN-REST", **body})
    out, _, [record], _ = call(proxy, capsys, capture_on)
    assert out["statusCode"] == 200
    assert record["inference_id"] == "SN-REST"


def test_timestamp_always_has_six_fraction_digits():
    cap = capture.Capture("v", ["a"])
    assert cap.timestamp(0.0) == "1970-01-01T00:00:00.000000Z"
    for now in (1_795_000_000.0, 1_795_000_000.5, 1_795_000_001.999999, time.time(), time.time() + 86_400 * 400):
        stamp = cap.timestamp(now)
        assert TIMESTAMP.match(stamp), stamp
        assert abs(datetime.fromisoformat(stamp).timestamp() - now) < 2e-6  # truncated to the microsecond


# --- id validation --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("good", ["a", "SN-0001", "x" * 128, "Teil-Ü-ø-部品", "with space"])
def test_valid_ids(good):
    assert capture.check_id(good) == good


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("", "must hold 1 to 128 characters, got 0"),
        ("x" * 129, "must hold 1 to 128 characters, got 129"),
        (17, "must be a string, got number"),
        (None, "must be a string, got null"),
        (True, "must be a string, got boolean"),
        (["SN-1"], "must be a string, got list"),
        ("SN\n1", "must not contain control characters"),
        ("SN\x001", "must not contain control characters"),
        ("SN\x851", "must not contain control characters"),
    ],
)
def test_invalid_single_row_id_is_a_400_naming_the_field(bad, reason, capture_on, capsys):
    payload = {"inference_id": bad, **event("direct_list.json")}
    out, _, records, _ = call(payload, capsys, capture_on)
    assert out["statusCode"] == 400
    assert reason in out["error"]["message"]
    assert out["error"]["details"] == [{"row": None, "field": "inference_id", "reason": reason}]
    assert records == []


def test_invalid_batch_id_names_the_row(capsys):
    payload = event("batch.json")
    payload["instances"][1] = {"inference_id": "", "features": payload["instances"][1]}
    out, _, _, _ = call(payload, capsys)
    assert out["statusCode"] == 400
    assert out["error"]["message"].startswith("instances[1]: 'inference_id'")
    assert out["error"]["details"][0]["row"] == 1
    assert out["error"]["details"][0]["field"] == "inference_id"


def test_duplicate_ids_in_a_batch_name_the_repeating_row(capsys):
    payload = event("batch.json")
    payload["instances"] = [{"inference_id": "SN-1", "features": row} for row in payload["instances"]]
    payload["instances"][1]["inference_id"] = "SN-2"
    out, _, _, _ = call(payload, capsys)
    assert out["statusCode"] == 400
    assert out["error"]["details"] == [
        {"row": 2, "field": "inference_id", "reason": "'SN-1' repeats instances[0]; ids must be unique within a batch"}
    ]


def test_a_batch_level_id_is_refused():
    with pytest.raises(InputValidationError, match="give each instance one") as e:
        capture.split_ids({"inference_id": "SN-1", "instances": [[0.0] * 30]}, 10)
    assert e.value.details[0]["field"] == "inference_id"


def test_a_wrapper_with_an_unknown_key_is_refused():
    with pytest.raises(InputValidationError, match=r"instances\[0\]: a wrapper holds only .* got also: serial") as e:
        capture.split_ids({"instances": [{"features": [0.0] * 30, "serial": "x"}]}, 10)
    assert e.value.details == [{"row": 0, "field": "serial", "reason": "unknown key in a wrapper"}]


def test_wrappers_are_accepted_with_capture_off(capsys):
    payload = event("batch.json")
    payload["instances"] = [{"inference_id": f"SN-{i}", "features": r} for i, r in enumerate(payload["instances"])]
    out, _, records, _ = call(payload, capsys)
    assert out["count"] == 3
    assert records == []


def test_split_ids_leaves_malformed_bodies_to_the_feature_validation():
    for body in ([1, 2], {"instances": "x"}, {"features": [1], "instances": []}, {}):
        assert capture.split_ids(body, 10) == (body, None)
    assert capture.split_ids({"instances": [[0.0] * 30] * 3}, 2)[1] is None  # over the limit: a 413 follows
