"""``python -m compare``: the statistics on hand-made cases, the torch-free split, the manifest contract, the
verdict rules, and the CLI end to end (v1.0 against itself, and against a retrained v1.1 on a user CSV)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from compare import contract, data, defaults
from compare import verdict as verdict_mod
from diecast import cli
from evaluation import stats
from runtime.manifest import Manifest
from tests.conftest import DATA_CSV, ONNX_DIR, REPO_ROOT

FEATURES = Manifest.read(ONNX_DIR).feature_names


def main(argv):
    """``diecast compare ARGV``, through the dispatcher (which reports a model that is not there)."""
    return cli.main(["compare", *argv])


@pytest.fixture(scope="session")
def second_model() -> Path:
    """The shipped v1.1: v1.0's scaler and encoder, the GB retrained on the embedded data plus drifted production."""
    return ONNX_DIR.parent / "v1.1"


def labels_for(b: int, c: int, both_right: int = 5, both_wrong: int = 3):
    """(y, old, new) with exactly b rows only OLD gets right and c rows only NEW gets right."""
    kinds = [(1, 1)] * both_right + [(0, 0)] * both_wrong + [(1, 0)] * b + [(0, 1)] * c
    y = np.arange(len(kinds)) % 2
    old = np.array([t if o else 1 - t for t, (o, _) in zip(y, kinds, strict=True)])
    new = np.array([t if n else 1 - t for t, (_, n) in zip(y, kinds, strict=True)])
    return y, old, new


@pytest.mark.parametrize(("b", "c"), [(1, 9), (9, 1), (5, 15), (0, 6), (12, 12)])
def test_mcnemar_exact_p_value_is_the_two_sided_binomial_tail(b, c):
    y, old, new = labels_for(b, c)
    got = stats.mcnemar(y, old, new)
    n, k = b + c, min(b, c)
    exact = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)
    assert (got["b"], got["c"]) == (b, c)
    assert got["p_value"] == pytest.approx(exact, rel=1e-12)


def test_mcnemar_known_value_and_no_disagreement():
    y, old, new = labels_for(1, 9)
    assert stats.mcnemar(y, old, new)["p_value"] == pytest.approx(22 / 1024, rel=1e-12)  # 2 * (1 + 10) / 2**10
    y, old, _ = labels_for(0, 0)
    assert stats.mcnemar(y, old, old) == {"b": 0, "c": 0, "p_value": 1.0}


def test_point_metrics_and_auc_equal_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    proba = np.round(np.clip(0.3 * y + rng.random(500) * 0.7, 0, 1), 2)  # rounded: many ties
    label = (proba >= 0.5).astype(int)
    got = stats.metric_arrays(np.ones((1, 500)), y, stats.Scores(proba, label), None)
    assert got["f1"][0] == pytest.approx(f1_score(y, label))
    assert got["precision"][0] == pytest.approx(precision_score(y, label))
    assert got["recall"][0] == pytest.approx(recall_score(y, label))
    assert got["accuracy"][0] == pytest.approx(accuracy_score(y, label))
    assert got["roc_auc"][0] == pytest.approx(roc_auc_score(y, proba))
    assert got["fnr"][0] == pytest.approx(1 - got["recall"][0])
    # A resample's weights count draws: resampling row i twice counts it twice, as sklearn's sample_weight does.
    w = np.bincount(rng.integers(0, 500, 500), minlength=500).astype(float)
    assert stats.weighted_auc(w[None, :], y, proba)[0] == pytest.approx(roc_auc_score(y, proba, sample_weight=w))


def population(rng, n):
    """Labels and two models' labels with a known gap: OLD right 80 % of the time, NEW 85 %, errors correlated."""
    y = (rng.random(n) < 0.25).astype(int)
    u = rng.random(n)
    old = np.where(u < 0.80, y, 1 - y)
    new = np.where(u < 0.85, y, 1 - y)
    return y, old, new


