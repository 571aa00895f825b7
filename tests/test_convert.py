"""`make convert`: export, fused graph, parity against the reference (the oracle), refusal to publish."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import runtime
from tests.conftest import DEPLOYMENT_DIR, ONNX_DIR

pytestmark = pytest.mark.convert

PROBA_ATOL = 1e-5
LATENT_ATOL = 1e-4
ATTENTION_ATOL = 1e-5


@pytest.fixture(scope="module")
def model():
    return runtime.load(ONNX_DIR)


def assert_parity(reference, model, X, exact_labels=True):
    """The oracle and the ONNX runtime on the same rows; print the offending row on failure."""
    ref, got = reference.predict(X), model.predict(X)
    dp = np.abs(ref["probability"] - got["probability"])
    for i in np.flatnonzero(dp > PROBA_ATOL):
        from convert.parity import explain_row

        scaled = reference.scaler.transform(X[i : i + 1])[0]
        why = explain_row(
            reference.gb, np.hstack([scaled, ref["latent"][i]]), np.hstack([scaled, got["latent"][i]]), 30
        )
        assert "latent_" in why, f"row {X[i].tolist()}: reference {ref['probability'][i]}, onnx " + (
            f"{got['probability'][i]}, |dp| {dp[i]:.2e}: {why}"
        )
    if exact_labels:
        bad = np.flatnonzero(ref["label"] != got["label"])
        assert bad.size == 0, f"labels differ on rows {bad[:10]}: first {X[bad[0]].tolist()}"
    np.testing.assert_allclose(
        got["latent"], ref["latent"], rtol=0, atol=LATENT_ATOL * max(1, np.abs(ref["latent"]).max())
    )
    np.testing.assert_allclose(got["attention"], ref["attention"], rtol=0, atol=ATTENTION_ATOL)


def test_graph_inputs_outputs_and_dtypes():
    import onnx

    m = onnx.load(ONNX_DIR / "model.onnx")
    [inp] = m.graph.input
    assert inp.name == "features"
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param
    assert not dims[0].HasField("dim_value")
    assert dims[1].dim_value == 30
    outs = {o.name: o.type.tensor_type.elem_type for o in m.graph.output}
    assert outs == {
        "probability": onnx.TensorProto.FLOAT,
        "label": onnx.TensorProto.INT64,
        "latent": onnx.TensorProto.FLOAT,
        "attention": onnx.TensorProto.FLOAT,
    }
    assert {o.op_type for o in m.graph.node} >= {"TreeEnsembleClassifier", "Softmax"}
    assert "ZipMap" not in {o.op_type for o in m.graph.node}


def test_manifest_records_the_originals_it_came_from(model):
    from convert.train import sha256_file

    for name, digest in model.manifest["sources"].items():
        assert sha256_file(DEPLOYMENT_DIR / name) == digest, name


def test_parity_on_the_whole_dataset_at_batch_1_and_batched(reference, model, dataset_xy):
    X, _ = dataset_xy
    assert_parity(reference, model, X)
    for i in range(0, len(X), 997):
        assert_parity(reference, model, X[i : i + 1])


def test_parity_on_split_threshold_rows(reference, model, dataset_xy):
    from convert.parity import threshold_rows

    X, _ = dataset_xy
    rows, info = threshold_rows(reference.gb, reference.scaler, np.median(X, axis=0), 30)
    assert len(rows) > 1000
    assert {i["feature"] for i in info} <= set(range(30))
    assert_parity(reference, model, rows)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_parity_on_generated_rows(reference, model, data):
    stats = reference.metadata["feature_stats"]
    row = []
    for name in reference.feature_names:
        lo, hi = stats[name]["min"], stats[name]["max"]
        width = hi - lo
        row.append(data.draw(st.floats(lo - width, hi + width, allow_nan=False, width=64), label=name))
    assert_parity(reference, model, np.array([row]), exact_labels=False)


def test_encoder_export_has_a_dynamic_batch_and_matches_torch_at_batch_1_and_7(reference):
    import onnxruntime as ort
    import torch

    from convert.export import export_encoder
    from convert.model import feature_attention

    proto = export_encoder(reference.autoencoder)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    for n in (1, 7):
        x = rng.standard_normal((n, 30)).astype(np.float32)
        latent, attention = sess.run(None, {sess.get_inputs()[0].name: x})
        with torch.no_grad():
            ref_latent, weights = reference.autoencoder.encode(torch.from_numpy(x))
        assert latent.shape == (n, 12)
        assert attention.shape == (n, 30)
        np.testing.assert_allclose(latent, ref_latent.numpy(), atol=LATENT_ATOL)
        np.testing.assert_allclose(attention, feature_attention(weights).numpy(), atol=ATTENTION_ATOL)


def test_a_broken_conversion_fails_parity_and_publishes_nothing(tmp_path, monkeypatch, capsys):
    from convert import __main__ as cli
    from convert import export

    real_export_gb = export.export_gb

    def perturbed_export_gb(gb):
        proto = real_export_gb(gb)
        node = next(n for n in proto.graph.node if n.op_type == "TreeEnsembleClassifier")
        weights = next(a for a in node.attribute if a.name == "class_weights")
        weights.floats[5] += 0.5  # one leaf of one tree, off by half a logit
        return proto

    monkeypatch.setattr(export, "export_gb", perturbed_export_gb)
    code = cli.main(["--out", str(tmp_path / "out"), "--report-dir", str(tmp_path / "report"), "--fuzz-rows", "2000"])
    assert code == 1
    assert not (tmp_path / "out" / "v1.0").exists()
    assert not [p for p in (tmp_path / "out").iterdir()]  # no staging left behind
    out, err = capsys.readouterr()
    assert "parity: FAIL" in out
    assert "labels agree" in out or "max |dp|" in out
    assert "nothing published" in err
    assert (tmp_path / "report" / "parity_report.json").exists()


def test_convert_refuses_to_overwrite_a_published_version(tmp_path, capsys):
    from convert import __main__ as cli

    (tmp_path / "v1.0").mkdir()
    assert cli.main(["--out", str(tmp_path)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err


def test_convert_names_an_unloadable_original(tmp_path, capsys):
    from convert import __main__ as cli

    shutil.copytree(DEPLOYMENT_DIR, tmp_path / "models" / "v1.0")
    (tmp_path / "models" / "v1.0" / "scaler.pkl").write_bytes(b"garbage")
    assert cli.main(["--models", str(tmp_path / "models"), "--out", str(tmp_path / "out")]) == 2
    assert "cannot load the originals" in capsys.readouterr().err
    assert not (tmp_path / "out" / "v1.0").exists()
