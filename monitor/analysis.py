"""Windows, quality, drift, signals and the decision: DuckDB joins and windows, ``evaluation.stats`` for the numbers.

Window 0 is the most recent ``--window`` (default 7 days) ending at ``as_of`` (default: the latest capture);
windows 1, 2, ... are the ones before it, for the trend. Labels join captures on ``inference_id`` and count in the
window of their prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa

from evaluation import stats
from evaluation.policy import CONFIDENCE
from monitor import constants as C
from monitor import versions
from monitor.exceptions import MonitorInputError
from monitor.labels import Label, LabelStats
from monitor.manifest import ModelReference
from monitor.window import ShadowRows, Window
from runtime.contracts import ROLLBACK_F1


@dataclass(frozen=True)
class Options:
    """What one run looks at: the window's length, where it ends, the labels quality needs and the rows drift needs."""

    window: timedelta
    as_of: datetime | None = None  # None: the latest capture
    min_labelled: int = C.MIN_LABELLED
    min_rows: int = C.MIN_ROWS


def register_labels(con: duckdb.DuckDBPyConnection, labels: list[Label]) -> None:
    table = pa.table(
        {
            "inference_id": pa.array([r.inference_id for r in labels], pa.string()),
            "defect": pa.array([r.defect for r in labels], pa.int32()),
            "defect_type": pa.array([r.defect_type for r in labels], pa.string()),
            "inspected_at": pa.array([r.inspected_at for r in labels], pa.timestamp("us", tz="UTC")),
            "line": pa.array([r.line for r in labels], pa.int64()),
        }
    )
    con.register("labels_arrow", table)
    con.execute("CREATE OR REPLACE TEMP TABLE labels AS SELECT * FROM labels_arrow")
    con.unregister("labels_arrow")


def count_unmatched(con: duckdb.DuckDBPyConnection, label_stats: LabelStats) -> None:
    """Labels whose id has no capture: counted and quoted, never silently dropped."""
    rows = con.execute(
        "SELECT l.inference_id, l.line FROM labels l ANTI JOIN captures c USING (inference_id) ORDER BY l.line"
    ).fetchall()
    label_stats.without_capture = len(rows)
    label_stats.joined = label_stats.unique - len(rows)
    for ident, line in rows[: C.EXAMPLES_PER_PROBLEM]:
        label_stats.note("without_capture", int(line), f"inference_id {ident!r} has no capture of this model")


# With an explicit --as-of, a label counts once it is known then: inspected by then (or with no inspection time), so a
# replay of an earlier date sees what the plant knew that day. Without one, every label in the file counts (inspection
# goes on after the last capture, e.g. over a weekend).
KNOWN_BY = "(l.inspected_at IS NULL OR epoch_us(l.inspected_at) <= ?)"
NO_CUTOFF = 2**62


def _us(moment: datetime) -> int:
    return round(moment.timestamp() * 1e6)


def _moment(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, UTC)


def resolve_as_of(con: duckdb.DuckDBPyConnection, options: Options) -> datetime:
    latest = con.execute("SELECT max(ts_us) FROM captures").fetchall()[0][0]
    if latest is None:
        raise MonitorInputError("the captures hold no valid prediction record of this model version (see the counts)")
    return options.as_of or _moment(latest)


def label_cutoff(options: Options) -> int:
    """Epoch microseconds after which an inspection is not yet known (see ``KNOWN_BY``)."""
    return _us(options.as_of) if options.as_of else NO_CUTOFF


