"""``python -m compare``: ``diecast compare`` by its older name (``make compare``)."""

import sys

from diecast import cli

if __name__ == "__main__":
    raise SystemExit(cli.main(["compare", *sys.argv[1:]]))
