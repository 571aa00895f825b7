"""The served artifact: the layout of ``models_onnx/<version>/``, the graph's contract, and reading it safely.

A model folder holds ``manifest.json``, the standard ONNX graph ``model.onnx`` and, optionally, onnxruntime's
offline-optimised copy of it (a cache, valid only for the onnxruntime release that wrote it). The manifest names
every file with its size and sha256. Everything that changes an answer (feature names and order, threshold,
confidence bands, training statistics, model version, metrics) is also embedded in the graph's
``metadata_props`` under ``SERVING_KEY``, so it is covered by the graph's sha256; ``load`` refuses a manifest
that disagrees with its graph.

This module is the one place that knows file names, the manifest's shape and the input/output contract; the
conversion side (``convert``) writes what it describes and the runtime reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.exceptions import ModelArtifactError

# Where certified models live, one folder per version: beside runtime/, in the repository and in the image.
MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models_onnx")
MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.onnx"
ORT_CACHE_FILE = "model.ort.onnx"
CERTIFICATE_FILE = "certificate.json"
EXPLANATION_FILE = "explanation.json"  # the explain function's background rows, samples and global importance
MANIFEST_FORMAT = 2
SERVING_KEY = "diecast.serving"  # metadata_props key of the embedded serving fields
MAX_MANIFEST_BYTES = 1 << 20
MAX_GRAPH_BYTES = 64 << 20  # a graph is ~1 MB; a bound keeps a hostile manifest from reading /dev/zero


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    rank: int


INPUT = TensorSpec("features", "float64", 2)  # (batch, n_features) raw readings in manifest feature order
OUTPUTS = (
    TensorSpec("probability", "float32", 1),  # (batch,) P(defect)
    TensorSpec("label", "int64", 1),  # (batch,) probability >= threshold
    TensorSpec("latent", "float32", 2),  # (batch, latent_dim)
    TensorSpec("attention", "float32", 2),  # (batch, n_features), rows sum to 1
)
OUTPUT_NAMES = tuple(o.name for o in OUTPUTS)


def shapes(n_features: int, n_latent: int) -> dict[str, list[str | int]]:
    """Each tensor's shape, with the symbolic batch axis, for a model of these widths."""
    return {
        INPUT.name: ["batch", n_features],
        "probability": ["batch"],
        "label": ["batch"],
        "latent": ["batch", n_latent],
        "attention": ["batch", n_features],
    }


def sha256_bytes(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def serving_fields(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a manifest that changes an answer: embedded in the graph, compared at load."""
    return {
        "model_version": manifest["model_version"],
        "features": [{k: f[k] for k in ("name", "min", "max", "mean", "std")} for f in manifest["features"]],
        "threshold": manifest["threshold"],
        "confidence_bands": manifest["confidence_bands"],
        "metrics": manifest["metrics"],
        "envelope_widths": manifest["envelope_widths"],
    }


def envelope(manifest: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    """Per feature, the readings the model answers: the training mean +- ``envelope_widths`` training ranges.

    The certificate's generated rows reach that far, and the float32 encoder stays finite there; beyond it a
    reading is refused rather than answered (far enough out, float32 overflows into NaN latents).
    """
    k = float(manifest["envelope_widths"])
    spans = [(f["mean"], k * (f["max"] - f["min"])) for f in manifest["features"]]
    return [m - s for m, s in spans], [m + s for m, s in spans]


def canonical_json(value: Any) -> str:
    """One spelling per value (sorted keys, no spaces), so an embedded copy compares as a string."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def read_file(model_dir: str, name: object, max_bytes: int, expect_bytes: int | None = None) -> bytes:
    """A regular file directly inside ``model_dir`` (no path separators, no symlink), at most ``max_bytes``."""
    if not isinstance(name, str) or not name or name in {".", ".."} or "/" in name or "\\" in name or "\0" in name:
        raise ModelArtifactError(f"file name {name!r} must be a plain file name inside the model folder")
    path = os.path.join(model_dir, name)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        hint = (
            " is it a converted model folder (models_onnx/<version>)?"
            if name == MANIFEST_FILE
            else " (re-run make convert)"
        )
        raise ModelArtifactError(f"no {name} in {model_dir}:{hint}") from None
    except OSError as exc:
        raise ModelArtifactError(f"cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ModelArtifactError(f"{path} must be a regular file (symbolic links and devices are refused)")
    limit = max_bytes if expect_bytes is None else min(max_bytes, expect_bytes)
    if info.st_size > limit:
        raise ModelArtifactError(f"{path} holds {info.st_size} bytes; at most {limit} expected")
    try:
        with open(path, "rb") as fh:
            blob = fh.read(limit + 1)
    except OSError as exc:
        raise ModelArtifactError(f"cannot read {path}: {exc.strerror}") from None
    if len(blob) > limit or (expect_bytes is not None and len(blob) != expect_bytes):
        raise ModelArtifactError(f"{path} holds {len(blob)} bytes; the manifest says {expect_bytes}")
    return blob
