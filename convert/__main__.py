"""`python -m convert` / `make convert`: originals -> one certified ONNX graph + manifest.

Steps: load ``deployment_models/<version>`` (the oracle) -> export scaler, encoder and GB -> fuse -> pick the
faster of the plain and the ORT-pre-optimised graph -> load it through ``runtime`` exactly as serving does ->
parity certificate against the oracle -> publish ``models_onnx/<version>/`` atomically, or exit 1 and publish
nothing when a bar is missed. An existing version is never replaced without ``--force``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from convert import dataset

MODEL_FILE = "model.onnx"
REPORT_FILE = "parity_report.json"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _time_run(path: Path, X: np.ndarray, pre_optimised: bool, rounds: int = 400) -> tuple[float, float]:
    """(session creation seconds, median single-row run seconds) under the runtime's session options."""
    import onnxruntime as ort

    from runtime.model import session_options

    t0 = time.perf_counter()
    sess = ort.InferenceSession(
        str(path), session_options(pre_optimised=pre_optimised), providers=["CPUExecutionProvider"]
    )
    created = time.perf_counter() - t0
    feed = {"features": X}
    for _ in range(50):
        sess.run(None, feed)
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - t)
    return created, float(np.median(times))


def build_manifest(reference, version: str, model_path: Path, graph_info: dict, models_dir: Path) -> dict:
    import onnx
    import onnxruntime
    import skl2onnx
    import sklearn
    import torch

    from convert import export
    from convert.train import AE_FILE, GB_FILE, METADATA_FILE, SCALER_FILE, sha256_file
    from runtime.model import MANIFEST_FORMAT

    meta = reference.metadata
    stats = meta["feature_stats"]
    return {
        "format": MANIFEST_FORMAT,
        "version": version,
        "model_version": meta["model_version"],
        "model_file": model_path.name,
        "model_sha256": sha256_file(model_path),
        "sources": {name: sha256_file(models_dir / name) for name in (AE_FILE, SCALER_FILE, GB_FILE, METADATA_FILE)},
        "ir_version": export.IR_VERSION,
        "opsets": {"ai.onnx": export.OPSET, "ai.onnx.ml": export.ML_OPSET},
        "graph": graph_info,
        "converted_with": {
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "skl2onnx": skl2onnx.__version__,
        },
        "input": {"name": export.INPUT_NAME, "shape": ["batch", 30], "dtype": "float64"},
        "outputs": [
            {"name": "probability", "shape": ["batch"], "dtype": "float32"},
            {"name": "label", "shape": ["batch"], "dtype": "int64"},
            {"name": "latent", "shape": ["batch", 12], "dtype": "float32"},
            {"name": "attention", "shape": ["batch", 30], "dtype": "float32"},
        ],
        "features": [{**f, **stats[f["name"]]} for f in meta["features"]],
        "threshold": meta["threshold"],
        "confidence_bands": meta["confidence_bands"],
        "metrics": {k: meta["metrics"][k] for k in ("f1_score", "roc_auc", "accuracy")},
    }


