"""runtime.load / Model: artifact verification, session settings, predict contract. numpy + onnxruntime only."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import onnxruntime as ort
import pytest

import runtime
from runtime import ModelArtifactError
from tests.conftest import DATA_CSV, ONNX_DIR, REPO_ROOT


@pytest.fixture(scope="module")
def model():
    return runtime.load(ONNX_DIR)


@pytest.fixture
def model_copy(tmp_path):
    dst = tmp_path / "v1.0"
    shutil.copytree(ONNX_DIR, dst)
    return dst


def test_pinned_onnxruntime_loads_the_shipped_artifact(model):
    pinned = re.search(r"^onnxruntime==(\S+)", (REPO_ROOT / "requirements-runtime.txt").read_text(), re.M)
    assert pinned, "requirements-runtime.txt must pin onnxruntime"
    assert ort.__version__ == pinned.group(1)
    assert model.session.get_providers() == ["CPUExecutionProvider"]
    assert model.model_version == "v1.0_12D_GB"


def test_the_loaded_session_is_single_threaded_without_spinning(model):
    opts = model.session.get_session_options()
    assert opts.intra_op_num_threads == 1
    assert opts.inter_op_num_threads == 1
    assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts.get_session_config_entry("session.inter_op.allow_spinning") == "0"


def test_one_row_through_the_bound_buffers_is_session_run_s_answer_each_time(model):
    """raw_lists runs one row through buffers bound once (IO binding). It gives session.run's numbers for every row,
    each request its own (no stale buffer), and a caller that finds the buffers busy gets the same from the
    ordinary path; a batch takes the ordinary path."""
    X = np.loadtxt(DATA_CSV, delimiter=",", skiprows=1, usecols=range(30))

    def direct(rows: np.ndarray) -> list[list]:
        return [o.tolist() for o in model.session.run(None, {"features": rows})]

    for i in np.random.default_rng(5).choice(len(X), size=200, replace=False):
        row = np.ascontiguousarray(X[i : i + 1])
        assert model.raw_lists(row) == direct(row)
    row = np.ascontiguousarray(X[:1])
    with model._one._lock:  # another thread holds the buffers
        assert model.raw_lists(row) == direct(row)
    batch = np.ascontiguousarray(X[:3])
    assert model.raw_lists(batch) == direct(batch)


def test_predict_shapes_and_dtypes(model):
    X = np.tile([f.mean for f in model.manifest.features], (5, 1))
    out = model.predict(X)
    assert out["probability"].shape == (5,)
    assert out["probability"].dtype == np.float32
    assert out["label"].shape == (5,)
    assert out["label"].dtype == np.int64
    assert out["latent"].shape == (5, 12)
    assert out["latent"].dtype == np.float32
    assert out["attention"].shape == (5, 30)
    assert out["attention"].dtype == np.float32
    np.testing.assert_allclose(out["attention"].sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(out["label"], out["probability"] >= np.float32(model.threshold))


def test_batch_of_one_equals_the_row_in_a_batch(model):
    rng = np.random.default_rng(0)
    mean = np.array([f.mean for f in model.manifest.features])
    std = np.array([f.std for f in model.manifest.features])
    X = mean + std * rng.standard_normal((64, 30))
    batch = model.predict(X)
    for i in (0, 17, 63):
        one = model.predict(X[i : i + 1])
        for k in ("probability", "latent", "attention"):
            np.testing.assert_allclose(one[k][0], batch[k][i], rtol=0, atol=1e-6)
        assert one["label"][0] == batch["label"][i]


def test_predict_rejects_bad_arrays(model):
    with pytest.raises(runtime.InputValidationError, match=r"expecting \(n, 30\)"):
        model.predict(np.zeros((1, 29)))
    with pytest.raises(runtime.InputValidationError, match="NaN"):
        model.predict(np.full((1, 30), np.nan))


@pytest.mark.parametrize(("name", "use_cache"), [("model.onnx", False), ("model.ort.onnx", True)])
def test_tampered_graph_fails_at_load(model_copy, name, use_cache):
    path = model_copy / name
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(ModelArtifactError, match=rf"{name} does not match its manifest: sha256"):
        runtime.load(model_copy, use_ort_cache=use_cache)


def test_missing_model_file_fails_at_load(model_copy):
    (model_copy / "model.onnx").unlink()
    with pytest.raises(ModelArtifactError, match=r"no model\.onnx in"):
        runtime.load(model_copy, use_ort_cache=False)


def test_the_cache_is_used_only_with_the_onnxruntime_that_wrote_it(model_copy):
    assert runtime.load(model_copy).graph_file == "model.ort.onnx"
    assert runtime.load(model_copy, use_ort_cache=False).graph_file == "model.onnx"
    manifest = json.loads((model_copy / "manifest.json").read_text())
    manifest["files"]["ort_cache"]["onnxruntime"] = "0.0.1"
    (model_copy / "manifest.json").write_text(json.dumps(manifest))
    model = runtime.load(model_copy)
    assert model.graph_file == "model.onnx"
    X = np.array([[f["mean"] for f in manifest["features"]]])
    cached = runtime.load(ONNX_DIR).predict(X)
    np.testing.assert_allclose(model.predict(X)["probability"], cached["probability"], rtol=0, atol=1e-6)


def test_missing_or_corrupt_manifest_fails_at_load(model_copy, tmp_path):
    with pytest.raises(ModelArtifactError, match=r"no manifest\.json"):
        runtime.load(tmp_path / "nowhere")
    (model_copy / "manifest.json").write_text("{not json")
    with pytest.raises(ModelArtifactError, match="not valid JSON"):
        runtime.load(model_copy)
    (model_copy / "manifest.json").write_text(json.dumps({"format": 1}))
    with pytest.raises(ModelArtifactError, match="format 1, this runtime reads format 2"):
        runtime.load(model_copy)


def test_garbage_model_with_a_matching_hash_is_refused(model_copy):
    import hashlib

    garbage = b"not an onnx model"
    (model_copy / "model.onnx").write_bytes(garbage)
    manifest = json.loads((model_copy / "manifest.json").read_text())
    manifest["files"]["model"] |= {"sha256": hashlib.sha256(garbage).hexdigest(), "bytes": len(garbage)}
    (model_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelArtifactError, match="onnxruntime cannot load"):
        runtime.load(model_copy, use_ort_cache=False)


def test_a_manifest_that_disagrees_with_its_graph_is_refused(model_copy):
    manifest = json.loads((model_copy / "manifest.json").read_text())
    manifest["threshold"] = 0.9
    (model_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelArtifactError, match="disagrees with the serving fields embedded"):
        runtime.load(model_copy)


def test_manifest_holds_what_serving_needs(model):
    m = model.manifest.data
    assert len(m["features"]) == 30
    for f in m["features"]:
        assert {"name", "group", "unit", "min", "max", "mean", "std"} <= f.keys()
    assert {"f1_score", "roc_auc", "accuracy"} <= set(m["metrics"])
    assert m["certificate"]["passed"] is True
    assert {"high", "medium"} <= m["confidence_bands"].keys()
    assert m["input"] == {"name": "features", "shape": ["batch", 30], "dtype": "float64"}


@pytest.mark.parametrize(
    ("p", "band"),
    [
        (0.25, "low"),  # on the threshold: no room taken on either side
        (0.25 + 0.75 * 0.3, "medium"),  # exactly the medium floor on the defect side
        (0.25 + 0.75 * 0.6, "high"),
        (np.nextafter(0.25 + 0.75 * 0.3, 0.0), "low"),
        (0.25 - 0.25 * 0.3, "medium"),  # the normal side's room is the threshold itself
        (0.0, "high"),
        (1.0, "high"),
    ],
)
def test_confidence_band_is_the_share_of_room_on_its_side(p, band):
    from runtime.confidence import confidence, confidence_rule

    assert confidence(float(p), 0.25, 0.6, 0.3) == band
    assert confidence_rule(0.25, {"high": 0.6, "medium": 0.3})(float(p)) == band