@pytest.mark.parametrize("metric", ["accuracy", "f1"])
def test_paired_bootstrap_interval_covers_the_known_population_difference(metric):
    # Given a large population whose true NEW - OLD difference is known
    rng = np.random.default_rng(7)
    y, old, new = population(rng, 400_000)
    ones = np.ones((1, len(y)))
    truth = (
        stats.metric_arrays(ones, y, stats.Scores(new.astype(float), new), None)[metric][0]
        - stats.metric_arrays(ones, y, stats.Scores(old.astype(float), old), None)[metric][0]
    )
    # When 60 samples of 1,500 rows each get a 95 % paired bootstrap interval
    covered = excludes_zero = 0
    trials = 60
    for seed in range(trials):
        rows = rng.integers(0, len(y), 1500)
        s_old, s_new = (
            stats.Scores(old[rows].astype(float), old[rows]),
            stats.Scores(new[rows].astype(float), new[rows]),
        )
        lo, hi = stats.paired_bootstrap(y[rows], s_old, s_new, None, 400, 0.95, seed)["difference"][metric]["ci"]
        covered += lo <= truth <= hi
        excludes_zero += lo > 0
    # Then about 95 % of the intervals cover the truth (>= 52/60: P < 0.5 % by chance for a correct 95 % interval)
    assert covered >= 52, f"{covered}/{trials} intervals covered {truth:.4f}"
    # And they are narrow enough to find the difference, which a trivially wide interval would not
    assert excludes_zero >= trials // 2


def test_bootstrap_weights_resample_every_row_count():
    blocks = list(stats.resample_weights(50, 300, np.random.default_rng(0)))
    w = np.vstack(blocks)
    assert w.shape == (300, 50)
    assert (w.sum(axis=1) == 50).all()
    assert 0.55 < (w > 0).mean() < 0.72  # ~63 % of rows appear in a bootstrap resample


def test_embedded_split_has_no_torch_and_matches_convert_train_constants():
    probe = (
        "import sys; from compare import data, comparison; import compare.__main__, diecast.commands.compare; "
        "from runtime.manifest import Manifest; "
        "r = data.embedded_test_split(Manifest.read('models_onnx/v1.0').feature_names); "
        "print(len(r.y), 'torch' in sys.modules, 'convert' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert proc.stdout.split() == ["1131", "False", "False"]


@pytest.mark.convert
def test_embedded_split_rows_equal_convert_train_split(dataset_xy):
    from convert import dataset, train

    assert (data.SPLIT_SEED, data.TEST_SIZE) == (train.SEED, train.TEST_SIZE)
    assert (data.DEFAULT_CSV, data.LABEL_COLUMN, data.TYPE_COLUMN) == (
        dataset.DEFAULT_CSV,
        dataset.LABEL_COLUMN,
        dataset.TYPE_COLUMN,
    )
    X_test, y_test = train.split(*dataset_xy)["test"]
    rows = data.embedded_test_split(dataset.FEATURE_NAMES)
    assert np.array_equal(rows.X, X_test)
    assert np.array_equal(rows.y, y_test)
    assert rows.types is not None
    assert set(rows.types[rows.y == 0]) == {"none"}


@pytest.mark.convert
def test_the_labelled_reader_reads_and_refuses_as_training_does(tmp_path):
    from convert import dataset
    from evaluation.labelled import read_labelled

    X, y = dataset.load_csv(dataset.DEFAULT_CSV)
    X2, y2, types = read_labelled(dataset.DEFAULT_CSV, dataset.FEATURE_NAMES)
    assert np.array_equal(X, X2)
    assert np.array_equal(y, y2)
    assert types is not None
    lines = DATA_CSV.read_text().splitlines()[:6]
    broken = {
        "word": [*lines[:3], "", lines[3].replace(lines[3].split(",")[2], "fast", 1)],
        "short": [*lines[:2], lines[2].rsplit(",", 1)[0]],
        "label": [lines[0], lines[1].rsplit(",", 2)[0] + ",2," + lines[1].rsplit(",", 1)[1]],
    }
    for name, rows in broken.items():
        path = tmp_path / f"{name}.csv"
        path.write_text("\n".join(rows) + "\n")
        with pytest.raises(dataset.DataValidationError) as training:
            dataset.load_csv(path)
        with pytest.raises(data.DataValidationError) as comparing:
            read_labelled(path, dataset.FEATURE_NAMES)
        assert str(comparing.value) == str(training.value), name


def test_the_comparison_resamples_under_the_one_policy():
    from evaluation import policy

    assert (defaults.BOOTSTRAP_ROUNDS, defaults.SEED, defaults.CONFIDENCE) == (
        policy.RESAMPLES,
        policy.SEED,
        policy.CONFIDENCE,
    )
    assert stats.METRICS == policy.METRICS


def manifest():
    return json.loads((ONNX_DIR / "manifest.json").read_text())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["features"].pop(3), r"features only in v1.0: Process_SlowShotSpeed"),
        (lambda m: m["features"][0].update(name="Melt_Temp"), r"only in v9: Melt_Temp"),
        (lambda m: m["features"].insert(0, m["features"].pop(1)), r"order differs from position 0"),
        (lambda m: m["input"].update(dtype="float32"), r"input: v1.0 has .*float64.*v9 has .*float32"),
    ],
)
def test_incompatible_manifests_are_refused_naming_the_difference(edit, message):
    old, new = manifest(), manifest()
    new["version"] = "v9"
    edit(new)
    with pytest.raises(contract.IncompatibleModelsError, match=message):
        contract.check_compatible(Manifest.parse(old), Manifest.parse(new))
    assert Manifest.parse(old).differences(Manifest.parse(manifest() | {"version": "v9", "threshold": 0.4})) == []


