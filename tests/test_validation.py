"""Pure input checks (runtime.validation): no session, no model file."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runtime.exceptions import InputValidationError, OutOfEnvelopeError, PayloadTooLargeError
from runtime.validation import Bounds, Screen, check_finite, check_matrix, rows_from_payload

NAMES = tuple(f"f{i:02d}" for i in range(30))
ROW = {n: float(i) for i, n in enumerate(NAMES)}


def test_named_row_is_put_in_model_order():
    shuffled = dict(reversed(list(ROW.items())))
    X, batch = rows_from_payload({"features": shuffled}, NAMES, 10)
    assert not batch
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, [list(range(30))])


def test_list_row_and_mixed_batch():
    X, batch = rows_from_payload({"instances": [ROW, list(range(30))]}, NAMES, 10)
    assert batch
    assert X.shape == (2, 30)


def test_missing_and_unknown_names_are_listed_sorted():
    row = {k: v for k, v in ROW.items() if k not in {"f03", "f01"}} | {"zz": 1.0, "aa": 2.0}
    with pytest.raises(
        InputValidationError, match=r"missing feature\(s\): f01, f03; unknown feature\(s\): aa, zz"
    ) as e:
        rows_from_payload({"features": row}, NAMES, 10)
    assert {d["field"] for d in e.value.details} == {"f01", "f03", "aa", "zz"}


def test_many_missing_names_are_capped():
    with pytest.raises(InputValidationError, match=r"\(\+20 more\)"):
        rows_from_payload({"features": {}}, NAMES, 10)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, "must be a number, got boolean"),
        ("650", "must be a number, got string"),
        (None, "must be a number, got null"),
        ([1.0], "must be a number, got array"),
        ({"v": 1}, "must be a number, got object"),
        (math.nan, "must be finite, got nan"),
        (math.inf, "must be finite, got inf"),
        (-math.inf, "must be finite, got -inf"),
        (10**400, "is out of the float64 range"),
    ],
)
def test_bad_values_name_the_field_and_reason(value, reason):
    with pytest.raises(InputValidationError, match="'f05' " + reason) as e:
        rows_from_payload({"features": ROW | {"f05": value}}, NAMES, 10)
    assert e.value.details == [{"row": None, "field": "f05", "reason": reason.removeprefix("is ")}]


def test_bad_value_in_a_batch_names_the_row():
    bad = list(range(30))
    bad[7] = "x"
    with pytest.raises(InputValidationError, match=r"instances\[1\]: feature 'f07' must be a number") as e:
        rows_from_payload({"instances": [ROW, bad]}, NAMES, 10)
    assert e.value.details[0]["row"] == 1


@pytest.mark.parametrize("n", [0, 29, 31])
def test_wrong_count_of_values(n):
    with pytest.raises(InputValidationError, match=f"expected 30 values in feature order, got {n}"):
        rows_from_payload({"features": [1.0] * n}, NAMES, 10)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "must be a JSON object"),
        ("features", "must be a JSON object"),
        ({}, "exactly one of 'features'"),
        ({"features": ROW, "instances": [ROW]}, "exactly one of 'features'"),
        ({"feature": ROW}, "got keys: feature"),
        ({"features": 3}, "'features' must be an object"),
        ({"instances": {}}, "'instances' must be an array"),
        ({"instances": []}, "'instances' is empty"),
        ({"instances": [3]}, r"instances\[0\]: 'features' must be an object"),
    ],
)
def test_malformed_payloads(payload, message):
    with pytest.raises(InputValidationError, match=message):
        rows_from_payload(payload, NAMES, 10)


def test_oversized_batch_is_a_payload_too_large_error():
    with pytest.raises(PayloadTooLargeError, match="holds 11 rows; the limit is 10"):
        rows_from_payload({"instances": [ROW] * 11}, NAMES, 10)


def test_check_matrix():
    assert check_matrix([[1, 2]], 2).dtype == np.float64
    with pytest.raises(InputValidationError, match=r"shape \(2,\), but the model is expecting \(n, 2\)"):
        check_matrix([1, 2], 2)
    with pytest.raises(InputValidationError, match="NaN or infinity \\(first at row 1, column 0\\)"):
        check_finite(check_matrix([[1, 2], [np.nan, 1]], 2))
    with pytest.raises(InputValidationError, match="real numbers"):
        check_matrix([[True, False]], 2)
    with pytest.raises(InputValidationError, match="real numbers"):
        check_matrix([["a", "b"]], 2)
    with pytest.raises(InputValidationError, match="no rows"):
        check_matrix(np.zeros((0, 2)), 2)


WIDE = (np.array([-100.0, -100.0]), np.array([100.0, 100.0]))


@pytest.mark.parametrize("n", [1, 3])
def test_bounds_hold_rows_inside_and_refuse_nan_and_rows_outside(n):
    bounds = Bounds(*WIDE)
    X = np.zeros((n, 2))
    assert bounds.holds(X)
    X[-1, 1] = 100.0
    assert bounds.holds(X)  # the edge is inside
    for bad in (100.5, np.nan, np.inf, -np.inf):
        X[-1, 1] = bad
        assert not bounds.holds(X), bad


def screen(X, train, envelope, names, batch):
    return Screen(names, Bounds(*train), Bounds(*envelope))(X, batch)


def test_readings_outside_the_training_range_are_warned():
    X = np.array([[0.0, 5.0], [2.0, 1.0]])
    train = (np.array([0.0, 0.0]), np.array([1.0, 4.0]))
    assert screen(X, train, WIDE, ("a", "b"), batch=True) == [
        {"row": 0, "feature": "b", "value": 5.0, "range": [0.0, 4.0]},
        {"row": 1, "feature": "a", "value": 2.0, "range": [0.0, 1.0]},
    ]
    assert screen(X[:1], train, WIDE, ("a", "b"), batch=False) == [{"feature": "b", "value": 5.0, "range": [0.0, 4.0]}]
    assert screen(np.array([[0.5, 1.0]]), train, WIDE, ("a", "b"), batch=False) == []


def test_readings_beyond_the_envelope_are_refused_naming_feature_value_and_envelope():
    train = (np.array([0.0, 0.0]), np.array([1.0, 4.0]))
    X = np.array([[0.5, 1.0], [0.5, 1.0], [-250.0, 1e9]])
    with pytest.raises(
        OutOfEnvelopeError, match=r"instances\[2\]: feature 'a': -250 is beyond the envelope \[-100, 100\]"
    ) as e:
        screen(X, train, WIDE, ("a", "b"), batch=True)
    assert [(d["row"], d["field"]) for d in e.value.details] == [(2, "a"), (2, "b")]
    assert "(and 1 more)" in e.value.message
    assert screen(np.array([[100.0, -100.0]]), train, WIDE, ("a", "b"), batch=False)  # on the edge: answered
