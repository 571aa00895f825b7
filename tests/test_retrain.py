"""Retraining as the original process describes: `--reuse-ae` keeps a version's scaler and
encoder bit-identical and retrains the GB; `--cv-folds` cross-validates the GB stage; `--search-budget` searches the
GB's hyperparameters and keeps 200 x depth 6 unless the gain is significant. None of them touches the final model.

The new data is a fresh month of simulated production (`dataset.generate_production`): rows the shipped encoder
never saw, few enough that a GB fits in seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import DEPLOYMENT_DIR, REPO_ROOT

pytestmark = pytest.mark.convert

MONTH_ROWS = 1500
MONTH_SEED = 101
FUZZ_ROWS = "2000"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False, env={**os.environ}
    )


def _digests(folder):
    from convert.originals import MODEL_FILES, sha256_file

    return {name: sha256_file(folder / name) for name in MODEL_FILES}


def _metadata(folder) -> dict:
    return json.loads((folder / "metadata.json").read_text())


@pytest.fixture(scope="module")
def month_csv(tmp_path_factory):
    from convert import dataset

    path = tmp_path_factory.mktemp("month") / "month.csv"
    dataset.write_csv(path, *dataset.generate_production(MONTH_ROWS, MONTH_SEED))
    return path


def _retrain(out, month_csv, *extra: str) -> subprocess.CompletedProcess:
    return _run(
        "convert.train",
        *("--model", str(out / "v1.1"), "--models", str(DEPLOYMENT_DIR.parent), "--reuse-ae", "v1.0"),
        *("--data", str(month_csv), *extra),
    )


@pytest.fixture(scope="module")
def retrained(tmp_path_factory, month_csv):
    """v1.1: the shipped v1.0's scaler and encoder, a GB retrained on the month, no cross-validation."""
    out = tmp_path_factory.mktemp("retrained")
    proc = _retrain(out, month_csv, "--cv-folds", "0")
    assert proc.returncode == 0, proc.stderr
    return out / "v1.1", proc


# --- --reuse-ae ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_reuse_ae_keeps_the_scaler_and_encoder_bit_identical_and_retrains_the_gb(retrained):
    folder, proc = retrained
    shipped, new = _digests(DEPLOYMENT_DIR), _digests(folder)
    assert new["scaler.pkl"] == shipped["scaler.pkl"]
    assert new["autoencoder_latent12.pth"] == shipped["autoencoder_latent12.pth"]
    assert new["gradient_boosting_model.pkl"] != shipped["gradient_boosting_model.pkl"]
    meta = _metadata(folder)
    reused = meta["training"]["reused_from"]
    assert reused["version"] == "v1.0"
    assert reused["sha256"] == {k: shipped[k] for k in ("scaler.pkl", "autoencoder_latent12.pth")}
    assert reused["encoder_training"]["data_sha256"] == _metadata(DEPLOYMENT_DIR)["training"]["data_sha256"]
    assert reused["rows_seen_by_encoder"] == {"train": 0, "validation": 0, "test": 0}  # a month it never saw
    assert sum(meta["training"]["rows"].values()) == MONTH_ROWS  # trained and tested on the new data's splits
    assert meta["metrics_cv"] is None
    assert "scaler and encoder reused from v1.0" in proc.stdout


@pytest.mark.slow
def test_a_reuse_ae_retrain_converts_and_certifies(retrained, tmp_path):
    folder, _ = retrained
    proc = _run(
        *("convert", "--model", str(folder), "--out", str(tmp_path / "onnx" / "v1.1")),
        *("--no-ort-cache", "--fuzz-rows", FUZZ_ROWS, "--report-dir", str(tmp_path / "report")),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "onnx" / "v1.1" / "manifest.json").read_text())
    assert manifest["certificate"]["passed"] is True
    shipped = _digests(DEPLOYMENT_DIR)
    for name in ("scaler.pkl", "autoencoder_latent12.pth"):
        assert manifest["sources"][name] == shipped[name]
    assert manifest["training"]["reused_from"]["version"] == "v1.0"


