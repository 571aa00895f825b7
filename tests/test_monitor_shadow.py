"""The monitor with a second model: a shadow's agreement and both F1s, the A/B split per version, the
shadow object's typing, and the report's sections only when there is such data.

Captures are written by hand (a `shadow` object and model versions of our choosing), so nothing here needs a second
converted model in models_onnx/.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from diecast.commands import monitor as monitor_command
from evaluation import stats
from monitor import constants as C
from monitor.manifest import load_reference
from runtime.contracts import ROLLBACK_F1
from tests.conftest import ONNX_DIR

pytestmark = pytest.mark.monitor

T0 = datetime(2026, 10, 1, tzinfo=UTC)
SHADOW = "v1.1_12D_GB"


# --- statistics against hand-computed values ----------------------------------------------------------------------


def test_wilson_interval_matches_the_published_value():
    # 8 of 10 at 95 %: Wilson (1927) gives [0.4902, 0.9433]; the normal one, 0.8 +- 0.248, reaches above 1.
    lo, hi = stats.wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4)
    assert hi == pytest.approx(0.9433, abs=1e-4)
    assert stats.wilson(10, 10)[1] == pytest.approx(1.0)
    assert stats.wilson(0, 0) is None


def test_mcnemar_exact_by_hand():
    # b = 1 row only the first gets right, c = 6 only the second: p = 2 * P(X <= 1), X ~ Bin(7, 1/2) = 2 * 8 / 128.
    y = np.ones(7, dtype=int)
    first = np.array([1, 0, 0, 0, 0, 0, 0])
    second = 1 - first
    assert stats.mcnemar(y, first, second) == {"b": 1, "c": 6, "p_value": pytest.approx(16 / 128)}


def test_paired_f1_difference_and_its_interval_cover_a_known_difference():
    rng = np.random.default_rng(3)
    y = (rng.random(4000) < 0.3).astype(int)
    a = np.where(rng.random(4000) < 0.80, y, 1 - y)  # right on 80 % of rows
    b = np.where(rng.random(4000) < 0.90, y, 1 - y)  # right on 90 %
    d = stats.paired_f1_difference(y, a, b)
    f1 = [stats.quality(y, v.astype(float), v)["f1"] for v in (a, b)]
    assert d["value"] == pytest.approx(f1[1] - f1[0])
    lo, hi = d["ci"]
    assert 0 < lo < d["value"] < hi  # the better model is significantly better, and the interval holds the estimate


# --- hand-made captures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from monitor.demo import trained_on

    return trained_on(ONNX_DIR, tmp_path_factory.mktemp("model") / "v1.0", T0 - timedelta(days=10))


@pytest.fixture(scope="module")
def ref(model):
    return load_reference(model)


@pytest.fixture(scope="module")
def features(ref):
    from convert.dataset import DEFAULT_CSV, load_csv

    X, _ = load_csv(DEFAULT_CSV)
    return dict(zip(ref.names, X[0].tolist(), strict=True))


def _line(features, ident, label, version, shadow=None, hour=0, **override):
    record = {
        "record": "prediction",
        "schema": 1,
        "inference_id": ident,
        "request_id": "req",
        "timestamp": (T0 + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "model_version": version,
        "features": features,
        "probability": 0.9 if label else 0.1,
        "label": label,
        "class": "defect" if label else "normal",
        "confidence": "high",
        "out_of_range": [],
    }
    if shadow is not None:
        record["shadow"] = shadow
    record.update(override)
    return json.dumps(record)


def _shadow(label, version=SHADOW):
    return {"model_version": version, "probability": 0.8 if label else 0.2, "label": label}


# (truth, served, shadow) -> rows. Served: tp 5, fp 3, fn 5 -> F1 10/18. Shadow: tp 7, fp 2, fn 3 -> F1 14/19.
# Rows only the served model gets right: (1,1,0) + (0,0,1) = 2; only the shadow: (1,0,1) + (0,1,0) = 5.
LABELLED = {
    (1, 1, 1): 4,
    (1, 1, 0): 1,
    (1, 0, 1): 3,
    (1, 0, 0): 2,
    (0, 0, 0): 10,
    (0, 1, 0): 2,
    (0, 0, 1): 1,
    (0, 1, 1): 1,
}
UNLABELLED = {(1, 1): 3, (0, 0): 2, (0, 1): 1}  # (served, shadow): 5 of 6 agree


def _write_shadow_case(tmp_path, ref, features):
    lines, labels, i = [], ["inference_id,defect"], 0
    for (truth, served, shadow), n in LABELLED.items():
        for _ in range(n):
            lines.append(_line(features, f"SN-{i}", served, ref.model_version, _shadow(shadow), hour=i))
            labels.append(f"SN-{i},{truth}")
            i += 1
    for (served, shadow), n in UNLABELLED.items():
        for _ in range(n):
            lines.append(_line(features, f"SN-{i}", served, ref.model_version, _shadow(shadow), hour=i))
            i += 1
    lines.append(_line(features, "SN-failed-1", 1, ref.model_version, hour=1))  # the shadow failed: no object
    lines.append(_line(features, "SN-failed-2", 0, ref.model_version, hour=2))
    lines.append(_line(features, "SN-other", 0, ref.model_version, _shadow(1, "v1.2_12D_GB"), hour=3))
    (tmp_path / "captures.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "labels.csv").write_text("\n".join(labels) + "\n")
    return tmp_path / "captures.jsonl", tmp_path / "labels.csv"


def build_parser() -> argparse.ArgumentParser:
    """``diecast monitor``'s parser."""
    parser = argparse.ArgumentParser(prog="diecast monitor")
    monitor_command.configure(parser)
    return parser


