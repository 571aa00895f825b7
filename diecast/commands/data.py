"""``diecast data``: regenerate the embedded synthetic dataset, check it, or write simulated production rows."""

from __future__ import annotations

import argparse
from pathlib import Path

from convert import defaults
from diecast import exits
from diecast.commands import InputError, UsageError, add_seed, positive_int

HELP = "regenerate the embedded dataset (data/die_casting.csv), check it, or simulate production rows"
EXTRA = None

EPILOG = f"""\
examples:
  diecast data                                         # rewrite data/die_casting.csv and data/schema.json
  diecast data --check                                 # is the CSV on disk the generator's output?
  diecast data --production 2000 --vacuum 0.5 build/week5.csv

{exits.epilog("data")}"""


def share(text: str) -> float:
    """An argparse type: a number in [0, 1]."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {text}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Regenerate the embedded synthetic dataset (data/die_casting.csv) and its schema, or write a "
        "labelled sample of simulated production (--production N) under a drift scenario (see convert.dataset.Drift)."
    )
    parser.epilog = EPILOG
    parser.add_argument(
        "csv",
        nargs="?",
        type=Path,
        default=defaults.DEFAULT_CSV,
        help="the CSV to write or --check; its folder is created if missing (default: %(default)s)",
    )
    parser.add_argument("--out", dest="old_out", type=Path, default=None, help=argparse.SUPPRESS)  # its older name
    parser.add_argument("--check", action="store_true", help="regenerate in memory and compare with CSV")
    parser.add_argument(
        "--production", type=positive_int, default=0, metavar="N", help="write N rows of simulated production"
    )
    add_seed(parser, 1, "production sample seed")
    parser.add_argument("--vacuum", type=share, default=0.0, help="production drift: vacuum degradation 0..1")
    parser.add_argument("--hydrogen-offset", type=float, default=0.0, help="production drift: sensor offset, mL/100g")
    parser.add_argument(
        "--with-embedded", action="store_true", help="production: start with the embedded dataset's rows"
    )


def run(args: argparse.Namespace) -> int:
    csv: Path = args.old_out or args.csv
    if args.production and csv.resolve() == defaults.DEFAULT_CSV.resolve():
        raise UsageError("--production writes a new file: name it, e.g. build/week5.csv (the embedded dataset stays)")
    from convert import dataset

    if args.production:
        drift = dataset.Drift(vacuum=args.vacuum, hydrogen_offset=args.hydrogen_offset)
        print(dataset.write_production(csv, args.production, args.seed, drift, args.with_embedded))
        return exits.OK
    if args.check:
        try:
            same = dataset.check_csv(csv)
        except dataset.DataValidationError as exc:
            raise InputError(str(exc)) from None
        print(f"{csv}: {'identical to' if same else 'DIFFERS from'} the generator's output")
        return exits.OK if same else exits.DATA_DIFFERS
    print(dataset.write_embedded(csv))
    return exits.OK
