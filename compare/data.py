"""The labelled rows both models are run on: the embedded test split, or a user's CSV.

The split is the one ``convert.train.split`` makes (stratified, seeded), replicated here without torch:
``convert.train`` imports torch at module level, ``convert.dataset`` does not. ``tests/test_compare.py`` checks
that the rows are the same and that the constants still match.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from convert import dataset

# convert.train's split constants (a test asserts they are equal).
SPLIT_SEED = 42
TEST_SIZE = 0.15


@dataclass(frozen=True)
class LabelledRows:
    """``X`` (n, 30) float64 in ``dataset.FEATURE_NAMES`` order, ``y`` (n,) int64, ``types`` (n,) str or None."""

    X: np.ndarray
    y: np.ndarray
    types: np.ndarray | None
    source: str
    held_out_note: str


def _column(path: Path, name: str) -> np.ndarray | None:
    """One text column of a CSV, row-aligned with ``dataset.load_csv`` (which skips empty lines), or None."""
    with Path(path).open(newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader)]
        if name not in header:
            return None
        i = header.index(name)
        return np.array([cells[i].strip() for cells in reader if cells])


def embedded_test_split() -> LabelledRows:
    """The embedded data's test split, exactly as ``convert.train.split`` draws it."""
    X, y = dataset.load_csv(dataset.DEFAULT_CSV)
    types = _column(dataset.DEFAULT_CSV, dataset.TYPE_COLUMN)
    # Splitting row indices draws the same rows as splitting X: the draw depends only on len(y), y and the seed.
    _, test = train_test_split(np.arange(len(y)), test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y)
    return LabelledRows(
        X[test],
        y[test],
        None if types is None else types[test],
        source=f"embedded test split ({len(test)} of {len(y)} rows of {dataset.DEFAULT_CSV.name})",
        held_out_note="held out only for models trained by convert.train on the embedded data; a model trained "
        "on other data that contains these rows looks better than it is: pass DATA= with rows neither saw",
    )


def user_csv(path: Path) -> LabelledRows:
    """A labelled CSV, checked as training checks it (``dataset.load_csv``: columns, numbers, 0/1 labels)."""
    X, y = dataset.load_csv(path)
    return LabelledRows(
        X,
        y,
        _column(path, dataset.TYPE_COLUMN),
        source=f"{path} ({len(y)} rows)",
        held_out_note="held out only if neither model was trained on these rows",
    )
