"""The parity certificate: it passes the honest export and fails every injected export bug, each on the bar that
should catch it; its tie rule and accuracy bars on hand-made cases."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from convert import certificate
from convert.certificate import BARS, Engine, Evidence, RowSet
from runtime import artifacts

pytestmark = pytest.mark.convert

FUZZ = 3000


@pytest.fixture(scope="module")
def fields(reference):
    from convert.manifest import fields
    from convert.model import LATENT_DIM

    return fields(reference, "v1.0", LATENT_DIM)


@pytest.fixture(scope="module")
def fused(reference, fields):
    """The honest fused graph of the shipped originals (export only, nothing published)."""
    from convert.pipeline import export_graph

    return export_graph(reference, fields)


@pytest.fixture(scope="module")
def rows(reference, fields):
    from convert.dataset import DEFAULT_CSV
    from convert.pipeline import sources

    return sources(reference, DEFAULT_CSV, FUZZ, fields)


@pytest.fixture(scope="module")
def evidence(reference, rows):
    return {name: Evidence.of(reference, X) for name, X in rows.items()}


def session_predict(model: onnx.ModelProto):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])

    def predict(X):
        return dict(zip(artifacts.OUTPUT_NAMES, sess.run(None, {"features": X}), strict=True))

    return predict


def certify(reference, rows, evidence, model) -> list[str]:
    predict = session_predict(model)
    failures = []
    for name, exact in (("dataset", True), ("fuzz", False), ("envelope", False), ("thresholds", False)):
        rs = RowSet(name, name, np.arange(len(rows[name])), exact_labels=exact, batch=certificate.BATCH)
        got = certificate._run(predict, rows[name], rs.batch)
        failures += certificate.assess(reference, "test", rs, evidence[name], got).failures
    return failures


def test_the_honest_export_passes_every_bar(reference, rows, evidence, fused):
    assert certify(reference, rows, evidence, fused) == []


# --- injected export bugs: each must fail, on the bar that should catch it ------------------------------------


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def _node(model, op_type=None, name=None):
    return next(
        n for n in model.graph.node if (op_type is None or n.op_type == op_type) and (name is None or n.name == name)
    )


def perturbed_leaf(model):
    node = _node(model, "TreeEnsembleRegressor")
    weights = next(a for a in node.attribute if a.name == "target_weights")
    weights.floats[5] += 0.5  # one leaf of one tree, off by half a logit
    return model


def _replace(model, name, value):
    init = next(i for i in model.graph.initializer if i.name == name)
    init.CopyFrom(numpy_helper.from_array(value, name))


def shifted_threshold(model):
    _replace(model, "threshold", np.array(0.27, dtype=np.float32))
    return model


def probability_of_a_normal_part(model):
    """1 - p served as p: the score negated before the Sigmoid."""
    model.graph.node.insert(0, helper.make_node("Neg", ["score"], ["bug/neg"], name="bug/neg"))
    _node(model, "Sigmoid", name="p_column").input[0] = "bug/neg"
    return _sorted(model)


def swapped_features(model):
    perm = np.arange(30, dtype=np.int64)
    perm[[0, 1]] = perm[[1, 0]]
    model.graph.initializer.append(numpy_helper.from_array(perm, "bug/perm"))
    model.graph.node.insert(0, helper.make_node("Gather", ["features", "bug/perm"], ["bug/swapped"], axis=1))
    _node(model, "Sub").input[0] = "bug/swapped"
    return model


def float32_scaler(model):
    """Sub/Div in float32 after casting the raw readings, as a naive scaler export would do."""
    for name in ("scaler_mean", "scaler_scale"):
        init = next(i for i in model.graph.initializer if i.name == name)
        _replace(model, name, numpy_helper.to_array(init).astype(np.float32))
    for name in ("clip_low", "clip_high"):
        init = next(i for i in model.graph.initializer if i.name == name)
        _replace(model, name, numpy_helper.to_array(init).astype(np.float32))
    model.graph.node.insert(0, helper.make_node("Cast", ["features"], ["bug/f32"], to=TensorProto.FLOAT))
    _node(model, "Sub").input[0] = "bug/f32"
    del model.graph.value_info[:]
    return model


def nudged_encoder_weight(model):
    """The first MLP layer's weights scaled by 1 + 1e-4: a subtle export bug no label would show on most rows."""
    init = next(i for i in model.graph.initializer if i.name == "w0")
    _replace(model, "w0", numpy_helper.to_array(init) * np.float32(1 + 1e-4))
    return model


def _sorted(model):
    """Nodes in an order where each input is produced before it is read (the Neg must follow the trees)."""
    produced = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer}
    pending, ordered = list(model.graph.node), []
    while pending:
        ready = next(n for n in pending if all(i in produced or not i for i in n.input))
        ordered.append(ready)
        produced.update(ready.output)
        pending.remove(ready)
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    return model


BUGS = {
    "a perturbed leaf": (perturbed_leaf, "are no tie"),
    "a shifted threshold": (shifted_threshold, "labels"),
    "the probability of a normal part": (probability_of_a_normal_part, "are no tie"),
    "a wrong feature order": (swapped_features, "latent error"),
    "a float32 scaler": (float32_scaler, "are no tie"),
    "an encoder weight off by 1e-4": (nudged_encoder_weight, "latent error"),
}


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_every_injected_export_bug_fails_the_certificate(reference, rows, evidence, fused, bug):
    mutate, expected_bar = BUGS[bug]
    failures = certify(reference, rows, evidence, mutate(_copy(fused)))
    assert failures, f"{bug} passed the certificate"
    assert any(expected_bar in f for f in failures), failures


# --- the rules on hand-made cases -------------------------------------------------------------------------------


