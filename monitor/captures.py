"""Capture lines -> one deduplicated DuckDB table ``captures``, every skipped line counted and explained.

Each line is read as text (``read_csv`` with a single column), so a handler's raw stdout (request log lines mixed
with capture lines, perhaps behind a text prefix such as a CloudWatch timestamp and request id) and bare JSON lines
take the same path; the JSON object starts at the line's first ``{``. A line is one of:

- ``blank``;
- ``text``: no JSON object on it (Lambda's START/END/REPORT lines) - skipped, not an error;
- ``other``: valid JSON but no prediction record (the handler's request/EMF line) - skipped, not an error;
- ``corrupt``: it holds ``{`` but not valid JSON after it (cut short, junk), or it is not UTF-8, or too long;
- ``schema``: a prediction record of a schema this monitor does not read;
- ``invalid``: a prediction record with a missing or ill-typed field (the field is named);
- ``prediction``.

Strings must be JSON strings and numbers JSON numbers (``"0.5"`` is not a probability). Readers ignore keys they do
not know. The optional ``shadow`` object (``SHADOW_MODEL_VERSION`` in the handler: ``model_version``, ``probability``,
``label``) is typed like the record's own fields: absent or ``null`` is fine, anything else that is not such an object
makes the line ``invalid`` (reason ``shadow`` or ``shadow.<field>``).

``captures`` holds the served model's records and, under an A/B split (``--ab-version``), the second version's: a
record's ``model_version`` names the model that answered that row. Records of any other version are counted, not
analysed. Duplicates by ``inference_id`` keep the most recent record (a part predicted again keeps its latest
prediction); the rest are counted. A truncated gzip file is salvaged up to its last whole line and reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from monitor import constants as C
from monitor.exceptions import MonitorInputError
from monitor.sources import InputFile, gzip_is_complete, salvage_gzip
from runtime.contracts import CAPTURE_RECORD, CAPTURE_SCHEMA

CHUNK_BYTES = 128 << 20  # files read per query: keeps the progress bar moving and a bad gzip's retry small
DELIM = "\x1f"  # a control character never appears raw in valid JSON, so a line is one column
KINDS = ("prediction", "other", "text", "blank", "corrupt", "schema", "invalid")


@dataclass
class CaptureStats:
    """What reading the captures found; every line is in exactly one count."""

    files: int = 0
    bytes: int = 0
    lines: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    invalid_fields: dict[str, int] = field(default_factory=dict)
    other_versions: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    unique: int = 0
    truncated_files: list[str] = field(default_factory=list)
    examples: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "lines": self.lines,
            **{k: self.kinds.get(k, 0) for k in KINDS},
            "invalid_fields": dict(sorted(self.invalid_fields.items())),
            "other_model_versions": self.other_versions,
            "duplicates": self.duplicates,
            "unique_predictions": self.unique,
            "truncated_gzip_files": self.truncated_files,
            "examples": self.examples,
        }


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _structure(names: tuple[str, ...]) -> str:
    """from_json's target: scalars kept as JSON text so that their JSON type can be checked, not coerced."""
    features = ", ".join(f'"{n}": "JSON"' for n in names)
    return (
        '{"record": "VARCHAR", "schema": "JSON", "inference_id": "JSON", "request_id": "VARCHAR", '
        '"timestamp": "JSON", "model_version": "JSON", "probability": "JSON", "label": "JSON", '
        '"shadow": {"model_version": "JSON", "probability": "JSON", "label": "JSON"}, '
        f'"features": {{{features}}}}}'
    )


def _string(expr: str) -> str:
    return f"CASE WHEN left({expr}, 1) = '\"' THEN json_extract_string({expr}, '$') END"


# Only a present shadow is checked: the handler leaves it out when the shadow failed on that request.
SHADOW_CHECKS = """
            WHEN has_shadow AND shadow_shapeless THEN 'shadow'
            WHEN has_shadow AND (shadow_version IS NULL OR shadow_version = '') THEN 'shadow.model_version'
            WHEN has_shadow AND (shadow_probability IS NULL OR NOT isfinite(shadow_probability)
                OR shadow_probability < 0 OR shadow_probability > 1) THEN 'shadow.probability'
            WHEN has_shadow AND (shadow_label IS NULL OR shadow_label NOT IN (0, 1)) THEN 'shadow.label'"""


