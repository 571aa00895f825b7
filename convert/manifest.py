"""The served model's manifest (``models_onnx/<version>/manifest.json``), built from the originals' metadata.

``fields`` is everything known before the graph is written; the serving part of it is embedded in the graph
(``runtime.artifacts.serving_fields``) before the graph is hashed, and ``file_entry`` adds each written file.
The layout and the contract it describes are ``runtime.artifacts``'.
"""

from __future__ import annotations

from pathlib import Path

from convert import originals
from runtime import artifacts

PERFORMANCE_KEYS = ("f1_score", "roc_auc", "accuracy", "precision", "recall")
# Readings are answered within the training mean +- this many training ranges: the certificate's generated rows
# reach that far (convert.certificate.fuzz_rows), and the float32 encoder overflows only thousands of ranges out.
ENVELOPE_WIDTHS = 100.0
TRAINING_KEYS = ("data", "data_sha256", "rows", "defect_rate", "seed", "torch_kernels", "cpu", "reused_from")


def fields(reference, version: str, n_latent: int) -> dict:
    """The manifest without its files, graph and certificate sections."""
    meta = reference.metadata
    stats = meta["feature_stats"]
    shape = artifacts.shapes(len(meta["features"]), n_latent)
    return {
        "format": artifacts.MANIFEST_FORMAT,
        "version": version,
        "model_version": meta["model_version"],
        "trained_at": meta.get("trained_at"),
        "input": {"name": artifacts.INPUT.name, "shape": shape[artifacts.INPUT.name], "dtype": artifacts.INPUT.dtype},
        "outputs": [{"name": o.name, "shape": shape[o.name], "dtype": o.dtype} for o in artifacts.OUTPUTS],
        "features": [{**f, **stats[f["name"]]} for f in meta["features"]],
        "threshold": meta["threshold"],
        "confidence_bands": meta["confidence_bands"],
        "metrics": {k: meta["metrics"][k] for k in PERFORMANCE_KEYS if k in meta["metrics"]},
        "envelope_widths": ENVELOPE_WIDTHS,
        "prediction_quantiles": meta.get("probability_quantiles"),
        "training": {k: meta["training"][k] for k in TRAINING_KEYS if k in meta["training"]},
        "sources": {
            name: originals.sha256_file(reference.model_dir / name)
            for name in (*originals.model_files(meta), originals.METADATA_FILE)
        },
    } | ({"model": meta["model"]} if "model" in meta else {})  # the kind and latent size (v1.0 predates them)


def file_entry(path: Path, **extra: str) -> dict:
    return {"path": path.name, "sha256": originals.sha256_file(path), "bytes": path.stat().st_size, **extra}


def converted_with(kind=None) -> dict:
    """The conversion side's versions, and the kind's library and converter when it is not scikit-learn's."""
    import onnx
    import onnxruntime
    import skl2onnx
    import sklearn
    import torch

    return {
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "skl2onnx": skl2onnx.__version__,
    } | (_kind_versions(kind) if kind is not None and kind.library != "sklearn" else {})


def _kind_versions(kind) -> dict:
    import importlib

    converter = "catboost" if kind.name == "catboost" else "onnxmltools"  # CatBoost exports its own ONNX
    return {kind.library: kind.library_version(), converter: importlib.import_module(converter).__version__}
