"""``python -m compare --old v1.0 --new v1.1 [--data labelled.csv] [--out DIR]`` (``make compare``).

Exit codes: 0 promote, 10 hold, 20 reject, 2 bad arguments / unknown or incompatible models / unusable data
(nothing written), 1 unexpected error. The verdict, its reasons and the output paths go to stdout; progress and
errors to stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import runtime
from compare import data, defaults, latency, report, stats
from compare.contract import IncompatibleModelsError, check_compatible
from compare.verdict import Rules, checks, decide
from convert.dataset import FEATURE_NAMES, DataValidationError
from runtime.artifacts import read_manifest
from runtime.exceptions import ModelArtifactError

STEPS = ("load models", "score rows", "bootstrap", "latency", "report")


class UsageError(ValueError):
    """An argument names something that does not exist or cannot be used; the message says what to pass."""


def resolve(spec: str, models_dir: Path) -> Path:
    """A version under ``models_dir`` (``v1.1``) or a model folder's path."""
    path = Path(spec)
    if path.is_dir():
        return path
    candidate = models_dir / spec
    if candidate.is_dir():
        return candidate
    known = sorted(p.parent.name for p in models_dir.glob("*/manifest.json")) if models_dir.is_dir() else []
    raise UsageError(
        f"no model folder for {spec!r}: not a folder, nor {candidate}; versions there: {', '.join(known) or 'none'}"
    )


def labels(old_manifest: dict, new_manifest: dict) -> tuple[str, str]:
    """The two models' names in the report: their versions, told apart when equal."""
    old, new = old_manifest.get("version", "OLD"), new_manifest.get("version", "NEW")
    return (f"{old} (old)", f"{new} (new)") if old == new else (old, new)


def _in_model_order(rows: data.LabelledRows, features: list[str]) -> np.ndarray:
    unknown = sorted(set(features) - set(FEATURE_NAMES))
    if unknown:
        raise UsageError(f"the models read feature(s) the labelled data lacks: {', '.join(unknown)}")
    return np.ascontiguousarray(rows.X[:, [FEATURE_NAMES.index(f) for f in features]])


def _model_entry(model: runtime.Model, path: Path, est: dict[str, dict], types: list[str]) -> dict:
    entry: dict = {m: est[m]["value"] for m in stats.METRICS}
    entry["ci"] = {m: est[m]["ci"] for m in stats.METRICS}
    entry["recall_by_defect_type"] = {t: est[stats.TYPE_PREFIX + t] for t in types}
    entry["model"] = {
        "path": str(path),
        "model_version": model.model_version,
        "threshold": model.threshold,
        "model_sha256": model.manifest["files"]["model"]["sha256"],
    }
    return entry


def _by_type(boot: dict, y: np.ndarray, types: np.ndarray | None, kinds: list[str]) -> dict:
    out = {}
    for kind in kinds:
        key = stats.TYPE_PREFIX + kind
        defects = int(((y == 1) & (types == kind)).sum())  # type: ignore[operator]
        out[kind] = {
            "defects": defects,
            "too_few_rows": defects < defaults.MIN_TYPE_ROWS,
            "old": boot["old"][key],
            "new": boot["new"][key],
            "difference": boot["difference"][key],
        }
    return out


