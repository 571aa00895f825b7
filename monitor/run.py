"""One monitoring run: read, join, analyse, decide, write. ``diecast monitor`` parses the command line, prints the
summary and turns the decision into the exit code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np

from monitor import analysis, report
from monitor.analysis import Options
from monitor.captures import CaptureReader
from monitor.labels import read_labels
from monitor.manifest import ModelReference, load_reference
from monitor.sources import resolve
from monitor.window import Window


@dataclass
class Result:
    """``report.json``'s content, the EMF line and the windows the report was drawn from (index 0 = current)."""

    report: dict
    emf: str
    windows: dict[int, Window]


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that downloads nothing and reads times in UTC."""
    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions = false")  # nothing may download at run time
    con.execute("SET TimeZone = 'UTC'")
    return con


def _empty_window(ref: ModelReference, as_of: datetime, width: timedelta) -> Window:
    empty = np.empty(0)
    features = np.empty((0, len(ref.names)))
    return Window(0, as_of - width, as_of, features, empty, empty.astype(int), empty.astype(int), empty.astype(object))


def analyse(con: duckdb.DuckDBPyConnection, ref: ModelReference, options: Options, inputs: dict) -> Result:
    """Everything after the inputs are in DuckDB (tables ``captures`` and ``labels``)."""
    as_of = analysis.resolve_as_of(con, options)
    known_by = analysis.label_cutoff(options)
    windows = {w.index: w for w in analysis.load_windows(con, ref, as_of, options.window, known_by)}
    windows.setdefault(0, _empty_window(ref, as_of, options.window))
    summaries = {
        i: analysis.summarise(w, ref, options.min_labelled, with_ks=i == 0, min_rows=options.min_rows)
        for i, w in windows.items()
    }
    new_labels = analysis.new_labels_since_training(con, ref, as_of, known_by)
    days = (as_of - ref.trained_at).total_seconds() / 86400
    fired = analysis.triggers(summaries[0], ref, new_labels, days, options.min_labelled)
    decision = analysis.decide(fired)
    flagged = analysis.warnings(summaries[0], ref, options.min_labelled)
    content = report.build(
        ref, as_of, options.window, summaries, fired, decision, inputs, new_labels, options.min_labelled, flagged
    )
    return Result(content, "", windows)


def monitor(
    captures: Sequence[str],
    labels: Path,
    model: Path,
    out: Path,
    options: Options,
    scratch: Path,
    ab_version: str | None = None,
    progress: bool = False,
) -> Result:
    """Read ``captures`` (files, folders, globs, s3:// URLs) and ``labels``, judge ``model``'s window(s) under
    ``options`` and write the report into ``out``. ``ab_version``: the second version of an A/B split, analysed
    beside ``model``. ``scratch``: where s3:// objects and salvaged gzip files go."""
    ref = load_reference(model)
    con = connect()
    files = resolve(list(captures), scratch / "s3", progress)
    reader = CaptureReader(con, ref.names, scratch / "salvaged")
    reader.read(files, progress)
    capture_stats = reader.finish(ref.model_version, ab_version)
    label_rows, label_stats = read_labels(labels)
    analysis.register_labels(con, label_rows)
    analysis.count_unmatched(con, label_stats)
    inputs = {"captures": capture_stats.as_dict(), "labels": label_stats.as_dict()}
    result = analyse(con, ref, options, inputs)
    result.emf = report.write(out, result.report, result.windows, ref, options.min_labelled)
    return result
