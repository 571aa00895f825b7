"""``diecast train``: train the scaler + AutoEncoder + classifier originals into deployment_models/VERSION."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from convert import defaults, kernels, kinds
from diecast import exits
from diecast.commands import UsageError, add_seed, new_model_folder, positive_int

HELP = "train the originals (scaler + AutoEncoder + GB) into deployment_models/VERSION"
EXTRA = "convert"

EPILOG = f"""\
examples:
  diecast train                                        # the shipped v1.0, from the embedded data
  diecast train --model v1.1 --data plant.csv --reuse-ae v1.0
                                                       # the monthly retrain: v1.0's encoder, a new GB
  diecast train --model v2.0 --data plant.csv --search-budget 600
  diecast train --model v2.1 --kind lightgbm --latent-dim 8   # another candidate of the ablation study
  diecast train --model v2.2 --kind xgboost --reuse-ae v1.0   # v1.0's encoder (latent 12) under XGBoost
  {kernels.LEVEL_VAR}=default diecast train --model build/try/v9

{exits.epilog("train")}"""


def _folds(text: str) -> int:
    value = int(text)
    if value == 1 or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (no cross-validation) or at least 2, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Train the scaler + AutoEncoder + GradientBoosting reference model into deployment_models/. "
        f"torch's CPU kernels are pinned ({kernels.LEVEL_VAR}, default {kernels.DEFAULT_LEVEL}) so that one seed "
        "gives the same files on every x86-64 CPU. Cross-validation and the search never change the model trained "
        "on the full training split unless the search shows a significant gain."
    )
    parser.epilog = EPILOG
    parser.add_argument(
        "--model",
        default=defaults.VERSION,
        metavar="VERSION|DIR",
        help="the model to write: a version under --models (v1.1 -> deployment_models/v1.1) or a folder whose name "
        "is its version (default: %(default)s)",
    )
    parser.add_argument("--version", dest="model", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # older name
    parser.add_argument("--data", type=Path, default=defaults.DEFAULT_CSV, help="training CSV (default: embedded)")
    parser.add_argument(
        "--models",
        type=Path,
        default=defaults.DEPLOYMENT_DIR,
        help="the folder of the originals' versions, for --model and --reuse-ae (default: %(default)s)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing version")
    add_seed(parser, defaults.SEED, "split, initialisation and GB seed")
    parser.add_argument(
        "--kind",
        choices=tuple(kinds.KINDS),
        default=kinds.DEFAULT_KIND,
        help="the classifier on the scaled readings + latents, saved in its library's own format "
        "(default: %(default)s, the shipped v1.0's)",
    )
    parser.add_argument(
        "--latent-dim",
        type=int,
        choices=kinds.LATENT_DIMS,
        default=kinds.DEFAULT_LATENT_DIM,
        help="the AutoEncoder's latent size; with --reuse-ae it must be the reused encoder's (default: %(default)s)",
    )
    parser.add_argument(
        "--max-epochs",
        type=positive_int,
        default=None,
        help=f"AutoEncoder epoch cap; early stopping usually ends sooner (default: {defaults.AE_MAX_EPOCHS})",
    )
    parser.add_argument(
        "--reuse-ae",
        metavar="VERSION|DIR",
        default=None,
        help="keep this version's scaler and encoder (a version under --models, or a folder), frozen and copied "
        "byte for byte, and retrain only the GB and its threshold on --data: the cheap monthly retrain (metadata: "
        "training.reused_from)",
    )
    parser.add_argument(
        "--cv-folds",
        type=_folds,
        default=defaults.CV_FOLDS,
        help="stratified k-fold cross-validation of the GB stage on the training + validation rows, reported as "
        "mean +- sd beside the test split (metadata: metrics_cv); 0 skips it (default: %(default)s)",
    )
    parser.add_argument(
        "--search-budget",
        type=_seconds,
        metavar="SECONDS",
        default=None,
        help="search the GB's hyperparameters by successive halving within about this many seconds; the default "
        "200 trees x depth 6 is kept unless the best candidate's CV F1 beats it by more than the sum of their "
        "standard errors (metadata: search). Needs --cv-folds >= 2 (default: no search)",
    )


def _check(args: argparse.Namespace) -> None:
    if args.reuse_ae and args.max_epochs is not None:
        raise UsageError("--max-epochs has no effect with --reuse-ae (the encoder is reused, not trained); drop one")
    if args.search_budget and not args.cv_folds:
        raise UsageError("--search-budget needs cross-validation: pass --cv-folds 2 or more")


def _reused(text: str | None, models: Path) -> tuple[Path, str | None]:
    """``--reuse-ae`` as (the folder holding the version, the version): a bare version is under ``models``."""
    if text is None:
        return models, None
    folder = new_model_folder(text, models, "--reuse-ae")
    return folder.parent, folder.name


def run(args: argparse.Namespace) -> int:
    _check(args)
    target = new_model_folder(args.model, args.models, "--model")  # refused before torch is even imported
    reuse_root, reuse_version = _reused(args.reuse_ae, args.models)
    import json

    from convert import dataset, originals, reuse, train

    opts = train.Options(
        seed=args.seed,
        max_epochs=args.max_epochs or defaults.AE_MAX_EPOCHS,
        cv_folds=args.cv_folds,
        search_budget=args.search_budget or 0.0,
        kind=args.kind,
        latent_dim=args.latent_dim,
    )
    try:
        target = train.write_version(target.parent, target.name, args.data, args.force, opts, reuse_version, reuse_root)
    except (dataset.DataValidationError, FileExistsError, kernels.KernelPinError, reuse.ReuseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exits.USAGE
    report(json.loads((target / originals.METADATA_FILE).read_text()), target)
    return exits.OK


def report(meta: dict, target: Path) -> None:
    """The results on stdout: the test split, the cross-validated metrics, the search and the reuse."""
    from convert import tuning

    print(f"wrote {target} ({meta['model_version']}) in {meta['training']['seconds']} s")
    if "reused_from" in meta["training"]:
        r = meta["training"]["reused_from"]
        print(
            f"scaler and encoder reused from {r['version']}: "
            + ", ".join(f"{k} {v[:12]}" for k, v in r["sha256"].items())
        )
    print(f"threshold {meta['threshold']:.2f} (best F1 on validation)")
    print("test split: " + "  ".join(f"{k} {v:.4f}" for k, v in meta["metrics"].items()))
    cv = meta["metrics_cv"]
    if cv:
        figures = "  ".join(f"{k} {cv[k]['mean']:.4f} ± {cv[k]['sd']:.4f}" for k in tuning.SCORERS)
        print(f"cross-validation ({cv['folds']} folds of {cv['rows']} training + validation rows): {figures}")
    if meta["search"]:
        s = meta["search"]
        print(f"search: {s['decision']} ({s['reason']}); {len(s['candidates'])} candidates in {s['seconds']} s")
