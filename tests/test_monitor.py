"""The monitor (python -m monitor): statistics against hand-computed values, reading and joining captures and labels,
each signal's boundary, the report, the CLI, and s3:// inputs from a local S3 server (moto)."""

from __future__ import annotations

import argparse
import gzip
import json
import math
import re
import shutil
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from diecast.commands import monitor as monitor_command
from evaluation import stats
from monitor import analysis
from monitor import constants as C
from monitor.exceptions import ManifestError
from monitor.manifest import load_reference
from runtime.contracts import ROLLBACK_F1
from tests.conftest import ONNX_DIR, REPO_ROOT

pytestmark = pytest.mark.monitor

UNIFORM = np.linspace(0.0, 100.0, 101)  # percentiles of a uniform distribution on [0, 100]: F(x) = x / 100
T0 = datetime(2026, 10, 1, tzinfo=UTC)


# --- statistics against hand-computed values ----------------------------------------------------------------------


def test_psi_of_a_sample_spread_like_training_is_zero():
    assert stats.psi(np.arange(5.0, 100.0, 10.0), UNIFORM) == pytest.approx(0.0, abs=1e-12)


def test_psi_by_hand():
    # Half the values in the first decile, half in the last, none in the eight between (floored at 1e-4).
    values = np.r_[np.full(10, 3.0), np.full(10, 97.0)]
    by_hand = 2 * (0.5 - 0.1) * math.log(0.5 / 0.1) + 8 * (1e-4 - 0.1) * math.log(1e-4 / 0.1)
    assert stats.psi(values, UNIFORM) == pytest.approx(by_hand, rel=1e-12)
    assert by_hand > C.PSI_MAJOR


def test_psi_bins_are_right_closed_at_the_training_deciles():
    # 10.0 is the first decile's upper edge: it belongs to the first bin, 10.000001 to the second.
    assert stats.psi(np.array([10.0]), UNIFORM) == pytest.approx(stats.psi(np.array([0.0]), UNIFORM))
    assert stats.psi(np.array([10.000001]), UNIFORM) == pytest.approx(stats.psi(np.array([15.0]), UNIFORM))


def test_a_point_mass_merges_bins_and_keeps_their_share():
    clipped = np.r_[np.zeros(30), np.linspace(0.0, 1.0, 71)]  # 30 % of training sits at exactly 0
    edges, expected = stats.reference_bins(clipped)
    assert edges[0] == 0.0
    assert len(edges) == len(np.unique(edges))
    assert expected[0] == pytest.approx(0.3)
    assert expected.sum() == pytest.approx(1.0)


def test_ks_by_hand_and_against_scipy():
    from scipy.stats import kstest

    sample = np.array([90.0, 10.0, 20.0])
    # sorted 10, 20, 90 -> F = 0.1, 0.2, 0.9; D = max(1/3 - 0.1, 2/3 - 0.2, 1 - 0.9, 0.1, 0.2 - 1/3, 0.9 - 2/3)
    by_hand = 2 / 3 - 0.2
    d, p = stats.ks(sample, UNIFORM)
    assert d == pytest.approx(by_hand, abs=1e-12)
    expected = kstest(sample, "uniform", args=(0, 100))
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-6)


def test_ks_p_value_falls_with_the_shift():
    rng = np.random.default_rng(0)
    same = stats.ks(rng.uniform(0, 100, 2000), UNIFORM)
    shifted = stats.ks(rng.uniform(10, 110, 2000), UNIFORM)
    assert same[1] > 0.01 > shifted[1]
    assert shifted[0] == pytest.approx(0.1, abs=0.03)