def _parse_sql(names: tuple[str, ...], source_sql: str) -> str:
    # JSON -> VARCHAR -> number: a JSON string "0.5" or true stays text and fails the cast (JSON -> DOUBLE would
    # unquote it).
    feats = ",\n".join(f"TRY_CAST(r.features.{_q(n)}::VARCHAR AS DOUBLE) AS {_q(n)}" for n in names)
    bad_feature = "\n".join(f"WHEN {_q(n)} IS NULL OR NOT isfinite({_q(n)}) THEN 'features.{n}'" for n in names)
    structure = _structure(names).replace("'", "''")
    return f"""
    WITH raw AS (
        SELECT path, line, strpos(line, '{{') AS brace FROM ({source_sql})
    ), records AS (
        -- one parse per line: try() turns invalid JSON into NULL (a JSON object never parses to NULL)
        SELECT path, line, CASE WHEN brace > 0 THEN try(from_json(substr(line, brace), '{structure}')) END AS r,
            CASE WHEN line IS NULL OR trim(line) = '' THEN 'blank'
                 WHEN brace = 0 THEN 'text'
                 WHEN r IS NULL THEN 'corrupt'
                 ELSE 'json' END AS kind
        FROM raw
    ), typed AS (
        SELECT path, line, kind, r.record AS record, TRY_CAST(r.schema::VARCHAR AS INTEGER) AS schema,
            {_string("r.inference_id")} AS inference_id,
            epoch_us(TRY_CAST({_string('r."timestamp"')} AS TIMESTAMPTZ)) AS ts_us,
            {_string("r.model_version")} AS model_version,
            TRY_CAST(r.probability::VARCHAR AS DOUBLE) AS probability,
            TRY_CAST(r.label::VARCHAR AS INTEGER) AS label,
            r.features IS NULL AS no_features,
            r.shadow IS NOT NULL AS has_shadow,
            -- a shadow that is not an object (a string, a list) parses to a struct whose members are all NULL
            coalesce(r.shadow.model_version, r.shadow.probability, r.shadow.label) IS NULL AS shadow_shapeless,
            {_string("r.shadow.model_version")} AS shadow_version,
            TRY_CAST(r.shadow.probability::VARCHAR AS DOUBLE) AS shadow_probability,
            TRY_CAST(r.shadow.label::VARCHAR AS INTEGER) AS shadow_label,
            {feats}
        FROM records
    ), checked AS (
        SELECT *, CASE
            WHEN inference_id IS NULL OR inference_id = '' THEN 'inference_id'
            WHEN ts_us IS NULL THEN 'timestamp'
            WHEN model_version IS NULL THEN 'model_version'
            WHEN probability IS NULL OR NOT isfinite(probability) OR probability < 0 OR probability > 1
                THEN 'probability'
            WHEN label IS NULL OR label NOT IN (0, 1) THEN 'label'
            WHEN no_features THEN 'features'
            {bad_feature}
            {SHADOW_CHECKS}
            END AS reason
        FROM typed
    )
    SELECT path,
        CASE WHEN kind <> 'json' THEN kind
             WHEN record IS DISTINCT FROM '{CAPTURE_RECORD}' THEN 'other'
             WHEN schema IS DISTINCT FROM {CAPTURE_SCHEMA} THEN 'schema'
             WHEN reason IS NOT NULL THEN 'invalid'
             ELSE 'prediction' END AS kind,
        reason,
        CASE WHEN kind = 'corrupt'
                  OR (record = '{CAPTURE_RECORD}' AND (reason IS NOT NULL OR schema IS DISTINCT FROM {CAPTURE_SCHEMA}))
             THEN left(line, 160) END AS snippet,
        inference_id, ts_us, model_version, probability, label, shadow_version, shadow_probability, shadow_label,
        {", ".join(_q(n) for n in names)}
    FROM checked
    """


