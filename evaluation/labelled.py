"""The labelled rows' CSV: a column per feature, ``defect`` (0/1) and optionally ``defect_type``, read and checked.

One reader for every process that takes labelled rows from a file: comparing two models on them, and training on
them. The features come from the caller (a model's manifest, or the training schema), so this module knows no
feature list and imports neither ``convert`` nor torch. A problem raises ``DataValidationError`` naming the file,
the column and, where known, the 1-based data row.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

LABEL_COLUMN = "defect"
TYPE_COLUMN = "defect_type"
MAX_LISTED = 10  # column names listed in one message before "(+k more)"


class DataValidationError(ValueError):
    """A labelled CSV cannot be used; the message names the file, the column and, where known, the row."""


def _header(path: Path, reader: csv.DictReader, features: Sequence[str]) -> None:
    header = [h.strip() for h in reader.fieldnames or []]
    if not header:
        raise DataValidationError(f"{path}: the file is empty; expected a header row")
    required = [*features, LABEL_COLUMN]
    missing = sorted(set(required) - set(header))
    if missing:
        more = f" (+{len(missing) - MAX_LISTED} more)" if len(missing) > MAX_LISTED else ""
        raise DataValidationError(f"{path}: missing column(s): {', '.join(missing[:MAX_LISTED])}{more}")
    twice = sorted({h for h in required if header.count(h) > 1})
    if twice:
        raise DataValidationError(f"{path}: duplicated column(s): {', '.join(twice)}")
    reader.fieldnames = header


def _number(path: Path, text: str, column: str, row: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataValidationError(f"{path}: column {column!r}, row {row}: not a number: {text!r}") from None
    if not math.isfinite(value):
        raise DataValidationError(f"{path}: column {column!r}, row {row}: value must be finite, got {text!r}")
    return value


def _label(path: Path, text: str, row: int) -> int:
    if text.strip() not in {"0", "1", "0.0", "1.0"}:
        raise DataValidationError(f"{path}: column {LABEL_COLUMN!r}, row {row}: label must be 0 or 1, got {text!r}")
    return int(float(text))


def read_labelled(path: Path, features: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Read a labelled CSV and check it: the columns, finite numbers, 0/1 labels. Extra columns and empty lines are
    skipped; ``DataValidationError`` names the first problem.

    Parameters
    ----------
    path : pathlib.Path
    features : sequence of str
        The feature columns to read, in the order wanted (a model's manifest order, or the training schema's).

    Returns
    -------
    X : (n, len(features)) numpy.ndarray of float64
    y : (n,) numpy.ndarray of int64, 0/1
    types : (n,) numpy.ndarray of str, or None
        The ``defect_type`` column, None when the file has none.
    """
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"{path}: no such file")
    rows, labels, types = [], [], []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh, restkey="\0extra", restval=None)
        _header(path, reader, features)
        width = len(reader.fieldnames or [])
        for cells in reader:
            row = reader.line_num - 1  # the 1-based data row, blank lines counted as the file shows them
            if "\0extra" in cells or None in cells.values():
                got = width + len(cells.get("\0extra", [])) - sum(v is None for v in cells.values())
                raise DataValidationError(f"{path}: row {row} has {got} cells, the header has {width}")
            rows.append([_number(path, cells[name], name, row) for name in features])
            labels.append(_label(path, cells[LABEL_COLUMN], row))
            types.append((cells.get(TYPE_COLUMN) or "").strip())
    if not rows:
        raise DataValidationError(f"{path}: no data rows")
    if len(set(labels)) < 2:
        raise DataValidationError(f"{path}: column {LABEL_COLUMN!r} holds one class only; both are needed")
    has_types = TYPE_COLUMN in (reader.fieldnames or [])
    return (
        np.asarray(rows, dtype=np.float64),
        np.asarray(labels, dtype=np.int64),
        np.array(types) if has_types else None,
    )
