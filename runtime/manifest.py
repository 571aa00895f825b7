"""A certified model's ``manifest.json``, parsed once into a frozen ``Manifest`` that every reader shares.

The runtime loads a model from it, routing checks a second model against it, and the monitor and ``compare``
read their reference fields from it. ``Manifest.differences`` is the one rule for whether two models answer the
same request: the same manifest format, input, outputs (names, dtypes and shapes) and features in the same order.
Thresholds, ranges and metrics may differ: that is what a new model is.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from runtime import artifacts
from runtime.contracts import PERFORMANCE_METRICS, VERSION_PATTERN
from runtime.exceptions import ModelArtifactError

FILE, FORMAT = artifacts.MANIFEST_FILE, artifacts.MANIFEST_FORMAT
MAX_LISTED = 10  # names listed in one message before "(+k more)"
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Feature:
    """One reading the model reads: its name and its training distribution (``quantiles``: 101 percentiles,
    present when ``make convert`` wrote the monitoring fields)."""

    name: str
    group: str
    unit: str
    description: str
    min: float
    max: float
    mean: float
    std: float
    quantiles: tuple[float, ...] | None


@dataclass(frozen=True)
class Manifest:
    """The parsed, validated manifest. ``data`` is the document itself, read-only, for what hashes and embeds it."""

    data: Mapping[str, Any]
    version: str
    model_version: str
    features: tuple[Feature, ...]
    threshold: float
    confidence_bands: Mapping[str, float]
    metrics: Mapping[str, float]
    envelope_widths: float
    files: Mapping[str, Any]
    trained_at: str | None
    prediction_quantiles: tuple[float, ...] | None

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Manifest:
        """Validate a manifest document (``ModelArtifactError`` naming the first bad key) and parse it."""
        if data.get("format") != FORMAT:
            raise ModelArtifactError(
                f"{FILE}: format {data.get('format')!r}, this runtime reads format {FORMAT} (re-run make convert)"
            )
        _validate(data)
        quantiles = data.get("prediction_quantiles")
        return cls(
            data=MappingProxyType(dict(data)),
            version=data["version"],
            model_version=data["model_version"],
            features=tuple(_feature(f) for f in data["features"]),
            threshold=float(data["threshold"]),
            confidence_bands=MappingProxyType({k: float(v) for k, v in data["confidence_bands"].items()}),
            metrics=MappingProxyType(dict(data["metrics"])),
            envelope_widths=float(data["envelope_widths"]),
            files=MappingProxyType(dict(data["files"])),
            trained_at=data.get("trained_at"),
            prediction_quantiles=tuple(quantiles) if isinstance(quantiles, list) else None,
        )

    @classmethod
    def read(cls, model_dir: str | os.PathLike[str]) -> Manifest:
        """``model_dir/manifest.json``, parsed; ``ModelArtifactError`` naming the problem otherwise."""
        model_dir = os.fspath(model_dir)
        blob = artifacts.read_file(model_dir, FILE, artifacts.MAX_MANIFEST_BYTES)
        try:
            data = json.loads(blob)
        except ValueError as exc:
            raise ModelArtifactError(f"{os.path.join(model_dir, FILE)} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ModelArtifactError(f"{FILE}: expected a JSON object, got {type(data).__name__}")
        return cls.parse(data)

    def contract(self) -> dict[str, Any]:
        """What a request and its answer look like: the same for two models that can stand in for each other."""
        return {
            "format": self.data.get("format"),
            "input": self.data.get("input"),
            "outputs": self.data.get("outputs"),
            "features": list(self.feature_names),
        }

    def differences(self, other: Manifest, names: tuple[str, str] | None = None) -> list[str]:
        """Each disagreement on the request contract with ``other``, in words; empty when they are compatible.
        ``names`` label the two models in the messages (default: their versions)."""
        a, b = names or (self.version, other.version)
        mine, theirs = self.contract(), other.contract()
        out = [
            f"{key}: {a} has {mine[key]!r}, {b} has {theirs[key]!r}"
            for key in ("format", "input", "outputs")
            if mine[key] != theirs[key]
        ]
        return out + _feature_differences(mine["features"], theirs["features"], a, b)


def _listing(names: list[str]) -> str:
    return ", ".join(names[:MAX_LISTED]) + (f" (+{len(names) - MAX_LISTED} more)" if len(names) > MAX_LISTED else "")


def _feature_differences(old: list[str], new: list[str], old_name: str, new_name: str) -> list[str]:
    missing, extra = sorted(set(old) - set(new)), sorted(set(new) - set(old))
    out = []
    if missing:
        out.append(f"features only in {old_name}: {_listing(missing)}")
    if extra:
        out.append(f"features only in {new_name}: {_listing(extra)}")
    if not out and old != new:
        i = next(i for i, (x, y) in enumerate(zip(old, new, strict=True)) if x != y)
        out.append(f"feature order differs from position {i}: {old_name} has {old[i]!r}, {new_name} has {new[i]!r}")
    return out


def _feature(f: Mapping[str, Any]) -> Feature:
    q = f.get("quantiles")
    return Feature(
        name=f["name"],
        group=str(f.get("group", "")),
        unit=str(f.get("unit", "")),
        description=str(f.get("description", "")),
        min=float(f["min"]),
        max=float(f["max"]),
        mean=float(f["mean"]),
        std=float(f["std"]),
        quantiles=tuple(q) if isinstance(q, list) else None,
    )


# --- the schema: every key serving reads, with its type and bounds --------------------------------------------------


def _fail(where: str, expected: str, got: object) -> ModelArtifactError:
    shown = repr(got) if isinstance(got, (str, int, float)) and not isinstance(got, bool) else type(got).__name__
    return ModelArtifactError(f"{FILE}: {where}: expected {expected}, got {shown[:80]}")


def _key(obj: Mapping, key: str, where: str) -> Any:
    if key not in obj:
        raise ModelArtifactError(f"{FILE}: {where} lacks the key {key!r} (re-run make convert)")
    return obj[key]


def _object(value: object, where: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise _fail(where, "an object", value)
    return value


def _string(obj: Mapping, key: str, where: str, pattern: re.Pattern | None = None) -> str:
    value = _key(obj, key, where)
    if not isinstance(value, str) or not value or (pattern is not None and not pattern.fullmatch(value)):
        raise _fail(f"{where}.{key}", "a string" + (f" matching {pattern.pattern}" if pattern else ""), value)
    return value


def _number(obj: Mapping, key: str, where: str, low: float = -1e300, high: float = 1e300) -> float:
    value = _key(obj, key, where)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise _fail(f"{where}.{key}", f"a number in [{low:g}, {high:g}]", value)
    return float(value)


def _file(entry: object, where: str) -> None:
    entry = _object(entry, where)
    _string(entry, "path", where)
    _string(entry, "sha256", where, _SHA256)
    value = _key(entry, "bytes", where)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= artifacts.MAX_GRAPH_BYTES:
        raise _fail(f"{where}.bytes", f"an integer in [1, {artifacts.MAX_GRAPH_BYTES}]", value)


def _features(value: object) -> None:
    if not isinstance(value, list) or not value:
        raise _fail("features", "a non-empty array", value)
    seen: set[str] = set()
    for i, f in enumerate(value):
        where = f"features[{i}]"
        name = _string(_object(f, where), "name", where)
        if name in seen:
            raise ModelArtifactError(f"{FILE}: {where}.name: {name!r} is listed twice")
        seen.add(name)
        low = _number(f, "min", where)
        _number(f, "max", where, low)
        _number(f, "mean", where)
        _number(f, "std", where, 0.0)


def _validate(data: Mapping[str, Any]) -> None:
    """Every key serving reads is there with the right type and bounds; ``ModelArtifactError`` names the first
    that is not (the key's path, what was expected, what was found)."""
    _string(data, "version", "the manifest", VERSION_PATTERN)
    _string(data, "model_version", "the manifest")
    files = _object(_key(data, "files", "the manifest"), "files")
    _file(_key(files, "model", "files"), "files.model")
    if "ort_cache" in files:
        _file(files["ort_cache"], "files.ort_cache")
        _string(files["ort_cache"], "onnxruntime", "files.ort_cache")
    _string(_object(_key(data, "input", "the manifest"), "input"), "name", "input")
    _features(_key(data, "features", "the manifest"))
    _number(data, "threshold", "the manifest", 0.0, 1.0)
    bands = _object(_key(data, "confidence_bands", "the manifest"), "confidence_bands")
    medium = _number(bands, "medium", "confidence_bands", 0.0, 1.0)
    _number(bands, "high", "confidence_bands", medium, 1.0)
    metrics = _object(_key(data, "metrics", "the manifest"), "metrics")
    for key in PERFORMANCE_METRICS:
        _number(metrics, key, "metrics", 0.0, 1.0)
    _number(data, "envelope_widths", "the manifest", 1.0, 1e6)