def _lines_source(files: list[InputFile], gzip: bool) -> str:
    paths = ", ".join("'" + str(f.path).replace("'", "''") + "'" for f in files)
    return (
        f"SELECT filename AS path, line FROM read_csv([{paths}], columns = {{'line': 'VARCHAR'}}, header = false, "
        f"delim = '{DELIM}', quote = '', escape = '', auto_detect = false, new_line = '\\n', filename = true, "
        f"compression = '{'gzip' if gzip else 'none'}', store_rejects = true, max_line_size = 4194304)"
    )


def _parquet_source(files: list[InputFile]) -> str:
    # A Parquet export of the records (one column per key, features a struct) becomes the same JSON text.
    parts = []
    for f in files:
        path = "'" + str(f.path).replace("'", "''") + "'"
        parts.append(f"SELECT {path} AS path, to_json(p)::VARCHAR AS line FROM read_parquet({path}) p")
    return " UNION ALL ".join(parts)


def _kind(f: InputFile) -> str:
    return "parquet" if f.parquet else "gzip" if f.gzip else "plain"


def _chunks(files: list[InputFile]) -> list[list[InputFile]]:
    out: list[list[InputFile]] = []
    for kind in ("plain", "gzip", "parquet"):
        group = [f for f in files if _kind(f) == kind]
        chunk: list[InputFile] = []
        size = 0
        for f in group:
            if chunk and size + f.size > CHUNK_BYTES:
                out.append(chunk)
                chunk, size = [], 0
            chunk.append(f)
            size += f.size
        if chunk:
            out.append(chunk)
    return out


