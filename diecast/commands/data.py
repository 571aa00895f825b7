"""``diecast data``: regenerate the embedded synthetic dataset, check it, or write simulated production rows."""

from __future__ import annotations

import argparse
from pathlib import Path

from convert import defaults
from diecast.commands import UsageError

HELP = "regenerate the embedded dataset (data/die_casting.csv), check it, or simulate production rows"
EXTRA = None

EPILOG = """\
examples:
  diecast data                                         # rewrite data/die_casting.csv and data/schema.json
  diecast data --check                                 # is the CSV on disk the generator's output?
  diecast data --production 2000 --vacuum 0.5 --out build/week5.csv

exit codes:
  0  written, or --check found the CSV identical
  1  --check: the CSV differs from the generator's output
  2  a bad argument (e.g. --production without --out)
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Regenerate the embedded synthetic dataset (data/die_casting.csv) and its schema, or write a "
        "labelled sample of simulated production (--production N) under a drift scenario (see convert.dataset.Drift)."
    )
    parser.epilog = EPILOG
    parser.add_argument("--out", type=Path, default=defaults.DEFAULT_CSV, help="CSV to write (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="regenerate in memory and compare with --out")
    parser.add_argument("--production", type=int, default=0, metavar="N", help="write N rows of simulated production")
    parser.add_argument("--seed", type=int, default=1, help="production sample seed (default: %(default)s)")
    parser.add_argument("--vacuum", type=float, default=0.0, help="production drift: vacuum degradation 0..1")
    parser.add_argument("--hydrogen-offset", type=float, default=0.0, help="production drift: sensor offset, mL/100g")
    parser.add_argument(
        "--with-embedded", action="store_true", help="production: start with the embedded dataset's rows"
    )


def run(args: argparse.Namespace) -> int:
    if args.production and args.out.resolve() == defaults.DEFAULT_CSV.resolve():
        raise UsageError("--production writes a new file: give --out (the embedded dataset stays as it is)")
    from convert import dataset

    if args.production:
        drift = dataset.Drift(vacuum=args.vacuum, hydrogen_offset=args.hydrogen_offset)
        print(dataset.write_production(args.out, args.production, args.seed, drift, args.with_embedded))
        return 0
    if args.check:
        same = dataset.check_csv(args.out)
        print(f"{args.out}: {'identical to' if same else 'DIFFERS from'} the generator's output")
        return 0 if same else 1
    print(dataset.write_embedded(args.out))
    return 0
