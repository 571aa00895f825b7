"""Conversion: originals -> one certified, standard ONNX graph + manifest (``diecast convert``, ``make convert``).

Steps: load ``deployment_models/<version>`` (the oracle) -> export the scaler, encoder and GB and fuse them into
one standard ONNX graph (plus onnxruntime's optimised copy, a cache) -> certify every file that ships against the
oracle (``convert.certificate``) -> publish ``models_onnx/<version>/`` atomically, or publish nothing (exit 6)
when a bar is missed. An existing version is never replaced without ``--force``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convert import dataset, defaults, kernels, originals
from diecast import exits

CERT_FUZZ_SEED = 7
ENVELOPE_ROWS = 500
REFERENCE_SAMPLE_SEED = 11


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Options:
    """What to convert and where; ``convert(Options(...))`` runs it."""

    source: Path  # the originals' folder, named by its version (deployment_models/v1.0)
    target: Path  # the model folder to publish (models_onnx/v1.0)
    force: bool = False
    fuzz_rows: int = defaults.FUZZ_ROWS
    report_dir: Path | None = None
    data: Path | None = None
    ort_cache: bool = True


def certification_data(reference, explicit: Path | None) -> Path:
    """The rows a model must answer exactly as its original: its training CSV when it is still where it was,
    unchanged, else the embedded dataset (or ``--data``)."""
    if explicit is not None:
        return explicit
    training = reference.metadata.get("training", {})
    path = dataset.REPO_ROOT / training.get("data_path", "")  # a relative path is the repository's
    if training.get("data_path") and path.is_file() and originals.sha256_file(path) == training.get("data_sha256"):
        return path
    return dataset.DEFAULT_CSV


def export_graph(reference, fields: dict):
    """Step 1: scaler + encoder + the classifier's trees -> one standard ONNX graph carrying its serving fields."""
    from convert import export

    return export.export(
        reference.scaler, reference.autoencoder, reference.gb, reference.threshold, fields, reference.kind
    )


