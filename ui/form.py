"""What the page knows of the readings: the served manifest's features (group, unit, training range), the sample
part, random parts from the embedded data, and how an answer is shown (one rounding rule for every number)."""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.manifest import Feature, Manifest

REPO = Path(__file__).resolve().parent.parent
SAMPLE_EVENT = REPO / "tests" / "events" / "direct_named.json"  # the sample part the docs and tests use
DATA_CSV = REPO / "data" / "die_casting.csv"
DECIMALS = 4  # the page shows the handler's probability rounded to this many decimals
KEY_PREFIX = "reading:"  # the session-state key of each reading's input on the form
GROUPS = {"process": "Process parameters", "sensor": "Sensors"}


def shown(probability: float) -> str:
    """The handler's probability as the page writes it."""
    return f"{probability:.{DECIMALS}f}"


@dataclass(frozen=True)
class Readings:
    """The served model's readings, in manifest order, and its version."""

    model_version: str
    features: tuple[Feature, ...]

    @classmethod
    def of(cls, model_dir: str) -> Readings:
        manifest = Manifest.read(model_dir)
        return cls(manifest.model_version, manifest.features)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def grouped(self) -> dict[str, list[Feature]]:
        """Group title -> its features, process parameters first."""
        out: dict[str, list[Feature]] = {}
        for feature in self.features:
            out.setdefault(GROUPS.get(feature.group, feature.group.title()), []).append(feature)
        return out

    def outside(self, values: dict[str, float]) -> list[str]:
        """The readings of ``values`` outside the training range, in manifest order."""
        return [f.name for f in self.features if not f.min <= values.get(f.name, f.min) <= f.max]


def label(feature: Feature) -> str:
    """A form field's label: the reading, its unit and its training range."""
    return f"{feature.name.split('_', 1)[-1]} ({feature.unit}) {feature.min:g}–{feature.max:g}"


def range_help(feature: Feature) -> str:
    low, high = f"{feature.min:g}", f"{feature.max:g}"
    return f"{feature.description}. Training range {low} to {high} {feature.unit}; outside it the model extrapolates."


def sample_part(path: Path = SAMPLE_EVENT) -> dict[str, float]:
    """The 30 readings of the sample event (``{"features": {...}}``)."""
    return {k: float(v) for k, v in json.loads(path.read_text())["features"].items()}


def random_part(names: list[str], rng: random.Random, path: Path = DATA_CSV) -> dict[str, float]:
    """One row of the embedded data, drawn with ``rng``: its readings only."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    row = rows[rng.randrange(len(rows))]
    return {name: float(row[name]) for name in names}


def top_contributions(contributions: dict[str, float], k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` readings with the largest absolute contribution, largest first."""
    return sorted(contributions.items(), key=lambda item: abs(item[1]), reverse=True)[:k]


def explanation_words(contributions: dict[str, float], k: int = 3) -> str:
    """The top readings named in words: which push toward a defect and which away."""
    parts = []
    for name, value in top_contributions(contributions, k):
        way = "toward defect" if value > 0 else "toward normal"
        parts.append(f"{name} ({value:+.3f} log-odds, {way})")
    return "Readings that moved this prediction most: " + "; ".join(parts) + "."


ANSWER_FIELDS = ("probability", "class", "confidence")  # a prediction as the tables show it, in order


def answer_fields(prediction: dict[str, Any]) -> dict[str, Any]:
    """One part's prediction (the handler's ``prediction`` object) -> the fields the history and tables keep."""
    return {k: prediction[k] for k in ANSWER_FIELDS}


def prediction_row(body: dict[str, Any]) -> dict[str, Any]:
    """A one-part answer -> the history row the page keeps."""
    return {**answer_fields(body["prediction"]), "model_version": body["model_version"]}
