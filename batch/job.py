"""What a scoring run is given (``Job``), what an engine gives back (``Stream``), what the run reports
(``Summary``) and the error it raises. The parts of ``batch`` pass these between them; this module imports none
of them, and only the standard library, so the command line reads the defaults without numpy, pyarrow or a model.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_CHUNK_ROWS = 4096  # large enough that per-chunk overhead is <2 % of inference, small enough to stream
LISTED_REJECTS = 10  # rejected row numbers a summary keeps; the rejects file has them all


class BatchInputError(ValueError):
    """A batch-scoring input or output cannot be used as given (format, columns, types); nothing was written."""


def default_workers() -> int:
    """Every core of this machine."""
    return os.cpu_count() or 1


@dataclasses.dataclass(frozen=True)
class Job:
    """One scoring run: ``input`` (CSV or Parquet readings) scored by the model in ``model_dir`` into ``output``.

    ``engine`` names an entry of ``batch.engines.ENGINES``; ``workers`` is the number of scoring processes or
    actors (one single-threaded session each); ``chunk_rows`` the rows scored at a time; ``prefix`` is put before
    the score columns' names; ``progress`` draws a bar on stderr; ``ray_address`` is the Ray cluster to join
    (None: a private local instance); ``force`` replaces an existing ``output``.
    """

    input: str
    output: str
    model_dir: str
    engine: str = "local"
    workers: int = dataclasses.field(default_factory=default_workers)
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    prefix: str = ""
    progress: bool = True
    ray_address: str | None = None
    force: bool = False

    def __post_init__(self) -> None:
        for name in ("workers", "chunk_rows"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise BatchInputError(f"{name} must be an integer of at least 1, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Stream:
    """An engine's output: the input's ``schema``, its data-row count (``total``, None when unknown) and the
    scored ``chunks`` (``pa.Table``: the input's columns, the scores and the reject reason) in input order."""

    schema: pa.Schema
    total: int | None
    chunks: Iterator[pa.Table]


@dataclasses.dataclass
class Summary:
    """What a run wrote: rows scored, rows rejected, and the first rejected data rows (1-based)."""

    scored: int = 0
    rejected: int = 0
    first_rejected: list[int] = dataclasses.field(default_factory=list)  # up to LISTED_REJECTS
