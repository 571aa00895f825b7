"""One monitoring run: read, join, analyse, decide, write. ``cli`` handles arguments, messages and exit codes."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np

from monitor import analysis, report
from monitor.analysis import Options, Window
from monitor.captures import CaptureReader
from monitor.labels import read_labels
from monitor.manifest import ModelReference, load_reference
from monitor.sources import resolve


@dataclass
class Result:
    report: dict
    emf: str
    windows: dict[int, Window]


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions = false")  # nothing may download at run time
    con.execute("SET TimeZone = 'UTC'")
    return con


def _empty_window(ref: ModelReference, as_of, width: timedelta) -> Window:  # type: ignore[no-untyped-def]
    empty = np.empty(0)
    features = np.empty((0, len(ref.names)))
    return Window(0, as_of - width, as_of, features, empty, empty.astype(int), empty.astype(int), empty.astype(object))


def analyse(con: duckdb.DuckDBPyConnection, ref: ModelReference, options: Options, inputs: dict) -> Result:
    """Everything after the inputs are in DuckDB (tables ``captures`` and ``labels``)."""
    as_of = analysis.resolve_as_of(con, options)
    known_by = analysis.label_cutoff(options)
    windows = {w.index: w for w in analysis.load_windows(con, ref, as_of, options.window, known_by)}
    windows.setdefault(0, _empty_window(ref, as_of, options.window))
    summaries = {i: analysis.summarise(w, ref, options.min_labelled, with_ks=i == 0) for i, w in windows.items()}
    new_labels = analysis.new_labels_since_training(con, ref, as_of, known_by)
    days = (as_of - ref.trained_at).total_seconds() / 86400
    fired = analysis.triggers(summaries[0], ref, new_labels, days, options.min_labelled)
    decision = analysis.decide(fired)
    content = report.build(
        ref, as_of, options.window, summaries, fired, decision, inputs, new_labels, options.min_labelled
    )
    return Result(content, "", windows)


def monitor(args: argparse.Namespace, scratch: Path, progress: bool) -> Result:
    ref = load_reference(args.model)
    con = connect()
    files = resolve(args.captures, scratch / "s3", progress)
    reader = CaptureReader(con, ref.names, scratch / "salvaged")
    reader.read(files, progress)
    capture_stats = reader.finish(ref.model_version, args.ab_version)
    labels, label_stats = read_labels(args.labels)
    analysis.register_labels(con, labels)
    analysis.count_unmatched(con, label_stats)
    options = Options(window=args.window, as_of=args.as_of, min_labelled=args.min_labelled)
    inputs = {"captures": capture_stats.as_dict(), "labels": label_stats.as_dict()}
    result = analyse(con, ref, options, inputs)
    result.emf = report.write(args.out, result.report, result.windows, ref, options.min_labelled)
    return result