def compare(args: argparse.Namespace, rules: Rules, progress) -> tuple[dict, dict[str, str]]:
    """Run the comparison; returns (compare.json's content, the report's charts)."""
    started = time.perf_counter()
    paths = {"old": resolve(args.old, args.models_dir), "new": resolve(args.new, args.models_dir)}
    manifests = {k: read_manifest(str(p)) for k, p in paths.items()}
    pair = labels(manifests["old"], manifests["new"])
    check_compatible(manifests["old"], manifests["new"], pair)
    names = dict(zip(("old", "new"), pair, strict=True))
    models = {k: runtime.load(p) for k, p in paths.items()}
    rows = data.user_csv(args.data) if args.data else data.embedded_test_split()
    progress("score rows")
    X = _in_model_order(rows, list(models["old"].feature_names))
    outs = {k: m.predict(X) for k, m in models.items()}
    scores = {k: stats.Scores(o["probability"].astype(np.float64), o["label"]) for k, o in outs.items()}
    progress("bootstrap")
    boot = stats.paired_bootstrap(
        rows.y, scores["old"], scores["new"], rows.types, args.bootstrap_rounds, rules.confidence, args.seed
    )
    progress("latency")
    lat = latency.side_by_side(
        models["old"], models["new"], X, args.latency_rounds, defaults.LATENCY_WARMUP, rules.confidence, args.seed
    )
    positives = int(rows.y.sum())
    found = checks(boot, lat, positives, rules)
    verdict, reasons = decide(found)
    kinds = stats.defect_types(rows.y, rows.types)
    result = {
        "verdict": verdict,
        "reasons": reasons,
        "checks": [c.__dict__ for c in found],
        "rules": rules.as_dict(),
        "old": names["old"],
        "new": names["new"],
        "data": {
            "source": rows.source,
            "rows": len(rows.y),
            "defects": positives,
            "held_out_note": rows.held_out_note,
        },
        "models": {names[k]: _model_entry(models[k], paths[k], boot[k], kinds) for k in ("old", "new")},
        "difference": {m: boot["difference"][m] for m in stats.METRICS},
        "recall_by_defect_type": _by_type(boot, rows.y, rows.types, kinds),
        "agreement": boot["agreement"]["value"],
        "agreement_ci": boot["agreement"]["ci"],
        "mcnemar": {
            **stats.mcnemar(rows.y, scores["old"].label, scores["new"].label),
            "b_means": "rows OLD labels correctly and NEW does not",
            "c_means": "rows NEW labels correctly and OLD does not",
        },
        "latency": lat,
        "bootstrap": {"rounds": args.bootstrap_rounds, "confidence": rules.confidence, "seed": args.seed},
    }
    progress("report")
    thresholds = {k: m.threshold for k, m in models.items()}
    images = report.charts(rows.y, scores, thresholds, result)
    result["elapsed_s"] = round(time.perf_counter() - started, 2)
    return result, images


def _metric_list(text: str) -> tuple[str, ...]:
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = sorted(set(names) - set(stats.METRICS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(stats.METRICS)}"
        )
    return names


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    d = defaults
    p = argparse.ArgumentParser(
        prog="python -m compare",
        description="Compare two certified models on the same labelled rows and decide: promote, hold or reject "
        "NEW. Writes compare.json and report.html.",
        epilog=f"Exit codes: {d.EXIT_PROMOTE} promote, {d.EXIT_HOLD} hold, {d.EXIT_REJECT} reject, {d.EXIT_USAGE} "
        "bad arguments, unknown or incompatible models, or unusable data (nothing written), 1 unexpected error. "
        "Rules: reject when NEW's F1 < --min-f1 or NEW is significantly worse on a --guard metric; otherwise hold "
        "when the data has < --min-positives defects, NEW is not shown to be at least OLD - --margin on "
        "--promote-metric, or NEW is > --max-latency-ratio times slower; otherwise promote.",
    )
    p.add_argument("--old", required=True, help="the serving model: a version under --models-dir, or a folder")
    p.add_argument("--new", required=True, help="the candidate: a version under --models-dir, or a folder")
    p.add_argument(
        "--data",
        type=Path,
        help="labelled CSV (30 features + defect [+ defect_type]); default: the embedded test split",
    )
    p.add_argument(
        "--out", type=Path, help=f"output folder (default: {d.OUT_ROOT.relative_to(d.REPO_ROOT)}/OLD-vs-NEW)"
    )
    p.add_argument("--models-dir", type=Path, default=d.MODELS_DIR, help="where versions live (default: %(default)s)")
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
        choices=stats.METRICS[:5],
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
    p.add_argument("--seed", type=int, default=d.SEED, help="resampling seed (default: %(default)s)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar on stderr")
    return p


def _rules(args: argparse.Namespace) -> Rules:
    return Rules(
        min_f1=args.min_f1,
        guard_metrics=tuple(args.guard),
        promote_metric=args.promote_metric,
        margin=args.margin,
        max_latency_ratio=args.max_latency_ratio,
        min_positives=args.min_positives,
        confidence=args.confidence,
    )


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    args = parser().parse_args(argv)
    with tqdm(total=len(STEPS), desc=STEPS[0], file=sys.stderr, disable=None if args.progress else True) as bar:

        def progress(step: str) -> None:
            bar.update(1)
            bar.set_description(step)

        try:
            result, images = compare(args, _rules(args), progress)
        except (UsageError, IncompatibleModelsError, ModelArtifactError, DataValidationError) as exc:
            bar.close()
            print(f"error: {exc}", file=sys.stderr)
            return defaults.EXIT_USAGE
        out = args.out or defaults.OUT_ROOT / f"{result['old']}-vs-{result['new']}".replace(" ", "")
        json_path, html_path = report.write(out, result, images)
        bar.update(1)
    print(f"{result['verdict'].upper()}: {result['new']} vs {result['old']}")
    for reason in result["reasons"]:
        print(f"  - {reason}")
    print(f"wrote {json_path} and {html_path}")
    return defaults.EXIT_CODES[result["verdict"]]


if __name__ == "__main__":
    raise SystemExit(main())
