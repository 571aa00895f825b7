"""The ablation study: the quick grid end to end through the command (every classifier, every latent size), the
budget, the margin rule's pick, the selection rule, and the vectorised F1 of the threshold rule."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = [pytest.mark.convert]


def test_the_threshold_rules_f1_is_sklearns_bit_for_bit():
    from sklearn.metrics import f1_score

    from convert import train, tuning

    rng = np.random.default_rng(3)
    for _ in range(25):  # sklearn's f1_score costs ~4 ms a call, 91 calls a trial
        n = int(rng.integers(1, 300))
        y = (rng.random(n) < rng.random()).astype(int)
        proba = np.round(rng.random(n), int(rng.integers(1, 4)))  # rounded: many rows on the grid's thresholds
        expected = [f1_score(y, proba >= t, zero_division=0) for t in train.THRESHOLD_GRID]
        assert tuning.f1_scores(y, proba, train.THRESHOLD_GRID).tolist() == expected


def test_the_selection_keeps_the_readings_most_separating_the_classes():
    from ablation import study

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 200)
    S = rng.normal(size=(400, 6))
    S[:, 4] += 3 * y  # strongest
    S[:, 1] += 1 * y
    assert study.select(S, y, 2).tolist() == [1, 4]


def _row(kind, latent, k, folds):
    f = np.asarray(folds, dtype=float)
    return {
        "model": kind,
        "latent_dim": latent,
        "features": k,
        "f1_score": {"mean": float(f.mean()), "sd": float(f.std(ddof=1))},
        "f1_folds": list(folds),
    }


def test_the_pick_replaces_the_default_only_beyond_the_standard_errors():
    from ablation import report

    default = _row("gradient_boosting", 12, 30, [0.70, 0.72, 0.68])
    close = _row("lightgbm", 8, 30, [0.72, 0.70, 0.73])
    far = _row("lightgbm", 8, 30, [0.80, 0.81, 0.79])
    kept = report.pick([close, default])
    assert kept["pick"] == ("gradient_boosting", 12, 30)
    assert kept["decision"].startswith("kept default")
    adopted = report.pick([far, default])
    assert adopted["pick"] == ("lightgbm", 8, 30)
    assert adopted["decision"].startswith("adopted")
    assert report.reproduce(adopted, [far, default], "plant.csv")["command"] == (
        "make train VERSION=v2.0 MODEL=lightgbm LATENT_DIM=8 DATA=plant.csv"
    )
    # a pick make train cannot train (no latents, or fewer readings) is a study result; the command is the margin
    # rule's pick among the configurations it can train, and the note says both
    for untrainable in (_row("xgboost", 0, 30, [0.90, 0.91, 0.89]), _row("xgboost", 8, 25, [0.90, 0.91, 0.89])):
        table = [untrainable, far, close, default]
        found = report.reproduce(report.pick(table), table, "plant.csv")
        assert found["pick"] == ("lightgbm", 8, 30)
        assert found["command"] == "make train VERSION=v2.0 MODEL=lightgbm LATENT_DIM=8 DATA=plant.csv"
        assert "study result only" in found["note"]
    table = [_row("xgboost", 0, 30, [0.90, 0.91, 0.89]), default]
    assert report.reproduce(report.pick(table), table, "x.csv")["pick"] == ("gradient_boosting", 12, 30)
    assert report.describe(("lightgbm", 8, 30)) == "lightgbm, latent 8, 30 readings"
    assert report.describe(("xgboost", 0, 15)) == "xgboost, no latents, 15 readings"


@pytest.mark.slow
def test_the_quick_ablation_runs_every_classifier_and_latent_size_end_to_end(tmp_path, capsys):
    from ablation import grid, report
    from diecast import cli, exits

    out = tmp_path / "abl"
    # one job: the time check below compares the plan with a run that other tests' workers do not crowd
    assert cli.main(["ablation", "--quick", "--out", str(out), "--no-progress", "--jobs", "1"]) == exits.OK
    doc = json.loads((out / "report.json").read_text())
    rows = doc["rows"]
    assert len(rows) == len(grid.QUICK.configs())
    assert not doc["not_run"]
    assert {r["model"] for r in rows} == set(grid.QUICK.kinds)
    assert {r["latent_dim"] for r in rows} == {0, 4, 8, 12, 16}
    for r in rows:
        assert 0.0 <= r["f1_score"]["mean"] <= 1.0
        assert r["fit_seconds"]["mean"] > 0
        assert set(r) >= {"roc_auc", "accuracy", "precision", "recall", "predict_us_per_row"}
    assert [r["f1_score"]["mean"] for r in rows] == sorted((r["f1_score"]["mean"] for r in rows), reverse=True)
    # one encoder per latent size and fold, shared by every classifier and selection
    encoders = [u for u in doc["units"] if u["latent_dim"] != 0]
    assert len(encoders) == 4 * grid.QUICK.folds
    assert all(u["encoder"]["epochs_run"] >= 1 for u in encoders)
    # The stated plan is honest: within 4x of the run (a shared CI machine still runs other tests beside it).
    predicted = doc["plan"]["predicted"]["seconds"]
    assert predicted / 4 <= doc["seconds"] <= predicted * 4, (predicted, doc["seconds"])
    page = (out / "report.html").read_text()
    assert page.count("src='data:image/png;base64,") == 2
    for name in report.CHART_FILES:
        assert (out / name).read_bytes().startswith(b"\x89PNG"), name
    assert "http" not in page
    assert "pick:" in capsys.readouterr().out


def test_a_spent_budget_runs_nothing_and_says_so(tmp_path):
    from ablation import grid, job

    doc = job.run(job.Options(data=_data(), out=tmp_path, grid=grid.QUICK, budget=1e-9, seed=1, progress=False, jobs=1))
    assert doc["rows"] == []
    assert len(doc["not_run"]) == len(grid.QUICK.configs())
    assert all(u["skipped"] for u in doc["units"])
    assert doc["pick"]["pick"] is None
    assert (tmp_path / "report.html").is_file()


def test_a_rerun_continues_the_finished_units_and_gives_the_same_table(tmp_path, monkeypatch):
    import dataclasses

    from ablation import grid, job, report, study
    from convert import kinds

    tiny = grid.Grid((0, 4), ("lightgbm",), (15,), 2, 1, rows=200, params={"lightgbm": kinds.get("lightgbm").small})
    opts = job.Options(data=_data(), out=tmp_path, grid=tiny, budget=600, seed=1, progress=False, jobs=1)
    first = job.run(opts)
    assert sorted(p.name for p in (tmp_path / "units").iterdir()) == [
        "latent0-fold0.json",
        "latent0-fold1.json",
        "latent4-fold0.json",
        "latent4-fold1.json",
    ]
    (tmp_path / "units" / "latent4-fold1.json").unlink()
    (tmp_path / "units" / "latent0-fold0.json").write_text("{half a fi")  # an interrupted write is not a unit
    ran = []
    real = study.run_unit
    monkeypatch.setattr(study, "run_unit", lambda data, d, fold, *a: ran.append((d, fold)) or real(data, d, fold, *a))
    again = job.run(opts)
    assert sorted(ran) == [(0, 0), (4, 1)]
    assert again["plan"]["resumed_units"] == 2

    def without_times(doc):
        return [{k: v for k, v in r.items() if k not in report.TIMES} for r in doc["rows"]]

    assert without_times(again) == without_times(first)
    for changed in (dataclasses.replace(opts, fresh=True), dataclasses.replace(opts, seed=2)):
        ran.clear()
        job.run(changed)  # --fresh (on the same plan's stored units), or another plan: nothing reused
        assert len(ran) == 4, changed


def _data():
    from convert import dataset

    return dataset.DEFAULT_CSV
