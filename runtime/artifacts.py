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
import re
import stat
from dataclasses import dataclass
from typing import Any

from runtime.exceptions import ModelArtifactError

MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.onnx"
ORT_CACHE_FILE = "model.ort.onnx"
CERTIFICATE_FILE = "certificate.json"
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


def serving_fields(manifest: dict[str, Any]) -> dict[str, Any]:
    """The part of a manifest that changes an answer: embedded in the graph, compared at load."""
    return {
        "model_version": manifest["model_version"],
        "features": [{k: f[k] for k in ("name", "min", "max", "mean", "std")} for f in manifest["features"]],
        "threshold": manifest["threshold"],
        "confidence_bands": manifest["confidence_bands"],
        "metrics": manifest["metrics"],
        "envelope_widths": manifest["envelope_widths"],
    }


def envelope(manifest: dict[str, Any]) -> tuple[list[float], list[float]]:
    """Per feature, the readings the model answers: the training mean +- ``envelope_widths`` training ranges.

    The certificate's generated rows reach that far, and the float32 encoder stays finite there; beyond it a
    reading is refused rather than answered (far enough out, float32 overflows into NaN latents).
    """
    k = float(manifest["envelope_widths"])
    spans = [(f["mean"], k * (f["max"] - f["min"])) for f in manifest["features"]]
    return [m - s for m, s in spans], [m + s for m, s in spans]


# --- the manifest's schema: every key serving reads, with its type and bounds ---------------------------------

_SHA256 = re.compile(r"[0-9a-f]{64}")
_VERSION = re.compile(r"v\d+(\.\d+)*")


def _fail(where: str, expected: str, got: object) -> ModelArtifactError:
    shown = repr(got) if isinstance(got, (str, int, float)) and not isinstance(got, bool) else type(got).__name__
    return ModelArtifactError(f"{MANIFEST_FILE}: {where}: expected {expected}, got {shown[:80]}")


def _key(obj: dict, key: str, where: str) -> Any:
    if key not in obj:
        raise ModelArtifactError(f"{MANIFEST_FILE}: {where} lacks the key {key!r} (re-run make convert)")
    return obj[key]


def _object(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise _fail(where, "an object", value)
    return value


def _string(obj: dict, key: str, where: str, pattern: re.Pattern | None = None) -> str:
    value = _key(obj, key, where)
    if not isinstance(value, str) or not value or (pattern is not None and not pattern.fullmatch(value)):
        raise _fail(f"{where}.{key}", "a string" + (f" matching {pattern.pattern}" if pattern else ""), value)
    return value


def _number(obj: dict, key: str, where: str, low: float = -1e300, high: float = 1e300) -> float:
    value = _key(obj, key, where)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise _fail(f"{where}.{key}", f"a number in [{low:g}, {high:g}]", value)
    return float(value)


def _file(entry: object, where: str) -> None:
    entry = _object(entry, where)
    _string(entry, "path", where)
    _string(entry, "sha256", where, _SHA256)
    value = _key(entry, "bytes", where)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_GRAPH_BYTES:
        raise _fail(f"{where}.bytes", f"an integer in [1, {MAX_GRAPH_BYTES}]", value)


def _features(value: object) -> None:
    if not isinstance(value, list) or not value:
        raise _fail("features", "a non-empty array", value)
    seen: set[str] = set()
    for i, f in enumerate(value):
        where = f"features[{i}]"
        name = _string(_object(f, where), "name", where)
        if name in seen:
            raise ModelArtifactError(f"{MANIFEST_FILE}: {where}.name: {name!r} is listed twice")
        seen.add(name)
        low = _number(f, "min", where)
        _number(f, "max", where, low)
        _number(f, "mean", where)
        _number(f, "std", where, 0.0)


def validate_manifest(manifest: dict[str, Any]) -> None:
    """Every key serving reads is there with the right type and bounds; ``ModelArtifactError`` names the first
    that is not (the key's path, what was expected, what was found)."""
    _string(manifest, "version", "the manifest", _VERSION)
    _string(manifest, "model_version", "the manifest")
    files = _object(_key(manifest, "files", "the manifest"), "files")
    _file(_key(files, "model", "files"), "files.model")
    if "ort_cache" in files:
        _file(files["ort_cache"], "files.ort_cache")
        _string(files["ort_cache"], "onnxruntime", "files.ort_cache")
    _string(_object(_key(manifest, "input", "the manifest"), "input"), "name", "input")
    _features(_key(manifest, "features", "the manifest"))
    _number(manifest, "threshold", "the manifest", 0.0, 1.0)
    bands = _object(_key(manifest, "confidence_bands", "the manifest"), "confidence_bands")
    medium = _number(bands, "medium", "confidence_bands", 0.0, 1.0)
    _number(bands, "high", "confidence_bands", medium, 1.0)
    metrics = _object(_key(manifest, "metrics", "the manifest"), "metrics")
    for key in ("f1_score", "roc_auc", "accuracy"):
        _number(metrics, key, "metrics", 0.0, 1.0)
    _number(manifest, "envelope_widths", "the manifest", 1.0, 1e6)


def canonical_json(value: Any) -> str:
    """One spelling per value (sorted keys, no spaces), so an embedded copy compares as a string."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def read_manifest(model_dir: str) -> dict[str, Any]:
    """``model_dir/manifest.json``, parsed; ``ModelArtifactError`` naming the problem otherwise."""
    blob = read_file(model_dir, MANIFEST_FILE, MAX_MANIFEST_BYTES)
    try:
        manifest = json.loads(blob)
    except ValueError as exc:
        raise ModelArtifactError(f"{os.path.join(model_dir, MANIFEST_FILE)} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise ModelArtifactError(f"{MANIFEST_FILE}: expected a JSON object, got {type(manifest).__name__}")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ModelArtifactError(
            f"{MANIFEST_FILE}: format {manifest.get('format')!r}, this runtime reads format {MANIFEST_FORMAT} "
            "(re-run make convert)"
        )
    validate_manifest(manifest)
    return manifest


def read_file(model_dir: str, name: object, max_bytes: int, expect_bytes: int | None = None) -> bytes:
    """A regular file directly inside ``model_dir`` (no path separators, no symlink), at most ``max_bytes``."""
    if not isinstance(name, str) or not name or name in {".", ".."} or "/" in name or "\\" in name or "\0" in name:
        raise ModelArtifactError(f"file name {name!r} must be a plain file name inside the model folder")
    path = os.path.join(model_dir, name)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        hint = " is MODEL_PATH a converted model folder?" if name == MANIFEST_FILE else " (re-run make convert)"
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