def convert(
    version: str, models_root: Path, out_root: Path, force: bool, fuzz_rows: int, report_dir: Path, optimize: str
) -> int:
    import onnx

    from convert import export, parity
    from convert.reference import load_reference
    from convert.train import publish
    from runtime.model import MANIFEST_FILE

    src = models_root / version
    target = out_root / version
    if target.exists() and not force:
        log(f"error: {target} already exists; pass --force (make convert FORCE=1) to replace it")
        return 2
    if not src.is_dir():
        log(f"error: no originals at {src}; train them first (make train VERSION={version})")
        return 2
    started = time.perf_counter()
    import torch

    torch.set_num_threads(1)  # idle OpenMP workers spin and would skew the timings on a 2-core machine
    log(f"[1/5] loading the originals from {src}")
    try:
        reference = load_reference(src)
    except Exception as exc:
        log(f"error: cannot load the originals in {src}: {type(exc).__name__}: {exc}")
        return 2

    log("[2/5] exporting scaler (skl2onnx, float64 Sub/Div), encoder (torch.onnx, dynamo), GB (skl2onnx)")
    fused = export.fuse(
        export.export_scaler(reference.scaler),
        export.export_encoder(reference.autoencoder),
        export.export_gb(reference.gb),
        reference.threshold,
    )
    out_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.staging-", dir=out_root))
    try:
        log("[3/5] timing the plain graph and onnxruntime's offline-optimised graph (EXTENDED level)")
        plain, optimised = staging / "plain.onnx", staging / "optimised.onnx"
        onnx.save(fused, plain)
        export.ort_optimize(fused, optimised)
        x1 = np.array([[stats["mean"] for stats in reference.metadata["feature_stats"].values()]])
        timings = {"plain": _time_run(plain, x1, False), "ort-extended": _time_run(optimised, x1, True)}
        best = "ort-extended" if optimize == "extended" else "plain"
        for name, (created, run) in timings.items():
            mark = "  <- kept" if name == best else ""
            log(f"      {name:<13} session {created * 1e3:6.1f} ms   single-row run {run * 1e6:6.1f} us{mark}")
        chosen = optimised if best == "ort-extended" else plain
        chosen.rename(staging / MODEL_FILE)
        for p in (plain, optimised):
            p.unlink(missing_ok=True)
        graph_info = {
            "optimization": best,
            "nodes": len(onnx.load(staging / MODEL_FILE).graph.node),
            "single_row_run_us": {k: round(v[1] * 1e6, 1) for k, v in timings.items()},
        }
        manifest = build_manifest(reference, version, staging / MODEL_FILE, graph_info, src)
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")

        log(f"[4/5] parity certificate: runtime.load({staging.name}) vs the reference, {fuzz_rows} fuzz rows")
        import runtime

        model = runtime.load(staging)
        report = parity.run_certificate(reference, model.predict, model.predict, fuzz_n=fuzz_rows)
        report["model_version"] = manifest["model_version"]
        report["model_sha256"] = manifest["model_sha256"]
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
        print(parity.table(report))
        if not report["passed"]:
            log(f"error: parity failed; nothing published. Full report: {report_dir / REPORT_FILE}")
            return 1

        manifest["parity"] = {
            k: report[k] for k in ("passed", "rows", "all_rows_within_probability_atol", "bars", "seconds")
        }
        manifest["parity"]["row_sets"] = [
            {k: v for k, v in r.items() if k != "offenders"} | {"listed": len(r["offenders"])}
            for r in report["row_sets"]
        ]
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        shutil.copy(report_dir / REPORT_FILE, staging / REPORT_FILE)

        log(f"[5/5] publishing {target}")
        publish(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(
        f"done in {time.perf_counter() - started:.0f} s: {target} ({manifest['model_version']}, {MODEL_FILE} sha256 "
        f"{manifest['model_sha256'][:12]}...)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m convert",
        description="Export deployment_models/VERSION (torch + sklearn originals) to one ONNX graph in "
        "models_onnx/VERSION, certify parity against the originals, and publish only if every bar is met.",
    )
    parser.add_argument("--version", default="v1.0", help="version folder to convert (default: %(default)s)")
    parser.add_argument(
        "--models",
        type=Path,
        default=dataset.REPO_ROOT / "deployment_models",
        help="originals root (default: %(default)s)",
    )
    parser.add_argument(
        "--out", type=Path, default=dataset.REPO_ROOT / "models_onnx", help="output root (default: %(default)s)"
    )
    parser.add_argument("--force", action="store_true", help="replace an existing published version")
    parser.add_argument(
        "--fuzz-rows", type=int, default=100_000, help="generated rows in the certificate (default: %(default)s)"
    )
    parser.add_argument(
        "--compare-to",
        type=Path,
        default=None,
        help="after publishing, require the new model to give identical outputs to this published model folder "
        "on the embedded dataset (CI converts into a scratch folder and compares with the shipped artifact)",
    )
    parser.add_argument(
        "--optimize",
        choices=("extended", "none"),
        default="extended",
        help="ship onnxruntime's offline-optimised graph (EXTENDED: portable across x86-64 CPUs, measured faster "
        "to load and run) or the plain fused graph (default: %(default)s)",
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=None,
        help="where the full parity report goes (default: build/convert/VERSION)",
    )
    args = parser.parse_args(argv)
    if args.fuzz_rows < 1:
        parser.error("--fuzz-rows must be positive")
    report_dir = args.report_dir or dataset.REPO_ROOT / "build" / "convert" / args.version
    code = convert(args.version, args.models, args.out, args.force, args.fuzz_rows, report_dir, args.optimize)
    if code == 0 and args.compare_to is not None:
        code = compare_published(args.out / args.version, args.compare_to)
    return code


def compare_published(new_dir: Path, shipped_dir: Path) -> int:
    """0 when both model folders give bit-identical outputs on the embedded dataset, else 3."""
    import runtime

    X, _ = dataset.load_csv(dataset.DEFAULT_CSV)
    new, shipped = runtime.load(new_dir).predict(X), runtime.load(shipped_dir).predict(X)
    differ = [k for k in new if not np.array_equal(new[k], shipped[k])]
    if differ:
        log(
            f"error: {new_dir} and {shipped_dir} differ on the dataset in: {', '.join(differ)}; "
            "re-run make convert FORCE=1 and commit models_onnx/"
        )
        return 3
    log(f"{new_dir} gives outputs identical to {shipped_dir} on all {len(X)} dataset rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
