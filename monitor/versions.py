"""A second model beside the served one: each answering version's quality (A/B split) and a shadow's comparison.

A/B (``AB_SPLIT`` in the handler, ``--ab-version`` here): a window holds rows of two versions, each record naming
the model that answered it. The report's top-level quality stays the window's whole traffic, what the plant got;
``by_model_version`` splits it. The model's signals (performance_drop, rollback, and the ``ModelF1`` metric the
alarm acts on) are judged on the served version's rows only: its test F1 is the floor, and a weak 10 % share of B
must not roll back A (stopping the split is the engineer's call, with ``make compare`` and this table). The data's
signals (data_drift, new_labels, schedule) use every row: the readings do not depend on which model answered.

Shadow (``SHADOW_MODEL_VERSION``): every row the shadow scored is compared with the label that was served. Agreement
needs no labels; on the labelled subset both F1s come with their bootstrap intervals, their paired difference
(shadow - served) with its own, and McNemar's exact test. A shadow result for the version that answered the row
(A/B and shadow on the same version) is left out: a model compared with itself says nothing.
"""

from __future__ import annotations

import numpy as np

from evaluation import stats
from monitor.window import Window


def _quality(window: Window, rows: np.ndarray, min_labelled: int) -> dict:
    labelled = rows & (window.defect >= 0)
    q = stats.quality(window.defect[labelled], window.probability[labelled], window.predicted[labelled])
    return {"rows": int(rows.sum()), **q, "sufficient_labels": q["labelled"] >= min_labelled}


def by_model_version(window: Window, min_labelled: int) -> dict | None:
    """Version -> rows, labelled, and the quality section's metrics with their CIs; None for a single version."""
    names = np.unique(window.version)
    if len(names) < 2:
        return None
    return {str(v): _quality(window, window.version == v, min_labelled) for v in names}


def judged(current: dict, version: str) -> tuple[dict, str]:
    """The quality the model's signals act on, and the words naming its rows ("" for a window of one version)."""
    per = current.get("by_model_version")
    if not per:
        return current["quality"], ""
    empty = stats.quality(np.empty(0), np.empty(0), np.empty(0))
    return per.get(version) or {**empty, "rows": 0}, f" of {version}"


def _compared_rows(window: Window) -> tuple[np.ndarray, str, dict[str, int]] | None:
    """Rows scored by the shadow (its most frequent version when the window saw a change of shadow)."""
    s = window.shadow
    if s is None:
        return None
    present = (s.label >= 0) & (s.version != window.version)
    if not present.any():
        return None
    names, counts = np.unique(s.version[present], return_counts=True)
    chosen = str(names[np.argmax(counts)])
    others = {str(v): int(c) for v, c in zip(names, counts, strict=True) if v != chosen}
    return present & (s.version == chosen), chosen, others


def shadow_comparison(window: Window, min_labelled: int) -> dict | None:
    """The shadow against the served label on the window's rows; None when no row has a shadow result."""
    found = _compared_rows(window)
    if found is None:
        return None
    rows, version, others = found
    s = window.shadow
    assert s is not None
    served, shadow = window.predicted[rows], s.label[rows]
    n, agree = int(rows.sum()), int(np.sum(served == shadow))
    labelled = rows & (window.defect >= 0)
    y = window.defect[labelled]
    served_q = stats.quality(y, window.probability[labelled], window.predicted[labelled])
    return {
        "model_version": version,
        "rows": n,
        "coverage": n / len(window.probability),
        "agreement": agree / n,
        "agreement_ci": stats.wilson(agree, n),
        "disagreements": {
            "served_defect_shadow_normal": int(np.sum((served == 1) & (shadow == 0))),
            "served_normal_shadow_defect": int(np.sum((served == 0) & (shadow == 1))),
        },
        "labelled": int(labelled.sum()),
        "sufficient_labels": int(labelled.sum()) >= min_labelled,
        "served": served_q,
        "shadow": stats.quality(y, s.probability[labelled], s.label[labelled]),
        "f1_difference": stats.paired_f1_difference(y, window.predicted[labelled], s.label[labelled]),
        "mcnemar": stats.mcnemar(y, window.predicted[labelled], s.label[labelled]),
        "other_shadow_versions": others,
    }