def load_windows(
    con: duckdb.DuckDBPyConnection, ref: ModelReference, as_of: datetime, width: timedelta, known_by: int = NO_CUTOFF
) -> list[Window]:
    """Windows 0..k with at least one capture, most recent first (at most ``MAX_TREND_WINDOWS``)."""
    cols = ", ".join('c."' + n.replace('"', '""') + '"' for n in ref.names)
    end, span = _us(as_of), round(width.total_seconds() * 1e6)
    data = con.execute(
        f"""SELECT CAST((? - c.ts_us) // ? AS INTEGER) AS k, c.probability, c.label,
                   coalesce(l.defect, -1) AS defect, c.model_version,
                   coalesce(c.shadow_version, '') AS shadow_version,
                   coalesce(c.shadow_probability, 'NaN'::DOUBLE) AS shadow_probability,
                   coalesce(c.shadow_label, -1) AS shadow_label, {cols}
            FROM captures c LEFT JOIN labels l ON l.inference_id = c.inference_id AND {KNOWN_BY}
            WHERE c.ts_us <= ? AND c.ts_us > ? - ? * ?
            ORDER BY k""",
        [end, span, known_by, end, end, span, C.MAX_TREND_WINDOWS],
    ).fetchnumpy()
    k = np.asarray(data["k"])
    X = (
        np.column_stack([np.asarray(data[n], dtype=np.float64) for n in ref.names])
        if k.size
        else np.empty((0, len(ref.names)))
    )
    out = []
    for index in np.unique(k):
        rows = k == index
        end = as_of - index * width
        out.append(
            Window(
                int(index),
                end - width,
                end,
                X[rows],
                np.asarray(data["probability"], dtype=np.float64)[rows],
                np.asarray(data["label"]).astype(np.int64)[rows],
                np.asarray(data["defect"]).astype(np.int64)[rows],
                np.asarray(data["model_version"], dtype=object)[rows],
                _shadow_rows(data, rows),
            )
        )
    return out


def _shadow_rows(data: dict, rows: np.ndarray) -> ShadowRows | None:
    label = np.asarray(data["shadow_label"]).astype(np.int64)[rows]
    if not (label >= 0).any():
        return None
    return ShadowRows(
        np.asarray(data["shadow_version"], dtype=object)[rows],
        np.asarray(data["shadow_probability"], dtype=np.float64)[rows],
        label,
    )


def feature_drift(psi: dict[str, float | None], bins: dict[str, int], rows: int, min_rows: int) -> dict:
    """Which features of a window of ``rows`` predictions shifted, by their PSI.

    A feature counts as drifted (moderate) when its PSI exceeds ``stats.psi_limit``: the rule of thumb
    ``PSI_MAJOR`` (``PSI_MODERATE``) or, when larger, the PSI chance alone reaches at this size with probability
    ``DRIFT_SIGNIFICANCE`` / features (Bonferroni: a window drawn from the training distribution itself has at most
    that chance of naming any feature). Below ``min_rows`` none counts: "insufficient rows".

    Parameters
    ----------
    psi : dict of str to float or None
        Each feature's PSI (None for no rows).
    bins : dict of str to int
        Each feature's reference bins (``stats.reference_bins``).
    rows, min_rows : int

    Returns
    -------
    dict
        ``{"rows", "min_rows", "sufficient_rows", "significance", "critical": {feature: float | None},
        "drifted": [feature, ...], "moderate": [...]}``, ``critical`` being ``stats.psi_critical``.
    """
    alpha = C.DRIFT_SIGNIFICANCE / max(len(psi), 1)
    sufficient = rows >= min_rows and rows > 0
    critical = {name: stats.psi_critical(rows, bins[name], alpha) if rows else None for name in psi}

    def above(threshold: float) -> list[str]:
        if not sufficient:
            return []
        limit = {name: stats.psi_limit(threshold, rows, bins[name], alpha) for name in psi}
        return sorted(name for name, v in psi.items() if v is not None and v > limit[name])

    drifted = above(C.PSI_MAJOR)
    return {
        "rows": rows,
        "min_rows": min_rows,
        "sufficient_rows": sufficient,
        "significance": C.DRIFT_SIGNIFICANCE,
        "critical": critical,
        "drifted": drifted,
        "moderate": [name for name in above(C.PSI_MODERATE) if name not in drifted],
    }


def reference_bin_counts(ref: ModelReference) -> dict[str, int]:
    """Each feature's number of PSI bins (fewer than ``stats.PSI_BINS`` where a point mass merged deciles)."""
    return {name: len(stats.reference_bins(ref.quantiles[j])[1]) for j, name in enumerate(ref.names)}


