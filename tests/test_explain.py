"""The explain function (T2): the Shapley sampler's algebra, the served explanations (additivity, batch = single,
the prediction's own log-odds, the median test), the causes named per defect mechanism against the attention
weights, the stored explanation.json, and the routes. Runtime only: numpy + onnxruntime."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from explain import artifact, shapley
from runtime import artifacts
from runtime.exceptions import ModelArtifactError
from tests.conftest import DATA_CSV, EVENTS_DIR, ONNX_DIR

CAUSES_PARTS = 20  # defective parts explained per mechanism (all of a mechanism's parts when it has fewer)
MEDIAN_PARTS = 60


@functools.cache
def explain_app(**fields: object):
    from explain.app import App
    from serving.settings import Settings

    return App(Settings(**{"model_path": str(ONNX_DIR), **fields}), quiet_log=True)


def answer(event: object) -> tuple[int, dict]:
    out = explain_app().handle(event)
    if "headers" in out:
        return out["statusCode"], json.loads(out["body"])
    return out.get("statusCode", 200), out


def good_row() -> dict:
    return json.loads((EVENTS_DIR / "direct_named.json").read_text())["features"]


# --- the sampler's algebra -----------------------------------------------------------------------------------------


def test_an_additive_model_gets_its_exact_shapley_values():
    rng = np.random.default_rng(0)
    background, x, w = rng.normal(size=(6, 5)), rng.normal(size=(1, 5)), rng.normal(size=5)
    plan = shapley.make_plan(background, 1, 3)
    base, phi, out = shapley.explain(lambda Z: Z @ w, plan, x)
    np.testing.assert_allclose(phi[0], w * (x[0] - background.mean(axis=0)), atol=1e-12)
    assert base == pytest.approx(float((background @ w).mean()))
    assert base + phi.sum() == pytest.approx(out[0], abs=shapley.ADDITIVITY_TOLERANCE)


def test_a_symmetric_interaction_is_split_evenly_with_antithetic_pairs():
    """f = x0 * x1 against a zero background: any order and its reverse give each reading half."""
    plan = shapley.make_plan(np.zeros((1, 3)), 1, 5)
    _, phi, _ = shapley.explain(lambda Z: Z[:, 0] * Z[:, 1], plan, np.array([[2.0, 3.0, 7.0]]))
    np.testing.assert_allclose(phi[0], [3.0, 3.0, 0.0], atol=1e-12)


def test_the_orders_are_antithetic_permutations_and_each_background_row_is_used_alike():
    plan = shapley.make_plan(np.zeros((4, 7)), 3, 11)
    assert (np.sort(plan.orders, axis=1) == np.arange(7)).all()
    np.testing.assert_array_equal(plan.orders[1::2], plan.orders[0::2, ::-1])
    assert np.bincount(plan.owner).tolist() == [6, 6, 6, 6]
    assert plan.rows_per_part == 24 * 6


def test_log_odds_are_finite_at_saturated_probabilities():
    values = shapley.log_odds(np.array([0.0, 0.5, 1.0], dtype=np.float32))
    assert np.isfinite(values).all()
    assert values[1] == 0.0
    assert values[0] == pytest.approx(-values[2], rel=1e-9)


# --- the served explanations ---------------------------------------------------------------------------------------


def test_one_part_adds_up_to_its_predictions_log_odds():
    status, body = answer({"features": good_row()})
    assert status == 200, body
    e = body["explanation"]
    assert list(e["contributions"]) == list(explain_app().names)
    assert e["output"] == "log_odds"
    total = e["base_value"] + sum(e["contributions"].values())
    assert total == pytest.approx(e["output_value"], abs=shapley.ADDITIVITY_TOLERANCE)
    p = body["prediction"]["probability"]
    assert e["output_value"] == float(shapley.log_odds(np.array([p]))[0])


def test_the_prediction_is_the_predict_functions():
    from tests.conftest import make_app

    predicted = make_app().handle({"features": good_row()})
    _, body = answer({"features": good_row()})
    assert body["prediction"] == predicted["prediction"]
    assert body["model_version"] == predicted["model_version"]


def _dataset_sample(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from evaluation.labelled import read_labelled

    names = explain_app().names
    X, y, types = read_labelled(DATA_CSV, names)
    rows = np.sort(np.random.default_rng(seed).choice(len(y), count, replace=False))
    return X[rows], y[rows], [types[i] for i in rows]


def test_a_batch_is_explained_as_each_part_alone():
    X, _, _ = _dataset_sample(5, 1)
    names = explain_app().names
    instances = [dict(zip(names, row.tolist(), strict=True)) for row in X]
    _, batch = answer({"instances": instances})
    assert batch["count"] == 5
    for item, explanation, row in zip(batch["predictions"], batch["explanations"], instances, strict=True):
        _, single = answer({"features": row})
        assert explanation == single["explanation"]  # bit for bit: each part runs on its own
        assert item["prediction"] == single["prediction"]


def test_additivity_on_every_dataset_row(dataset_xy):
    """The telescoping sum on every dataset row with the served graph's outputs at both ends (the steps between
    cancel whatever they are: random here), and through the whole served path on a sample."""
    X, _ = dataset_xy
    explainer = explain_app().explainer
    outputs = explainer.log_odds(X)
    rng = np.random.default_rng(3)
    for start in range(0, len(X), 500):
        out = outputs[start : start + 500]
        between = rng.normal(size=len(out) * explainer.plan.rows_per_part)
        base, phi = shapley.attribute(explainer.plan, explainer.background_out, between, out)
        np.testing.assert_allclose(base + phi.sum(axis=1), out, rtol=0, atol=shapley.ADDITIVITY_TOLERANCE)
    sample = X[:: len(X) // 40][:40]
    phi, out = explainer.contributions(sample, explainer.model.predict(sample)["probability"].tolist())
    np.testing.assert_allclose(explainer.base_value + phi.sum(axis=1), out, rtol=0, atol=shapley.ADDITIVITY_TOLERANCE)


def test_moving_a_large_contribution_toward_its_median_moves_the_output_the_other_way():
    """Where a part's largest |contribution| pushes toward "defect" (>= 0.5 log-odds), setting that reading to its
    training median lowers the log-odds on at least 90 % of such parts of the sample (interactions can reverse a
    single move: one in 29 here). (A reading pushing toward "normal" is
    measured against the background's mix, defects included, not against the median: docs/explaining.md.)"""
    model = explain_app().predictor.model
    medians = np.array([f.quantiles[50] for f in model.manifest.features])
    X, _, _ = _dataset_sample(MEDIAN_PARTS, 2)
    explainer = explain_app().explainer
    phi, out = explainer.contributions(X, model.predict(X)["probability"].tolist())
    top = np.argmax(np.abs(phi), axis=1)
    pushed = phi[np.arange(len(X)), top] >= 0.5
    assert pushed.sum() >= 10, "too few parts with a large contribution toward defect in the sample"
    moved = X[pushed].copy()
    moved[np.arange(len(moved)), top[pushed]] = medians[top[pushed]]
    change = explainer.log_odds(moved) - out[pushed]
    assert np.mean(change < 0) >= 0.9, change


# --- the causes named, against the attention weights ---------------------------------------------------------------

# Each mechanism's causes in convert/dataset.py's generator, and the readings that directly measure one.
CAUSES = {
    "gas_porosity": {"Process_VacuumLevel", "Process_Temperature", "Sensor_MeltHydrogen"},
    "shrinkage_porosity": {
        *("Process_Pressure", "Process_HoldingTime", "Process_DieTemperature", "Sensor_CavityPressure"),
        *("Sensor_MoldTempFixed", "Sensor_MoldTempMoving"),  # thermocouples in the die: they measure its temperature
    },
    "cold_shut": {
        *("Process_Temperature", "Process_FillTime", "Process_DieTemperature"),
        *("Sensor_MoldTempFixed", "Sensor_MoldTempMoving"),
    },
    "misrun": {
        *("Process_ShotWeight", "Process_InjectionSpeed"),
        # the biscuit measures the shot's weight; the plunger's peak velocity and the fill time measure its speed
        *("Process_BiscuitThickness", "Sensor_PlungerVelocityPeak", "Process_FillTime"),
    },
    "flash": {"Sensor_CavityPressure", "Process_ClampingForce"},
    "die_soldering": {"Process_DieTemperature", "Process_SprayTime", "Sensor_MoldTempFixed", "Sensor_MoldTempMoving"},
    "hot_tear": {"Sensor_MoldTempFixed", "Sensor_MoldTempMoving", "Process_CoolingTime", "Sensor_CoolingWaterFlow"},
}


def causes_table() -> dict[str, dict[str, float]]:
    """Per mechanism: the share of its defective parts whose top three readings toward "defect" name a cause, by
    the explanation and by the attention weights, and how many parts."""
    from evaluation.labelled import read_labelled

    app = explain_app()
    names = np.array(app.names)
    X, y, types = read_labelled(DATA_CSV, app.names)
    rng = np.random.default_rng(17)
    table = {}
    for mechanism, causes in CAUSES.items():
        rows = np.flatnonzero((y == 1) & (np.array(types) == mechanism))
        rows = np.sort(rng.choice(rows, min(CAUSES_PARTS, len(rows)), replace=False))
        out = app.predictor.model.predict(X[rows])
        phi, _ = app.explainer.contributions(X[rows], out["probability"].tolist())
        by_phi = [set(names[np.argsort(-p)[:3]]) & causes for p in phi]
        by_attention = [set(names[np.argsort(-a)[:3]]) & causes for a in out["attention"]]
        table[mechanism] = {
            "parts": len(rows),
            "explanation": float(np.mean([bool(s) for s in by_phi])),
            "attention": float(np.mean([bool(s) for s in by_attention])),
        }
    return table


@pytest.fixture(scope="module")
def causes():
    return causes_table()


def test_the_explanation_names_the_causes_clearly_more_often_than_attention(causes):
    parts = sum(r["parts"] for r in causes.values())
    explanation = sum(r["explanation"] * r["parts"] for r in causes.values()) / parts
    attention = sum(r["attention"] * r["parts"] for r in causes.values()) / parts
    assert explanation >= attention + 0.2, causes
    assert explanation >= 0.8, causes


def test_the_causes_table_in_the_docs_is_the_measured_one(causes):
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "explaining.md").read_text()
    for mechanism, r in causes.items():
        line = f"| {mechanism} | {r['parts']} | {r['explanation']:.0%} | {r['attention']:.0%} |"
        assert line in page, line


