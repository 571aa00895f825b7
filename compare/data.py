"""The labelled rows both models are run on: the embedded test split, or a user's CSV.

A CSV holds a column per feature the models read, ``defect`` (0/1) and optionally ``defect_type``; it is read against
the models' own feature list (their manifest), so nothing here imports ``convert`` (whose package pins torch's
kernels when imported). The embedded split is the one ``convert.train.split`` draws (stratified, seeded), replicated
with scikit-learn; ``tests/test_compare.py`` checks that the rows and the constants are the same.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from compare.defaults import REPO_ROOT

DEFAULT_CSV = REPO_ROOT / "data" / "die_casting.csv"  # the embedded data (convert.dataset.DEFAULT_CSV)
LABEL_COLUMN = "defect"
TYPE_COLUMN = "defect_type"
SPLIT_SEED = 42  # convert.train's split constants (a test asserts they are equal)
TEST_SIZE = 0.15
MAX_LISTED = 10  # column names listed in one message before "(+k more)"


class DataValidationError(ValueError):
    """A labelled CSV cannot be used; the message names the file, the column and, where known, the row."""


@dataclass(frozen=True)
class LabelledRows:
    """``X`` (n, n_features) float64 in the models' feature order, ``y`` (n,) int64, ``types`` (n,) str or None."""

    X: np.ndarray
    y: np.ndarray
    types: np.ndarray | None
    source: str
    held_out_note: str


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
    """``(X, y, types)`` of a labelled CSV: X (n, len(features)) float64 in ``features`` order, y (n,) int64,
    types (n,) str when the file has a ``defect_type`` column. Empty lines are skipped; ``DataValidationError``
    names the first problem."""
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"{path}: no such file")
    rows, labels, types = [], [], []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh, restkey="\0extra", restval=None)
        _header(path, reader, features)
        width = len(reader.fieldnames or [])
        for row, cells in enumerate(reader, start=1):
            if "\0extra" in cells or None in cells.values():
                got = width + len(cells.get("\0extra", [])) - sum(v is None for v in cells.values())
                raise DataValidationError(f"{path}: row {row} has {got} cells, the header has {width}")
            rows.append([_number(path, cells[name], name, row) for name in features])
            labels.append(_label(path, cells[LABEL_COLUMN], row))
            types.append((cells.get(TYPE_COLUMN) or "").strip())
    if not rows:
        raise DataValidationError(f"{path}: no data rows")
    if len(set(labels)) < 2:
        raise DataValidationError(f"{path}: column {LABEL_COLUMN!r} holds one class only; a comparison needs both")
    has_types = TYPE_COLUMN in (reader.fieldnames or [])
    return (
        np.asarray(rows, dtype=np.float64),
        np.asarray(labels, dtype=np.int64),
        np.array(types) if has_types else None,
    )


def embedded_test_split(features: Sequence[str]) -> LabelledRows:
    """The embedded data's test split, exactly as ``convert.train.split`` draws it."""
    X, y, types = read_labelled(DEFAULT_CSV, features)
    # Splitting row indices draws the same rows as splitting X: the draw depends only on len(y), y and the seed.
    _, test = train_test_split(np.arange(len(y)), test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y)
    return LabelledRows(
        X[test],
        y[test],
        None if types is None else types[test],
        source=f"embedded test split ({len(test)} of {len(y)} rows of {DEFAULT_CSV.name})",
        held_out_note="held out only for models trained by convert.train on the embedded data; a model trained "
        "on other data that contains these rows looks better than it is: pass DATA= with rows neither saw",
    )


def user_csv(path: Path, features: Sequence[str]) -> LabelledRows:
    """A labelled CSV, checked as training checks it: the columns, finite numbers, 0/1 labels."""
    X, y, types = read_labelled(path, features)
    return LabelledRows(
        X,
        y,
        types,
        source=f"{path} ({len(y)} rows)",
        held_out_note="held out only if neither model was trained on these rows",
    )
