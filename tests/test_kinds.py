"""Every model kind (convert.kinds) on a small run: train -> convert (certified against the library's own
predict_proba) -> served by the same handler; a sabotaged export (a shifted threshold, a dropped tree) fails the
certificate; --reuse-ae across kinds, and the wrong latent size refused naming both."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import DATA_CSV, EVENTS_DIR

pytestmark = [pytest.mark.convert, pytest.mark.slow]

# each kind at a latent size of its own, so that every size is served once; the kinds' small hyperparameters and
# few epochs keep it small
LATENT = {"gradient_boosting": 8, "random_forest": 4, "xgboost": 16, "lightgbm": 12, "catboost": 8}
ROWS = 1200  # the certificate allows ties on 0.1 % of rows: one here
FUZZ_ROWS = 2000


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    """A seeded sample of the embedded rows (header kept)."""
    lines = DATA_CSV.read_text().splitlines()
    pick = np.sort(np.random.default_rng(5).choice(len(lines) - 1, size=ROWS, replace=False)) + 1
    path = tmp_path_factory.mktemp("kinds") / "small.csv"
    path.write_text("\n".join([lines[0], *(lines[i] for i in pick)]) + "\n")
    return path


def _train(root, version, csv, kind, latent, reuse_ae=None):
    from convert import kinds, train

    opts = train.Options(max_epochs=5, cv_folds=0, kind=kind, latent_dim=latent, params=kinds.get(kind).small)
    return train.write_version(root, version, csv, False, opts, reuse_ae)


@pytest.fixture(scope="module")
def trained(small_csv, tmp_path_factory):
    root = tmp_path_factory.mktemp("originals")
    return {kind: _train(root, f"v9.{i}", small_csv, kind, LATENT[kind]) for i, kind in enumerate(LATENT)}


def _convert(source, target, csv):
    from convert import pipeline

    opts = pipeline.Options(source, target, fuzz_rows=FUZZ_ROWS, data=csv, ort_cache=False, report_dir=target.parent)
    return pipeline.convert(opts)


@pytest.fixture(autouse=True)
def _small_reference_samples(monkeypatch):
    from convert import certificate

    monkeypatch.setattr(certificate, "SAMPLE_ROWS", 100)  # onnx.reference runs trees in Python


@pytest.mark.parametrize("kind", list(LATENT))
def test_each_kind_trains_converts_and_is_served_by_the_same_handler(kind, trained, small_csv, tmp_path):
    import runtime
    from convert import dataset, kinds, originals
    from convert.reference import load_reference
    from diecast import exits
    from serving.app import App
    from serving.settings import Settings

    source = trained[kind]
    meta = json.loads((source / originals.METADATA_FILE).read_text())
    k = kinds.get(kind)
    assert meta["model"] == {"kind": kind, "latent_dim": LATENT[kind], "file": k.file, k.library: k.library_version()}
    assert (source / k.file).is_file()
    assert (source / kinds.encoder_file(LATENT[kind])).is_file()
    assert not (k.library != "sklearn" and any(p.suffix == ".pkl" and p.name != "scaler.pkl" for p in source.iterdir()))

    target = tmp_path / "models_onnx" / source.name
    assert _convert(source, target, small_csv) == exits.OK
    certificate = json.loads((target / "certificate.json").read_text())
    assert certificate["passed"], certificate["failures"]

    X, _ = dataset.load_csv(small_csv)
    served, original = runtime.load(target).predict(X), load_reference(source).predict(X)
    assert np.array_equal(served["label"], original["label"])
    assert np.max(np.abs(served["probability"] - original["probability"])) <= 1e-5
    assert served["latent"].shape == (len(X), LATENT[kind])

    event = json.loads((EVENTS_DIR / "direct_named.json").read_text())
    answer = App(Settings(model_path=str(target))).handle(event)
    reference = load_reference(source)
    row = np.array([[event["features"][n] for n in reference.feature_names]])
    assert answer["prediction"]["probability"] == pytest.approx(reference.predict(row)["probability"][0], abs=1e-5)
    assert len(answer["latent_features"]) == LATENT[kind]
    assert answer["model_version"] == meta["model_version"] == f"{source.name}_{LATENT[kind]}D_{k.short}"


def _drop_tree(proto) -> None:
    """Remove tree 0 from the converter's TreeEnsembleClassifier: its nodes and its leaves' weights."""
    from onnx import helper

    from convert import trees

    node = next(n for n in proto.graph.node if n.op_type == "TreeEnsembleClassifier")
    attrs = trees.classifier_attributes(proto)
    keep_nodes = [t != 0 for t in attrs["nodes_treeids"]]
    keep_leaves = [t != 0 for t in attrs["class_treeids"]]
    new = {}
    for name, values in attrs.items():
        if name.startswith("nodes_"):
            new[name] = [v for v, k in zip(values, keep_nodes, strict=True) if k]
        elif name.startswith("class_") and name != "class_labels":
            new[name] = [v for v, k in zip(values, keep_leaves, strict=True) if k]
        else:
            new[name] = values
    del node.attribute[:]
    node.attribute.extend(helper.make_attribute(k, v) for k, v in sorted(new.items()))


def _shift_threshold(proto) -> None:
    """Move the first split of the ensemble by a quarter of a standard deviation: rows near it branch the other
    way."""
    node = next(n for n in proto.graph.node if n.op_type == "TreeEnsembleClassifier")
    modes = next(a for a in node.attribute if a.name == "nodes_modes").strings
    values = next(a for a in node.attribute if a.name == "nodes_values")
    values.floats[next(i for i, m in enumerate(modes) if m != b"LEAF")] += 0.25


def _certify_export(source, csv, folder):
    """The certificate's dataset rows against the original, through onnxruntime on a fresh export (the cheap
    part of make convert's certificate; the round trip above runs the whole one)."""
    import runtime
    from convert import certificate, dataset, manifest, originals, pipeline
    from convert.reference import load_reference
    from runtime import artifacts

    reference = load_reference(source)
    fields = manifest.fields(reference, source.name, reference.latent_dim)
    pipeline.write_graphs(pipeline.export_graph(reference, fields), folder, ort_cache=False)
    files = {"model": manifest.file_entry(folder / artifacts.MODEL_FILE)}
    originals.write_json(folder / artifacts.MANIFEST_FILE, fields | {"files": files})
    X, _ = dataset.load_csv(csv)
    rows = certificate.RowSet("dataset", "dataset", np.arange(len(X)), exact_labels=True, batch=256)
    engine = certificate.Engine("onnxruntime", runtime.load(folder, use_ort_cache=False).predict, (rows,))
    return certificate.certify(reference, {"dataset": X}, [engine])


