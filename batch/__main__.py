"""``python -m batch``: the same command as ``diecast score``."""

import sys

from diecast.cli import main

raise SystemExit(main(["score", *sys.argv[1:]]))
