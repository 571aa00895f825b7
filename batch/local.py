"""The local engine: this process reads the input in chunks; ``workers`` processes score them.

One worker scores in this process. More form a process pool that gets only each chunk's feature columns and
sends back only the scores (this process keeps the rest), with a bounded number of chunks in flight, so memory
stays flat whatever the file size. Each worker builds one ``Predictor`` with a single-threaded onnxruntime
session.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from batch import io, step
from batch.job import Job, Stream

if TYPE_CHECKING:
    import pyarrow as pa

    from runtime.predictor import Predictor

IN_FLIGHT_PER_WORKER = 2  # chunks queued per worker: keeps each busy without reading the whole file ahead
SINGLE_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_worker: dict[str, Any] = {}  # per worker process: its predictor and prefix, or the error loading the model


class LocalEngine:
    """Chunks read in this process (``batch.io.read_chunks``) and scored by ``score_chunks``."""

    local_input = True

    def open(self, job: Job, features: Sequence[str]) -> Stream:
        schema, chunks, total = io.read_chunks(job.input, job.chunk_rows)
        return Stream(schema, total, score_chunks(chunks, job.model_dir, job.workers, job.prefix, features))


def _predictor(model_dir: str) -> Predictor:
    import runtime
    from runtime.predictor import Predictor

    return Predictor(runtime.load(model_dir))  # one single-threaded session (runtime.load's defaults)


def _init_worker(model_dir: str, prefix: str) -> None:
    from runtime.exceptions import ModelArtifactError

    try:
        _worker.update(predictor=_predictor(model_dir), prefix=prefix)
    except ModelArtifactError as exc:
        # Raised here, a pool would replace the dead worker for ever; raised from the first task, it reaches main.
        _worker["error"] = exc


def _scores_in_worker(features: pa.Table) -> pa.Table:
    if "error" in _worker:
        raise _worker["error"]
    return step.score_columns(_worker["predictor"], features, _worker["prefix"])


def score_chunks(
    chunks: Iterator[pa.Table], model_dir: str, workers: int, prefix: str, features: Sequence[str]
) -> Iterator[pa.Table]:
    """``chunks`` with their scores appended, in input order, scored by ``workers`` processes."""
    if workers == 1:
        predictor = _predictor(model_dir)
        for chunk in chunks:
            yield step.score_table(predictor, chunk, prefix)
        return
    import multiprocessing

    for var in SINGLE_THREAD_ENV:  # inherited by the workers: no idle BLAS/OpenMP threads on shared cores
        os.environ.setdefault(var, "1")
    # spawn, not fork: the parent holds pyarrow's reader threads, which a forked child must not inherit.
    with multiprocessing.get_context("spawn").Pool(workers, _init_worker, (model_dir, prefix)) as pool:
        pending: collections.deque = collections.deque()
        for chunk in chunks:
            job = pool.apply_async(_scores_in_worker, (io.compact(chunk, features),))
            pending.append((chunk, job))
            if len(pending) >= workers * IN_FLIGHT_PER_WORKER:
                done, job = pending.popleft()
                yield io.with_scores(done, job.get())
        while pending:
            done, job = pending.popleft()
            yield io.with_scores(done, job.get())