def summarise(
    window: Window, ref: ModelReference, min_labelled: int, with_ks: bool, min_rows: int = C.MIN_ROWS
) -> dict:
    """Everything the report says about one window."""
    labelled = window.defect >= 0
    n, n_labelled = len(window.probability), int(labelled.sum())
    psi = {name: stats.psi(window.features[:, j], ref.quantiles[j]) for j, name in enumerate(ref.names)}
    outside = (window.features < ref.train_min) | (window.features > ref.train_max)
    out: dict = {
        "index": window.index,
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "predictions": n,
        "labelled": n_labelled,
        "sufficient_labels": n_labelled >= min_labelled,
        "psi": psi,
        "max_psi": max((v for v in psi.values() if v is not None), default=None),
        "drift": feature_drift(psi, reference_bin_counts(ref), n, min_rows),
        # the reference quantiles are the served model's: another version's probabilities would read as drift
        "prediction_psi": stats.psi(window.probability[window.version == ref.model_version], ref.prediction_quantiles),
        "out_of_range_share": float(outside.any(axis=1).mean()) if n else None,
        "out_of_range_by_feature": {name: float(outside[:, j].mean()) for j, name in enumerate(ref.names)} if n else {},
        "defect_rate": {
            "predicted": float(window.predicted.mean()) if n else None,
            "predicted_on_labelled": float(window.predicted[labelled].mean()) if n_labelled else None,
            "actual": float(window.defect[labelled].mean()) if n_labelled else None,
        },
        "quality": stats.quality(window.defect[labelled], window.probability[labelled], window.predicted[labelled]),
        "by_model_version": versions.by_model_version(window, min_labelled),
        "shadow": versions.shadow_comparison(window, min_labelled),
    }
    if with_ks:
        out["ks"] = {}
        for j, name in enumerate(ref.names):
            result = stats.ks(window.features[:, j], ref.quantiles[j])
            out["ks"][name] = None if result is None else {"statistic": result[0], "pvalue": result[1]}
    return out


def new_labels_since_training(
    con: duckdb.DuckDBPyConnection, ref: ModelReference, as_of: datetime, known_by: int = NO_CUTOFF
) -> int:
    return con.execute(
        f"SELECT count(*) FROM captures c JOIN labels l ON l.inference_id = c.inference_id AND {KNOWN_BY} "
        "WHERE c.ts_us >= ? AND c.ts_us <= ?",
        [known_by, _us(ref.trained_at), _us(as_of)],
    ).fetchall()[0][0]


def triggers(current: dict, ref: ModelReference, new_labels: int, days: float, min_labelled: int) -> dict:
    """The five signals, each ``{"fired", "reason"}``; the boundaries are ``monitor.constants``' and the rollback
    line ``runtime.contracts.ROLLBACK_F1``.

    data_drift reads ``feature_drift`` (size-aware PSI limits, nothing below the minimum rows). The two signals on F1,
    performance_drop (below the test F1's floor) and rollback (below the rollback line), fire only when F1's interval
    lies wholly below their line (``f1_against``); a point estimate below it is a warning (``warnings``).

    In a window of two versions (A/B) the model's signals, performance_drop and rollback, are judged on the served
    version's rows (``versions.judged``); the data's signals use every row.
    """
    q, rows = versions.judged(current, ref.model_version)
    enough = q["labelled"] >= min_labelled and q["f1"] is not None
    short = f"insufficient labels: {q['labelled']} labelled{rows} in the window, {min_labelled} needed"
    floor, lines = performance_floor(ref), f1_lines(ref)
    against = {name: f1_against(q, line, min_labelled) for name, line in lines.items()}
    return {
        "performance_drop": {
            "fired": against["performance_drop"] == "significant",
            "reason": short
            if not enough
            else _f1_reason(q, against["performance_drop"], f"the floor {floor:.3f}", rows)
            + f" ({C.PERFORMANCE_DROP:.0%} below test F1 {ref.test_f1:.3f})",
        },
        "data_drift": _data_drift(current),
        "new_labels": {
            "fired": new_labels >= C.NEW_LABELS,
            "reason": f"{new_labels} labelled predictions since training (threshold {C.NEW_LABELS})",
        },
        "schedule": {
            "fired": days >= C.SCHEDULE_DAYS,
            "reason": f"{days:.1f} days since training (threshold {C.SCHEDULE_DAYS})",
        },
        "rollback": {
            "fired": against["rollback"] == "significant",
            "reason": short if not enough else _f1_reason(q, against["rollback"], str(ROLLBACK_F1), rows),
        },
    }