@pytest.mark.slow
def test_cross_validation_leaves_the_final_model_unchanged(retrained, month_csv, tmp_path):
    """Given the same retrain with 3-fold CV: the GB and the test metrics are those trained without it."""
    folder, _ = retrained
    proc = _retrain(tmp_path, month_csv, "--cv-folds", "3")
    assert proc.returncode == 0, proc.stderr
    with_cv = tmp_path / "v1.1"
    assert _digests(with_cv) == _digests(folder)
    meta, before = _metadata(with_cv), _metadata(folder)
    assert (meta["threshold"], meta["metrics"]) == (before["threshold"], before["metrics"])
    cv = meta["metrics_cv"]
    assert cv["folds"] == 3
    assert cv["rows"] == meta["training"]["rows"]["train"] + meta["training"]["rows"]["validation"]
    assert f"f1_score {cv['f1_score']['mean']:.4f} ± {cv['f1_score']['sd']:.4f}" in proc.stdout


# --- bad --reuse-ae inputs: a clear error naming the version or file and the fix, nothing written -------------


def _copy_of_v1(tmp_path, drop: str | None = None):
    models = tmp_path / "models"
    shutil.copytree(DEPLOYMENT_DIR, models / "v1.0")
    if drop:
        (models / "v1.0" / drop).unlink()
    return models


def _rename_first_feature(models):
    path = models / "v1.0" / "metadata.json"
    meta = json.loads(path.read_text())
    meta["features"][0]["name"] = "Process_Temp"
    path.write_text(json.dumps(meta))


def _corrupt_scaler(models):
    (models / "v1.0" / "scaler.pkl").write_bytes(b"not a pickle")


@pytest.mark.parametrize(
    ("version", "prepare", "match"),
    [
        ("v9.9", None, r"--reuse-ae v9\.9: no such version in .*models \(versions there: v1\.0\); train it first"),
        ("v1.0", "autoencoder_latent12.pth", r"v1\.0: .*lacks autoencoder_latent12\.pth, so it is not a complete"),
        ("v1.0", "metadata.json", r"lacks metadata\.json.*retrain it \(make train VERSION=v1\.0 FORCE=1\)"),
        (
            "v1.0",
            _rename_first_feature,
            r"features differ .*missing \['Process_Temperature'\], unknown \['Process_Temp'\]",
        ),
        ("v1.0", _corrupt_scaler, r"v1\.0: cannot load scaler\.pkl \(.*\); retrain that version"),
    ],
    ids=["unknown version", "no encoder", "no metadata", "other features", "corrupt scaler"],
)
def test_a_bad_version_to_reuse_is_refused_with_the_fix(tmp_path, version, prepare, match):
    from convert import reuse

    models = _copy_of_v1(tmp_path, prepare if isinstance(prepare, str) else None)
    if callable(prepare):
        prepare(models)
    with pytest.raises(reuse.ReuseError, match=match):
        reuse.load(models, version)


