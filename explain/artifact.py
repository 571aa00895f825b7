"""The model folder's ``explanation.json``: what ``make convert`` stores for explanations, and reading it safely.

It holds the background rows the contributions are measured against, how many permutations each background row
is paired with (and their seed), and the global importance computed at conversion. The manifest lists it with its
size and sha256 like every other file; a folder converted without it cannot be explained (re-run make convert).
This module is the one place that knows the document's keys: ``document`` writes them, ``read`` checks them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from runtime import artifacts
from runtime.exceptions import ModelArtifactError
from runtime.manifest import Manifest

FILE = artifacts.EXPLANATION_FILE
FILES_KEY = "explanation"  # its entry under the manifest's "files"
FORMAT = 1
OUTPUT = "log_odds"
METHOD = "interventional Shapley values over the readings, antithetic permutation sampling against background rows"
MAX_BYTES = 4 << 20


@dataclass(frozen=True)
class Stored:
    """The parsed document: ``background`` (K, d) rows in manifest feature order; ``importance`` in decreasing
    order of mean |contribution|, computed over ``importance_rows`` held-out rows."""

    background: np.ndarray
    pairs_per_row: int
    seed: int
    importance: tuple[tuple[str, float], ...]
    importance_rows: int
    importance_source: str
    method: str
    output: str


def document(
    background: np.ndarray,
    pairs_per_row: int,
    seed: int,
    importance: Sequence[tuple[str, float]],
    importance_rows: int,
    sources: dict[str, str],
) -> dict[str, Any]:
    """The JSON document ``read`` accepts; ``sources`` says where the background and importance rows come from."""
    return {
        "format": FORMAT,
        "method": METHOD,
        "output": OUTPUT,
        "background": {"source": sources["background"], "rows": background.tolist()},
        "samples": {"pairs_per_row": pairs_per_row, "seed": seed},
        "importance": {
            "source": sources["importance"],
            "rows": importance_rows,
            "ranking": [{"feature": f, "mean_abs_contribution": v} for f, v in importance],
        },
    }


def importance_body(stored: Stored, model_version: str) -> dict[str, Any]:
    """``GET /importance``'s answer (and ``diecast importance --json``'s)."""
    return {
        "importance": [{"feature": f, "mean_abs_contribution": v} for f, v in stored.importance],
        "rows": stored.importance_rows,
        "method": f"{stored.method}; mean |contribution| over {stored.importance_source}",
        "model_version": model_version,
    }


def read(model_dir: str, manifest: Manifest) -> Stored:
    """``explanation.json`` of ``model_dir``, checked against its manifest entry; ``ModelArtifactError`` otherwise."""
    entry = manifest.files.get(FILES_KEY)
    if not isinstance(entry, dict) or not isinstance(entry.get("bytes"), int):
        raise ModelArtifactError(
            f"{model_dir}: {artifacts.MANIFEST_FILE} lists no {FILE} (converted without explanations); "
            "re-run make convert"
        )
    blob = artifacts.read_file(model_dir, FILE, MAX_BYTES, entry["bytes"])
    if artifacts.sha256_bytes(blob) != entry.get("sha256"):
        raise ModelArtifactError(
            f"{FILE} in {model_dir} does not match its manifest (corrupt or replaced); re-run make convert"
        )
    try:
        return _parse(json.loads(blob), manifest.feature_names)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelArtifactError(f"{FILE} in {model_dir} is malformed ({exc}); re-run make convert") from None


def _parse(doc: dict[str, Any], names: tuple[str, ...]) -> Stored:
    if doc.get("format") != FORMAT:
        raise ValueError(f"format {doc.get('format')!r}, this reader reads {FORMAT}")
    background = np.array(doc["background"]["rows"], dtype=np.float64)
    if background.ndim != 2 or background.shape[1] != len(names) or not np.isfinite(background).all():
        raise ValueError(f"background rows must be finite and {len(names)} wide")
    ranking = tuple((str(r["feature"]), float(r["mean_abs_contribution"])) for r in doc["importance"]["ranking"])
    if sorted(f for f, _ in ranking) != sorted(names) or not all(math.isfinite(v) for _, v in ranking):
        raise ValueError("the importance ranking must name every feature once, with a finite value")
    samples = doc["samples"]
    return Stored(
        background=background,
        pairs_per_row=int(samples["pairs_per_row"]),
        seed=int(samples["seed"]),
        importance=ranking,
        importance_rows=int(doc["importance"]["rows"]),
        importance_source=str(doc["importance"]["source"]),
        method=str(doc["method"]),
        output=str(doc["output"]),
    )
