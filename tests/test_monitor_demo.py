"""``make monitor-demo``'s story, pinned: eight weeks through the handler; quiet weeks retrain on the label schedule
only, never on noise (an F1 below the retrain floor or the rollback line by noise alone is a warning); drift from
week 5; rollback only where F1's interval lies below the line. The monitoring guide prints the same decisions."""

from __future__ import annotations

import re

import pytest

from monitor import constants as C
from monitor import demo
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.monitor, pytest.mark.slow]

# week -> (decision, the signals that fired on evidence, those on schedule, the F1 lines crossed not significantly:
# the warnings), as demo.week_row gives them
PINNED = {
    1: ("retrain", "-", "new_labels", "-"),
    2: ("retrain", "-", "new_labels", "performance_drop"),
    3: ("retrain", "-", "new_labels", "rollback, performance_drop"),
    4: ("retrain", "-", "new_labels", "-"),
    5: ("retrain", "data_drift", "new_labels, schedule", "-"),
    6: ("retrain", "performance_drop, data_drift", "new_labels, schedule", "rollback"),
    7: ("retrain", "data_drift", "new_labels, schedule", "rollback, performance_drop"),
    8: ("rollback", "performance_drop, data_drift, rollback", "new_labels, schedule", "-"),
}
DOCS_ROW = re.compile(r"^\s*(\d+)\s.*\s(ok|retrain|rollback)  ([^;]+); ([^;]+); ([^;]+)$")


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    out = tmp_path_factory.mktemp("monitor-demo")
    model_dir, captures, labels = demo.simulate(out)
    _, results = demo.monitor_weeks(model_dir, captures, labels, out / "scratch")
    return {week: r.report for week, r in enumerate(results, start=1)}


@pytest.fixture(scope="module")
def weeks(reports):
    return {week: demo.week_row(report) for week, report in reports.items()}


def test_the_demo_weeks_decide_as_pinned(weeks):
    assert weeks == PINNED


def test_the_demo_tells_the_story_drift_from_week_5_and_no_rollback_on_quiet_weeks(weeks):
    for week, (decision, evidence, _, _) in weeks.items():
        assert ("data_drift" in evidence) == (week >= demo.DRIFT_FROM_WEEK), week
        if week < demo.DRIFT_FROM_WEEK:
            assert decision != "rollback", week
            assert evidence == "-", week  # a quiet week's retrain is the label schedule, never noise


def test_the_demo_counts_new_labels_since_training(reports):
    """new_labels counts every label known since the model was trained (the demo's start), not the window's: ~60 % of
    2,500 parts inspected a week is over 1,000 labels within the first week, why the quiet weeks retrain on schedule."""
    counts = [reports[week]["new_labels_since_training"] for week in sorted(reports)]
    assert counts[0] == reports[1]["quality"]["labelled"] >= C.NEW_LABELS  # week 1: the window is all since training
    assert counts == sorted(counts)  # accumulates
    assert counts[-1] > sum(reports[week]["quality"]["labelled"] for week in reports)  # late labels count too


def test_the_monitoring_guide_prints_the_pinned_decisions():
    text = (REPO_ROOT / "docs" / "monitoring.md").read_text()
    block = text[text.index("## `make monitor-demo`") :].split("```")[1]
    rows = {int(m[1]): (m[2], m[3], m[4], m[5]) for line in block.splitlines() if (m := DOCS_ROW.match(line))}
    assert rows == PINNED