def performance_floor(ref: ModelReference) -> float:
    """performance_drop's line: ``PERFORMANCE_DROP`` (relative) below the manifest's test F1."""
    return ref.test_f1 * (1 - C.PERFORMANCE_DROP)


def f1_lines(ref: ModelReference) -> dict[str, float]:
    """The signals that act on F1, each with its line: performance_drop's floor and the rollback line."""
    return {"performance_drop": performance_floor(ref), "rollback": ROLLBACK_F1}


def _data_drift(current: dict) -> dict:
    d = current["drift"]
    if not d["sufficient_rows"]:
        reason = f"insufficient rows: {d['rows']} predictions in the window, {d['min_rows']} needed"
        return {"fired": False, "reason": reason}
    chance = max((v for v in d["critical"].values() if v is not None), default=0.0)
    limit = f"{C.PSI_MAJOR}, or what chance reaches at {d['rows']} rows when larger: {chance:.3f}"
    if d["drifted"]:
        return {"fired": True, "reason": f"PSI above its limit ({limit}) for {', '.join(d['drifted'])}"}
    return {"fired": False, "reason": f"no feature's PSI above its limit ({limit}; max {current['max_psi'] or 0:.3f})"}


def f1_against(q: dict, line: float, min_labelled: int) -> str:
    """Where the judged F1 stands against ``line`` (the rollback line or performance_drop's floor).

    ``"insufficient"`` (fewer than ``min_labelled`` labels), ``"above"`` (at or above the line), ``"below"`` (the
    point estimate below, its interval reaching the line: sampling noise may explain it) or ``"significant"`` (the
    whole interval, ``q["ci"]["f1"]``, below the line: the only state a signal acts on).
    """
    if q["labelled"] < min_labelled or q["f1"] is None:
        return "insufficient"
    if q["f1"] >= line:
        return "above"
    ci = (q.get("ci") or {}).get("f1")
    return "significant" if ci is not None and ci[1] < line else "below"


def _f1_reason(q: dict, against_line: str, line: str, rows: str) -> str:
    ci = (q.get("ci") or {}).get("f1")
    band = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "undefined"
    on, level = f"on {q['labelled']} labelled rows{rows}", f"{CONFIDENCE:.0%}"
    if against_line == "above":
        return f"F1 {q['f1']:.3f} >= {line} {on}"
    if against_line == "below":
        return f"F1 {q['f1']:.3f} < {line} not significantly: its {level} interval {band} reaches the line, {on}"
    return f"F1 {q['f1']:.3f} < {line} significantly: its {level} interval {band} lies wholly below, {on}"


def warnings(current: dict, ref: ModelReference, min_labelled: int) -> list[str]:
    """What the report flags without acting on it: an F1 below a signal's line (performance_drop's floor, the
    rollback line), not significantly. Rollback's first, the more serious."""
    fired = triggers(current, ref, 0, 0.0, min_labelled)
    q, _ = versions.judged(current, ref.model_version)
    lines = f1_lines(ref)
    return [
        f"{name}: {fired[name]['reason']}; no {action} on this window alone, watch the next ones"
        for name, action in (("rollback", "rollback"), ("performance_drop", "retrain"))
        if f1_against(q, lines[name], min_labelled) == "below"
    ]


def decide(fired: dict) -> str:
    if fired["rollback"]["fired"]:
        return "rollback"
    if any(fired[k]["fired"] for k in ("performance_drop", "data_drift", "new_labels", "schedule")):
        return "retrain"
    return "ok"