def fake_stats(f1_diff_ci, recall_diff_ci, new_f1=0.72):
    def est(ci):
        return {"value": sum(ci) / 2, "ci": list(ci)}

    return {
        "new": {"f1": {"value": new_f1, "ci": [new_f1 - 0.03, new_f1 + 0.03]}},
        "difference": {"f1": est(f1_diff_ci), "recall": est(recall_diff_ci)},
    }


LATENCY = {"old": {"median_us": 100.0}, "new": {"median_us": 110.0}, "ratio": {"value": 1.1}}


@pytest.mark.parametrize(
    ("stats_", "latency", "rules", "expected", "reason"),
    [
        (fake_stats((0.01, 0.05), (0.0, 0.04)), LATENCY, {}, "promote", ""),
        (fake_stats((0.01, 0.05), (0.0, 0.04), new_f1=0.60), LATENCY, {}, "reject", "NEW F1 0.600 (floor 0.650)"),
        (fake_stats((0.01, 0.05), (-0.06, -0.01)), LATENCY, {}, "reject", "recall NEW - OLD -0.035"),
        (fake_stats((-0.02, 0.03), (-0.02, 0.03)), LATENCY, {}, "hold", "not significantly better"),
        (fake_stats((-0.02, 0.03), (-0.02, 0.03)), LATENCY, {"margin": 0.03}, "promote", ""),
        (fake_stats((0.01, 0.05), (0.0, 0.04)), {**LATENCY, "ratio": {"value": 2.0}}, {}, "hold", "2.00x"),
        (fake_stats((0.01, 0.05), (0.0, 0.04), new_f1=0.60), LATENCY, {"min_f1": 0.5}, "promote", ""),
        (fake_stats((0.01, 0.05), (-0.06, -0.01)), LATENCY, {"guard_metrics": ("f1",)}, "promote", ""),
    ],
)
def test_verdict_rules_are_explicit_and_configurable(stats_, latency, rules, expected, reason):
    found = verdict_mod.checks(stats_, latency, positives=200, rules=verdict_mod.Rules(**rules))
    got, reasons = verdict_mod.decide(found)
    assert got == expected
    assert reason in " | ".join(reasons)


def test_too_few_defects_holds():
    found = verdict_mod.checks(fake_stats((0.01, 0.05), (0.0, 0.04)), LATENCY, positives=12, rules=verdict_mod.Rules())
    assert verdict_mod.decide(found) == (
        "hold",
        ["12 defects in the data (need 30 for intervals narrow enough to act on)"],
    )


FAST = ["--bootstrap-rounds", "300", "--latency-rounds", "300", "--no-progress"]


