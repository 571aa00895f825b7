"""Batch scoring's files and tables: read CSV or Parquet in chunks, check the input's columns, split scored rows
from rejected ones, and write results atomically (temp file + rename).

Batch-only: pyarrow is imported lazily (``requirements-batch.txt``), and the serving image does not carry the
``batch`` package. Every engine reads and writes through the functions here, so all give the same rows, numbers
and rejects. CSV cells are read as text (identifiers and timestamps pass through unchanged; ``batch.step`` parses
the readings); Parquet keeps its types.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from batch.job import BatchInputError

if TYPE_CHECKING:
    import pyarrow as pa

OUTPUTS = ("probability", "label", "confidence", "model_version")  # the score columns, in order
REASON = "__reject_reason"  # travels with a scored chunk from the scoring step to the writer, never written
ROW, WHY = "row", "reason"  # the rejects file's first two columns
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
CSV_BLOCK_BYTES = 1 << 22  # Arrow parses a CSV this much at a time (~23k rows of 30 readings)


def require(module: str) -> Any:
    """Import a batch-only dependency, or stop with the install command."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise BatchInputError(
            f"{module} is not installed: batch scoring needs the 'batch' extra (pip install -e '.[batch]', or "
            "pip install -r requirements-batch.txt); the serving image deliberately lacks them"
        ) from None


