"""Stand-in for the conversion's monitoring fields, until ``make convert`` writes them into the manifest.

For a model folder converted before monitoring existed, this computes what ``monitor.manifest`` reads, the way
conversion will: ``features[i].quantiles`` (0th..100th percentiles of each feature on the training split, from
``convert.train.split`` of the training CSV), ``prediction_quantiles`` (percentiles of the model's probability on
the validation + test split, predicted through ``runtime``) and ``trained_at``; and writes an augmented copy of
the folder elsewhere (never into ``models_onnx/``). Needs the conversion dependencies (sklearn, torch).

    python -m monitor.reference_stats --model models_onnx/v1.0 --out build/monitor/v1.0 --trained-at 2026-09-01
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from monitor.manifest import N_QUANTILES, parse_utc

PERCENTILES = np.linspace(0.0, 100.0, N_QUANTILES)


def monitoring_fields(model_dir: Path, data_csv: Path) -> tuple[list[list[float]], list[float]]:
    """(per-feature training quantiles in manifest order, prediction quantiles on validation + test)."""
    import runtime
    from convert import dataset
    from convert.train import split

    model = runtime.load(model_dir)
    X, y = dataset.load_csv(data_csv)
    parts = split(X, y)
    train = parts["train"][0]
    held_out = np.vstack([parts["val"][0], parts["test"][0]])
    column = {name: j for j, name in enumerate(dataset.FEATURE_NAMES)}
    order = [column[name] for name in model.feature_names]
    feature_q = [np.percentile(train[:, j], PERCENTILES).tolist() for j in order]
    proba = model.predict(held_out[:, order])["probability"].astype(np.float64)
    return feature_q, np.percentile(proba, PERCENTILES).tolist()


def augment(model_dir: Path, out_dir: Path, data_csv: Path, trained_at: datetime) -> Path:
    """Copy ``model_dir`` to ``out_dir`` with the monitoring fields added to its manifest (written atomically)."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    feature_q, prediction_q = monitoring_fields(model_dir, data_csv)
    for feature, q in zip(manifest["features"], feature_q, strict=True):
        feature["quantiles"] = q
    manifest["prediction_quantiles"] = prediction_q
    manifest["trained_at"] = trained_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for item in model_dir.iterdir():
            if item.is_file() and item.name != "manifest.json":
                shutil.copy2(item, staging / item.name)
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def dataset_csv() -> Path:
    from convert import dataset

    return dataset.DEFAULT_CSV


def main(argv: list[str] | None = None) -> int:
    from convert import dataset

    parser = argparse.ArgumentParser(
        prog="python -m monitor.reference_stats",
        description="Write a copy of a converted model folder whose manifest carries the monitoring fields "
        "(training quantiles, prediction quantiles, trained_at), for models converted before make convert wrote them.",
    )
    parser.add_argument("--model", type=Path, required=True, help="converted folder, e.g. models_onnx/v1.0")
    parser.add_argument("--out", type=Path, required=True, help="where to write the augmented copy")
    parser.add_argument("--data", type=Path, default=dataset.DEFAULT_CSV, help="training CSV (default: embedded)")
    parser.add_argument("--trained-at", default=None, help="ISO 8601 UTC (default: now)")
    args = parser.parse_args(argv)
    trained_at = parse_utc(args.trained_at) if args.trained_at else datetime.now(UTC)
    out = augment(args.model, args.out, args.data, trained_at)
    print(f"wrote {out} (trained_at {trained_at.isoformat()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
