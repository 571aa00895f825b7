"""``diecast``: one command for training, conversion, serving, monitoring, comparing and batch scoring.

``diecast.cli`` dispatches to one module per subcommand in ``diecast.commands``.
"""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "diecast-t1"  # the name in pyproject.toml's [project]


def _version() -> str:
    """The installed distribution's version; from a checkout that was never installed, pyproject.toml's."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "0+unknown"


def __getattr__(name: str) -> str:
    """``diecast.__version__``, read when first asked for: importing ``diecast.exits`` reads no metadata."""
    if name == "__version__":
        globals()["__version__"] = version = _version()
        return version
    raise AttributeError(f"module 'diecast' has no attribute {name!r}")