def cli_main(argv):
    return monitor_command.run(build_parser().parse_args(argv))


def _monitor(captures, labels, model, out, *extra):
    code = cli_main(
        [str(a) for a in ("--captures", captures, "--labels", labels, "--model", model, "--out", out, *extra)]
    )
    return code, json.loads((out / C.REPORT_JSON).read_text()), (out / C.REPORT_HTML).read_text()


def test_shadow_agreement_and_both_f1s_on_a_hand_made_case(tmp_path, model, ref, features):
    captures, labels = _write_shadow_case(tmp_path, ref, features)
    _, report, _ = _monitor(captures, labels, model, tmp_path / "out", "--min-labelled", "10")
    s = report["shadow"]
    assert s["model_version"] == SHADOW
    assert s["rows"] == 30  # not the two rows the shadow failed on, nor the one scored by another shadow version
    assert s["other_shadow_versions"] == {"v1.2_12D_GB": 1}
    assert s["coverage"] == pytest.approx(30 / 33)
    assert s["agreement"] == pytest.approx(22 / 30)  # 17 of the 24 labelled, 5 of the 6 unlabelled
    lo, hi = s["agreement_ci"]
    assert lo < 22 / 30 < hi
    assert s["disagreements"] == {"served_defect_shadow_normal": 3, "served_normal_shadow_defect": 5}
    assert s["labelled"] == s["served"]["labelled"] == s["shadow"]["labelled"] == 24
    assert s["served"]["f1"] == pytest.approx(10 / 18)
    assert s["shadow"]["f1"] == pytest.approx(14 / 19)
    for side in ("served", "shadow"):
        lo, hi = s[side]["ci"]["f1"]
        assert lo <= s[side]["f1"] <= hi
    assert s["f1_difference"]["value"] == pytest.approx(14 / 19 - 10 / 18)
    lo, hi = s["f1_difference"]["ci"]
    assert lo < s["f1_difference"]["value"] < hi
    assert s["mcnemar"] == {"b": 2, "c": 5, "p_value": pytest.approx(2 * (1 + 7 + 21) / 128)}
    assert report["by_model_version"] is None  # one answering version
    emf = json.loads((tmp_path / "out" / C.METRICS_EMF).read_text())
    assert emf["ShadowAgreement"] == pytest.approx(22 / 30)