def table_format(path: str) -> str:
    """'csv' or 'parquet', from the file name's extension."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise BatchInputError(f"{path}: unknown file type {ext or '(none)'!r}; use one of {', '.join(FORMATS)}")
    return FORMATS[ext]


def csv_header(path: str) -> list[str]:
    """The CSV's column names, stripped as training's loader strips them; duplicates are refused."""
    try:
        with open(path, newline="") as fh:
            header = next(csv.reader(fh), None)
    except OSError as exc:
        raise BatchInputError(f"{path}: cannot read it ({exc.strerror})") from None
    if not header:
        raise BatchInputError(f"{path}: the file is empty; expected a header row")
    names = [h.strip() for h in header]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise BatchInputError(f"{path}: duplicated column(s): {', '.join(dupes)}; rename them")
    return names


def check_columns(path: str, names: Sequence[str], features: Sequence[str], prefix: str) -> list[str]:
    """The input's columns that pass through to the output (all but the features), after checking that every
    feature is present and that no input column would be overwritten by an output column."""
    missing = sorted(set(features) - set(names))
    if missing:
        shown = ", ".join(missing[:10]) + (f" (+{len(missing) - 10} more)" if len(missing) > 10 else "")
        raise BatchInputError(f"{path}: missing feature column(s): {shown}; the model needs all {len(features)}")
    clash = [n for n in names if n in {prefix + o for o in OUTPUTS} or n == REASON]
    if clash:
        raise BatchInputError(
            f"{path}: column(s) {', '.join(clash)} would be overwritten by the scores; "
            "rename them or pass --prefix (e.g. --prefix new_) to name the score columns"
        )
    feature_set = set(features)
    return [n for n in names if n not in feature_set]


def read_chunks(path: str, chunk_rows: int) -> tuple[pa.Schema, Iterator[pa.Table], int | None]:
    """(the input's schema, its rows as tables of ``chunk_rows`` rows in file order, row count if known).

    CSV columns are all read as text (readings are parsed by ``batch.step.feature_matrix``); Parquet keeps its
    types.
    """
    pa = require("pyarrow")
    if table_format(path) == "parquet":
        pq = require("pyarrow.parquet")
        try:
            pf = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            raise BatchInputError(f"{path}: not a readable Parquet file ({exc})") from None
        batches = pf.iter_batches(batch_size=chunk_rows)
        return pf.schema_arrow, rechunk(batches, pf.schema_arrow, chunk_rows), pf.metadata.num_rows
    pacsv = require("pyarrow.csv")
    names = csv_header(path)
    schema = pa.schema([(n, pa.string()) for n in names])
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=CSV_BLOCK_BYTES),
            convert_options=pacsv.ConvertOptions(column_types=schema, strings_can_be_null=False),
        )
    except pa.ArrowInvalid as exc:  # a malformed row in the first block
        raise BatchInputError(f"{path}: {exc}") from None
    return schema, rechunk(_csv_batches(path, reader), schema, chunk_rows), count_lines(path) - 1


def _csv_batches(path: str, reader: Any) -> Iterator[pa.RecordBatch]:
    pa = require("pyarrow")
    try:
        yield from reader
    except pa.ArrowInvalid as exc:  # e.g. a row with a different number of cells than the header
        raise BatchInputError(f"{path}: {exc}") from None


def count_lines(path: str) -> int:
    """Newlines in the file (the progress bar's total; a quoted newline only makes the estimate high)."""
    n = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            n += block.count(b"\n")
    return max(n, 1)


def rechunk(batches: Iterator[pa.RecordBatch], schema: pa.Schema, rows: int) -> Iterator[pa.Table]:
    """Tables of exactly ``rows`` rows (the last one shorter) from batches of any size, in order."""
    pa = require("pyarrow")
    pending: list[Any] = []
    have = 0
    for batch in batches:
        pending.append(batch)
        have += batch.num_rows
        while have >= rows:
            table = pa.Table.from_batches(pending, schema=schema)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, have = rest.to_batches(), rest.num_rows
    if have:
        yield pa.Table.from_batches(pending, schema=schema)


def compact(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    """A copy of ``columns`` holding only this table's rows, to send to a worker process: a slice pickles its
    parent's whole buffers otherwise."""
    return table.select(list(columns)).take(np.arange(table.num_rows))


def with_scores(table: pa.Table, scores: pa.Table) -> pa.Table:
    """``table`` with the columns of ``scores`` (same rows) appended; no copy."""
    for name in scores.column_names:
        table = table.append_column(name, scores.column(name))
    return table


def split_scored(scored: pa.Table, first_row: int, keep: Sequence[str], prefix: str) -> tuple[pa.Table, pa.Table]:
    """A scored chunk whose first row is data row ``first_row`` (1-based) -> (output rows: ``keep`` columns +
    scores, rejected rows: row number, reason and every input column)."""
    pa, pc = require("pyarrow"), require("pyarrow.compute")
    reason = scored.column(REASON)
    rejected = pc.is_valid(reason)
    output = scored.filter(pc.invert(rejected)).select([*keep, *(prefix + o for o in OUTPUTS)])
    bad = scored.filter(rejected)
    rows = first_row + np.nonzero(rejected.to_numpy(zero_copy_only=False))[0]
    inputs = bad.drop_columns([REASON, *(prefix + o for o in OUTPUTS)])
    rejects = pa.table({ROW: pa.array(rows, pa.int64()), WHY: bad.column(REASON)}).select([ROW, WHY])
    for name in inputs.column_names:
        rejects = rejects.append_column(name, inputs.column(name))
    return output, rejects


def output_schema(schema: pa.Schema, keep: Sequence[str], prefix: str) -> pa.Schema:
    pa = require("pyarrow")
    scores = [
        (prefix + "probability", pa.float32()),
        (prefix + "label", pa.int64()),
        (prefix + "confidence", pa.string()),
        (prefix + "model_version", pa.string()),
    ]
    return pa.schema([schema.field(n) for n in keep] + [pa.field(n, t) for n, t in scores])


def rejects_schema(schema: pa.Schema) -> pa.Schema:
    pa = require("pyarrow")
    return pa.schema([pa.field(ROW, pa.int64()), pa.field(WHY, pa.string()), *schema])


def rejects_path(output: str) -> str:
    """``out/scores.parquet`` -> ``out/scores.rejects.csv``: always CSV, to be read and fixed by a person."""
    stem, _ = os.path.splitext(output)
    return stem + ".rejects.csv"


class AtomicTableWriter:
    """Writes a CSV or Parquet file under a temporary name beside ``path``; ``commit`` renames it into place,
    ``abort`` removes it. Nothing half-written is ever visible under ``path``."""

    def __init__(self, path: str, schema: pa.Schema) -> None:
        self.path, self.schema = path, schema
        folder, name = os.path.split(os.path.abspath(path))
        self.tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
        self.rows = 0
        if table_format(path) == "parquet":
            self._writer = require("pyarrow.parquet").ParquetWriter(self.tmp, schema)
        else:
            self._writer = require("pyarrow.csv").CSVWriter(self.tmp, schema)

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table.cast(self.schema))
            self.rows += table.num_rows

    def commit(self) -> None:
        self._writer.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)
