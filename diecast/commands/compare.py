"""``diecast compare --old v1.0 --new v1.1 [--data labelled.csv] [--out DIR]``: should NEW replace OLD?

The exit code is the verdict's (``diecast.exits``). The verdict, its reasons and the output paths go to stdout;
progress and errors to stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from diecast import exits
from diecast.commands import MODELS_DIR, add_progress, add_seed, model_folder, progress
from evaluation.policy import METRICS

HELP = "compare two certified models on the same labelled rows: promote, hold or reject NEW"
EXTRA = "compare"

EXAMPLES = """\
examples:
  diecast compare --old v1.0 --new v1.1                      # on the embedded test split
  diecast compare --old v1.0 --new build/retrain/v1.1 --data labelled.csv --out build/compare/v1.1
  diecast compare --old v1.0 --new v1.1 --margin 0.01 --guard f1,recall,fnr
"""


def _epilog() -> str:
    return f"""{EXAMPLES}
{exits.epilog("compare")}
Rules: reject when NEW's F1 < --min-f1 or NEW is significantly worse on a --guard metric; otherwise hold when the
data has < --min-positives defects, NEW is not shown to be at least OLD - --margin on --promote-metric, or NEW is
> --max-latency-ratio times slower; otherwise promote.
"""


def _metric_list(text: str) -> tuple[str, ...]:
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    return names


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    from compare import defaults as d  # the F1 floor is runtime.contracts' rollback line

    parser.description = (
        "Compare two certified models on the same labelled rows and decide: promote, hold or reject NEW. "
        "Writes compare.json and report.html."
    )
    parser.epilog = _epilog()
    p = parser
    p.add_argument(
        "--old", required=True, metavar="VERSION|DIR", help="the serving model: a version under --models, or a folder"
    )
    p.add_argument(
        "--new", required=True, metavar="VERSION|DIR", help="the candidate: a version under --models, or a folder"
    )
    p.add_argument(
        "--data",
        type=Path,
        help="labelled CSV (the models' features + defect [+ defect_type]); default: the embedded test split",
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help=f"the folder the reports go into, created if missing (default: "
        f"{d.OUT_ROOT.relative_to(d.REPO_ROOT)}/OLD-vs-NEW)",
    )
    p.add_argument(
        "--models", "--models-dir", type=Path, default=MODELS_DIR, help="where versions live (default: %(default)s)"
    )
    rules = p.add_argument_group("verdict rules")
    rules.add_argument("--min-f1", type=float, default=d.MIN_F1, help="reject below this F1 (default: %(default)s)")
    rules.add_argument(
        "--guard",
        type=_metric_list,
        default=d.GUARD_METRICS,
        help="reject when NEW is significantly worse on any of these, comma-separated (default: f1,recall)",
    )
    rules.add_argument(
        "--promote-metric",
        choices=METRICS[:5],
        default=d.PROMOTE_METRIC,
        help="metric NEW must be shown good on to be promoted (default: %(default)s)",
    )
    rules.add_argument(
        "--margin",
        type=float,
        default=d.MARGIN,
        help="non-inferiority margin on the promote metric; "
        "0 requires NEW to be significantly better (default: %(default)s)",
    )
    rules.add_argument(
        "--max-latency-ratio",
        type=float,
        default=d.MAX_LATENCY_RATIO,
        help="hold when NEW/OLD median latency exceeds this (default: %(default)s)",
    )
    rules.add_argument(
        "--min-positives",
        type=int,
        default=d.MIN_POSITIVES,
        help="hold when the data has fewer defects (default: %(default)s)",
    )
    rules.add_argument("--confidence", type=_share, default=d.CONFIDENCE, help="interval level (default: %(default)s)")
    p.add_argument("--bootstrap-rounds", type=int, default=d.BOOTSTRAP_ROUNDS, help="default: %(default)s")
    p.add_argument("--latency-rounds", type=int, default=d.LATENCY_ROUNDS, help="default: %(default)s")
    add_seed(p, d.SEED, "resampling seed")
    add_progress(p)


def run(args: argparse.Namespace) -> int:
    old, new = (model_folder(getattr(args, k), args.models, f"--{k}") for k in ("old", "new"))
    from tqdm import tqdm

    from compare import defaults as d
    from compare import report
    from compare.comparison import STEPS, Resampling, compare
    from compare.contract import IncompatibleModelsError
    from compare.data import DataValidationError
    from compare.verdict import Rules
    from runtime.exceptions import ModelArtifactError

    rules = Rules(
        min_f1=args.min_f1,
        guard_metrics=tuple(args.guard),
        promote_metric=args.promote_metric,
        margin=args.margin,
        max_latency_ratio=args.max_latency_ratio,
        min_positives=args.min_positives,
        confidence=args.confidence,
    )
    resampling = Resampling(args.bootstrap_rounds, args.latency_rounds, args.seed)
    with tqdm(total=len(STEPS), desc=STEPS[0], file=sys.stderr, disable=not progress(args)) as bar:

        def step(name: str) -> None:
            bar.update(1)
            bar.set_description(name)

        try:
            result, images = compare(old, new, args.data, rules, resampling, step)
        except (IncompatibleModelsError, ModelArtifactError, DataValidationError) as exc:
            bar.close()
            print(f"error: {exc}", file=sys.stderr)
            return d.EXIT_USAGE
        out = args.out or d.OUT_ROOT / f"{result['old']}-vs-{result['new']}".replace(" ", "")
        json_path, html_path = report.write(out, result, images)
        bar.update(1)
    print(f"{result['verdict'].upper()}: {result['new']} vs {result['old']}")
    for reason in result["reasons"]:
        print(f"  - {reason}")
    print(f"wrote {json_path} and {html_path}")
    return d.EXIT_CODES[result["verdict"]]
