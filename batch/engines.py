"""The engines that score a file, behind one interface, in one table.

An engine turns a ``Job`` into a ``Stream``: the input's schema, its row count when known, and its rows as
scored chunks in input order (each chunk with the scoring step's columns appended, ``batch.step``). Reading and
scoring start only when the chunks are iterated, so ``batch.score`` checks the columns first and then writes
every engine's stream with the same atomic writers.

``ENGINES`` names each engine's class by module, imported on first use: the local engine never imports the Ray
one, and this module imports only the standard library (the command line reads the names from it).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

    from batch.job import Job

ENGINES = {
    "local": "batch.local:LocalEngine",  # chunks read here, scored by a pool of worker processes
    "ray": "batch.ray_engine:RayEngine",  # Ray Data reads and scores, on a local instance or a cluster
}


@dataclasses.dataclass(frozen=True)
class Stream:
    """An engine's output: the input's ``schema``, its data-row count (``total``, None when unknown) and the
    scored ``chunks`` (``pa.Table``: the input's columns, the scores and the reject reason) in input order."""

    schema: pa.Schema
    total: int | None
    chunks: Iterator[pa.Table]


class Engine(Protocol):
    """Scores a job's input. ``local_input``: the input must be a file on this machine (the Ray engine also reads
    URIs a cluster resolves, such as ``s3://``)."""

    local_input: bool

    def open(self, job: Job, features: Sequence[str]) -> Stream:
        """The input's schema and its scored chunks; raises ``BatchInputError`` for an unreadable input."""
        ...


def engine(name: str) -> Engine:
    """The engine registered as ``name`` in ``ENGINES``."""
    module, cls = ENGINES[name].split(":")
    engine_class: type[Engine] = getattr(importlib.import_module(module), cls)
    return engine_class()