@pytest.mark.parametrize("sabotage", [_shift_threshold, _drop_tree], ids=["shifted threshold", "dropped tree"])
@pytest.mark.parametrize("kind", list(LATENT))
def test_a_sabotaged_export_of_each_kind_fails_the_certificate(
    kind, sabotage, trained, small_csv, tmp_path, monkeypatch
):
    from convert import export

    # the honest export of the same originals passes the whole certificate (the round trip above), these rows too
    real = export.export_gb

    def sabotaged(gb, *args):
        proto = real(gb, *args)
        sabotage(proto)
        return proto

    monkeypatch.setattr(export, "export_gb", sabotaged)
    report = _certify_export(trained[kind], small_csv, tmp_path)
    assert not report["passed"]
    assert any("no tie" in f for f in report["failures"]), report["failures"]


def test_reuse_ae_across_kinds_copies_the_encoder_and_refuses_another_latent_size(trained, small_csv, tmp_path):
    from convert import kinds, originals, reuse

    source = trained["lightgbm"]  # latent 12
    root = source.parent
    again = _train(root, "v9.7", small_csv, "xgboost", 12, reuse_ae=source.name)
    encoder = kinds.encoder_file(12)
    assert originals.sha256_file(again / encoder) == originals.sha256_file(source / encoder)
    meta = json.loads((again / originals.METADATA_FILE).read_text())
    assert meta["model"]["kind"] == "xgboost"
    assert meta["training"]["reused_from"]["version"] == source.name
    with pytest.raises(reuse.ReuseError, match=r"latent size 12.*--latent-dim 8"):
        _train(root, "v9.8", small_csv, "catboost", 8, reuse_ae=source.name)
    assert not (root / "v9.8").exists()