def test_accuracy_bar_allows_factor_times_the_original_plus_the_floor():
    ref_err = np.linspace(1e-7, 1e-6, 1001)
    assert certificate.accuracy_failures("latent", BARS.factor * ref_err, ref_err) == []
    assert certificate.accuracy_failures("latent", ref_err + 0.9 * BARS.floor, ref_err) == []
    worse = BARS.factor * ref_err + 1.01 * BARS.floor
    failed = certificate.accuracy_failures("latent", worse, ref_err)
    assert len(failed) == len(certificate.QUANTILES)
    assert "at the 50.0% quantile" in failed[0]
    one_outlier = ref_err.copy()
    one_outlier[-1] = np.inf  # a non-finite latent is an infinite error, never averaged away
    assert [f for f in certificate.accuracy_failures("latent", one_outlier, ref_err) if "100.0%" in f]


def _split_on_a_latent(reference):
    """(tree index, latent index, threshold) of the first split on a latent feature in the shipped GB."""
    for t, est in enumerate(reference.gb.estimators_.ravel()):
        tree = est.tree_
        for node in range(tree.node_count):
            if tree.feature[node] >= 30:
                return t, int(tree.feature[node]) - 30, float(tree.threshold[node])
    raise AssertionError("no latent split")


def _tie_case(reference, dataset_xy, delta):
    """A dataset row with latent ``j`` moved onto a split's float32 neighbours: the original just below, the
    implementation ``delta`` above."""
    X, _ = dataset_xy
    ev = Evidence.of(reference, X[:1])
    _, j, thr = _split_on_a_latent(reference)
    below = np.float32(thr)
    while below > thr:
        below = np.nextafter(below, np.float32(-np.inf))
    ev.ref["latent"][0, j] = below
    ev.truth_latent[0, j] = below
    ev.ref["probability"][:] = reference.gb_probability(ev.scaled, ev.ref["latent"])
    ev.ref["label"][:] = ev.ref["probability"] >= reference.threshold
    latent = ev.ref["latent"].copy()
    latent[0, j] = np.float32(below + delta)
    got = {"latent": latent, "probability": reference.gb_probability(ev.scaled, latent).astype(np.float32)}
    got["label"] = (got["probability"] >= np.float32(reference.threshold)).astype(np.int64)
    return ev, got


def test_a_latent_on_a_split_within_float32_precision_is_a_tie(reference, dataset_xy):
    ev, got = _tie_case(reference, dataset_xy, delta=2e-7)
    verdict = certificate.explain(reference, ev, 0, got, float(got["probability"][0]), 1e-6, BARS)
    assert verdict["kind"] == "tie", verdict
    assert "latent_" in verdict["why"]


def test_a_latent_far_past_float32_precision_is_not_a_tie(reference, dataset_xy):
    ev, got = _tie_case(reference, dataset_xy, delta=1e-3)
    verdict = certificate.explain(reference, ev, 0, got, float(got["probability"][0]), 1e-6, BARS)
    assert verdict["kind"] == "unexplained"
    assert "working precision" in verdict["why"]


def test_a_tie_whose_probability_the_gb_does_not_give_is_unexplained(reference, dataset_xy):
    ev, got = _tie_case(reference, dataset_xy, delta=2e-7)
    p_gb = float(got["probability"][0])
    got["probability"][0] += np.float32(0.05)  # the trees would say p_gb, the graph says something else
    verdict = certificate.explain(reference, ev, 0, got, p_gb, 1e-6, BARS)
    assert verdict["kind"] == "unexplained"
    assert "original GB on these latents" in verdict["why"]


def test_same_branches_with_a_different_probability_is_unexplained(reference, dataset_xy):
    X, _ = dataset_xy
    ev = Evidence.of(reference, X[:1])
    got = {k: v.copy() for k, v in ev.ref.items()}
    got["probability"] = got["probability"] + 1e-3
    verdict = certificate.explain(reference, ev, 0, got, float(ev.ref["probability"][0]), 1e-6, BARS)
    assert verdict == {
        "kind": "unexplained",
        "why": "every tree takes the same branches, yet the probabilities differ",
    }


def test_labels_must_follow_the_probability_and_the_threshold(reference, dataset_xy):
    X, _ = dataset_xy
    ev = Evidence.of(reference, X[:200])
    got = {k: v.copy() for k, v in ev.ref.items()}
    got["probability"] = got["probability"].astype(np.float32)
    flip = int(np.argmin(np.abs(ev.ref["probability"] - reference.threshold)))
    got["label"][flip] ^= 1
    rs = RowSet("hand-made", "x", np.arange(200), exact_labels=False)
    result = certificate.assess(reference, "test", rs, ev, got)
    assert any("follow" in f for f in result.failures), result.failures


def test_engines_run_in_the_batches_their_row_set_asks_for():
    calls = []

    def predict(X):
        calls.append(len(X))
        return {"probability": np.zeros(len(X))}

    certificate._run(predict, np.zeros((10, 30)), batch=4)
    assert calls == [4, 4, 2]
    assert Engine("e", predict, ()).row_sets == ()


def test_all_at_once_row_sets_are_cut_into_bounded_calls(monkeypatch):
    calls = []

    def predict(X):
        calls.append(len(X))
        return {"probability": X[:, 0].copy()}

    X = np.arange(22 * 30, dtype=np.float64).reshape(22, 30)
    monkeypatch.setattr(certificate, "MAX_CALL_ROWS", 8)
    got = certificate._run(predict, X, batch=0)
    assert calls == [8, 8, 6]
    np.testing.assert_array_equal(got["probability"], X[:, 0])
    calls.clear()
    certificate._run(predict, X[:8], batch=0)
    assert calls == [8]