class CaptureReader:
    """Reads capture files into ``parsed`` (every line, classified) and ``captures`` (valid, deduplicated)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, names: tuple[str, ...], scratch: Path) -> None:
        self.con = con
        self.names = names
        self.scratch = scratch
        self.stats = CaptureStats()
        self._by_path: dict[str, InputFile] = {}
        cols = ", ".join(f"{_q(n)} DOUBLE" for n in names)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE parsed (path VARCHAR, kind VARCHAR, reason VARCHAR, snippet VARCHAR, "
            "inference_id VARCHAR, ts_us BIGINT, model_version VARCHAR, probability DOUBLE, label INTEGER, "
            f"shadow_version VARCHAR, shadow_probability DOUBLE, shadow_label INTEGER, {cols})"
        )

    def read(self, files: list[InputFile], progress: bool = False) -> None:
        from tqdm import tqdm

        self.stats.files = len(files)
        self.stats.bytes = sum(f.size for f in files)
        with tqdm(total=self.stats.bytes, unit="B", unit_scale=True, desc="captures", disable=not progress) as bar:
            for chunk in _chunks(files):
                self._read_chunk(chunk)
                bar.update(sum(f.size for f in chunk))

    def _read_chunk(self, chunk: list[InputFile]) -> None:
        for f in chunk:
            self._by_path[str(f.path)] = f
        source = _parquet_source(chunk) if chunk[0].parquet else _lines_source(chunk, chunk[0].gzip)
        try:
            self.con.execute("INSERT INTO parsed " + _parse_sql(self.names, source))
        except duckdb.IOException as exc:
            if not (chunk[0].gzip and "gzip" in str(exc).lower()):
                raise MonitorInputError(f"cannot read captures: {exc}") from None
            good = [f for f in chunk if gzip_is_complete(f.path)]
            bad = [f for f in chunk if f not in good]
            if not bad:
                raise MonitorInputError(f"cannot read captures: {exc}") from None
            for part in (good, [self._salvage(f) for f in bad]):
                if part:
                    self._read_chunk(part)
        except duckdb.Error as exc:
            names = ", ".join(f.name for f in chunk[:3])
            raise MonitorInputError(f"cannot read captures ({names}...): {exc}") from None

    def _salvage(self, f: InputFile) -> InputFile:
        """A truncated or corrupt gzip file -> a plain file of the whole lines it still holds (reported)."""
        plain, _ = salvage_gzip(f, self.scratch)
        self.stats.truncated_files.append(f.name)
        return InputFile(plain, f.name, gzip=False, parquet=False, size=plain.stat().st_size)

    def finish(self, model_version: str, ab_version: str | None = None) -> CaptureStats:
        """Count every kind of line, collect examples, and build ``captures`` for ``model_version`` (and
        ``ab_version``, the second version of an A/B split, when given)."""
        s = self.stats
        con = self.con
        s.kinds = dict(con.execute("SELECT kind, count(*) FROM parsed GROUP BY kind").fetchall())
        rejects = self._rejects()
        s.kinds["corrupt"] = s.kinds.get("corrupt", 0) + len(rejects)
        s.lines = sum(s.kinds.values())
        s.invalid_fields = dict(
            con.execute("SELECT reason, count(*) FROM parsed WHERE kind = 'invalid' GROUP BY reason").fetchall()
        )
        per_version = dict(
            con.execute("SELECT model_version, count(*) FROM parsed WHERE kind = 'prediction' GROUP BY 1").fetchall()
        )
        analysed = [v for v in per_version if v == model_version or (ab_version and same_version(v, ab_version))]
        s.other_versions = {v: n for v, n in per_version.items() if v not in analysed}
        s.examples = self._examples() + rejects[: C.EXAMPLES_PER_PROBLEM]
        con.execute(
            "CREATE OR REPLACE TEMP TABLE captures AS SELECT * EXCLUDE (kind, reason, snippet) FROM parsed "
            "WHERE kind = 'prediction' AND list_contains(?, model_version) "
            "QUALIFY row_number() OVER (PARTITION BY inference_id ORDER BY ts_us DESC, path DESC) = 1",
            [analysed],
        )
        s.unique = con.execute("SELECT count(*) FROM captures").fetchall()[0][0]
        s.duplicates = sum(per_version[v] for v in analysed) - s.unique
        return s

    def _rejects(self) -> list[dict]:
        try:
            rows = self.con.execute(
                "SELECT s.file_path, e.line, e.error_type, left(e.csv_line, 160) FROM reject_errors e "
                "JOIN reject_scans s USING (scan_id, file_id) ORDER BY s.file_path, e.line"
            ).fetchall()
        except duckdb.CatalogException:  # no rejects table: nothing was rejected
            return []
        return [
            {"kind": "corrupt", "file": self._name(p), "line": int(n), "detail": str(t).lower(), "text": text}
            for p, n, t, text in rows
        ]

    def _name(self, path: str) -> str:
        f = self._by_path.get(path)
        return f.name if f else path

    def _examples(self) -> list[dict]:
        rows = self.con.execute(
            "SELECT kind, path, reason, snippet FROM parsed WHERE kind IN ('corrupt', 'invalid', 'schema') "
            "QUALIFY row_number() OVER (PARTITION BY kind ORDER BY path) <= ?",
            [C.EXAMPLES_PER_PROBLEM],
        ).fetchall()
        out = []
        for kind, path, reason, snippet in rows:
            detail = {"corrupt": "not valid JSON", "schema": "unsupported schema"}.get(kind, f"bad field: {reason}")
            item = {"kind": kind, "file": self._name(path), "detail": detail, "text": snippet}
            line = _line_number(Path(path), snippet)
            if line:
                item["line"] = line
            out.append(item)
        return out


def same_version(record_version: str, wanted: str) -> bool:
    """A record's ``model_version`` (``v1.1_12D_GB``) is ``wanted`` given as itself or as its folder name (``v1.1``,
    the form ``AB_SPLIT`` takes)."""
    return record_version == wanted or record_version.startswith(wanted + "_")


def _line_number(path: Path, snippet: str | None) -> int | None:
    """The 1-based number of the first line starting with ``snippet`` (only for the few quoted examples)."""
    import gzip

    if not snippet:
        return None
    needle = snippet.encode()
    try:
        with path.open("rb") as raw:
            is_gzip = raw.read(2) == b"\x1f\x8b"
        opener = gzip.open if is_gzip else open
        with opener(path, "rb") as fh:  # type: ignore[operator]
            for number, line in enumerate(fh, start=1):
                if line.startswith(needle):
                    return number
    except (OSError, EOFError):
        return None
    return None
