"""``python -m convert``: an alias of ``diecast convert`` (``convert.pipeline`` does the work)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from diecast import cli

    return cli.main(["convert", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
