"""The ``diecast`` dispatcher: ``diecast COMMAND [ARGS]``.

``diecast --help`` lists the commands from their modules' ``HELP``; those modules import only the standard
library at import time, so the listing never loads torch, duckdb or ray. ``diecast COMMAND ...`` imports that
one command's module, builds its parser (``configure``) and calls its ``run``. A package of the command's pip
extra that is missing, found while importing the module or while running it, ends in one line that names the
extra to install (exit 2), never a traceback.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import json
import sys
from importlib import metadata
from types import ModuleType

from diecast import DISTRIBUTION, __version__, exits
from diecast.commands import InputError, UsageError

# name -> module; the order is the order of ``diecast --help``.
COMMANDS: dict[str, str] = {
    name: f"diecast.commands.{name}"
    for name in (
        "data",
        "train",
        "convert",
        "invoke",
        "explain",
        "importance",
        "score",
        "monitor",
        "compare",
        "ablation",
        "ui",
    )
}

# The top-level modules each pip extra of pyproject.toml brings: a ModuleNotFoundError for one of them, in a
# command needing that extra, means the extra is not installed. tests/test_cli.py checks this table against the
# extras' pinned distributions.
_CONVERT_MODULES = frozenset(
    {"torch", "sklearn", "joblib", "onnx", "skl2onnx", "lightgbm", "xgboost", "catboost", "onnxmltools"}
)
EXTRA_MODULES: dict[str, frozenset[str]] = {
    "convert": _CONVERT_MODULES,
    "ablation": _CONVERT_MODULES | {"matplotlib", "tqdm"},  # the ablation trains as the convert side does
    "monitor": frozenset({"duckdb", "pyarrow", "scipy", "matplotlib", "tqdm", "boto3", "botocore"}),
    "compare": frozenset({"scipy", "sklearn", "joblib", "matplotlib", "tqdm"}),
    "batch": frozenset({"pyarrow", "tqdm", "ray"}),
    "explain": frozenset(
        {
            "torch",
            "sklearn",
            "joblib",
            "onnx",
            "skl2onnx",
            "scipy",
            "pandas",
            "tqdm",
            "cloudpickle",
            "shap",
            "numba",
            "llvmlite",
            "slicer",
        }
    ),
    "ui": frozenset({"streamlit", "botocore", "pyarrow"}),
}

EXIT_USAGE = exits.USAGE  # argparse's code for a bad command line; also a missing extra or an unknown command


class HelpFormatter(argparse.HelpFormatter):
    """Wraps each paragraph of a description or epilog to the terminal; a paragraph with indented lines (the
    examples, the exit codes) is kept as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for block in text.strip("\n").split("\n\n"):
            if any(line.startswith(" ") for line in block.splitlines()):
                paragraphs.append("\n".join(indent + line for line in block.splitlines()))
            else:
                paragraphs.append(super()._fill_text(" ".join(block.split()), width, indent))
        return "\n\n".join(paragraphs)


def main(argv: list[str] | None = None) -> int:
    """Run ``diecast`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code. ``--help`` and a bad
    command line raise SystemExit, as argparse does."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(overview(), file=sys.stdout if args else sys.stderr)
        return 0 if args else EXIT_USAGE
    if args[0] in ("-V", "--version"):
        print(f"diecast {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        _fail(f"diecast: unknown command {name!r}; the commands are {', '.join(COMMANDS)} (see diecast --help)")
        return EXIT_USAGE
    return _dispatch(name, rest)


def overview() -> str:
    """``diecast --help``: usage and one line per command."""
    width = max(map(len, COMMANDS))
    lines = [
        "usage: diecast COMMAND [ARGS ...]",
        "",
        "Die-casting defect prediction: train, convert to ONNX, serve, score, monitor and compare models.",
        "",
        "commands:",
        *(f"  {name:<{width}}  {_help_line(name)}" for name in COMMANDS),
        "",
        "options:",
        "  -h, --help     show this message and exit",
        "  -V, --version  print diecast's version and exit",
        "",
        "diecast COMMAND --help describes one command: its arguments, examples and exit codes.",
    ]
    return "\n".join(lines)


def _help_line(name: str) -> str:
    path = COMMANDS[name]
    try:
        module = _load(name)
        help_line, extra = module.HELP, module.EXTRA
    except ModuleNotFoundError as exc:
        if exc.name == path:
            return "(not in this installation)"
        help_line, extra = _declared(path, "HELP"), _declared(path, "EXTRA")
    return f"{help_line} (extra: {extra})" if extra else str(help_line)


def _dispatch(name: str, rest: list[str]) -> int:
    try:
        module = _load(name)
        parser = argparse.ArgumentParser(prog=f"diecast {name}", formatter_class=HelpFormatter)
        module.configure(parser)
        parsed = parser.parse_args(rest)
    except ModuleNotFoundError as exc:
        return _missing(name, exc)
    try:
        return int(module.run(parsed))
    except UsageError as exc:
        parser.error(str(exc))
    except InputError as exc:
        _fail(f"error: {exc}")
        return EXIT_USAGE
    except ModuleNotFoundError as exc:
        return _missing(name, exc)


def _missing(name: str, exc: ModuleNotFoundError) -> int:
    """One line naming the extra to install when ``exc`` is a package of the command's extra; else re-raised."""
    if exc.name == COMMANDS[name]:
        _fail(f"diecast {name}: its module {COMMANDS[name]} is not in this installation")
        return EXIT_USAGE
    extra = _declared(COMMANDS[name], "EXTRA")
    if not isinstance(extra, str) or not _provided_by(exc.name, extra):
        raise exc
    _fail(f"diecast {name} needs the {extra!r} extra: {install_hint(extra)}")
    return EXIT_USAGE


def _load(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name])


def _provided_by(module_name: str | None, extra: str) -> bool:
    """Whether the missing ``module_name`` (e.g. "sklearn.ensemble") is a package of pip extra ``extra``."""
    if module_name is None:
        return False
    return module_name.partition(".")[0] in EXTRA_MODULES.get(extra, frozenset())


def _declared(module_path: str, constant: str) -> object:
    """A command module's literal constant (``EXTRA``, ``HELP``) read from its source: the module may be the one
    that failed to import."""
    if module_path in sys.modules:
        return getattr(sys.modules[module_path], constant, None)
    spec = importlib.util.find_spec(module_path)
    if spec is None or spec.origin is None:
        return None
    with open(spec.origin, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), spec.origin)
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == constant for t in targets):
            return ast.literal_eval(value)
    return None


def install_hint(extra: str) -> str:
    """The pip command that adds ``extra``: editable (``-e``) in a checkout, as it was installed otherwise."""
    try:
        direct_url = metadata.distribution(DISTRIBUTION).read_text("direct_url.json") or "{}"
        editable = bool(json.loads(direct_url).get("dir_info", {}).get("editable"))
    except metadata.PackageNotFoundError:
        editable = True  # run from a checkout that was never installed
    return f"pip install -e '.[{extra}]'" if editable else f"pip install '.[{extra}]'"


def _fail(message: str) -> None:
    print(message, file=sys.stderr)