def test_cli_model_against_itself_holds_with_full_agreement(tmp_path, capsys):
    # Given v1.0 and a copy of it, When compared on the embedded test split
    shutil.copytree(ONNX_DIR, tmp_path / "copy")
    code = main(["--old", "v1.0", "--new", str(tmp_path / "copy"), "--out", str(tmp_path / "out"), *FAST])
    # Then nothing favours the copy: hold, full agreement, no disputed rows
    assert code == defaults.EXIT_HOLD
    result = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert result["verdict"] == "hold"
    assert result["agreement"] == 1.0
    assert result["mcnemar"] == result["mcnemar"] | {"b": 0, "c": 0, "p_value": 1.0}
    assert set(result["models"]) == {"v1.0 (old)", "v1.0 (new)"}
    assert result["models"]["v1.0 (old)"]["f1"] == result["models"]["v1.0 (new)"]["f1"]
    assert result["models"]["v1.0 (old)"]["f1"] == pytest.approx(manifest()["metrics"]["f1_score"], abs=5e-5)
    assert result["difference"]["f1"] == {"value": 0.0, "ci": [0.0, 0.0]}
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.index("HOLD") < page.index("<h2>Metrics")  # the verdict comes first
    assert page.count("data:image/png;base64,") == 4  # ROC, calibration, disagreement, per-type recall
    assert "HOLD" in capsys.readouterr().out
    umask = os.umask(0)
    os.umask(umask)
    for name in ("compare.json", "report.html"):  # the mode every other command's outputs get, not mkstemp's 0600
        assert (tmp_path / "out" / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_cli_refuses_unknown_versions_bad_data_and_incompatible_models(tmp_path, capsys):
    assert main(["--old", "v1.0", "--new", "v7.7", "--out", str(tmp_path / "o"), *FAST]) == defaults.EXIT_USAGE
    assert "--new v7.7: no model folder at " in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text(DATA_CSV.read_text().replace("Process_Pressure", "Pressure", 1))
    args = ["--old", "v1.0", "--new", "v1.0", "--data", str(bad), "--out", str(tmp_path / "o"), *FAST]
    assert main(args) == defaults.EXIT_USAGE
    assert "missing column(s): Process_Pressure" in capsys.readouterr().err
    other = tmp_path / "other"
    shutil.copytree(ONNX_DIR, other)
    m = manifest()
    m["features"] = m["features"][:-1]
    (other / "manifest.json").write_text(json.dumps(m))
    assert main(["--old", "v1.0", "--new", str(other), "--out", str(tmp_path / "o"), *FAST]) == defaults.EXIT_USAGE
    assert "features only in v1.0 (old): Sensor_ShotSleeveTemp" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_cli_on_a_user_csv_against_a_retrained_model(tmp_path, second_model, capsys):
    import runtime

    # Given a labelled CSV (the embedded test split's rows, with defect_type) and a retrained v1.1
    rows = data.embedded_test_split(FEATURES)
    header = DATA_CSV.read_text().splitlines()[0]
    lines = [
        ",".join([*map(repr, map(float, x)), str(t), k]) for x, t, k in zip(rows.X, rows.y, rows.types, strict=True)
    ]
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("\n".join([header, *lines]) + "\n")
    out = tmp_path / "out"
    # When they are compared through `make compare`'s CLI
    code = main(["--old", "v1.0", "--new", str(second_model), "--data", str(labelled), "--out", str(out), *FAST])
    result = json.loads((out / "compare.json").read_text())
    # Then the exit code is the verdict's, and the numbers are those of the serving path on these rows
    assert code == defaults.EXIT_CODES[result["verdict"]]
    preds = {v: runtime.load(p).predict(rows.X)["label"] for v, p in (("v1.0", ONNX_DIR), ("v1.1", second_model))}
    for version, label in preds.items():
        assert result["models"][version]["f1"] == pytest.approx(f1_score(rows.y, label))
        assert result["models"][version]["recall"] == pytest.approx(recall_score(rows.y, label))
    right_old, right_new = preds["v1.0"] == rows.y, preds["v1.1"] == rows.y
    assert result["mcnemar"]["b"] == int((right_old & ~right_new).sum())
    assert result["mcnemar"]["c"] == int((~right_old & right_new).sum())
    assert result["agreement"] == pytest.approx((preds["v1.0"] == preds["v1.1"]).mean())
    assert set(result["recall_by_defect_type"]) == set(rows.types[rows.y == 1]) - {"none"}
    assert result["latency"]["old"]["median_us"] > 0
    # And a stricter floor turns the same comparison into a reject that says why
    strict = [
        "--old",
        "v1.0",
        "--new",
        str(second_model),
        "--data",
        str(labelled),
        "--out",
        str(out),
        "--min-f1",
        "0.99",
    ]
    assert main([*strict, *FAST]) == defaults.EXIT_REJECT
    assert "(floor 0.990)" in capsys.readouterr().out


def test_help_documents_rules_defaults_and_exit_codes():
    proc = subprocess.run(
        [sys.executable, "-m", "compare", "--help"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    text = " ".join(proc.stdout.split())  # argparse wraps to the terminal's width
    for expected in ("--min-f1", "(default: 0.65)", "--margin", "exit codes: 0 promote", "30 hold:", "40 reject:"):
        assert expected in text
