"""One module per ``diecast`` subcommand, and the few command-line rules they share.

Each module exposes ``HELP`` (its line in ``diecast --help``), ``EXTRA`` (the pip extra its ``run`` needs, or None),
``configure(parser)`` (arguments, description and an epilog with examples; standard library only) and
``run(args) -> int`` (the exit code: it turns the arguments into typed values and calls the library).

Shared here, so that every command spells them alike: how a model is named (``--model v1.0`` or a folder:
``model_folder`` / ``new_model_folder``), the ``--seed`` and ``--progress/--no-progress`` flags, and the exit-code
paragraph of every ``--help`` (``diecast.exits``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime import artifacts
from runtime.contracts import VERSION_PATTERN, version_problem

MODELS_DIR = Path(artifacts.MODELS_DIR)  # where a bare version of a certified model is


class UsageError(Exception):
    """A command line that parses but contradicts itself; ``run`` raises it before any work and the dispatcher
    reports it as argparse reports a bad argument (the usage line, the message, exit 2)."""


class InputError(Exception):
    """An argument that names something unusable (a model folder that is not there, a bad version); the dispatcher
    prints ``error: MESSAGE`` and exits 2 (``diecast.exits.USAGE``)."""


CERTIFIED = "manifest.json"  # what a certified model folder holds (models_onnx/<version>)
ORIGINALS = "metadata.json"  # what a trained originals' folder holds (deployment_models/<version>)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text}")
    return value


def model_folder(text: str, models_dir: Path, flag: str, holds: str = CERTIFIED) -> Path:
    """The existing model folder ``text`` names: a folder's path, or a version under ``models_dir`` (``v1.0`` ->
    ``models_dir/v1.0``), holding the file ``holds``. ``InputError`` naming ``flag`` and the places looked at
    otherwise."""
    path = Path(text)
    candidate = models_dir / text
    found = path if path.is_dir() else candidate if VERSION_PATTERN.fullmatch(text) and candidate.is_dir() else None
    if found is not None:
        if not (found / holds).is_file():
            kind = "certified model (models_onnx/VERSION)" if holds == CERTIFIED else "trained model"
            raise InputError(f"{flag} {text}: {found} holds no {holds}, so it is not a {kind} folder")
        return found
    raise InputError(
        f"{flag} {text}: no model folder at {path.resolve()} nor at {candidate}; give a folder or a version "
        f"(versions in {models_dir}: {', '.join(versions(models_dir)) or 'none'})"
    )


def versions(models_dir: Path) -> list[str]:
    """The version folders in ``models_dir``, sorted (none when it is not a folder)."""
    if not models_dir.is_dir():
        return []
    return sorted(p.name for p in models_dir.iterdir() if p.is_dir() and VERSION_PATTERN.fullmatch(p.name))


def new_model_folder(text: str, models_dir: Path, flag: str) -> Path:
    """The model folder a command writes, named by ``text``: a bare version goes under ``models_dir``, a path is
    taken as it is. The folder's name is the model's version, so it must be one (``InputError`` otherwise)."""
    path = Path(text) if ("/" in text or text in (".", "..")) else models_dir / text
    problem = version_problem(flag, path.name if "/" in text else text)
    if problem:
        raise InputError(problem)
    return path


def add_seed(parser: argparse.ArgumentParser, default: int, what: str) -> None:
    """``--seed N``: every command's one seed flag."""
    parser.add_argument("--seed", type=int, default=default, metavar="N", help=f"{what} (default: %(default)s)")


def add_progress(parser: argparse.ArgumentParser) -> None:
    """``--progress/--no-progress``: every command's progress bars on stderr, by default when it is a terminal."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars on stderr (default: when stderr is a terminal)",
    )


def progress(args: argparse.Namespace) -> bool:
    """Whether to draw progress bars: ``--progress``/``--no-progress``, else whether stderr is a terminal."""
    return sys.stderr.isatty() if args.progress is None else bool(args.progress)
