"""The labelled rows both models are run on: the embedded test split, or a user's CSV.

A CSV (``evaluation.labelled``) is read against the models' own feature list (their manifest), so nothing here
imports ``convert`` (whose package pins torch's kernels when imported). The embedded split is the one
``convert.train.split`` draws (stratified, seeded), replicated with scikit-learn; ``tests/test_compare.py`` checks
that the rows and the constants are the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from compare.defaults import REPO_ROOT
from evaluation.labelled import LABEL_COLUMN, TYPE_COLUMN, DataValidationError, read_labelled

__all__ = ["LABEL_COLUMN", "TYPE_COLUMN", "DataValidationError", "LabelledRows", "embedded_test_split", "user_csv"]

DEFAULT_CSV = REPO_ROOT / "data" / "die_casting.csv"  # the embedded data (convert.dataset.DEFAULT_CSV)
SPLIT_SEED = 42  # convert.train's split constants (a test asserts they are equal)
TEST_SIZE = 0.15


@dataclass(frozen=True)
class LabelledRows:
    """``X`` (n, n_features) float64 in the models' feature order, ``y`` (n,) int64, ``types`` (n,) str or None."""

    X: np.ndarray
    y: np.ndarray
    types: np.ndarray | None
    source: str
    held_out_note: str


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
