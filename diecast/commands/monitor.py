"""``diecast monitor``: read captures and labels, compare production with the training distribution, decide.

The exit code is the decision's, for a scheduler (``diecast.exits``). Results go to ``--out``; a summary goes to
stdout.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from diecast import exits
from diecast.commands import MODELS_DIR, add_progress, model_folder, progress
from monitor import constants as C
from monitor.clock import parse_utc

HELP = "judge a served model on its captures and labels: ok, retrain or rollback"
EXTRA = "monitor"

EXAMPLES = """\
examples:
  diecast monitor --captures build/captures/ --labels labels.csv --model models_onnx/v1.0 --out build/monitor
  diecast monitor --captures 's3://bucket/captures/2026/10/*/' --labels labels.csv --model models_onnx/v1.0 \\
      --out build/monitor --window 14d --as-of 2026-10-27T00:00:00Z
  diecast monitor --captures handler.log --labels labels.jsonl --model models_onnx/v1.0 --out build/ab \\
      --ab-version v1.1 --min-labelled 100
"""


def _epilog(rollback_f1: float) -> str:
    return f"""{EXAMPLES}
{exits.epilog("monitor")}
signals: performance_drop (F1's 95% interval wholly below its floor, {C.PERFORMANCE_DROP:.0%} under the manifest's
test F1; below it by noise is only a warning), data_drift (any PSI >
{C.PSI_MAJOR} and above chance at the window's size, on >= --min-rows predictions), new_labels (>= {C.NEW_LABELS}
labelled since training), schedule (>= {C.SCHEDULE_DAYS} days since training), rollback (F1's 95% interval wholly
below {rollback_f1} on >= --min-labelled rows; a point estimate below it is only a warning). rollback wins; any other
signal means retrain.

outputs in --out: {C.REPORT_JSON}, {C.REPORT_HTML}, {C.METRICS_EMF} (CloudWatch EMF).
"""


def parse_window(text: str) -> timedelta:
    """``7d``, ``36h``, ``2w`` -> a timedelta; argparse's error otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([hdw])\s*", text)
    if not match or float(match[1]) <= 0:
        raise argparse.ArgumentTypeError(f"--window {text!r}: use a positive number and a unit h, d or w, e.g. 7d")
    return timedelta(hours=float(match[1]) * {"h": 1, "d": 24, "w": 168}[match[2]])


def parse_as_of(text: str) -> datetime:
    """ISO 8601 or ``now`` -> an aware UTC datetime; argparse's error otherwise."""
    if text == "now":
        return datetime.now(UTC)
    try:
        return parse_utc(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--as-of {text!r}: use ISO 8601, e.g. 2026-10-27T00:00:00Z, or 'now'"
        ) from None


def configure(parser: argparse.ArgumentParser) -> None:
    from runtime.contracts import ROLLBACK_F1

    parser.description = (
        "Monitor a served model: live quality on the labelled predictions, feature and prediction drift against "
        "the training distribution, and the retrain / rollback signals."
    )
    parser.epilog = _epilog(ROLLBACK_F1)
    parser.add_argument(
        "--captures",
        nargs="+",
        required=True,
        metavar="PATH",
        help="capture files, folders (Firehose YYYY/MM/DD/HH/ layout), globs or s3:// URLs; raw handler stdout, "
        "JSON lines, gzip of either, or Parquet",
    )
    parser.add_argument(
        "--labels", type=Path, required=True, metavar="PATH", help="inspection results, CSV or JSON lines"
    )
    parser.add_argument(
        "--model",
        required=True,
        metavar="VERSION|DIR",
        help="the served model: a version under models_onnx/ (v1.0) or a model folder",
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="the folder the report goes into, created if missing"
    )
    parser.add_argument(
        "--ab-version",
        default=None,
        metavar="VERSION",
        help="the second version of an A/B split (AB_SPLIT=VERSION:share), e.g. v1.1: its rows join the analysis "
        "(report.json's by_model_version); the model's signals stay judged on --model's rows",
    )
    parser.add_argument(
        "--window",
        type=parse_window,
        default=parse_window(C.DEFAULT_WINDOW),
        help=f"the current window's length (default {C.DEFAULT_WINDOW}; units h, d, w)",
    )
    parser.add_argument(
        "--as-of",
        type=parse_as_of,
        default=None,
        help="end of the current window, ISO 8601 or 'now' (default: the latest capture); "
        "with it, a label counts only if inspected by then",
    )
    parser.add_argument(
        "--min-labelled",
        type=int,
        default=C.MIN_LABELLED,
        help=f"labelled rows needed before quality decides anything (default {C.MIN_LABELLED})",
    )
    parser.add_argument(
        "--min-rows",
        type=int,
        default=C.MIN_ROWS,
        help=f"predictions a window needs before drift decides anything (default {C.MIN_ROWS}); below it the "
        "drift section says 'insufficient rows'",
    )
    parser.add_argument("--emf-stdout", action="store_true", help="also print the EMF line on stdout (the AWS job)")
    add_progress(parser)


def run(args: argparse.Namespace) -> int:
    from monitor.analysis import Options
    from monitor.exceptions import ManifestError, MonitorInputError
    from monitor.run import monitor

    model = model_folder(args.model, MODELS_DIR, "--model")
    options = Options(window=args.window, as_of=args.as_of, min_labelled=args.min_labelled, min_rows=args.min_rows)
    try:
        with tempfile.TemporaryDirectory(prefix="monitor-") as scratch:
            result = monitor(
                captures=tuple(args.captures),
                labels=Path(args.labels),
                model=model,
                out=Path(args.out),
                options=options,
                scratch=Path(scratch),
                ab_version=args.ab_version,
                progress=progress(args),
            )
    except (MonitorInputError, ManifestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return C.EXIT_USAGE
    _print_summary(result.report, Path(args.out))
    if args.emf_stdout:
        print(result.emf)
    return int(result.report["exit_code"])


def _f1(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _print_summary(report: dict, out: Path) -> None:
    print(f"decision: {report['decision']} (exit {report['exit_code']})")
    for reason in report["reasons"]:
        print(f"  - {reason}")
    for warning in report.get("warnings", []):
        print(f"  ! warning: {warning}")
    q, window = report["quality"], report["window"]
    print(
        f"window {window['start'][:16]} .. {window['end'][:16]}: {window['predictions']} predictions, "
        f"{q['labelled']} labelled, F1 {_f1(q['f1'])}, max PSI {report['drift']['max_psi'] or 0:.3f}"
    )
    for version, per in (report["by_model_version"] or {}).items():
        print(f"  {version}: {per['rows']} rows, {per['labelled']} labelled, F1 {_f1(per['f1'])}")
    shadow = report["shadow"]
    if shadow:
        shown = " vs ".join(_f1(shadow[k]["f1"]) for k in ("served", "shadow"))
        print(
            f"shadow {shadow['model_version']}: agreement {shadow['agreement']:.3f} on {shadow['rows']} rows; "
            f"F1 served vs shadow {shown} on {shadow['labelled']} labelled"
        )
    print(f"report: {out / C.REPORT_HTML} and {out / C.REPORT_JSON}")
