"""Ground truth from quality inspection: a CSV or JSON-lines file (gzip too) -> validated label rows.

Columns: ``inference_id`` and ``defect`` (0/1) are required; ``defect_type`` and ``inspected_at`` (ISO 8601) are
optional. Nothing is dropped silently: unknown columns, rows whose label is not 0/1, rows without an id, unreadable
lines, duplicate ids and (after the join) ids with no capture are each counted, and the first few are quoted with
their line numbers. A duplicate id keeps its latest inspection (the last row when there is no time); ids whose
duplicates disagree are counted apart as conflicts.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from monitor import constants as C
from monitor.clock import parse_utc
from monitor.exceptions import MonitorInputError

REQUIRED = ("inference_id", "defect")
OPTIONAL = ("defect_type", "inspected_at")
FIX = "the file needs columns inference_id and defect (0/1), optionally defect_type and inspected_at"


@dataclass(slots=True)
class Label:
    inference_id: str
    defect: int
    defect_type: str | None
    inspected_at: datetime | None
    line: int


@dataclass
class LabelStats:
    """Counts of everything read; ``rows`` = ``valid`` + ``non_binary`` + ``missing_id`` + ``unreadable``."""

    file: str = ""
    rows: int = 0
    valid: int = 0
    unknown_columns: dict[str, int] = field(default_factory=dict)
    non_binary: int = 0
    missing_id: int = 0
    unreadable: int = 0
    bad_inspected_at: int = 0
    duplicates: int = 0
    conflicting: int = 0
    unique: int = 0
    without_capture: int = 0
    joined: int = 0
    examples: list[dict] = field(default_factory=list)

    def note(self, kind: str, line: int, detail: str) -> None:
        if sum(e["kind"] == kind for e in self.examples) < C.EXAMPLES_PER_PROBLEM:
            self.examples.append({"kind": kind, "file": self.file, "line": line, "detail": detail})

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def _open_text(path: Path) -> io.TextIOBase:
    with path.open("rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    raw = gzip.open(path, "rb") if gz else path.open("rb")  # noqa: SIM115 (the wrapper returned owns it)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")  # type: ignore[arg-type]


def _is_json_lines(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return True
    if name.endswith(".csv"):
        return False
    with _open_text(path) as fh:
        head = fh.read(4096).lstrip()
    return head.startswith("{")


def _binary(value: object) -> int | None:
    if type(value) is int and value in (0, 1):
        return value
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return int(value.strip())
    return None


def _row(stats: LabelStats, record: dict, line: int) -> Label | None:
    for key in record.keys() - set(REQUIRED) - set(OPTIONAL):
        stats.unknown_columns[str(key)] = stats.unknown_columns.get(str(key), 0) + 1
    ident = record.get("inference_id")
    if not isinstance(ident, str) or not ident.strip():
        stats.missing_id += 1
        stats.note("missing_id", line, f"inference_id is {ident!r}; every row needs the part's id")
        return None
    defect = _binary(record.get("defect"))
    if defect is None:
        stats.non_binary += 1
        stats.note("non_binary", line, f"defect is {record.get('defect')!r}; it must be 0 or 1")
        return None
    inspected = _inspected(stats, record.get("inspected_at"), line)
    kind = record.get("defect_type")
    return Label(ident.strip(), defect, None if kind in (None, "") else str(kind), inspected, line)


def _csv_rows(path: Path, stats: LabelStats) -> list[Label]:
    """A CSV's rows by column position (every row has the same columns: a per-row dict cost ~10 us a row)."""
    out = []
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise MonitorInputError(f"--labels {path}: line 1 (header) lacks {', '.join(missing)}; {FIX}")
        col = {h: header.index(h) for h in (*REQUIRED, *OPTIONAL) if h in header}
        i_id, i_defect, i_type, i_time = (col.get(h) for h in ("inference_id", "defect", "defect_type", "inspected_at"))
        for cells in reader:
            if len(cells) != len(header):
                if any(c.strip() for c in cells):
                    stats.rows += 1
                    stats.unreadable += 1
                    stats.note("unreadable", reader.line_num, f"{len(cells)} cells, the header has {len(header)}")
                continue
            stats.rows += 1
            ident, defect = cells[i_id].strip(), cells[i_defect].strip()  # type: ignore[index]
            if not ident:
                stats.missing_id += 1
                stats.note("missing_id", reader.line_num, "inference_id is empty; every row needs the part's id")
            elif defect not in ("0", "1"):
                stats.non_binary += 1
                stats.note("non_binary", reader.line_num, f"defect is {defect!r}; it must be 0 or 1")
            else:
                kind = cells[i_type].strip() or None if i_type is not None else None
                when = _inspected(stats, cells[i_time], reader.line_num) if i_time is not None else None
                out.append(Label(ident, int(defect), kind, when, reader.line_num))
    for name in header:
        if name not in col:
            stats.unknown_columns[name] = stats.rows
    return out


def _inspected(stats: LabelStats, text: object, line: int) -> datetime | None:
    if text in (None, ""):
        return None
    try:
        return parse_utc(str(text))
    except ValueError:
        stats.bad_inspected_at += 1
        stats.note("bad_inspected_at", line, f"inspected_at {text!r} is not ISO 8601 (the label is kept)")
        return None


def _json_rows(path: Path, stats: LabelStats) -> list[Label]:
    out = []
    with _open_text(path) as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            stats.rows += 1
            try:
                record = json.loads(text)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                stats.unreadable += 1
                stats.note("unreadable", line, "not a JSON object")
                continue
            label = _row(stats, record, line)
            if label:
                out.append(label)
    if stats.rows and stats.missing_id == stats.rows:
        raise MonitorInputError(f"--labels {path}: no row has an inference_id; {FIX}")
    return out


_NO_TIME = datetime.min.replace(tzinfo=UTC)


def _deduplicate(stats: LabelStats, rows: list[Label]) -> list[Label]:
    latest: dict[str, Label] = {}
    seen: dict[str, set[int]] = {}
    for row in rows:
        seen.setdefault(row.inference_id, set()).add(row.defect)
        kept = latest.get(row.inference_id)
        if kept is None or (row.inspected_at or _NO_TIME, row.line) >= (kept.inspected_at or _NO_TIME, kept.line):
            latest[row.inference_id] = row
    stats.duplicates = len(rows) - len(latest)
    stats.conflicting = sum(len(v) > 1 for v in seen.values())
    stats.unique = len(latest)
    return list(latest.values())


def read_labels(path: Path) -> tuple[list[Label], LabelStats]:
    """Read and validate a labels file. Raises ``MonitorInputError`` when it cannot be used at all."""
    stats = LabelStats(file=str(path))
    if not path.is_file():
        raise MonitorInputError(f"--labels {path}: no such file; give the inspection results as CSV or JSON lines")
    try:
        rows = _json_rows(path, stats) if _is_json_lines(path) else _csv_rows(path, stats)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise MonitorInputError(f"--labels {path}: cannot read it ({exc})") from None
    stats.valid = len(rows)
    return _deduplicate(stats, rows), stats
