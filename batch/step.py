"""The scoring step every engine runs: a chunk of readings -> its scores, one row per input row.

Readings are parsed as ``float(cell)`` does (as ``convert.dataset.load_csv`` reads training data): CSV cells
arrive as text and are cast by Arrow, and a column that Arrow cannot cast is re-read cell by cell with ``float``
to name the bad rows. A missing, non-numeric or non-finite reading, or one beyond the envelope the model answers,
rejects its row; it is never dropped silently or zero-filled. The rows left are scored by
``runtime.predictor.Predictor.scores``: the serving path's own checks and session, so the same numbers as
``runtime.load(model).predict`` and the handler's confidence bands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from batch.io import REASON, require, with_scores
from batch.job import BatchInputError

if TYPE_CHECKING:
    import pyarrow as pa

    from runtime.predictor import Predictor

MAX_REASONS = 3  # bad readings named per rejected row


def _column_values(column: Any, name: str) -> tuple[np.ndarray, dict[int, str]]:
    """One feature column -> (float64 values, {row index in the chunk: why it is not a reading})."""
    pa, pc = require("pyarrow"), require("pyarrow.compute")
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:  # at least one cell is not a plain number: parse each as float() does
            return _parse_cells(column.to_pylist(), name)
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind) or pa.types.is_null(kind):
        values = pc.cast(column, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    else:
        raise BatchInputError(f"feature column {name!r} has type {kind}; it must hold numbers (or numeric text)")
    values = np.asarray(values, dtype=np.float64)
    bad = {int(i): "missing" for i in np.nonzero(np.isnan(values))[0] if not column[int(i)].is_valid}
    bad.update({int(i): f"not finite ({values[i]})" for i in np.nonzero(~np.isfinite(values))[0] if i not in bad})
    return values, bad


def _parse_cells(cells: list[Any], name: str) -> tuple[np.ndarray, dict[int, str]]:
    values = np.full(len(cells), np.nan)
    bad: dict[int, str] = {}
    for i, cell in enumerate(cells):
        if cell is None or not str(cell).strip():
            bad[i] = "missing"
            continue
        try:
            values[i] = float(cell)
        except ValueError:
            bad[i] = f"not a number ({str(cell)[:40]!r})"
            continue
        if not np.isfinite(values[i]):
            bad[i] = f"not finite ({cell!r})"
    return values, bad


def feature_matrix(table: pa.Table, features: Sequence[str]) -> tuple[np.ndarray, list[str | None]]:
    """A chunk -> ((n, len(features)) float64 in model order, per row None or why it is rejected)."""
    X = np.empty((table.num_rows, len(features)), dtype=np.float64)
    problems: dict[int, list[str]] = {}
    for j, name in enumerate(features):
        X[:, j], bad = _column_values(table.column(name), name)
        for i, why in bad.items():
            problems.setdefault(i, []).append(f"{name}: {why}")
    reasons: list[str | None] = [None] * table.num_rows
    for i, items in problems.items():
        more = f" (+{len(items) - MAX_REASONS} more)" if len(items) > MAX_REASONS else ""
        reasons[i] = "; ".join(items[:MAX_REASONS]) + more
    return X, reasons


def _beyond_envelope(predictor: Predictor, X: np.ndarray, ok: np.ndarray, reasons: list[str | None]) -> np.ndarray:
    """Rows with a reading beyond the envelope the model answers (the serving path refuses them too): their
    reasons are filled in, and the mask of them returned."""
    low, high = predictor.model.envelope.low, predictor.model.envelope.high
    outside = ok[:, None] & ((low > X) | (high < X))
    rows = np.asarray(outside.any(axis=1))
    for i in np.flatnonzero(rows):
        names = [predictor.feature_names[j] for j in np.flatnonzero(outside[i])]
        reasons[i] = "; ".join(f"{n}: beyond the envelope the model answers" for n in names[:MAX_REASONS])
    return rows


def score_columns(predictor: Predictor, table: pa.Table, prefix: str = "") -> pa.Table:
    """A chunk (at least the model's feature columns) -> a table of its scores, one row per input row:
    ``probability`` (float32), ``label`` (int64), ``confidence`` (string), ``model_version`` (string: the model
    that scored the row) and the internal reject reason (string, null for a scored row); rejected rows get nulls
    for the scores."""
    pa = require("pyarrow")
    X, reasons = feature_matrix(table, predictor.feature_names)
    ok = np.array([r is None for r in reasons], dtype=bool)
    ok &= ~_beyond_envelope(predictor, X, ok, reasons)
    proba = np.zeros(len(ok), dtype=np.float32)
    label = np.zeros(len(ok), dtype=np.int64)
    bands: list[str | None] = [None] * len(ok)
    if ok.any():
        proba[ok], label[ok], scored_bands = predictor.scores(X[ok])
        for i, band in zip(np.flatnonzero(ok).tolist(), scored_bands, strict=True):
            bands[i] = band
    return pa.table(
        {
            prefix + "probability": pa.array(proba, mask=~ok),
            prefix + "label": pa.array(label, mask=~ok),
            prefix + "confidence": pa.array(bands, type=pa.string()),
            prefix + "model_version": pa.array([predictor.model_version] * len(ok), type=pa.string()),
            REASON: pa.array(reasons, type=pa.string()),
        }
    )


def score_table(predictor: Predictor, table: pa.Table, prefix: str = "") -> pa.Table:
    """A chunk with its scores appended (``score_columns``)."""
    return with_scores(table, score_columns(predictor, table, prefix))
