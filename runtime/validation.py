"""Pure input checks: request payloads and arrays -> a validated (n, 30) float64 matrix, or an error.

Nothing here touches a session or the filesystem, so every rule is testable on its own. Errors are
``InputValidationError`` with ``details``: a list of ``{"row", "field", "reason"}`` (``row`` is the 0-based
position in a batch, ``None`` for a single request).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import numpy as np

from runtime.exceptions import InputValidationError, OutOfEnvelopeError, PayloadTooLargeError

MAX_LISTED = 10  # names listed in one message before "(+k more)"


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f" (+{len(names) - MAX_LISTED} more)" if len(names) > MAX_LISTED else "")


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _bad_value(value: object) -> str | None:
    """Why ``value`` cannot be a reading, or None when it can (an int or float, finite, not a bool)."""
    kind = type(value)
    if kind is float:
        return None if math.isfinite(value) else f"must be finite, got {value}"  # type: ignore[arg-type]
    if kind is int:
        return None if abs(value) < 1e300 else "out of the float64 range"  # type: ignore[arg-type]
    return f"must be a number, got {_type_name(value)}"


def row_from_mapping(features: dict, names: Sequence[str], row: int | None = None) -> list[float]:
    """A ``{"name": value, ...}`` object holding exactly the model's features -> values in model order."""
    try:
        values = [features[n] for n in names]
    except KeyError:
        values = None
    if values is None or len(features) != len(names):
        missing = sorted(set(names) - features.keys())
        unknown = sorted(str(k) for k in features.keys() - set(names))
        details = [{"row": row, "field": n, "reason": "missing"} for n in missing]
        details += [{"row": row, "field": n, "reason": "unknown feature"} for n in unknown]
        parts = []
        if missing:
            parts.append(f"missing feature(s): {_listing(missing)}")
        if unknown:
            parts.append(f"unknown feature(s): {_listing(unknown)}")
        raise InputValidationError(_where(row) + "; ".join(parts), details[: 2 * MAX_LISTED])
    _check_values(values, names, row)
    return values


def row_from_list(features: list, names: Sequence[str], row: int | None = None) -> list:
    """``[30 numbers]`` in model order -> the same list, checked."""
    if len(features) != len(names):
        raise InputValidationError(
            _where(row) + f"expected {len(names)} values in feature order, got {len(features)}",
            [{"row": row, "field": "features", "reason": f"expected {len(names)} values, got {len(features)}"}],
        )
    _check_values(features, names, row)
    return features


_NUMERIC = frozenset((float, int))


def _check_values(values: Sequence[object], names: Sequence[str], row: int | None) -> None:
    # Fast path for the common case (all floats/ints, all finite): one C-level pass each, no per-value calls.
    if _NUMERIC.issuperset(map(type, values)):
        try:
            if math.isfinite(math.fsum(values)):  # type: ignore[arg-type]
                return
        except OverflowError:
            pass  # a huge int or an overflowing sum: let the exact per-value check below decide
    bad = [(name, reason) for name, value in zip(names, values, strict=True) if (reason := _bad_value(value))]
    if bad:
        name, reason = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        verb = "" if reason.startswith("must") else "is "
        details: list[dict] = [{"row": row, "field": n, "reason": r} for n, r in bad]
        raise InputValidationError(_where(row) + f"feature {name!r} {verb}{reason}{more}", details)


def _where(row: int | None) -> str:
    return "" if row is None else f"instances[{row}]: "


def parse_row(features: object, names: Sequence[str], row: int | None = None) -> list:
    if isinstance(features, dict):
        return row_from_mapping(features, names, row)
    if isinstance(features, list):
        return row_from_list(features, names, row)
    raise InputValidationError(
        _where(row) + f"'features' must be an object of named readings or an array of {len(names)} numbers, "
        f"got {_type_name(features)}",
        [{"row": row, "field": "features", "reason": f"wrong type: {_type_name(features)}"}],
    )


