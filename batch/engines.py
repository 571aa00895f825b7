"""The engines that score a file, behind one interface, in one table.

An engine turns a ``Job`` into a ``Stream`` (both in ``batch.job``): the input's schema, its row count when
known, and its rows as scored chunks in input order (each chunk with the scoring step's columns appended,
``batch.step``). Reading and scoring start only when the chunks are iterated, so ``batch.score`` checks the
columns first and then writes every engine's stream with the same atomic writers.

``ENGINES`` names each engine's class by module, imported on first use: the local engine never imports the Ray
one, no engine imports this module, and this module imports only the standard library and ``batch.job`` (the
command line reads the names from it).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Protocol

from batch.job import BatchInputError, Job, Stream

ENGINES = {
    "local": "batch.local:LocalEngine",  # chunks read here, scored by a pool of worker processes
    "ray": "batch.ray_engine:RayEngine",  # Ray Data reads and scores, on a local instance or a cluster
}


class Engine(Protocol):
    """Scores a job's input. ``local_input``: the input must be a file on this machine (the Ray engine also reads
    URIs a cluster resolves, such as ``s3://``)."""

    local_input: bool

    def open(self, job: Job, features: Sequence[str]) -> Stream:
        """The input's schema and its scored chunks; raises ``BatchInputError`` for an unreadable input."""
        ...


def engine(name: str) -> Engine:
    """The engine registered as ``name`` in ``ENGINES``."""
    if name not in ENGINES:
        raise BatchInputError(f"engine {name!r} is not one of {', '.join(ENGINES)}; pick one of those")
    module, cls = ENGINES[name].split(":")
    engine_class: type[Engine] = getattr(importlib.import_module(module), cls)
    return engine_class()
