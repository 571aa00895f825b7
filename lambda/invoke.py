"""``python lambda/invoke.py EVENT.json``: an alias of ``diecast invoke`` (answer one Lambda event locally)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from diecast.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["invoke", *sys.argv[1:]]))
