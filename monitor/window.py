"""One window of captured predictions as numpy arrays: what ``analysis`` loads and ``versions`` and ``html`` read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np


@dataclass
class ShadowRows:
    """The shadow model's answer per row of a window (``SHADOW_MODEL_VERSION`` in the handler)."""

    version: np.ndarray  # (n,) str, "" where the record has no shadow result
    probability: np.ndarray  # (n,) float64, NaN where absent
    label: np.ndarray  # (n,) int: 0/1, or -1 where absent


@dataclass
class Window:
    """The rows of one window, as numpy arrays."""

    index: int
    start: datetime
    end: datetime
    features: np.ndarray  # (n, n_features) float64
    probability: np.ndarray  # (n,) float64
    predicted: np.ndarray  # (n,) int (0/1)
    defect: np.ndarray  # (n,) int: 1, 0, or -1 where no label arrived
    version: np.ndarray  # (n,) str: the model that answered the row (two versions under an A/B split)
    shadow: ShadowRows | None = None  # None when no row of the window has a shadow result
