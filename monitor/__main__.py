"""``python -m monitor``: ``diecast monitor`` by its older name."""

import sys

from diecast import cli

if __name__ == "__main__":
    raise SystemExit(cli.main(["monitor", *sys.argv[1:]]))