def write_graphs(model, folder: Path, ort_cache: bool) -> tuple[dict, dict]:
    """Step 2: model.onnx (and the onnxruntime cache) into ``folder``. Returns (files, graph info)."""
    import onnx
    import onnxruntime

    from convert import export, manifest
    from runtime import artifacts

    onnx.save(model, folder / artifacts.MODEL_FILE)
    files = {"model": manifest.file_entry(folder / artifacts.MODEL_FILE)}
    graph = {"nodes": len(model.graph.node), "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import}}
    if ort_cache:
        export.ort_optimize(model, folder / artifacts.ORT_CACHE_FILE)
        files["ort_cache"] = manifest.file_entry(
            folder / artifacts.ORT_CACHE_FILE, onnxruntime=onnxruntime.__version__, optimization="extended"
        )
        graph["ort_cache_nodes"] = len(onnx.load(folder / artifacts.ORT_CACHE_FILE).graph.node)
    return files, graph


def reference_evaluator(path: Path):
    """onnx's ReferenceEvaluator on ``path``, as a predict function (the second implementation of ONNX)."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    from runtime import artifacts

    session = ReferenceEvaluator(onnx.load(path))

    def predict(X: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(artifacts.OUTPUT_NAMES, session.run(None, {artifacts.INPUT.name: X}), strict=True))

    return predict


def sources(reference, data_csv: Path, fuzz_rows: int, fields: dict) -> dict[str, np.ndarray]:
    """The certificate's rows: the training CSV, generated rows inside the envelope the manifest ``fields``
    declare, rows on that envelope's edges, and rows on every GB split."""
    from convert import certificate
    from runtime import artifacts

    X, _ = dataset.load_csv(data_csv)
    stats = reference.metadata["feature_stats"]
    smin, smax, smean, sstd = (
        np.array([stats[n][k] for n in reference.feature_names]) for k in ("min", "max", "mean", "std")
    )
    envelope = tuple(np.array(bound) for bound in artifacts.envelope(fields))
    return {
        "dataset": X,
        "fuzz": certificate.fuzz_rows(smin, smax, smean, sstd, fuzz_rows, CERT_FUZZ_SEED, envelope),
        "envelope": certificate.envelope_rows(envelope, ENVELOPE_ROWS, CERT_FUZZ_SEED),
        "thresholds": certificate.threshold_rows(
            reference.trees(), reference.scaler, np.median(X, axis=0), len(reference.feature_names)
        ),
    }


def write_explanation(reference, folder: Path, data_csv: Path) -> dict:
    """Step 4: the explain function's ``explanation.json`` (``convert.importance``) into ``folder``; its file entry."""
    from convert import importance, manifest
    from runtime import artifacts

    X, y = dataset.load_csv(data_csv)
    originals.write_json(folder / artifacts.EXPLANATION_FILE, importance.build(reference, X, y, data_csv.name))
    return manifest.file_entry(folder / artifacts.EXPLANATION_FILE)


def engines(folder: Path, files: dict, rows: dict[str, np.ndarray]) -> list:
    """Step 3's engines: onnxruntime on every file that ships, ReferenceEvaluator on samples."""
    import runtime
    from convert.certificate import BATCH, SAMPLE_ROWS, Engine, RowSet
    from runtime import artifacts

    def every(name: str) -> np.ndarray:
        return np.arange(len(rows[name]))

    def sample(name: str) -> np.ndarray:
        rng = np.random.default_rng(REFERENCE_SAMPLE_SEED)
        n = len(rows[name])
        return np.sort(rng.choice(n, size=min(n, SAMPLE_ROWS), replace=False))

    full = (
        RowSet("dataset (batch 1)", "dataset", every("dataset"), exact_labels=True, batch=1),
        RowSet(f"dataset (batch {BATCH})", "dataset", every("dataset"), exact_labels=True, batch=BATCH),
        RowSet("fuzz", "fuzz", every("fuzz"), exact_labels=False),
        RowSet("envelope edges", "envelope", every("envelope"), exact_labels=False),
        RowSet("split thresholds", "thresholds", every("thresholds"), exact_labels=False),
    )
    plain = runtime.load(folder, use_ort_cache=False)
    out = [Engine(f"onnxruntime {plain.graph_file}", plain.predict, full)]
    if "ort_cache" in files:
        cached = runtime.load(folder)
        if cached.graph_kind != "ort_cache":
            raise RuntimeError(f"runtime.load did not pick the cache {files['ort_cache']['path']}")
        out.append(Engine(f"onnxruntime {cached.graph_file}", cached.predict, full))
    sampled = (
        RowSet("dataset sample", "dataset", sample("dataset"), exact_labels=True, batch=BATCH),
        RowSet("split thresholds sample", "thresholds", sample("thresholds"), exact_labels=False, batch=BATCH),
    )
    out.append(
        Engine(f"onnx.reference {artifacts.MODEL_FILE}", reference_evaluator(folder / artifacts.MODEL_FILE), sampled)
    )
    return out


def summary(report: dict) -> dict:
    """The certificate as the manifest records it: verdicts and figures, without the listed rows."""
    keep = ("engine", "name", "rows", "label_agreement", "max_dp", "ties", "unexplained")
    return {
        "passed": report["passed"],
        "rows": report["rows"],
        "seconds": report["seconds"],
        "bars": report["bars"],
        "row_sets": [
            {k: r[k] for k in keep} | {"latent_error_max": r["latent_error"]["1"], "listed": len(r["listed"])}
            for r in report["row_sets"]
        ],
    }


def convert(opts: Options) -> int:
    import runtime.artifacts as artifacts
    from convert import certificate, manifest
    from convert.reference import load_reference

    src, target, version = opts.source, opts.target, opts.source.name
    report_dir = opts.report_dir or defaults.CONVERT_REPORTS / version
    try:
        originals.refuse_to_replace(target, opts.force, "convert")
        if not src.is_dir():
            raise FileNotFoundError(f"no originals at {src}; train them first (make train VERSION={version})")
        level = kernels.require()
    except (FileExistsError, FileNotFoundError, kernels.KernelPinError) as exc:
        log(f"error: {exc}")
        return exits.USAGE
    started = time.perf_counter()
    import torch

    torch.set_num_threads(1)
    log(f"[1/5] loading the originals from {src} (torch kernels: {level})")
    try:
        reference = load_reference(src)
    except Exception as exc:
        log(f"error: cannot load the originals in {src}: {type(exc).__name__}: {exc}")
        return exits.USAGE
    fields = manifest.fields(reference, version, reference.latent_dim)
    log(
        f"[2/5] writing the graph: scaler (float64 Sub/Div), encoder (folded attention, latent "
        f"{reference.latent_dim}), {reference.kind.name} (its converter's trees)"
    )
    model = export_graph(reference, fields)
    with originals.staging(target.parent, target.name) as staging:
        files, graph = write_graphs(model, staging, opts.ort_cache)
        doc = {**fields, "files": files, "graph": graph, "converted_with": manifest.converted_with(reference.kind)}
        originals.write_json(staging / artifacts.MANIFEST_FILE, doc)

        data_csv = certification_data(reference, opts.data)
        log(f"[3/5] certificate: {', '.join(files)} against the originals; dataset rows from {data_csv}")
        try:
            rows = sources(reference, data_csv, opts.fuzz_rows, fields)
        except dataset.DataValidationError as exc:
            log(f"error: {exc}")
            return exits.USAGE
        report = certificate.certify(reference, rows, engines(staging, files, rows))
        report |= {"model_version": doc["model_version"], "files": files, "data": str(data_csv)}
        report_dir.mkdir(parents=True, exist_ok=True)
        originals.write_json(report_dir / artifacts.CERTIFICATE_FILE, report)
        print(certificate.table(report))
        if not report["passed"]:
            log(f"error: the certificate failed; nothing published. Report: {report_dir / artifacts.CERTIFICATE_FILE}")
            return exits.CONVERT_CERTIFICATE_FAILED
        log(f"[4/5] explanations: background rows and global importance ({artifacts.EXPLANATION_FILE})")
        explained = time.perf_counter()
        files["explanation"] = write_explanation(reference, staging, data_csv)
        log(f"      {artifacts.EXPLANATION_FILE} in {time.perf_counter() - explained:.1f} s")
        originals.write_json(staging / artifacts.MANIFEST_FILE, doc | {"certificate": summary(report)})
        originals.write_json(staging / artifacts.CERTIFICATE_FILE, report)
        log(f"[5/5] publishing {target}")
        originals.publish(staging, target)
    log(f"done in {time.perf_counter() - started:.0f} s: {target} ({doc['model_version']}, {', '.join(files)})")
    return exits.OK


def compare_published(new_dir: Path, shipped_dir: Path) -> int:
    """0 when the new model.onnx is byte-identical to the shipped one (the export is deterministic), else
    ``diecast.exits.CONVERT_DIFFERS``."""
    from runtime import artifacts
    from runtime.manifest import Manifest

    new, shipped = (Manifest.read(d).files for d in (new_dir, shipped_dir))
    if new["model"]["sha256"] != shipped["model"]["sha256"]:
        log(
            f"error: {new_dir}/{artifacts.MODEL_FILE} differs from {shipped_dir}'s (sha256 "
            f"{new['model']['sha256'][:12]} vs {shipped['model']['sha256'][:12]}); re-run make convert FORCE=1 and "
            "commit models_onnx/"
        )
        return exits.CONVERT_DIFFERS
    for key in ("explanation",):  # computed so that another CPU writes the same bytes
        if new.get(key, {}).get("sha256") != shipped.get(key, {}).get("sha256"):
            log(
                f"error: {new_dir}'s {key} file differs from {shipped_dir}'s; re-run make convert FORCE=1 and commit "
                "models_onnx/"
            )
            return exits.CONVERT_DIFFERS
    same_cache = new.get("ort_cache", {}).get("sha256") == shipped.get("ort_cache", {}).get("sha256")
    log(
        f"{new_dir}/{artifacts.MODEL_FILE} is byte-identical to the shipped one"
        + ("" if same_cache else " (onnxruntime's cache differs: both are certified)")
    )
    return exits.OK
