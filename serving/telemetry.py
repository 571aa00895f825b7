"""The request's log line: one JSON object per request on stdout, a structured log record that is also a CloudWatch
Embedded Metric Format (EMF) document (latency, rows, predictions by class, errors by type, cold start, shadow
errors). The metric names and dimension are the contracts in ``runtime/contracts.py``; the template alarms on them.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import orjson

from runtime.contracts import METRIC_DIMENSION, METRIC_NAMESPACE, Metric


def emf_directives(namespace: str, ok: bool, cold: bool, shadow_failed: bool = False) -> list[dict[str, Any]]:
    """The ``CloudWatchMetrics`` directive of one request's line."""
    metrics = [{"Name": Metric.LATENCY, "Unit": "Milliseconds"}, {"Name": Metric.ROWS, "Unit": "Count"}]
    if shadow_failed:
        metrics.append({"Name": Metric.SHADOW_ERRORS, "Unit": "Count"})
    if ok:
        metrics += [{"Name": Metric.DEFECTS, "Unit": "Count"}, {"Name": Metric.NORMALS, "Unit": "Count"}]
        dimensions = [[METRIC_DIMENSION]]
    else:
        metrics.append({"Name": Metric.ERRORS, "Unit": "Count"})
        dimensions = [[METRIC_DIMENSION], [METRIC_DIMENSION, "ErrorType"]]
    if cold:
        metrics.append({"Name": Metric.COLD_START, "Unit": "Count"})
    return [{"Namespace": namespace, "Dimensions": dimensions, "Metrics": metrics}]


class Telemetry:
    """Writes the request's line (then the capture lines, in the same write: a second write costs more than the
    concatenation). ``quiet`` drops the request's line only, for a local run whose caller wants the response alone:
    capture lines are data, not log, and are still written."""

    def __init__(self, model_version: str, namespace: str = METRIC_NAMESPACE, quiet: bool = False) -> None:
        self.model_version = model_version
        self.namespace = namespace
        self.quiet = quiet
        # The directive for each (success, cold start, shadow failed) case, built once.
        self._directives = {
            (ok, cold, shadow): emf_directives(namespace, ok, cold, shadow)
            for ok in (True, False)
            for cold in (True, False)
            for shadow in (True, False)
        }

    def emit(
        self,
        request_id: str,
        started: float,
        cold: bool,
        outcome: str,
        status: int,
        rows: int,
        defects: int,
        error: str = "",
        captured: bytes = b"",
        extra: dict[str, Any] | None = None,
    ) -> None:
        """One request's line: ``started`` is its ``time.perf_counter()``; ``extra`` adds fields (the shadow's)."""
        if self.quiet:
            if captured:
                sys.stdout.write(captured.decode())
            return
        latency_ms = round((time.perf_counter() - started) * 1e3, 3)
        record: dict[str, Any] = {
            "level": "INFO" if status < 500 else "ERROR",
            "message": "request",
            "request_id": request_id,
            METRIC_DIMENSION: self.model_version,
            "outcome": outcome,
            "status": status,
            "rows": rows,
            "latency_ms": latency_ms,
            Metric.LATENCY: latency_ms,
            Metric.ROWS: rows,
        }
        if status < 400:
            record[Metric.DEFECTS], record[Metric.NORMALS] = defects, rows - defects
        else:
            record["ErrorType"], record[Metric.ERRORS] = error, 1
        if cold:
            record[Metric.COLD_START] = 1
        if extra:
            record.update(extra)
        directives = self._directives[status < 400, cold, Metric.SHADOW_ERRORS in record]
        record["_aws"] = {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": directives}
        sys.stdout.write((orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE) + captured).decode())
