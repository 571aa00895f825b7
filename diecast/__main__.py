"""``python -m diecast``: the same as the ``diecast`` console script."""

from diecast.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