# Primary: tp 8, fp 1, fn 1, tn 10 -> F1 16/18. B: tp 1, fp 5, fn 7, tn 7 -> F1 2/14. Together: F1 18/32 < 0.65.
SPLIT = {
    "primary": {(1, 1): 8, (0, 1): 1, (1, 0): 1, (0, 0): 10},
    "b": {(1, 1): 1, (0, 1): 5, (1, 0): 7, (0, 0): 7},
}


def _write_split_case(tmp_path, ref, features):
    lines, labels, i = [], ["inference_id,defect"], 0
    for arm, version in (("primary", ref.model_version), ("b", "v1.1_12D_GB")):
        for (truth, served), n in SPLIT[arm].items():
            for _ in range(n):
                lines.append(_line(features, f"SN-{i}", served, version, hour=i % 100))
                labels.append(f"SN-{i},{truth}")
                i += 1
        for _ in range(5 if arm == "primary" else 3):  # not yet inspected
            lines.append(_line(features, f"SN-{i}", 0, version, hour=i % 100))
            i += 1
    lines.append(_line(features, "SN-old", 0, "v0.9_12D_GB"))  # neither arm: counted, never analysed
    (tmp_path / "captures.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "labels.csv").write_text("\n".join(labels) + "\n")
    return tmp_path / "captures.jsonl", tmp_path / "labels.csv"


def test_ab_split_reports_each_version_and_judges_rollback_on_the_served_rows(tmp_path, model, ref, features):
    captures, labels = _write_split_case(tmp_path, ref, features)
    out = tmp_path / "out"
    code, report, _ = _monitor(captures, labels, model, out, "--min-labelled", "10", "--ab-version", "v1.1")
    per = report["by_model_version"]
    assert set(per) == {ref.model_version, "v1.1_12D_GB"}
    assert (per[ref.model_version]["rows"], per[ref.model_version]["labelled"]) == (25, 20)
    assert (per["v1.1_12D_GB"]["rows"], per["v1.1_12D_GB"]["labelled"]) == (23, 20)
    assert per[ref.model_version]["f1"] == pytest.approx(16 / 18)
    assert per["v1.1_12D_GB"]["f1"] == pytest.approx(2 / 14)
    assert per["v1.1_12D_GB"]["ci"]["f1"][0] <= 2 / 14 <= per["v1.1_12D_GB"]["ci"]["f1"][1]
    # the top-level quality is the whole traffic, and would be a rollback on its own ...
    assert (report["window"]["predictions"], report["quality"]["labelled"]) == (48, 40)
    assert report["quality"]["f1"] == pytest.approx(18 / 32)
    assert report["quality"]["f1"] < ROLLBACK_F1  # the whole traffic alone would roll back
    # ... but the model's signals read the served version's rows
    assert not report["triggers"]["rollback"]["fired"]
    assert not report["triggers"]["performance_drop"]["fired"]
    assert f"on 20 labelled rows of {ref.model_version}" in report["triggers"]["rollback"]["reason"]
    assert report["decision"] != "rollback"
    assert code != C.EXIT_ROLLBACK
    assert report["inputs"]["captures"]["other_model_versions"] == {"v0.9_12D_GB": 1}
    emf = json.loads((out / C.METRICS_EMF).read_text())
    assert emf["ModelF1"] == pytest.approx(16 / 18)
    assert report["shadow"] is None


def test_without_ab_version_the_second_versions_rows_are_counted_not_analysed(tmp_path, model, ref, features):
    captures, labels = _write_split_case(tmp_path, ref, features)
    _, report, _ = _monitor(captures, labels, model, tmp_path / "out", "--min-labelled", "10")
    assert report["by_model_version"] is None
    assert report["inputs"]["captures"]["other_model_versions"] == {"v0.9_12D_GB": 1, "v1.1_12D_GB": 23}
    assert report["quality"]["f1"] == pytest.approx(16 / 18)


def test_a_bad_shadow_is_an_invalid_line_and_the_rest_is_read(tmp_path, ref, features):
    from monitor.captures import CaptureReader
    from monitor.run import connect
    from monitor.sources import resolve

    v = ref.model_version
    lines = [
        _line(features, "ok-1", 1, v, _shadow(0)),
        _line(features, "ok-2", 0, v, None),  # no shadow: the shadow failed on that request
        json.dumps({**json.loads(_line(features, "ok-3", 0, v)), "shadow": None}),  # null reads as absent
        _line(features, "bad-1", 1, v, "x"),
        _line(features, "bad-2", 1, v, [1, 0]),
        _line(features, "bad-3", 1, v, {"probability": 0.3, "label": 1}),
        _line(features, "bad-4", 1, v, {"model_version": SHADOW, "probability": "0.3", "label": 1}),
        _line(features, "bad-5", 1, v, {"model_version": SHADOW, "probability": 1.5, "label": 1}),
        _line(features, "bad-6", 1, v, {"model_version": SHADOW, "probability": 0.3, "label": 2}),
        _line(features, "bad-7", 1, v, {"model_version": SHADOW, "probability": 0.3, "label": True}),
    ]
    path = tmp_path / "captures.jsonl"
    path.write_text("\n".join(lines) + "\n")
    con = connect()
    reader = CaptureReader(con, ref.names, tmp_path / "scratch")
    reader.read(resolve([str(path)], tmp_path / "scratch"))
    s = reader.finish(v)
    assert s.kinds == {"prediction": 3, "invalid": 7, "corrupt": 0}
    assert s.invalid_fields == {"shadow": 2, "shadow.model_version": 1, "shadow.probability": 2, "shadow.label": 2}
    assert {e["detail"] for e in s.examples} >= {"bad field: shadow", "bad field: shadow.model_version"}
    kept = con.execute(
        "SELECT inference_id, shadow_version, shadow_probability, shadow_label FROM captures ORDER BY 1"
    ).fetchall()
    assert kept == [("ok-1", SHADOW, 0.2, 0), ("ok-2", None, None, None), ("ok-3", None, None, None)]


def test_report_html_shows_the_second_model_only_when_there_is_data(tmp_path, model, ref, features):
    shadow_dir, split_dir, plain_dir = (tmp_path / d for d in ("shadow", "split", "plain"))
    for d in (shadow_dir, split_dir, plain_dir):
        d.mkdir()
    _, _, with_shadow = _monitor(*_write_shadow_case(shadow_dir, ref, features), model, shadow_dir / "out")
    _, _, with_split = _monitor(
        *_write_split_case(split_dir, ref, features), model, split_dir / "out", "--ab-version", "v1.1"
    )
    _, _, plain = _monitor(*_write_split_case(plain_dir, ref, features), model, plain_dir / "out")
    shadow_title, split_title = "Shadow model v1.1_12D_GB against the served model", "Quality per model version"
    assert shadow_title in with_shadow
    assert split_title not in with_shadow
    assert split_title in with_split
    assert shadow_title not in with_split
    assert shadow_title not in plain
    assert split_title not in plain
    assert with_shadow.index("Quality on the labelled subset") < with_shadow.index(shadow_title)
    assert with_shadow.index(shadow_title) < with_shadow.index("Quality over time")
    assert "agreement" in with_shadow
    assert "0.733" in with_shadow
    assert "v1.1_12D_GB</td><td>23</td><td>20</td><td>0.143" in with_split
    # one chart more than the page without a shadow: the two F1s and the agreement with their intervals
    assert with_shadow.count("data:image/png;base64,") == plain.count("data:image/png;base64,") + 1


def test_the_scheduled_job_passes_the_ab_version_only_when_set(tmp_path, monkeypatch):
    from monitor import aws

    monkeypatch.setenv("MODEL_DIR", "models_onnx/v1.0")
    monkeypatch.delenv("AB_VERSION", raising=False)
    assert build_parser().parse_args(aws.monitor_argv(["c"], tmp_path / "l", tmp_path / "o")).ab_version is None
    monkeypatch.setenv("AB_VERSION", "v1.1")
    assert build_parser().parse_args(aws.monitor_argv(["c"], tmp_path / "l", tmp_path / "o")).ab_version == "v1.1"