def rows_from_payload(payload: object, names: Sequence[str], max_batch: int) -> tuple[np.ndarray, bool]:
    """A request body -> ((n, 30) float64 matrix, is_batch).

    Accepted: ``{"features": {...} | [...]}`` (one row) or ``{"instances": [<object or array>, ...]}``.
    """
    if not isinstance(payload, dict):
        raise InputValidationError(
            f"the request must be a JSON object with 'features' or 'instances', got {_type_name(payload)}",
            [{"row": None, "field": None, "reason": f"wrong top-level type: {_type_name(payload)}"}],
        )
    has_features, has_instances = "features" in payload, "instances" in payload
    if has_features == has_instances:
        got = sorted(str(k) for k in payload)[:MAX_LISTED]
        raise InputValidationError(
            "the request must hold exactly one of 'features' (one row) or 'instances' (a batch)"
            + (f"; got keys: {', '.join(got)}" if got else "; got an empty object"),
            [{"row": None, "field": None, "reason": "expected 'features' or 'instances'"}],
        )
    if has_features:
        return np.array([parse_row(payload["features"], names)], dtype=np.float64), False
    instances = payload["instances"]
    if not isinstance(instances, list):
        raise InputValidationError(
            f"'instances' must be an array of rows, got {_type_name(instances)}",
            [{"row": None, "field": "instances", "reason": f"wrong type: {_type_name(instances)}"}],
        )
    if not instances:
        raise InputValidationError(
            "'instances' is empty; send at least one row",
            [{"row": None, "field": "instances", "reason": "empty batch"}],
        )
    if len(instances) > max_batch:
        raise PayloadTooLargeError(
            f"'instances' holds {len(instances)} rows; the limit is {max_batch} (split the batch)",
            [{"row": None, "field": "instances", "reason": f"{len(instances)} rows > {max_batch}"}],
        )
    rows = [parse_row(item, names, i) for i, item in enumerate(instances)]
    return np.array(rows, dtype=np.float64), True


def check_matrix(X: object, n_features: int) -> np.ndarray:
    """An array-like for ``Model.predict`` -> C-contiguous (n, n_features) float64 (finiteness: ``check_finite``)."""
    arr = X if type(X) is np.ndarray else np.asarray(X)
    if arr.dtype.kind not in "fiu":  # floats and integers; not booleans, strings or objects
        raise InputValidationError(f"X must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != n_features:
        raise InputValidationError(f"X has shape {arr.shape}, but the model is expecting (n, {n_features})")
    if arr.shape[0] == 0:
        raise InputValidationError("X has no rows")
    if arr.dtype != np.float64 or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr, dtype=np.float64)
    return arr


def check_finite(X: np.ndarray) -> None:
    if not np.isfinite(X).all():
        bad = np.argwhere(~np.isfinite(X))[0]
        raise InputValidationError(f"X contains NaN or infinity (first at row {bad[0]}, column {bad[1]})")


class Bounds:
    """Per-feature [low, high]. ``holds(X)`` is False for a reading outside them, and for NaN (every comparison with
    NaN is false). A single row is compared in Python (two C-level passes over 30 floats, ~3x cheaper than the small
    numpy calls a batch takes, measured); batches in numpy."""

    def __init__(self, low: Sequence[float] | np.ndarray, high: Sequence[float] | np.ndarray) -> None:
        self.low, self.high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        self._low, self._high = self.low.tolist(), self.high.tolist()

    def holds(self, X: np.ndarray) -> bool:
        if X.shape[0] == 1:
            row = X[0].tolist()
            return all(map(operator.le, self._low, row)) and all(map(operator.le, row, self._high))
        return bool(((self.low <= X) & (self.high >= X)).all())


class Screen:
    """Readings outside the training range -> warnings; beyond the envelope -> ``OutOfEnvelopeError``. Built once
    per model; an ordinary row costs one ``Bounds.holds``."""

    def __init__(self, names: Sequence[str], train: Bounds, envelope: Bounds) -> None:
        self.names, self.train, self.envelope = tuple(names), train, envelope

    def __call__(self, X: np.ndarray, batch: bool) -> list[dict]:
        """One ``{"row"?, "feature", "value", "range"}`` warning per reading outside the training range."""
        if self.train.holds(X):
            return []
        check_envelope(X, self.envelope, self.names, batch)  # the envelope holds the training range
        low, high = self.train.low, self.train.high
        out = []
        for r, c in zip(*np.nonzero((low > X) | (high < X)), strict=True):
            item: dict = {"feature": self.names[c], "value": float(X[r, c]), "range": [float(low[c]), float(high[c])]}
            if batch:
                item = {"row": int(r), **item}
            out.append(item)
        return out


def check_envelope(X: np.ndarray, envelope: Bounds, names: Sequence[str], batch: bool) -> None:
    """``OutOfEnvelopeError`` naming each reading beyond the envelope (feature, value, envelope, row)."""
    if envelope.holds(X):
        return
    low, high = envelope.low, envelope.high
    beyond = np.argwhere((low > X) | (high < X))
    if not beyond.size:
        return
    details = [
        {
            "row": int(r) if batch else None,
            "field": names[c],
            "reason": f"{float(X[r, c]):.6g} is beyond the envelope [{low[c]:.6g}, {high[c]:.6g}]",
        }
        for r, c in beyond[:MAX_LISTED]
    ]
    first = details[0]
    more = f" (and {len(beyond) - 1} more)" if len(beyond) > 1 else ""
    raise OutOfEnvelopeError(
        _where(first["row"]) + f"feature {first['field']!r}: {first['reason']} of readings this model answers; "
        f"check the sensor or its unit{more}",
        details,
    )
