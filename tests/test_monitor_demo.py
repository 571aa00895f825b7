"""``make monitor-demo``'s story, pinned: eight weeks through the handler, drift from week 5, retrain, and no rollback
on a quiet week (a week whose F1 dips below the line by noise alone is a warning). The monitoring guide prints the
same decisions."""

from __future__ import annotations

import re

import pytest

from monitor import demo
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.monitor, pytest.mark.slow]

NOISE = "F1 < 0.65, not significantly"
# week -> (decision, the signals that fired, the warning), as demo.week_row gives them
PINNED = {
    1: ("retrain", "new_labels", "-"),
    2: ("retrain", "performance_drop, new_labels", "-"),
    3: ("retrain", "performance_drop, new_labels", NOISE),
    4: ("retrain", "new_labels", "-"),
    5: ("retrain", "data_drift, new_labels, schedule", "-"),
    6: ("retrain", "performance_drop, data_drift, new_labels, schedule", NOISE),
    7: ("retrain", "performance_drop, data_drift, new_labels, schedule", NOISE),
    8: ("rollback", "performance_drop, data_drift, new_labels, schedule, rollback", "-"),
}
DOCS_ROW = re.compile(r"^\s*(\d+)\s.*\s(ok|retrain|rollback)  (.+); (.+)$")


@pytest.fixture(scope="module")
def weeks(tmp_path_factory):
    out = tmp_path_factory.mktemp("monitor-demo")
    model_dir, captures, labels = demo.simulate(out)
    _, results = demo.monitor_weeks(model_dir, captures, labels, out / "scratch")
    return {week: demo.week_row(r.report) for week, r in enumerate(results, start=1)}


def test_the_demo_weeks_decide_as_pinned(weeks):
    assert weeks == PINNED


def test_the_demo_tells_the_story_drift_from_week_5_and_no_rollback_on_quiet_weeks(weeks):
    for week, (decision, fired, _) in weeks.items():
        assert ("data_drift" in fired) == (week >= demo.DRIFT_FROM_WEEK), week
        if week < demo.DRIFT_FROM_WEEK:
            assert decision != "rollback", week


def test_the_monitoring_guide_prints_the_pinned_decisions():
    text = (REPO_ROOT / "docs" / "monitoring.md").read_text()
    block = text[text.index("## `make monitor-demo`") :].split("```")[1]
    rows = {int(m[1]): (m[2], m[3], m[4]) for line in block.splitlines() if (m := DOCS_ROW.match(line))}
    assert rows == PINNED
