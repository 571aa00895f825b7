"""`make convert`: export, fused graph, parity against the reference (the oracle), refusal to publish."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import runtime
from diecast import exits
from runtime import artifacts
from tests.conftest import DEPLOYMENT_DIR, ONNX_DIR

pytestmark = pytest.mark.convert

LATENT_ATOL = 1e-4
ATTENTION_ATOL = 1e-5


@pytest.fixture(scope="module")
def model():
    return runtime.load(ONNX_DIR)


@pytest.fixture(scope="module")
def manifest():
    return json.loads((ONNX_DIR / "manifest.json").read_text())


def test_model_onnx_is_standard_onnx_with_a_dynamic_batch():
    import onnx

    from convert.export import check_standard

    m = onnx.load(ONNX_DIR / "model.onnx")
    check_standard(m)  # ai.onnx + ai.onnx.ml only, onnx.checker full_check
    assert {o.domain for o in m.opset_import} <= {"", "ai.onnx.ml"}
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
    assert "ZipMap" not in {o.op_type for o in m.graph.node}


def test_the_manifest_names_every_shipped_file_with_its_size_and_sha256(manifest):
    import onnxruntime as ort

    from convert.originals import sha256_file

    files = manifest["files"]
    assert set(files) == {"model", "ort_cache", "explanation"}
    assert files["ort_cache"]["onnxruntime"] == ort.__version__
    for entry in files.values():
        path = ONNX_DIR / entry["path"]
        assert sha256_file(path) == entry["sha256"]
        assert path.stat().st_size == entry["bytes"]
    shipped = {p.name for p in ONNX_DIR.iterdir()}
    assert shipped == {"manifest.json", "certificate.json", *(e["path"] for e in files.values())}


def test_every_graph_embeds_the_manifests_serving_fields(manifest):
    import onnx

    expected = artifacts.canonical_json(artifacts.serving_fields(manifest))
    for entry in (manifest["files"][key] for key in ("model", "ort_cache")):
        props = {p.key: p.value for p in onnx.load(ONNX_DIR / entry["path"]).metadata_props}
        assert props[artifacts.SERVING_KEY] == expected, entry["path"]


def test_the_shipped_certificate_covers_every_file_under_two_implementations(manifest):
    cert = manifest["certificate"]
    assert cert["passed"] is True
    engines = {r["engine"] for r in cert["row_sets"]}
    assert engines == {"onnxruntime model.onnx", "onnxruntime model.ort.onnx", "onnx.reference model.onnx"}
    sampled = [r for r in cert["row_sets"] if r["engine"].startswith("onnx.reference")]
    assert {r["name"] for r in sampled} == {"dataset sample", "split thresholds sample"}
    assert all(r["rows"] >= 1000 for r in sampled)
    for r in cert["row_sets"]:
        assert r["unexplained"] == 0
        assert r["ties"] <= cert["bars"]["max_tie_share"] * r["rows"]
        if r["name"].startswith("dataset"):
            assert r["label_agreement"] == 1.0


def test_manifest_records_the_originals_it_came_from(model):
    from convert.originals import sha256_file

    for name, digest in model.manifest.data["sources"].items():
        assert sha256_file(DEPLOYMENT_DIR / name) == digest, name


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_generated_rows_agree_or_are_explained_ties(reference, model, data):
    from convert import certificate

    stats = reference.metadata["feature_stats"]
    rows = []
    for _ in range(8):
        row = []
        for name in reference.feature_names:
            lo, hi = stats[name]["min"], stats[name]["max"]
            width = hi - lo
            row.append(data.draw(st.floats(lo - width, hi + width, allow_nan=False, width=64)))
        rows.append(row)
    X = np.array(rows)
    ev = certificate.Evidence.of(reference, X)
    rs = certificate.RowSet("generated", "generated", np.arange(len(X)), exact_labels=False, batch=1)
    result = certificate.assess(reference, "onnxruntime", rs, ev, certificate._run(model.predict, X, 1))
    assert result.unexplained == 0, result.listed
    assert not [f for f in result.failures if "follow" in f]
    assert np.all(certificate.latent_error(model.predict(X)["latent"], ev.truth_latent) <= LATENT_ATOL)


def test_the_graph_has_a_dynamic_batch_and_matches_torch_at_batch_1_and_7(reference):
    import onnxruntime as ort
    import torch

    from convert.manifest import fields
    from convert.model import LATENT_DIM, feature_attention
    from convert.pipeline import export_graph

    proto = export_graph(reference, fields(reference, "v1.0", LATENT_DIM))
    assert len(proto.graph.node) <= 40  # the straight torch export had 65
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    for n in (1, 7):
        X = reference.scaler.mean_ + reference.scaler.scale_ * rng.standard_normal((n, 30))
        _, _, latent, attention = sess.run(None, {"features": X})
        with torch.no_grad():
            ref_latent, weights = reference.autoencoder.encode(torch.from_numpy(reference.scaled32(X)))
        assert latent.shape == (n, 12)
        assert attention.shape == (n, 30)
        np.testing.assert_allclose(latent, ref_latent.numpy(), atol=LATENT_ATOL)
        np.testing.assert_allclose(attention, feature_attention(weights).numpy(), atol=ATTENTION_ATOL)


def test_a_broken_conversion_fails_parity_and_publishes_nothing(tmp_path, monkeypatch, capsys):
    from convert import __main__ as cli
    from convert import export

    real_export_gb = export.export_gb

    def perturbed_export_gb(gb, *args):
        proto = real_export_gb(gb, *args)
        node = next(n for n in proto.graph.node if n.op_type == "TreeEnsembleClassifier")  # skl2onnx's
        weights = next(a for a in node.attribute if a.name == "class_weights")
        weights.floats[5] += 0.5  # one leaf of one tree, off by half a logit
        return proto

    monkeypatch.setattr(export, "export_gb", perturbed_export_gb)
    code = cli.main(
        [
            "--out",
            str(tmp_path / "out" / "v1.0"),
            "--report-dir",
            str(tmp_path / "report"),
            "--fuzz-rows",
            "2000",
            "--no-ort-cache",
        ]
    )
    assert code == exits.CONVERT_CERTIFICATE_FAILED
    assert not (tmp_path / "out" / "v1.0").exists()
    assert not [p for p in (tmp_path / "out").iterdir()]  # no staging left behind
    out, err = capsys.readouterr()
    assert "certificate: FAIL" in out
    assert "are no tie" in out
    assert "nothing published" in err
    report = json.loads((tmp_path / "report" / "certificate.json").read_text())
    assert report["passed"] is False
    listed = [r for rs in report["row_sets"] for r in rs["listed"] if r["kind"] == "unexplained"]
    assert listed
    assert len(listed[0]["features"]) == 30  # the offending row itself, to reproduce the failure


def test_convert_refuses_to_overwrite_a_published_version(tmp_path, capsys):
    from convert import __main__ as cli

    (tmp_path / "v1.0").mkdir()
    assert cli.main(["--out", str(tmp_path / "v1.0")]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err


def test_convert_names_an_unloadable_original(tmp_path, capsys):
    from convert import __main__ as cli

    shutil.copytree(DEPLOYMENT_DIR, tmp_path / "models" / "v1.0")
    (tmp_path / "models" / "v1.0" / "scaler.pkl").write_bytes(b"garbage")
    assert cli.main(["--models", str(tmp_path / "models"), "--out", str(tmp_path / "out" / "v1.0")]) == 2
    assert "cannot load the originals" in capsys.readouterr().err
    assert not (tmp_path / "out" / "v1.0").exists()