def test_a_folder_without_versions_is_refused(tmp_path):
    from convert import reuse

    with pytest.raises(reuse.ReuseError, match=r"no such version in .* \(versions there: none\); .*--models"):
        reuse.load(tmp_path, "v1.0")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reuse-ae", "v9.9"], "--reuse-ae v9.9: no such version"),
        (["--model", "v1.0", "--reuse-ae", "v1.0", "--force"], "would replace the version it reuses"),
    ],
    ids=["unknown version", "reusing the target"],
)
def test_the_cli_refuses_a_bad_reuse_before_writing_anything(tmp_path, args, message):
    models = _copy_of_v1(tmp_path)
    before = _digests(models / "v1.0")
    proc = _run("convert.train", "--models", str(models), "--model", "v1.1", *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert sorted(p.name for p in models.iterdir()) == ["v1.0"]  # no v1.1, no staging folder left
    assert _digests(models / "v1.0") == before


def test_too_few_rows_for_the_folds_are_refused_before_training(tmp_path, month_csv):
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("".join(month_csv.read_text().splitlines(keepends=True)[:25]))  # header + 24 rows
    out = tmp_path / "out"
    proc = _retrain(out, tiny, "--cv-folds", "10")
    assert proc.returncode == 2
    assert "--cv-folds 10: the training + validation rows hold only" in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reuse-ae", "v1.0", "--max-epochs", "5"], "--max-epochs has no effect with --reuse-ae"),
        (["--cv-folds", "0", "--search-budget", "60"], "--search-budget needs cross-validation"),
        (["--cv-folds", "1"], "must be 0 (no cross-validation) or at least 2, got 1"),
        (["--search-budget", "0"], "must be a positive number of seconds, got 0"),
    ],
)
def test_contradictory_options_are_refused(tmp_path, capsys, args, message):
    from convert import train

    with pytest.raises(SystemExit) as exit_info:
        train.main(["--model", str(tmp_path / "out" / "v1.0"), *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --- cross-validation ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_features(dataset_xy):
    """1,200 rows of the embedded data, scaled (the GB stage's input without latents: enough to test the CV)."""
    from sklearn.preprocessing import StandardScaler

    X, y = dataset_xy
    idx = np.random.default_rng(5).choice(len(y), 1200, replace=False)
    return StandardScaler().fit_transform(X[idx]), y[idx]


def _protocol(folds=4):
    from convert import train, tuning

    return tuning.Protocol(folds, 0, train.VAL_SIZE / (1 - train.TEST_SIZE), tuple(train.THRESHOLD_GRID))


def test_cross_validation_reports_consistent_mean_and_sd_on_stratified_folds(small_features):
    from convert import tuning

    F, y = small_features
    cv = tuning.cross_validate_gb(F, y, {"n_estimators": 30, "max_depth": 3}, _protocol(4))
    for name in ("f1_score", "roc_auc", "accuracy", "precision", "recall"):
        m, folds = cv[name], np.array(cv[name]["folds"])
        assert len(folds) == 4
        assert m["min"] <= m["mean"] <= m["max"], name
        assert m["sd"] >= 0
        assert m["mean"] == pytest.approx(folds.mean(), abs=1e-4)
        assert m["sd"] == pytest.approx(folds.std(ddof=1), abs=1e-4)
    assert cv["roc_auc"]["mean"] > 0.6  # the folds were scored on a real model
    assert sum(cv["fold_rows"]) == len(y)  # the folds partition the rows
    share = y.sum() / 4
    assert all(abs(d - share) < 1 for d in cv["fold_defects"]), cv["fold_defects"]  # stratified


def test_the_thresholded_gb_picks_its_threshold_on_its_inner_validation_part(small_features):
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.model_selection import train_test_split

    from convert import train

    F, y = small_features
    est = _protocol().estimator({"n_estimators": 30, "max_depth": 3}).fit(F, y)
    share = train.VAL_SIZE / (1 - train.TEST_SIZE)
    F_fit, F_val, y_fit, y_val = train_test_split(F, y, test_size=share, random_state=0, stratify=y)
    gb = GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0).fit(F_fit, y_fit)
    assert est.threshold_ == train.best_f1_threshold(y_val, gb.predict_proba(F_val)[:, 1])
    assert np.array_equal(est.predict(F), (gb.predict_proba(F)[:, 1] >= est.threshold_).astype(np.int64))


# --- the search ------------------------------------------------------------------------------------------------


def test_the_schedule_ends_on_all_rows_or_is_refused():
    from convert.tuning import Schedule

    assert Schedule.plan(26, 6404, 3, 300).rounds == [(26, 711), (9, 2133), (3, 6399)]
    assert Schedule.plan(27, 6404, 3, 300) is None  # a 4th round would start on 237 rows, below the floor
    assert Schedule.plan(2, 1000, 3, 300).rounds == [(2, 1000)]


def test_the_significance_rule_on_hand_made_scores():
    from convert.tuning import significant_gain

    default = [0.70, 0.71, 0.69, 0.70, 0.70]  # mean 0.70, sd 0.00707, se 0.00316
    clear = significant_gain([0.80, 0.82, 0.81, 0.83, 0.84], default)  # +0.12, se 0.00707
    assert clear == {"gain": 0.12, "margin": 0.0102, "significant": True}
    noisy = significant_gain([0.66, 0.76, 0.71, 0.81, 0.61], default)  # +0.01, sd 0.0791, se 0.0354
    assert noisy["gain"] == pytest.approx(0.01, abs=1e-4)
    assert noisy["significant"] is False
    assert significant_gain(default, default)["significant"] is False  # no gain is never significant
    assert significant_gain([0.72] * 5, [0.70] * 5)["significant"] is True  # zero spread: any gain counts
    assert significant_gain([0.60, 0.61, 0.59, 0.60, 0.60], default)["significant"] is False


def _search(F, y, default, space, budget=1e6):
    """A search on ``small_features``; the ample default budget makes its size independent of the machine's load."""
    from convert import tuning

    protocol = _protocol(3)
    cv = tuning.cross_validate_gb(F, y, default, protocol)
    settings = tuning.SearchSettings(budget, default, space, max_candidates=4, factor=3, min_rows=150)
    return cv, tuning.search_gb(F, y, protocol, cv, settings)


WEAK = {"n_estimators": 2, "max_depth": 1, "learning_rate": 0.01}
STRONG_SPACE = {"n_estimators": [40], "max_depth": [3], "learning_rate": [0.1, 0.2, 0.3]}


def test_the_search_adopts_a_candidate_only_with_a_significant_gain_and_records_what_it_tried(small_features):
    from convert.tuning import Schedule, significant_gain

    F, y = small_features
    cv, found = _search(F, y, WEAK, STRONG_SPACE)
    tried = found["candidates"]
    assert tried[0]["params"] == WEAK  # the default is always in the race
    assert len(tried) == 4
    assert all(r["f1_mean"] >= 0 and r["rows"] > 0 for c in tried for r in c["rounds"])
    # the schedule the budget was sized on is the one sklearn ran: candidates and rows per round
    assert [list(r) for r in Schedule.plan(4, len(y), 3, 150).rounds] == found["rounds"] == [[4, 400], [2, 1200]]
    assert [sum(r["rows"] == rows for c in tried for r in c["rounds"]) for _, rows in found["rounds"]] == [4, 2]
    rule = significant_gain(found["best_cv_f1"]["folds"], cv["f1_score"]["folds"])
    assert found["rule_result"] == rule
    assert rule["significant"]  # a 2-stump GB predicts the base rate: any real GB beats it clearly
    assert found["decision"] == "adopted"
    assert found["params"] == found["best"] != WEAK
    assert found["seconds"] > 0
    assert found["predicted_seconds"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["random_forest", "xgboost", "lightgbm", "catboost"])
def test_cross_validation_and_the_search_work_for_every_kind(kind, small_features):
    import dataclasses

    from convert import kinds, tuning

    F, y = small_features
    k = kinds.get(kind)
    protocol = dataclasses.replace(_protocol(3), kind=kind)
    cv = tuning.cross_validate_gb(F, y, k.small, protocol)
    assert len(cv["f1_score"]["folds"]) == 3
    assert cv["f1_score"]["mean"] > 0.3  # a real classifier, not the base rate
    space = {key: values[:2] for key, values in k.space.items()}  # the kind's own space, cut small
    settings = tuning.SearchSettings(1e6, k.small, space, max_candidates=3, factor=3, min_rows=150, kind=kind)
    found = tuning.search_gb(F, y, protocol, cv, settings)
    tried = found["candidates"]
    assert tried[0]["params"] == k.small
    assert len(tried) == 3
    assert all(set(c["params"]) <= set(k.small) | set(k.space) for c in tried)
    assert found["decision"] in ("adopted", "kept default")
    assert found["params"] == (found["best"] if found["decision"] == "adopted" else k.small)


def test_the_search_keeps_the_default_when_it_wins(small_features):
    F, y = small_features
    default = {"n_estimators": 40, "max_depth": 3}
    _, found = _search(F, y, default, {"n_estimators": [2], "max_depth": [1], "learning_rate": [0.01, 0.02, 0.03]})
    assert found["decision"] == "kept default"
    assert found["params"] == default
    assert len(found["candidates"]) == 4


def test_a_budget_too_small_for_any_search_keeps_the_default_and_says_why(small_features):
    F, y = small_features
    _, found = _search(F, y, WEAK, STRONG_SPACE, budget=0.001)
    assert found["decision"] == "skipped"
    assert found["params"] == WEAK
    assert found["candidates"] == []
    assert "budget 0.001 s is below the smallest search's predicted" in found["reason"]


# --- make ------------------------------------------------------------------------------------------------------


def test_make_train_passes_the_retrain_options_through():
    proc = subprocess.run(
        ["make", "-n", "train", "VERSION=v1.1", "REUSE_AE=v1.0", "CV_FOLDS=3", "SEARCH_BUDGET=600"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--model v1.1" in proc.stdout
    assert "--reuse-ae v1.0 --cv-folds 3 --search-budget 600" in proc.stdout
