"""Prediction capture: the inference ids of a request, and one JSON line per predicted row.

Pure functions and one small class; no I/O, no environment. The serving application switches capture on
(``CAPTURE_PREDICTIONS``, read by ``serving/settings.py``) and writes what ``Capture.lines`` returns to stdout,
after the request's log/EMF line. On AWS those lines reach S3
through CloudWatch Logs, a subscription filter and Kinesis Data Firehose (``template.yaml``), and
``python -m monitor`` reads them back.

Ids. A request may name its rows: ``{"inference_id": "SN-1", "features": ...}`` for one row, and in a batch
each instance may be the bare features (as before) or a wrapper ``{"inference_id": "SN-1", "features": ...}``
(a dict holding the key ``features`` is a wrapper: ``features`` is never a feature name). An id is a string of
1..128 characters without control characters, unique within its batch. Without one, the id is the Lambda
request id (one row) or ``<request_id>:<row>`` (a batch row).

Record schema 1, keys in this order::

    {"record": "prediction", "schema": 1, "inference_id", "request_id", "timestamp" (UTC, microseconds, Z),
     "model_version", "features" (the 30 names -> values as received; a named row keeps the client's key order,
     a list row is named in manifest order), "probability",
     "label" (0/1), "class", "confidence", "out_of_range" (names of readings outside the training range)}

Readers must ignore keys they do not know: later versions may add some (e.g. ``shadow``, ``variant``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from runtime.contracts import CAPTURE_RECORD as RECORD
from runtime.contracts import CAPTURE_SCHEMA as SCHEMA
from runtime.contracts import CLASS_NAMES
from runtime.exceptions import InputValidationError
from runtime.predictor import Answer

ID_FIELD = "inference_id"
FEATURES_FIELD = "features"
MAX_ID_LENGTH = 128
_WRAPPER_KEYS = frozenset((ID_FIELD, FEATURES_FIELD))
_THREE_DIGITS = tuple(f"{i:03d}" for i in range(1000))  # microseconds as two table lookups, not a format call
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1: they break log lines and CSV exports


def _id_error(row: int | None, reason: str) -> InputValidationError:
    where = "" if row is None else f"instances[{row}]: "
    return InputValidationError(f"{where}'{ID_FIELD}' {reason}", [{"row": row, "field": ID_FIELD, "reason": reason}])


def check_id(value: object, row: int | None = None) -> str:
    """A valid inference id, or an ``InputValidationError`` naming the field and the row."""
    if type(value) is not str:
        kind = "null" if value is None else {bool: "boolean", int: "number", float: "number"}.get(type(value))
        raise _id_error(row, f"must be a string, got {kind or type(value).__name__}")
    if not 1 <= len(value) <= MAX_ID_LENGTH:
        raise _id_error(row, f"must hold 1 to {MAX_ID_LENGTH} characters, got {len(value)}")
    if _CONTROL.search(value):
        raise _id_error(row, "must not contain control characters")
    return value


def _unwrap(item: object, row: int) -> tuple[object, str | None]:
    """A batch instance -> (its features, its id or None)."""
    if not (isinstance(item, dict) and FEATURES_FIELD in item):
        return item, None
    extra = sorted(str(k) for k in item.keys() - _WRAPPER_KEYS)
    if extra:
        raise InputValidationError(
            f"instances[{row}]: a wrapper holds only '{ID_FIELD}' and '{FEATURES_FIELD}', got also: {', '.join(extra)}",
            [{"row": row, "field": k, "reason": "unknown key in a wrapper"} for k in extra],
        )
    given = item.get(ID_FIELD)
    return item[FEATURES_FIELD], (None if ID_FIELD not in item else check_id(given, row))


def split_ids(payload: object, max_batch: int) -> tuple[object, list[str | None] | None]:
    """Take the inference ids out of a request body, before ``rows_from_payload`` validates the features.

    Returns the body with batch wrappers replaced by their features, and one id (or None) per row; ids are
    None as a whole when the body is not a well-formed request (``rows_from_payload`` then says why).
    """
    if not isinstance(payload, dict):
        return payload, None
    if FEATURES_FIELD in payload and "instances" not in payload:
        return payload, [check_id(payload[ID_FIELD]) if ID_FIELD in payload else None]
    instances = payload.get("instances")
    if not isinstance(instances, list) or len(instances) > max_batch or FEATURES_FIELD in payload:
        return payload, None
    if ID_FIELD in payload:
        raise InputValidationError(
            f"a batch has no '{ID_FIELD}' of its own; give each instance one: "
            f'{{"{ID_FIELD}": "SN-1", "{FEATURES_FIELD}": {{...}}}}',
            [{"row": None, "field": ID_FIELD, "reason": "not allowed beside 'instances'"}],
        )
    pairs = [_unwrap(item, row) for row, item in enumerate(instances)]
    ids = [given for _, given in pairs]
    _check_unique(ids)
    return {**payload, "instances": [features for features, _ in pairs]}, ids


def _check_unique(ids: list[str | None]) -> None:
    first: dict[str, int] = {}
    for row, given in enumerate(ids):
        if given is None:
            continue
        if given in first:
            raise _id_error(row, f"{given!r} repeats instances[{first[given]}]; ids must be unique within a batch")
        first[given] = row


class Capture:
    """Builds the capture lines of one request. Built once at INIT; holds the model's names and version.

    Speed: in a warm request every Python step costs ~0.1-0.2 us (the caches are cold after the session runs and
    neighbours share the cores), so the common case (one named row, in range) takes a straight
    path to one ``orjson.dumps``: the date and time are formatted once a second, and the row is written as received.
    """

    def __init__(self, model_version: str, names: Sequence[str]) -> None:
        self.model_version = model_version
        self.names = tuple(names)
        self._second = -1
        self._prefix = ""

    def timestamp(self, now: float) -> str:
        """``time.time()`` -> UTC ISO 8601 with microseconds: ``2026-11-25T10:00:00.123456Z`` (always six digits)."""
        second = int(now)
        if second != self._second:
            self._second, self._prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        micro = int((now - second) * 1e6)
        return self._prefix + _THREE_DIGITS[micro // 1000] + _THREE_DIGITS[micro % 1000] + "Z"

    def lines(
        self,
        request_id: str,
        payload: Any,
        X: np.ndarray,
        batch: bool,
        ids: list[str | None],
        answer: Answer,
        versions: list[str] | None = None,
        shadow: list[dict[str, Any]] | None = None,
    ) -> bytes:
        """The JSON lines (one per row, each ending in a newline; UTF-8) for a request that was answered.

        ``payload`` is the body as ``split_ids`` returned it, ``X`` (n, 30) float64 the validated rows, ``ids``
        one id or None per row, ``answer`` the rows' ``Answer`` (its labels, bands and range warnings);
        ``versions`` the model that answered each row when an A/B split is on, ``shadow`` each row's
        ``{"model_version", "probability", "label"}`` from a shadow model.
        """
        received = None if batch or versions or shadow else payload[FEATURES_FIELD]
        if type(received) is dict and not answer.warnings:  # validated: exactly the model's 30 names
            now = time.time()  # self.timestamp(now), inlined: a call costs ~1 us here
            second = int(now)
            if second != self._second:
                self._second, self._prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
            micro = int((now - second) * 1e6)
            stamp = self._prefix + _THREE_DIGITS[micro // 1000] + _THREE_DIGITS[micro % 1000] + "Z"
            label = answer.label[0]
            record = {
                "record": RECORD,
                "schema": SCHEMA,
                "inference_id": ids[0] or request_id,
                "request_id": request_id,
                "timestamp": stamp,
                "model_version": self.model_version,
                "features": received,
                "probability": answer.probability[0],
                "label": label,
                "class": CLASS_NAMES[label],
                "confidence": answer.confidence[0],
                "out_of_range": [],
            }
            try:
                return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
            except orjson.JSONEncodeError:
                pass  # an integer past 64 bits: the general path writes it
        return self._general(request_id, payload, X, batch, ids, answer, versions, shadow)

    def _general(
        self,
        request_id: str,
        payload: Any,
        X: np.ndarray,
        batch: bool,
        ids: list[str | None],
        answer: Answer,
        versions: list[str] | None,
        shadow: list[dict[str, Any]] | None,
    ) -> bytes:
        """Any request: batches, list rows, readings out of range, A/B and shadow rows."""
        stamp = self.timestamp(time.time())
        received = payload["instances"] if batch else [payload[FEATURES_FIELD]]
        outside: list[list[str]] = [[] for _ in ids]
        for warning in answer.warnings:
            outside[warning.get("row", 0)].append(warning["feature"])
        out = []
        for row in range(len(answer)):
            label = answer.label[row]
            record = {
                "record": RECORD,
                "schema": SCHEMA,
                "inference_id": ids[row] or (f"{request_id}:{row}" if batch else request_id),
                "request_id": request_id,
                "timestamp": stamp,
                "model_version": versions[row] if versions else self.model_version,
                "features": self._features(received[row], X[row]),
                "probability": answer.probability[row],
                "label": label,
                "class": CLASS_NAMES[label],
                "confidence": answer.confidence[row],
                "out_of_range": outside[row],
            }
            if shadow:
                record["shadow"] = shadow[row]
            try:
                out.append(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
            except orjson.JSONEncodeError:
                # An integer reading past 64 bits passes validation (it is a finite float64) but orjson cannot
                # write it: record the value the model saw.
                record["features"] = dict(zip(self.names, X[row].tolist(), strict=True))
                out.append(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
        return b"".join(out)

    def _features(self, received: object, values: np.ndarray) -> dict[str, Any]:
        """A row's readings as received: a named row as it came, a list row named in manifest order."""
        if type(received) is dict:
            return received
        if type(received) is list:
            return dict(zip(self.names, received, strict=True))
        return dict(zip(self.names, values.tolist(), strict=True))