def test_metrics_and_auc_by_hand():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.6, 0.2, 0.7, 0.2, 0.1, 0.1, 0.05])
    q = stats.quality(y, p, p >= 0.5)
    assert q["confusion"] == {"tp": 2, "fp": 1, "tn": 4, "fn": 1}
    assert q["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert q["precision"] == pytest.approx(2 / 3)
    assert q["recall"] == pytest.approx(2 / 3)
    assert q["fpr"] == pytest.approx(1 / 5)
    assert q["fnr"] == pytest.approx(1 / 3)
    assert q["accuracy"] == pytest.approx(6 / 8)
    # pairs (pos, neg) = 15; pos 0.9 beats 5, 0.6 beats 4, 0.2 beats 3 and ties 1 -> (5 + 4 + 3 + 0.5) / 15
    assert q["roc_auc"] == pytest.approx(12.5 / 15)
    assert q["labelled"] == 8


def test_bootstrap_intervals_hold_the_estimate_and_narrow_with_more_labels():
    rng = np.random.default_rng(1)

    def width(n):
        y = rng.random(n) < 0.25
        p = np.clip(y * 0.4 + rng.random(n) * 0.6, 0, 1)
        q = stats.quality(y, p, p >= 0.5)
        for name in ("f1", "fpr", "fnr", "roc_auc"):
            lo, hi = q["ci"][name]
            assert lo <= q[name] <= hi, name
        return q["ci"]["f1"][1] - q["ci"]["f1"][0]

    assert width(4000) < width(250) / 2


def test_auc_interval_above_the_bootstrap_limit_uses_hanley_mcneil(monkeypatch):
    monkeypatch.setattr(stats, "AUC_BOOTSTRAP_MAX", 100)
    rng = np.random.default_rng(2)
    y = rng.random(3000) < 0.3
    p = np.clip(y * 0.3 + rng.random(3000) * 0.7, 0, 1)
    q = stats.quality(y, p, p >= 0.5)
    lo, hi = q["ci"]["roc_auc"]
    se = stats.hanley_mcneil(q["roc_auc"], int(y.sum()), int((~y).sum()))
    assert hi - lo == pytest.approx(2 * 1.959964 * se, rel=1e-4)


# --- signals: each boundary ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def augmented_model(tmp_path_factory):
    """models_onnx/v1.0, trained (as far as its manifest says) ten days before the test's first capture."""
    from monitor.demo import trained_on

    return trained_on(ONNX_DIR, tmp_path_factory.mktemp("model") / "v1.0", T0 - timedelta(days=10))


@pytest.fixture(scope="module")
def unmonitored_model(tmp_path_factory):
    """A model folder converted before the manifest carried the monitoring fields."""
    folder = tmp_path_factory.mktemp("old") / "v1.0"
    shutil.copytree(ONNX_DIR, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    for key in ("trained_at", "prediction_quantiles"):
        manifest.pop(key)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture(scope="module")
def ref(augmented_model):
    return load_reference(augmented_model)


def _current(f1, labelled, psi=0.0, ci=None, rows=500):
    """A current window's summary as ``triggers`` reads it; F1's interval defaults to the point itself."""
    psis = {"Process_Temperature": psi, "Sensor_Vibration": 0.01}
    return {
        "quality": {"f1": f1, "labelled": labelled, "ci": {"f1": ci or [f1, f1]}},
        "psi": psis,
        "max_psi": psi,
        "drift": analysis.feature_drift(psis, dict.fromkeys(psis, stats.PSI_BINS), rows, C.MIN_ROWS),
    }


def _fired(ref, current, new_labels=0, days=1.0, min_labelled=C.MIN_LABELLED):
    return {k: v["fired"] for k, v in analysis.triggers(current, ref, new_labels, days, min_labelled).items()}


def test_performance_drop_fires_only_more_than_5_percent_below_test_f1(ref):
    floor = ref.test_f1 * (1 - C.PERFORMANCE_DROP)
    assert not _fired(ref, _current(floor, 500))["performance_drop"]
    assert _fired(ref, _current(np.nextafter(floor, 0), 500))["performance_drop"]


def test_data_drift_fires_above_0_25(ref):
    assert not _fired(ref, _current(0.9, 500, psi=C.PSI_MAJOR))["data_drift"]
    assert _fired(ref, _current(0.9, 500, psi=np.nextafter(C.PSI_MAJOR, 1)))["data_drift"]


def test_new_labels_fires_at_1000(ref):
    assert not _fired(ref, _current(0.9, 500), new_labels=C.NEW_LABELS - 1)["new_labels"]
    assert _fired(ref, _current(0.9, 500), new_labels=C.NEW_LABELS)["new_labels"]


def test_schedule_fires_at_30_days(ref):
    assert not _fired(ref, _current(0.9, 500), days=C.SCHEDULE_DAYS - 1e-6)["schedule"]
    assert _fired(ref, _current(0.9, 500), days=C.SCHEDULE_DAYS)["schedule"]


def test_rollback_fires_below_0_65_on_enough_labels_only(ref):
    assert not _fired(ref, _current(ROLLBACK_F1, C.MIN_LABELLED))["rollback"]
    assert _fired(ref, _current(np.nextafter(ROLLBACK_F1, 0), C.MIN_LABELLED))["rollback"]
    few = analysis.triggers(_current(0.1, C.MIN_LABELLED - 1), ref, 0, 1.0, C.MIN_LABELLED)
    assert not few["rollback"]["fired"]
    assert not few["performance_drop"]["fired"]
    assert few["rollback"]["reason"].startswith("insufficient labels")


def test_decision_rollback_wins_and_any_other_signal_retrains(ref):
    quiet = analysis.triggers(_current(0.9, 500), ref, 0, 1.0, C.MIN_LABELLED)
    assert analysis.decide(quiet) == "ok"
    assert analysis.decide({**quiet, "schedule": {"fired": True, "reason": ""}}) == "retrain"
    assert (
        analysis.decide({**quiet, "schedule": {"fired": True, "reason": ""}, "rollback": {"fired": True}}) == "rollback"
    )


# --- reading captures and labels: a hand-made case -------------------------------------------------------------


@pytest.fixture(scope="module")
def rows():
    from convert.dataset import DEFAULT_CSV, load_csv

    X, y = load_csv(DEFAULT_CSV)
    return X[:40], y[:40]


def _record(ref, ident, when, x, probability=0.3, **override):
    record = {
        "record": "prediction",
        "schema": 1,
        "inference_id": ident,
        "request_id": "req-1",
        "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "model_version": ref.model_version,
        "features": dict(zip(ref.names, x.tolist(), strict=True)),
        "probability": probability,
        "label": int(probability >= ref.threshold),
        "class": "defect" if probability >= ref.threshold else "normal",
        "confidence": "high",
        "out_of_range": [],
        "shadow": {"model_version": "v2", "probability": 0.1, "label": 0},  # unknown keys are ignored
    }
    record.update(override)
    return json.dumps(record)


def _write_case(tmp_path, ref, rows):
    """Twelve predictions (one id twice), and each kind of line the reader must skip or count."""
    X, _ = rows
    lines = [_record(ref, f"SN-{i}", T0 + timedelta(hours=i), X[i]) for i in range(12)]
    lines[3] = "2026-10-01T03:00:00.000Z\treq-1\tINFO\t" + lines[3]  # a text prefix before the JSON object
    lines += [
        _record(ref, "SN-5", T0 + timedelta(hours=30), X[5], probability=0.9),  # SN-5 again, later: kept
        '{"level":"INFO","message":"request","request_id":"req-1","rows":12}',  # the handler's request line
        "START RequestId: req-1 Version: $LATEST",  # Lambda's own text line
        "",
        '{"record":"prediction","schema":1,"inference_id":"SN-X","feat',  # cut short
        _record(ref, "SN-Y", T0, X[0], probability=0.5).replace('"probability": 0.5', '"probability": "0.5"'),
        _record(ref, "SN-Z", T0, X[0], features={**dict.fromkeys(ref.names, 1.0), ref.names[4]: True}),
        _record(ref, "SN-S", T0, X[0], schema=2),
        _record(ref, "SN-V", T0, X[0], model_version="v0.9_12D_GB"),
    ]
    captures = tmp_path / "captures.log"
    captures.write_text("\n".join(lines) + "\n")
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "inference_id,defect,defect_type,inspected_at,operator\n"
        "SN-0,1,gas_porosity,2026-10-02T00:00:00Z,ann\n"
        "SN-1,0,none,2026-10-02T00:00:00Z,ann\n"
        "SN-1,1,flash,2026-10-03T00:00:00Z,bob\n"  # duplicate, conflicting: the later inspection wins
        "SN-2,yes,none,,ann\n"  # not 0/1
        "SN-404,0,none,,ann\n"  # no capture
        ",1,none,,ann\n"  # no id
        "SN-5,1,gas_porosity,,ann\n"
    )
    return captures, labels


def test_join_and_dedup_on_a_hand_made_case(tmp_path, augmented_model, ref, rows):
    from monitor.captures import CaptureReader
    from monitor.labels import read_labels
    from monitor.run import connect
    from monitor.sources import resolve

    captures, labels_file = _write_case(tmp_path, ref, rows)
    con = connect()
    reader = CaptureReader(con, ref.names, tmp_path / "scratch")
    reader.read(resolve([str(captures)], tmp_path / "scratch"))
    s = reader.finish(ref.model_version)
    assert s.lines == 21
    assert s.kinds == {"prediction": 14, "other": 1, "text": 1, "blank": 1, "corrupt": 1, "schema": 1, "invalid": 2}
    assert s.invalid_fields == {"probability": 1, f"features.{ref.names[4]}": 1}
    assert s.other_versions == {"v0.9_12D_GB": 1}
    assert (s.unique, s.duplicates) == (12, 1)
    [corrupt] = [e for e in s.examples if e["kind"] == "corrupt"]
    assert corrupt["line"] == 17
    kept = con.execute("SELECT probability FROM captures WHERE inference_id = 'SN-5'").fetchall()
    assert kept == [(0.9,)]  # the most recent record of a duplicated id

    labels, ls = read_labels(labels_file)
    assert (ls.rows, ls.valid, ls.non_binary, ls.missing_id) == (7, 5, 1, 1)
    assert (ls.duplicates, ls.conflicting, ls.unique) == (1, 1, 4)
    assert ls.unknown_columns == {"operator": 7}
    assert {(e["kind"], e["line"]) for e in ls.examples} == {("non_binary", 5), ("missing_id", 7)}
    analysis.register_labels(con, labels)
    analysis.count_unmatched(con, ls)
    assert (ls.joined, ls.without_capture) == (3, 1)
    joined = dict(con.execute("SELECT inference_id, defect FROM captures JOIN labels USING (inference_id)").fetchall())
    assert joined == {"SN-0": 1, "SN-1": 1, "SN-5": 1}


def test_a_truncated_gzip_is_read_up_to_its_last_whole_line(tmp_path, ref, rows):
    from monitor.captures import CaptureReader
    from monitor.run import connect
    from monitor.sources import resolve

    X, _ = rows
    text = "\n".join(_record(ref, f"SN-{i}", T0, X[i % 40]) for i in range(2000)).encode() + b"\n"
    whole = gzip.compress(text)
    (tmp_path / "2026" / "10" / "01" / "00").mkdir(parents=True)
    (tmp_path / "2026" / "10" / "01" / "00" / "a.jsonl.gz").write_bytes(whole)
    (tmp_path / "2026" / "10" / "01" / "00" / "b.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    con = connect()
    reader = CaptureReader(con, ref.names, tmp_path / "scratch")
    reader.read(resolve([str(tmp_path / "2026")], tmp_path / "scratch"))
    s = reader.finish(ref.model_version)
    assert s.truncated_files == [str(tmp_path / "2026" / "10" / "01" / "00" / "b.jsonl.gz")]
    assert 2000 < s.kinds["prediction"] < 4000  # all of a, the whole lines of b
    assert s.kinds.get("corrupt", 0) == 0  # the partial last line is dropped, not counted as a record


# --- the CLI and the report ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def handler_captures(tmp_path_factory, rows):
    """Raw handler stdout (request lines and capture lines) for 40 parts over 3 weeks, with labels for 30."""
    from contextlib import redirect_stdout
    from io import StringIO

    from serving.app import App
    from serving.settings import Settings

    app = App(Settings(model_path=str(ONNX_DIR), capture=True))
    folder = tmp_path_factory.mktemp("handler")
    X, y = rows
    lines = []
    for i in range(40):
        out = StringIO()
        with redirect_stdout(out):
            app.handle({"inference_id": f"SN-{i}", "features": X[i].tolist()}, None)
        request, record = out.getvalue().splitlines()
        record = json.loads(record)
        record["timestamp"] = (T0 + timedelta(hours=12 * i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lines += [request, json.dumps(record)]
    (folder / "stdout.log").write_text("\n".join(lines) + "\n")
    (folder / "labels.jsonl").write_text(
        "".join(json.dumps({"inference_id": f"SN-{i}", "defect": int(y[i])}) + "\n" for i in range(35))
    )
    return folder


def cli_main(argv):
    """``diecast monitor ARGV``: its parser, then its run."""
    parser = argparse.ArgumentParser(prog="diecast monitor")
    monitor_command.configure(parser)
    return monitor_command.run(parser.parse_args(argv))


def _run(*argv):
    return cli_main([str(a) for a in argv])


def test_report_renders_with_its_sections(tmp_path, handler_captures, augmented_model, capsys):
    out = tmp_path / "report"
    code = _run(
        "--captures",
        handler_captures / "stdout.log",
        "--labels",
        handler_captures / "labels.jsonl",
        "--model",
        augmented_model,
        "--out",
        out,
        "--min-labelled",
        "5",
        "--emf-stdout",
    )
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert code == C.EXIT_CODES[report["decision"]]
    assert report["decision"] in C.DECISIONS
    assert set(report["quality"]) >= {"f1", "precision", "recall", "accuracy", "fpr", "fnr", "labelled"}
    assert set(report["drift"]) >= {"psi", "drifted"}
    assert list(report["drift"]["psi"]) == list(load_reference(augmented_model).names)
    assert set(report["triggers"]) == {"performance_drop", "data_drift", "new_labels", "schedule", "rollback"}
    assert all(set(t) == {"fired", "reason"} for t in report["triggers"].values())
    assert report["inputs"]["captures"]["other"] == 40  # the request lines, skipped
    assert report["inputs"]["captures"]["unique_predictions"] == 40
    assert len(report["trend"]) == 3  # three weekly windows
    page = (out / "report.html").read_text()
    order = [
        page.index(s)
        for s in (
            "Decision:",
            "Why",
            "Quality on the labelled subset",
            "Quality over time",
            "Feature drift",
            "Training against recent",
            "Predictions",
            "Inputs",
        )
    ]
    assert order == sorted(order)  # the decision and its reasons come first
    assert page.count("data:image/png;base64,") == 5  # confusion, quality trend, heatmap, histograms, predictions
    assert "http://" not in page.replace("http://www.w3.org", "")
    assert "<script" not in page
    emf = json.loads(printed.strip().splitlines()[-1])
    directive = emf["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "DiecastT1"
    assert directive["Dimensions"] == [["ModelVersion"]]
    assert {m["Name"] for m in directive["Metrics"]} >= {
        "ModelF1",
        "FalsePositiveRate",
        "FalseNegativeRate",
        "MaxFeaturePSI",
        "PredictedDefectRate",
    }
    assert emf["ModelF1"] == pytest.approx(report["quality"]["f1"])
    assert json.loads((out / "metrics.emf.json").read_text()) == emf


def test_too_few_labels_leave_f1_out_of_the_metrics_and_say_so(tmp_path, handler_captures, augmented_model, capsys):
    out = tmp_path / "report"
    _run(
        "--captures",
        handler_captures / "stdout.log",
        "--labels",
        handler_captures / "labels.jsonl",
        "--model",
        augmented_model,
        "--out",
        out,
    )  # default minimum: 200 labels
    report = json.loads((out / "report.json").read_text())
    assert not report["quality"]["sufficient_labels"]
    assert report["triggers"]["rollback"]["reason"].startswith("insufficient labels")
    emf = json.loads((out / "metrics.emf.json").read_text())
    assert "ModelF1" not in emf
    assert "MaxFeaturePSI" in emf
    assert "not plotted" in (out / "report.html").read_text()


def test_cli_errors_name_the_problem_and_exit_2(tmp_path, handler_captures, augmented_model, unmonitored_model, capsys):
    common = ["--labels", handler_captures / "labels.jsonl", "--out", tmp_path / "r"]
    assert _run("--captures", handler_captures / "stdout.log", "--model", unmonitored_model, *common) == C.EXIT_USAGE
    assert "make convert" in capsys.readouterr().err
    assert _run("--captures", tmp_path / "nothing-here", "--model", augmented_model, *common) == C.EXIT_USAGE
    assert "no such file or folder" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label\nSN-1,1\n")
    code = _run(
        "--captures",
        handler_captures / "stdout.log",
        "--model",
        augmented_model,
        "--labels",
        bad,
        "--out",
        tmp_path / "r",
    )
    assert code == C.EXIT_USAGE
    err = capsys.readouterr().err
    assert "line 1 (header) lacks inference_id, defect" in err
    assert str(bad) in err
    with pytest.raises(SystemExit) as e:
        _run("--captures", "x", "--labels", "y", "--model", "z", "--out", "o", "--window", "7x")
    assert e.value.code == 2
    assert "--window '7x'" in capsys.readouterr().err


def test_help_lists_the_exit_codes():
    proc = subprocess.run([sys.executable, "-m", "monitor", "--help"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0
    assert re.search(r"^\s*10\s+retrain", proc.stdout, re.MULTILINE)  # the one exit-code table's rows
    assert re.search(r"^\s*20\s+rollback", proc.stdout, re.MULTILINE)


def test_manifest_without_monitoring_fields_says_how_to_fix(unmonitored_model):
    with pytest.raises(ManifestError, match=r"trained_at.*make convert"):
        load_reference(unmonitored_model)


def test_window_replay_counts_only_labels_known_by_then(tmp_path, ref, rows):
    from monitor.captures import CaptureReader
    from monitor.labels import read_labels
    from monitor.run import connect
    from monitor.sources import resolve

    captures, labels_file = _write_case(tmp_path, ref, rows)
    con = connect()
    reader = CaptureReader(con, ref.names, tmp_path / "s")
    reader.read(resolve([str(captures)], tmp_path / "s"))
    reader.finish(ref.model_version)
    labels, _ = read_labels(labels_file)
    analysis.register_labels(con, labels)

    def labelled(as_of):
        [current, *_] = analysis.load_windows(con, ref, as_of, timedelta(days=7), analysis._us(as_of))
        return int((current.defect >= 0).sum())

    # 12 hours in, no part had been inspected; six days in, SN-0, SN-1 and SN-5 had (SN-5's label has no time)
    assert labelled(T0 + timedelta(hours=12)) == 0
    assert labelled(T0 + timedelta(days=6)) == 3
    # without --as-of every label in the file counts, inspected after the last capture or not
    [current, *_] = analysis.load_windows(con, ref, T0 + timedelta(hours=12), timedelta(days=7))
    assert int((current.defect >= 0).sum()) == 2  # SN-0 and SN-1 (captured by then), whatever their inspection time


# --- s3:// from a local S3 server --------------------------------------------------------------------------------


@pytest.fixture
def s3_server(monkeypatch):
    """moto's standalone server on a free loopback port, for this test only."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("moto_server did not start")
            time.sleep(0.1)
    for key, value in {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield endpoint
    server.terminate()
    server.wait(timeout=10)


def test_s3_inputs_read_like_local_files(tmp_path, s3_server, ref, rows):
    import boto3

    from monitor.captures import CaptureReader
    from monitor.run import connect
    from monitor.sources import resolve

    X, _ = rows
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="captures", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for day in (1, 2):
        body = "\n".join(_record(ref, f"SN-{day}-{i}", T0 + timedelta(days=day), X[i]) for i in range(10)) + "\n"
        s3.put_object(Bucket="captures", Key=f"diecast/2026/10/0{day}/00/part-{day}", Body=gzip.compress(body.encode()))
    s3.put_object(Bucket="captures", Key="elsewhere/2026/10/01/00/x", Body=b"{}\n")

    def read(url):
        con = connect()
        reader = CaptureReader(con, ref.names, tmp_path / "scratch")
        files = resolve([url], tmp_path / "fetched")
        reader.read(files)
        return files, reader.finish(ref.model_version)

    files, stats_folder = read("s3://captures/diecast/2026/10")
    assert [f.name for f in files] == [
        "s3://captures/diecast/2026/10/01/00/part-1",
        "s3://captures/diecast/2026/10/02/00/part-2",
    ]
    assert all(f.gzip for f in files)  # recognised by content, without a .gz name
    assert stats_folder.unique == 20
    files, stats_glob = read("s3://captures/diecast/2026/10/*/00/part-2")
    assert stats_glob.unique == 10
    from monitor.exceptions import MonitorInputError

    with pytest.raises(MonitorInputError, match="no objects there"):
        resolve(["s3://captures/nothing/"], tmp_path / "fetched")


def test_the_scheduled_aws_job_reads_s3_writes_the_report_and_alerts(
    tmp_path, s3_server, augmented_model, ref, rows, monkeypatch, capsys
):
    import boto3

    from monitor import aws

    X, y = rows
    now = datetime.now(UTC)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="plant", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for days_ago in (0, 3, 9):
        moment = now - timedelta(days=days_ago, minutes=5)
        body = "\n".join(_record(ref, f"SN-{days_ago}-{i}", moment, X[i]) for i in range(20)) + "\n"
        s3.put_object(Bucket="plant", Key=f"captures/{moment:%Y/%m/%d/%H}/part", Body=gzip.compress(body.encode()))
    labels = "inference_id,defect\n" + "".join(f"SN-0-{i},{y[i]}\n" for i in range(20))
    s3.put_object(Bucket="plant", Key="labels/labels.csv", Body=labels.encode())
    for service in ("SNS", "SQS"):
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", s3_server)
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="engineer")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    for key, value in {
        "CAPTURE_URL": "s3://plant/captures/",
        "LABELS_URL": "s3://plant/labels/labels.csv",
        "REPORT_URL": "s3://plant/reports/",
        "MODEL_DIR": str(augmented_model),
        "ALERT_TOPIC_ARN": topic,
        "LOOKBACK_DAYS": "7",
    }.items():
        monkeypatch.setenv(key, value)
    result = aws.handler({}, None)
    assert result["decision"] == "retrain"  # trained 10 days before T0: the 30-day schedule has passed
    assert result["exit_code"] == C.EXIT_RETRAIN
    [message] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2)["Messages"]
    assert "retrain" in json.loads(message["Body"])["Subject"]
    report_keys = {o["Key"] for o in s3.list_objects_v2(Bucket="plant", Prefix="reports/")["Contents"]}
    assert {k.rsplit("/", 1)[1] for k in report_keys} == {"report.json", "report.html", "metrics.emf.json"}
    report = json.loads(s3.get_object(Bucket="plant", Key=f"reports/{now:%Y-%m-%d}/report.json")["Body"].read())
    assert report["inputs"]["captures"]["unique_predictions"] == 40  # the 9-day-old file is outside the lookback
    printed = capsys.readouterr().out
    assert '"Namespace":"DiecastT1"' in printed  # the EMF line goes to the job's log


def test_parquet_captures_take_the_same_path(tmp_path, ref, rows):
    import duckdb

    from monitor.captures import CaptureReader
    from monitor.run import connect
    from monitor.sources import resolve

    X, _ = rows
    lines = tmp_path / "c.jsonl"
    lines.write_text("\n".join(_record(ref, f"SN-{i}", T0 + timedelta(hours=i), X[i]) for i in range(30)) + "\n")
    parquet = tmp_path / "c.parquet"
    duckdb.connect().execute(f"COPY (SELECT * FROM read_json('{lines}')) TO '{parquet}' (FORMAT parquet)")
    con = connect()
    reader = CaptureReader(con, ref.names, tmp_path / "s")
    [source] = resolve([str(parquet)], tmp_path / "s")
    assert source.parquet
    reader.read([source])
    s = reader.finish(ref.model_version)
    assert (s.lines, s.kinds["prediction"], s.unique) == (30, 30, 30)
    got = con.execute(f'SELECT "{ref.names[0]}" FROM captures ORDER BY ts_us').fetchall()
    assert [v for (v,) in got] == X[:30, 0].tolist()


# --- small windows and significance: drift waits for rows, rollback for evidence ---------------------------------


@pytest.fixture(scope="module")
def training_rows():
    from convert.dataset import DEFAULT_CSV, load_csv

    return load_csv(DEFAULT_CSV)[0]


def _window(ref, X):
    """A window of ``X``'s rows with no labels (drift reads the readings only)."""
    n = len(X)
    version = np.full(n, ref.model_version, dtype=object)
    return analysis.Window(0, T0, T0 + timedelta(days=7), X, np.full(n, 0.1), np.zeros(n, int), np.full(n, -1), version)


def _data_drift(ref, X, min_rows=C.MIN_ROWS):
    current = analysis.summarise(_window(ref, X), ref, C.MIN_LABELLED, with_ks=False, min_rows=min_rows)
    return current, analysis.triggers(current, ref, 0, 1.0, C.MIN_LABELLED)["data_drift"]


SIZES = (20, 50, 200, 1000, 5000)
SEEDS = range(8)


def test_windows_drawn_from_training_rarely_read_as_drift_at_any_size(ref, training_rows):
    """The false-drift rate of windows drawn from the training rows themselves, at sizes from 20 to 5,000 rows."""
    fired, old_rule = dict.fromkeys(SIZES, 0), dict.fromkeys(SIZES, 0)
    for n in SIZES:
        for seed in SEEDS:
            X = training_rows[np.random.default_rng(seed).integers(0, len(training_rows), n)]
            current, drift = _data_drift(ref, X)
            fired[n] += drift["fired"]
            old_rule[n] += current["max_psi"] > C.PSI_MAJOR  # the rule of thumb alone, at any size
            assert drift["reason"].startswith("insufficient rows") == (n < C.MIN_ROWS)
    assert sum(fired.values()) <= 1, fired  # at most 1 of 40 windows, where 1 % is the design's rate
    assert old_rule[20] == old_rule[50] == len(SEEDS)  # what the rule of thumb alone said on small windows


def test_a_shifted_window_of_moderate_size_still_reads_as_drift(ref, training_rows):
    """Week 5's hydrogen calibration shift (+0.05 mL/100g) on 300 rows drawn from training."""
    X = training_rows[np.random.default_rng(7).integers(0, len(training_rows), 300)].copy()
    X[:, list(ref.names).index("Sensor_MeltHydrogen")] += 0.05
    current, drift = _data_drift(ref, X)
    assert drift["fired"]
    assert current["drift"]["drifted"] == ["Sensor_MeltHydrogen"]
    assert "Sensor_MeltHydrogen" in drift["reason"]


def test_below_the_minimum_rows_drift_is_not_judged_but_a_lower_minimum_judges_it(ref, training_rows):
    X = training_rows[:40].copy()
    X[:, list(ref.names).index("Sensor_MeltHydrogen")] += 1.0  # far outside training: every row in the top decile
    current, drift = _data_drift(ref, X)
    assert not drift["fired"]
    assert drift["reason"] == f"insufficient rows: 40 predictions in the window, {C.MIN_ROWS} needed"
    assert current["drift"]["drifted"] == []
    assert not current["drift"]["sufficient_rows"]
    _, judged = _data_drift(ref, X, min_rows=40)
    assert judged["fired"]
    assert "Sensor_MeltHydrogen" in judged["reason"]


def test_psi_limit_is_the_rule_of_thumb_or_chances_value_at_the_windows_size():
    from scipy.stats import chi2

    assert stats.psi_critical(100, 10, 0.01) == pytest.approx(chi2.ppf(0.99, 9) / 100)
    assert stats.psi_limit(C.PSI_MAJOR, 20, 10, 0.01) == pytest.approx(chi2.ppf(0.99, 9) / 20)  # 1.08 at 20 rows
    assert stats.psi_limit(C.PSI_MAJOR, 5000, 10, 0.01) == C.PSI_MAJOR  # 0.004 at 5,000 rows: the rule decides
    assert stats.psi_critical(200, 4, 0.01) < stats.psi_critical(200, 10, 0.01)  # merged bins, fewer degrees


@pytest.mark.parametrize("n", [C.MIN_ROWS, 1000])
def test_psi_critical_holds_its_significance_on_samples_of_the_reference(n):
    """n * PSI ~ chi-square(9) on deciles: the share of samples from the reference above the limit is its level."""
    rng = np.random.default_rng(n)
    level = 0.05
    limit = stats.psi_critical(n, stats.PSI_BINS, level)
    above = np.mean([stats.psi(rng.uniform(0, 100, n), UNIFORM) > limit for _ in range(4000)])
    assert 0.03 < above < 0.07


def test_rollback_needs_f1s_interval_wholly_below_the_line(ref):
    noisy = _current(0.62, 1000, ci=[0.57, 0.67])
    fired = analysis.triggers(noisy, ref, 0, 1.0, C.MIN_LABELLED)
    assert not fired["rollback"]["fired"]
    assert "not significantly" in fired["rollback"]["reason"]
    assert "[0.570, 0.670]" in fired["rollback"]["reason"]
    assert analysis.decide(fired) != "rollback"
    assert analysis.warnings(noisy, ref, C.MIN_LABELLED)[0] == (
        f"rollback: {fired['rollback']['reason']}; no rollback on this window alone, watch the next ones"
    )
    clear = _current(0.60, 1000, ci=[0.55, np.nextafter(ROLLBACK_F1, 0)])
    assert _fired(ref, clear)["rollback"]
    assert (
        "significantly: its 95% interval" in analysis.triggers(clear, ref, 0, 1.0, C.MIN_LABELLED)["rollback"]["reason"]
    )
    assert analysis.warnings(clear, ref, C.MIN_LABELLED) == []  # acted on, not a warning
    assert not _fired(ref, _current(0.60, 1000, ci=[0.55, ROLLBACK_F1]))["rollback"]  # touching the line is not below
    assert analysis.warnings(_current(0.70, 1000, ci=[0.6, 0.8]), ref, C.MIN_LABELLED) == []


def test_performance_drop_needs_f1s_interval_wholly_below_the_floor(ref):
    """A week whose F1 dips below the floor by noise alone (the demo's week 2: 0.654 [0.599, 0.700] against a floor of
    0.662) once fired performance_drop and a retrain; now it is a warning, and only an interval below fires."""
    floor = ref.test_f1 * (1 - C.PERFORMANCE_DROP)
    noisy = _current(floor - 0.01, 1000, ci=[floor - 0.06, floor + 0.04])
    fired = analysis.triggers(noisy, ref, 0, 1.0, C.MIN_LABELLED)
    assert not fired["performance_drop"]["fired"]
    assert analysis.decide(fired) == "ok"
    assert "not significantly" in fired["performance_drop"]["reason"]
    assert f"the floor {floor:.3f}" in fired["performance_drop"]["reason"]
    assert analysis.warnings(noisy, ref, C.MIN_LABELLED) == [
        f"performance_drop: {fired['performance_drop']['reason']}; no retrain on this window alone, watch the next ones"
    ]
    clear = _current(floor - 0.05, 1000, ci=[floor - 0.09, np.nextafter(floor, 0)])
    assert _fired(ref, clear)["performance_drop"]
    assert (
        "significantly: its 95% interval"
        in analysis.triggers(clear, ref, 0, 1.0, C.MIN_LABELLED)["performance_drop"]["reason"]
    )
    assert not [w for w in analysis.warnings(clear, ref, C.MIN_LABELLED) if w.startswith("performance_drop")]
    assert not _fired(ref, _current(floor - 0.05, 1000, ci=[floor - 0.09, floor]))["performance_drop"]  # touching it


def test_the_rollback_alarms_metric_is_f1s_upper_end_emitted_with_f1(ref):
    from monitor import emf
    from runtime.contracts import Metric

    quality = {"f1": 0.62, "labelled": 500, "fpr": 0.1, "fnr": 0.3, "ci": {"f1": [0.57, 0.67]}}
    report = {
        "drift": {"max_psi": 0.01},
        "defect_rate": {"predicted": 0.2},
        "model": {"version": ref.model_version},
        "quality": {**quality, "sufficient_labels": True},
    }
    values = emf.metrics(report)
    assert values[Metric.MODEL_F1_UPPER] == 0.67
    assert values[Metric.MODEL_F1] == 0.62
    few = emf.metrics({**report, "quality": {**quality, "sufficient_labels": False}})
    assert Metric.MODEL_F1_UPPER not in few
    assert Metric.MODEL_F1 not in few


def _cells_case(tmp_path, ref, rows, cells):
    """Captures and labels whose confusion cells are ``cells`` ((truth, predicted) -> count), one hour apart."""
    X, _ = rows
    lines, labels, i = [], ["inference_id,defect"], 0
    for (truth, predicted), count in cells.items():
        for _ in range(count):
            when = T0 + timedelta(minutes=2 * i)
            lines.append(_record(ref, f"SN-{i}", when, X[i % len(X)], probability=0.9 if predicted else 0.1))
            labels.append(f"SN-{i},{truth}")
            i += 1
    (tmp_path / "captures.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "labels.csv").write_text("\n".join(labels) + "\n")
    return tmp_path / "captures.jsonl", tmp_path / "labels.csv"


def _report(tmp_path, augmented_model, captures, labels, *extra):
    out = tmp_path / "out"
    code = _run("--captures", captures, "--labels", labels, "--model", augmented_model, "--out", out, *extra)
    return code, json.loads((out / "report.json").read_text()), (out / "report.html").read_text()


def test_f1_below_the_line_by_noise_is_a_warning_in_json_and_html(tmp_path, augmented_model, ref, rows, capsys):
    # F1 = 2*30 / (2*30 + 20 + 20) = 0.6 on 250 rows: below 0.65, its interval reaching above it
    cells = {(1, 1): 30, (0, 1): 20, (1, 0): 20, (0, 0): 180}
    code, report, page = _report(tmp_path, augmented_model, *_cells_case(tmp_path, ref, rows, cells))
    assert report["quality"]["f1"] == pytest.approx(0.6)
    assert report["quality"]["ci"]["f1"][1] > ROLLBACK_F1
    assert report["decision"] != "rollback"
    assert code != C.EXIT_ROLLBACK
    rollback_warnings = [w for w in report["warnings"] if w.startswith("rollback:")]
    assert len(rollback_warnings) == 1
    assert "not significantly" in rollback_warnings[0]
    assert "Warnings (not acted on)" in page
    assert "not significantly" in page
    assert f"  ! warning: {rollback_warnings[0]}" in capsys.readouterr().out  # and the command's summary says so


def test_f1_significantly_below_the_line_rolls_back(tmp_path, augmented_model, ref, rows, capsys):
    # F1 0.5 on 2,000 rows: its interval (about +-0.04) lies wholly below 0.65
    cells = {(1, 1): 250, (0, 1): 250, (1, 0): 250, (0, 0): 1250}
    code, report, _ = _report(tmp_path, augmented_model, *_cells_case(tmp_path, ref, rows, cells))
    assert report["quality"]["ci"]["f1"][1] < ROLLBACK_F1
    assert (report["decision"], code) == ("rollback", C.EXIT_ROLLBACK)
    assert report["warnings"] == []


def test_twenty_training_rows_say_insufficient_rows_not_retrain(tmp_path, augmented_model, ref, rows, capsys):
    """20 rows straight from the training CSV: once data_drift on 28 of 30 features and exit 10."""
    X, _ = rows
    lines = [_record(ref, f"SN-{i}", T0 + timedelta(hours=i), X[i]) for i in range(20)]
    (tmp_path / "captures.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "labels.csv").write_text("inference_id,defect\n")
    code, report, page = _report(tmp_path, augmented_model, tmp_path / "captures.jsonl", tmp_path / "labels.csv")
    assert (report["decision"], code) == ("ok", C.EXIT_OK)
    assert report["drift"]["drifted"] == []
    assert not report["drift"]["sufficient_rows"]
    assert report["triggers"]["data_drift"]["reason"].startswith("insufficient rows: 20 predictions")
    assert report["thresholds"]["min_rows"] == C.MIN_ROWS
    assert "Insufficient rows: 20 predictions" in page
    assert "decision: ok (exit 0)" in capsys.readouterr().out
    code, report, _ = _report(
        tmp_path, augmented_model, tmp_path / "captures.jsonl", tmp_path / "labels.csv", "--min-rows", "20"
    )
    assert report["drift"]["sufficient_rows"]
    assert report["drift"]["min_rows"] == 20
