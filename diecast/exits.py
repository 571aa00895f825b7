"""Every exit code of every ``diecast`` command, in one table: one number, one meaning, in every command.

0, 1 and 2 mean the same in every command; every other number belongs to the one command that can end with it.
Each command's ``--help`` prints its rows from here (``epilog``) and docs/cli.md shows the whole table
(``tests/test_cli.py`` checks both). Standard library only: ``--help`` and the libraries read it without imports.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

OK = 0
UNEXPECTED = 1
USAGE = 2
SCORE_REJECTS = 3
INVOKE_ERROR_ANSWER = 4
DATA_DIFFERS = 5
CONVERT_CERTIFICATE_FAILED = 6
CONVERT_DIFFERS = 7
EXPLAIN_ERROR_ANSWER = 8
MONITOR_RETRAIN = 10
MONITOR_ROLLBACK = 20
COMPARE_HOLD = 30
COMPARE_REJECT = 40


@dataclass(frozen=True)
class ExitCode:
    """One exit code: its ``number``, its one ``meaning``, and the ``command`` that uses it (None: every one)."""

    number: int
    meaning: str
    command: str | None = None


TABLE: tuple[ExitCode, ...] = (
    ExitCode(OK, "success: the command did what it was asked (each command says what that is)"),
    ExitCode(UNEXPECTED, "unexpected error: a bug or a failing machine; the traceback says where"),
    ExitCode(
        USAGE,
        "bad arguments, settings or input: the message names the flag, file, field or variable and the fix; "
        "nothing is written",
    ),
    ExitCode(
        SCORE_REJECTS, "some rows were rejected: the rest is written, the rejects file gives each reason", "score"
    ),
    ExitCode(INVOKE_ERROR_ANSWER, "the application answered with an error status (4xx or 5xx), printed", "invoke"),
    ExitCode(DATA_DIFFERS, "--check: the CSV differs from the generator's output", "data"),
    ExitCode(
        CONVERT_CERTIFICATE_FAILED,
        "the certificate failed: nothing is published; the report says which rows and bars",
        "convert",
    ),
    ExitCode(
        CONVERT_DIFFERS,
        "--compare-to: the new model.onnx differs from that folder's (the new one is published)",
        "convert",
    ),
    ExitCode(
        EXPLAIN_ERROR_ANSWER, "the explain application answered with an error status (4xx or 5xx), printed", "explain"
    ),
    ExitCode(
        MONITOR_RETRAIN, "retrain: a retrain signal fired (drift, a performance drop, new labels or age)", "monitor"
    ),
    ExitCode(MONITOR_ROLLBACK, "rollback: the served model's F1 is significantly below the rollback line", "monitor"),
    ExitCode(COMPARE_HOLD, "hold: NEW is not shown good enough to replace OLD (or the data is too thin)", "compare"),
    ExitCode(COMPARE_REJECT, "reject: NEW is below the F1 floor or significantly worse on a guard metric", "compare"),
)

# What success (0) is, per command.
SUCCESS: dict[str, str] = {
    "data": "written, or --check found the CSV identical",
    "train": "the version was written; its test-split metrics are printed",
    "convert": "published (and, with --compare-to, model.onnx is byte-identical to that folder's)",
    "invoke": "the event was answered with a 2xx status",
    "explain": "the event was explained (a 2xx status)",
    "importance": "the global importance was printed",
    "score": "every row was scored",
    "monitor": "ok: no signal",
    "compare": "promote: NEW may replace OLD",
    "ablation": "the study ran (within its budget) and report.json and report.html were written",
    "ui": "the server was stopped (Ctrl-C)",
}


def codes(command: str) -> tuple[ExitCode, ...]:
    """The rows of ``TABLE`` that ``command`` can end with, in number order."""
    return tuple(c for c in TABLE if c.command in (None, command))


def epilog(command: str) -> str:
    """The ``exit codes:`` paragraph of ``command``'s ``--help``."""
    width = len(str(max(c.number for c in codes(command))))
    lines = ["exit codes:"]
    for c in codes(command):
        meaning = SUCCESS[command] if c.number == OK else c.meaning
        indent = " " * (width + 4)
        lines += textwrap.wrap(meaning, 100, initial_indent=f"  {c.number:<{width}}  ", subsequent_indent=indent)
    return "\n".join(lines) + "\n"
