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
            for name in (*originals.MODEL_FILES, originals.METADATA_FILE)
        },
    }


def file_entry(path: Path, **extra: str) -> dict:
    return {"path": path.name, "sha256": originals.sha256_file(path), "bytes": path.stat().st_size, **extra}


def converted_with() -> dict:
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
    }
