"""``diecast ablation [--data CSV] [--out DIR] [--budget SECONDS] [--quick] [--fresh] [--jobs N]``: which latent size,
classifier and feature selection is best on these rows, by ``make train``'s protocol and margin rule?"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from convert import defaults
from diecast import exits
from diecast.commands import add_progress, add_seed, positive_int, progress

HELP = "the ablation study: latent sizes x classifiers x feature selections, cross-validated, with the pick"
EXTRA = "ablation"
OUT = defaults.REPO_ROOT / "build" / "ablation"
BUDGET = 3600.0

EPILOG = f"""\
examples:
  diecast ablation                                     # the full grid on the embedded data, build/ablation
  diecast ablation --quick --out build/ablation-quick  # every classifier and latent size, small (CI)
  diecast ablation --data plant.csv --budget 1800      # stop starting new work after 30 minutes
  diecast ablation --data plant.csv                    # again: continues with the units not finished yet
  make ablation DATA=plant.csv OUT=build/abl BUDGET=1800 QUICK=1

{exits.epilog("ablation")}"""


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Cross-validate every configuration of the grid (latent sizes 0, 4, 8, 12, 16; every model kind; 15, 20, 25 "
        "and 30 readings) with make train's folds and threshold rule, one encoder per latent size and fold shared "
        "by every classifier. Writes report.json and report.html (table, charts, the pick by make train's margin "
        "rule, the make train command that reproduces it). The plan and its predicted time are printed first."
    )
    parser.epilog = EPILOG
    parser.add_argument("--data", type=Path, default=defaults.DEFAULT_CSV, help="labelled CSV (default: embedded)")
    parser.add_argument(
        "--out", type=Path, default=OUT, metavar="DIR", help="the folder the reports go into (default: %(default)s)"
    )
    parser.add_argument(
        "--budget",
        type=_seconds,
        default=BUDGET,
        metavar="SECONDS",
        help="no new unit (a latent size on a fold) starts after this many seconds; the report lists what was not "
        "run (default: %(default)g)",
    )
    parser.add_argument("--quick", action="store_true", help="the small grid: fewer rows, epochs and trees, 3 folds")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="redo every unit; by default a run continues the units an earlier run of the same plan (data, grid, "
        "seed, libraries) finished in DIR/units",
    )
    parser.add_argument("--jobs", type=positive_int, default=None, help="parallel units (default: one per core)")
    add_seed(parser, defaults.SEED, "split, fold, initialisation and classifier seed")
    add_progress(parser)


def run(args: argparse.Namespace) -> int:
    from ablation import grid, job, report
    from convert import dataset, kernels

    opts = job.Options(
        data=args.data,
        out=args.out,
        grid=grid.QUICK if args.quick else grid.FULL,
        budget=args.budget,
        seed=args.seed,
        progress=progress(args),
        jobs=args.jobs or 0,
        fresh=args.fresh,
    )
    try:
        doc = job.run(opts)
    except (dataset.DataValidationError, kernels.KernelPinError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exits.USAGE
    print(f"{len(doc['rows'])} configurations in {doc['seconds']:.0f} s, {len(doc['not_run'])} not run")
    for r in doc["rows"][:5]:
        print(
            f"  {r['model']:<18} latent {r['latent_dim']:>2}  {r['features']} readings  "
            f"F1 {r['f1_score']['mean']:.4f} ± {r['f1_score']['sd']:.4f}"
        )
    print(f"pick: {report.describe(doc['pick']['pick'])} ({doc['pick']['decision']})")
    print(f"reproduce: {doc['train_command']['command'] or '-'} ({doc['train_command']['note']})")
    print(f"wrote {args.out}: report.json, report.html and its charts; the finished units in {args.out / 'units'}")
    return exits.OK
