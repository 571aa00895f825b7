"""A second model in the serving application: an A/B split by inference id (option A) and a shadow that never
answers. Each test builds the application with the settings it needs. numpy + onnxruntime only."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from contextlib import redirect_stdout

import numpy as np
import pytest

import runtime
from runtime import routing
from runtime.exceptions import ConfigurationError
from runtime.manifest import Manifest
from serving.app import App, check_compatible, register_snapstart_hooks
from serving.settings import Settings
from tests.conftest import EVENTS_DIR, ONNX_DIR, REPO_ROOT, init_handler, make_app

SECOND = ONNX_DIR.parent / "v1.1"


class Ctx:
    aws_request_id = "req-ab"


def call(app, event):
    out = io.StringIO()
    with redirect_stdout(out):
        response = app.handle(event, Ctx())
    return response, [json.loads(line) for line in out.getvalue().splitlines()]


def batch(n: int) -> dict:
    rows = json.loads((EVENTS_DIR / "batch.json").read_text())["instances"]
    return {"instances": [{"inference_id": f"SN-{i:05d}", "features": rows[i % len(rows)]} for i in range(n)]}


def matrix(instances: list[dict], names: list[str]) -> np.ndarray:
    """The readings of batch wrappers in model order; batch.json holds named rows and a list row."""
    rows = [i["features"] for i in instances]
    return np.array([[r[n] for n in names] if isinstance(r, dict) else r for r in rows], dtype=np.float64)


@pytest.fixture(scope="module")
def models():
    return {"v1.0_12D_GB": runtime.load(ONNX_DIR), "v1.1_12D_GB": runtime.load(SECOND)}


def test_the_split_is_deterministic_and_close_to_its_share():
    ids = [f"SN-{i:06d}" for i in range(20_000)]
    chosen = [routing.goes_to_b(i, 0.10) for i in ids]
    assert 0.09 < np.mean(chosen) < 0.11
    assert chosen == [routing.goes_to_b(i, 0.10) for i in ids]  # a part always goes to the same model
    assert not any(routing.goes_to_b(i, 1e-9) for i in ids[:1000])


# Inference id -> arm under AB_SPLIT=v1.1:0.10, computed once with zlib.crc32 and written down: any process, on any
# day, must route these parts the same way (B when the id's CRC-32 is below 10 % of 2**32).
PINNED_ARMS = {
    "SN-00000": "A",
    "SN-00001": "A",
    "SN-00003": "B",
    "SN-00004": "A",
    "SN-00007": "B",
    "req-ab:1": "B",
    "req-ab:3": "A",
    "部品-8": "B",
    "Teil-Ü-部品": "A",
}
ARMS_SCRIPT = """
import json, sys
from runtime import routing
from serving.settings import Settings
settings = Settings.from_env({"AB_SPLIT": "v1.1:0.10"})
ids = json.loads(sys.stdin.read())
print(json.dumps({i: "B" if routing.goes_to_b(i, settings.ab_share) else "A" for i in ids}))
"""


def test_the_split_routes_pinned_ids_to_the_same_arm_in_every_process():
    """Two fresh interpreters (each with its own string-hash salt) agree with the pinned arms, id by id."""
    for seed in ("1", "2"):
        proc = subprocess.run(
            [sys.executable, "-c", ARMS_SCRIPT],
            cwd=REPO_ROOT,
            input=json.dumps(list(PINNED_ARMS)),
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(proc.stdout) == PINNED_ARMS


@pytest.mark.parametrize("value", ["v1.1", "v1.1:0", "v1.1:1", "v1.1:abc", "../v1.1:0.1", ":0.1", "v1.1:-0.2"])
def test_a_malformed_split_is_refused(value):
    with pytest.raises(ConfigurationError, match="AB_SPLIT must"):
        routing.parse_split(value)


def test_ab_rows_are_answered_by_the_model_their_id_picks(models):
    handler = make_app(ab_version="v1.1", ab_share=0.5)
    event = batch(40)
    response, _ = call(handler, event)
    expected = [
        "v1.1_12D_GB" if routing.goes_to_b(i["inference_id"], 0.5) else "v1.0_12D_GB" for i in event["instances"]
    ]
    assert [p["model_version"] for p in response["predictions"]] == expected
    assert len(set(expected)) == 2
    assert response["model_version"] == "mixed"
    names = models["v1.0_12D_GB"].feature_names
    for item, instance, version in zip(response["predictions"], event["instances"], expected, strict=True):
        X = matrix([instance], names)
        assert item["prediction"]["probability"] == float(models[version].predict(X)["probability"][0])
    again, _ = call(handler, event)
    assert [p["model_version"] for p in again["predictions"]] == expected


def test_a_single_row_names_the_model_that_answered_in_the_response_and_the_capture(models):
    handler = make_app(ab_version="v1.1", ab_share=0.5, capture=True)
    for instance in batch(12)["instances"]:
        response, lines = call(handler, instance)
        version = "v1.1_12D_GB" if routing.goes_to_b(instance["inference_id"], 0.5) else "v1.0_12D_GB"
        assert response["model_version"] == version
        [record] = [line for line in lines if line.get("record") == "prediction"]
        assert record["model_version"] == version
        assert record["inference_id"] == instance["inference_id"]


def test_the_shadow_never_changes_the_response_and_lands_in_the_capture(models):
    plain = make_app(capture=True)
    shadowed = make_app(shadow_version="v1.1", capture=True)
    event = batch(8)
    base, _ = call(plain, event)
    got, lines = call(shadowed, event)
    for response in (base, got):
        response.pop("processing_time_ms")
    assert got == base
    log, *records = lines
    names = models["v1.0_12D_GB"].feature_names
    X = matrix(event["instances"], names)
    second = models["v1.1_12D_GB"].predict(X)
    assert [r["shadow"]["probability"] for r in records] == second["probability"].tolist()
    assert [r["shadow"]["label"] for r in records] == second["label"].tolist()
    assert {r["shadow"]["model_version"] for r in records} == {"v1.1_12D_GB"}
    assert log["shadow_agree"] == sum(
        int(p["prediction"]["class"] == "defect") == s
        for p, s in zip(base["predictions"], second["label"].tolist(), strict=True)
    )


def test_a_failing_shadow_is_logged_and_counted_never_failing_the_request(monkeypatch, caplog):
    handler = make_app(shadow_version="v1.1")
    baseline, _ = call(handler, batch(3))

    def broken(X):
        raise RuntimeError("shadow session lost")

    monkeypatch.setattr(handler.shadow, "raw_predict", broken)
    response, [log] = call(handler, batch(3))
    for r in (baseline, response):
        r.pop("processing_time_ms")
    assert response == baseline
    assert log["ShadowErrors"] == 1
    assert {"Name": "ShadowErrors", "Unit": "Count"} in log["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    assert any("shadow model v1.1_12D_GB failed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SHADOW_MODEL_VERSION", "v9.9", "no manifest.json in"),
        ("AB_SPLIT", "v9.9:0.1", "no manifest.json in"),
        ("SHADOW_MODEL_VERSION", "../v1.1", "SHADOW_MODEL_VERSION must name a model version"),
        ("AB_SPLIT", "v1.1:2", "AB_SPLIT must look like v1.1:0.10"),
    ],
)
def test_an_unknown_or_malformed_second_model_fails_init(variable, value, message):
    proc = init_handler(**{variable: value})
    assert proc.returncode != 0
    assert message in proc.stderr


def test_models_that_read_other_features_are_refused_naming_the_difference():
    data = json.loads((ONNX_DIR / "manifest.json").read_text())
    primary = Manifest.parse(data)
    other = json.loads(json.dumps(data)) | {"version": "v1.1"}
    other["features"] = [*other["features"][1:], dict(other["features"][0], name="Sensor_New")]
    with pytest.raises(
        ConfigurationError, match=r"AB_SPLIT: .*only in v1.0: Process_Temperature.*only in v1.1: Sensor_New"
    ):
        check_compatible(primary, Manifest.parse(other), "AB_SPLIT")
    other["features"] = list(reversed(data["features"]))
    with pytest.raises(ConfigurationError, match=r"SHADOW_MODEL_VERSION: .*feature order differs from position 0"):
        check_compatible(primary, Manifest.parse(other), "SHADOW_MODEL_VERSION")


def test_snapstart_hooks_warm_before_the_snapshot_and_count_a_restore_as_a_cold_start(monkeypatch):
    """AWS's runtime provides snapshot_restore_py; a stand-in records what the handler registers."""
    import types

    hooks: dict[str, list] = {"before": [], "after": []}
    fake = types.ModuleType("snapshot_restore_py")
    fake.register_before_snapshot = hooks["before"].append
    fake.register_after_restore = hooks["after"].append
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", fake)
    handler = App(Settings(model_path=str(ONNX_DIR)))  # a new application: its first request is a cold start
    assert register_snapstart_hooks(handler) is True
    [before], [after] = hooks["before"], hooks["after"]
    before()  # warms every model's path; must not raise
    _, [first] = call(handler, batch(1)["instances"][0])
    _, [second] = call(handler, batch(1)["instances"][0])
    assert first.get("ColdStart") == 1
    assert "ColdStart" not in second
    after()
    _, [restored] = call(handler, batch(1)["instances"][0])
    assert restored.get("ColdStart") == 1


def test_without_the_snapstart_runtime_the_hooks_are_a_no_op(monkeypatch):
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # import fails as it does outside AWS
    assert register_snapstart_hooks(make_app()) is False
