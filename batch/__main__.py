"""``python -m batch``: the same command as ``diecast score``."""

import sys

from diecast.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["score", *sys.argv[1:]]))