# --- the stored file and the routes --------------------------------------------------------------------------------


def test_the_stored_file_is_listed_with_its_hash_and_names_every_reading():
    from runtime.manifest import Manifest

    manifest = Manifest.read(ONNX_DIR)
    stored = artifact.read(str(ONNX_DIR), manifest)
    assert [f for f, _ in stored.importance] != sorted(f for f, _ in stored.importance)  # a ranking, not the names
    values = [v for _, v in stored.importance]
    assert values == sorted(values, reverse=True)
    assert stored.background.shape[1] == len(manifest.features)


def test_a_folder_without_explanations_fails_at_init_naming_the_file(tmp_path):
    import shutil

    from explain.app import App
    from serving.settings import Settings

    for name in (artifacts.MANIFEST_FILE, artifacts.MODEL_FILE, artifacts.ORT_CACHE_FILE):
        shutil.copy(ONNX_DIR / name, tmp_path / name)
    manifest = json.loads((tmp_path / artifacts.MANIFEST_FILE).read_text())
    del manifest["files"]["explanation"]
    (tmp_path / artifacts.MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ModelArtifactError, match=r"explanation\.json.*re-run make convert"):
        App(Settings(model_path=str(tmp_path)))


def test_a_tampered_explanation_file_is_refused(tmp_path):
    import shutil

    for name in (artifacts.MANIFEST_FILE, artifacts.MODEL_FILE, artifacts.EXPLANATION_FILE):
        shutil.copy(ONNX_DIR / name, tmp_path / name)
    path = tmp_path / artifacts.EXPLANATION_FILE
    text = path.read_text()
    at = text.index('"background"')
    digit = next(i for i in range(at, len(text)) if text[i] in "12345678")
    path.write_text(text[:digit] + str(int(text[digit]) + 1) + text[digit + 1 :])  # one background reading, same size
    from runtime.manifest import Manifest

    with pytest.raises(ModelArtifactError, match=r"does not match its manifest.*re-run make convert"):
        artifact.read(str(tmp_path), Manifest.read(tmp_path))
    path.write_text(text + " ")
    with pytest.raises(ModelArtifactError, match="bytes"):
        artifact.read(str(tmp_path), Manifest.read(tmp_path))


def test_the_routes_importance_and_errors_are_t1s():
    status, body = answer(json.loads((EVENTS_DIR / "explain" / "rest_importance.json").read_text()))
    assert status == 200
    assert len(body["importance"]) == 30
    assert body["rows"] > 0
    status, body = answer(json.loads((EVENTS_DIR / "explain" / "rest_explain.json").read_text()))
    assert status == 200
    assert set(body["explanation"]["contributions"]) == set(explain_app().names)
    predict_event = json.loads((EVENTS_DIR / "rest_predict.json").read_text())
    status, body = answer(predict_event)
    assert status == 404
    assert set(body["error"]) == {"type", "message", "details", "request_id"}
    assert "POST /explain or GET /importance" in body["error"]["message"]
    status, body = answer({"features": {**good_row(), "Process_Temperature": "hot"}})
    assert status == 400
    assert body["error"]["type"] == "InvalidInput"
