"""A batch of parts from an uploaded CSV: read and checked as ``diecast score`` reads a file (``batch.io``), each bad
reading named as the batch scorer names it (``batch.step.feature_matrix``), the good rows scored by the back end in
batch requests. A row the back end refuses (a reading beyond the envelope it answers, 422) is listed with the
handler's own reason and the rest of its request is sent again; no row is dropped silently."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from batch import io, step
from batch.job import BatchInputError
from ui.client import Client, Reply
from ui.form import answer_fields

MAX_ROWS = 10_000  # the page's limit; diecast score has none
ROWS_PER_REQUEST = 200  # ~1 KiB a row in JSON: well under the API's 1 MiB body limit


@dataclass
class Scored:
    """A scored upload: one dict per scored part (``row`` is the 1-based data row, then the id columns, then the
    answer), one ``{"row", "reason"}`` per rejected part, and the model that answered."""

    parts: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    model_version: str = ""


class BatchAnswerError(RuntimeError):
    """The back end refused a batch request as a whole (not a row): the handler's message."""


def read_upload(data: bytes, names: list[str], name: str = "the CSV") -> tuple[Any, list[str]]:
    """CSV bytes -> (the table, every column as text; the id columns kept beside the scores), read by the batch
    scorer's own reader. ``BatchInputError`` naming the problem (no header, a missing feature column, a malformed
    row, too many rows) and the upload's ``name``, never the temporary file's path."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "upload.csv")
        with open(path, "wb") as fh:
            fh.write(data)
        try:
            return _read(path, names)
        except BatchInputError as exc:
            raise BatchInputError(str(exc).replace(path, name)) from None


def _read(path: str, names: list[str]) -> tuple[Any, list[str]]:
    keep = io.check_columns(path, io.csv_header(path), names, "")
    _, chunks, total = io.read_chunks(path, MAX_ROWS + 1)
    if total is not None and total > MAX_ROWS:
        raise BatchInputError(f"{path}: {total} rows; the page scores {MAX_ROWS} at most (use diecast score)")
    tables = list(chunks)
    if not tables:
        raise BatchInputError(f"{path}: a header but no rows")
    return io.require("pyarrow").concat_tables(tables), keep


def score_upload(client: Client, data: bytes, names: list[str], name: str = "the CSV") -> Scored:
    """Score every row of an uploaded CSV (called ``name`` in messages) through ``client``."""
    table, keep = read_upload(data, names, name)
    X, reasons = step.feature_matrix(table, names)
    ids = {name: table.column(name).to_pylist() for name in keep}
    answers: dict[int, dict[str, Any]] = {}
    rows = [i for i, reason in enumerate(reasons) if reason is None]
    out = Scored()
    for start in range(0, len(rows), ROWS_PER_REQUEST):
        chunk = rows[start : start + ROWS_PER_REQUEST]
        out.model_version = _score_chunk(client, X, names, chunk, answers, reasons)
    for i, reason in enumerate(reasons):
        if reason is not None:
            out.rejects.append({"row": i + 1, "reason": reason})
        else:
            out.parts.append({"row": i + 1, **{k: v[i] for k, v in ids.items()}, **answers[i]})
    return out


def _score_chunk(
    client: Client,
    X: np.ndarray,
    names: list[str],
    chunk: list[int],
    answers: dict[int, dict[str, Any]],
    reasons: list[str | None],
) -> str:
    """Answers for the rows ``chunk`` into ``answers``; rows the handler refuses get their reason in ``reasons``."""
    pending = list(chunk)
    while pending:
        payload = {"instances": [{"features": dict(zip(names, X[i].tolist(), strict=True))} for i in pending]}
        reply = client.predict(payload)
        if reply.ok:
            for i, item in zip(pending, reply.body["predictions"], strict=True):
                answers[i] = answer_fields(item["prediction"])
            return str(reply.body.get("model_version", ""))
        refused = _refused_rows(reply)
        if not refused:
            raise BatchAnswerError(reply.error_text())
        for position, why in refused.items():
            reasons[pending[position]] = why
        pending = [i for k, i in enumerate(pending) if k not in refused]
    return ""


def _refused_rows(reply: Reply) -> dict[int, str]:
    """Request row -> the handler's reason, for an error naming rows (a 422 for readings beyond the envelope)."""
    if reply.status != 422:
        return {}
    out: dict[int, str] = {}
    for detail in reply.body.get("error", {}).get("details") or []:
        row = detail.get("row")
        if isinstance(row, int):
            text = f"{detail.get('field')}: {detail.get('reason')}"
            out[row] = f"{out[row]}; {text}" if row in out else text
    return out


def ordered(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Defects first, then by probability, highest first."""
    return sorted(parts, key=lambda p: (p["class"] != "defect", -p["probability"]))
