"""Finished units on disk, so that nothing a long study computed is lost.

Each unit (one latent size on one fold) is written to ``OUT/units/`` as soon as it finishes. Run again with the same
plan (``plan_key``: the same data, grid, seed, kernels, libraries and code) and the study continues where it
stopped: a cut budget, Ctrl-C or a lost machine costs only the units that were running. Any other plan ignores them
(``--fresh`` too). Units are seeded and independent, so a resumed study gives the numbers an uninterrupted one gives.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from ablation.grid import Grid
from ablation.report import write_text
from convert import kinds

ROOT = Path(__file__).resolve().parent.parent

CODE = ("ablation", "convert")  # the packages whose source computes a unit


def plan_key(data: Path, grid: Grid, seed: int, kernel_level: str) -> str:
    """What a stored unit must have been computed under to be reused: the data file's bytes, the grid, the seed,
    torch's kernel level, every library's version and the source of the code that computes a unit."""
    import numpy
    import torch

    code = hashlib.sha256()
    for package in CODE:
        for path in sorted((ROOT / package).glob("*.py")):
            code.update(path.name.encode() + b"\0" + path.read_bytes())
    what = {
        "data_sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
        "grid": asdict(grid),
        "seed": seed,
        "torch_kernels": kernel_level,
        "libraries": {name: kinds.get(name).library_version() for name in grid.kinds}
        | {"torch": torch.__version__, "numpy": numpy.__version__},
        "code_sha256": code.hexdigest(),
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


class Store:
    """``OUT/units/latent<d>-fold<f>.json``, each ``{"plan": key, "unit": ...}``."""

    def __init__(self, out: Path, key: str):
        self.folder = out / "units"
        self.key = key

    def _path(self, latent_dim: int, fold: int) -> Path:
        return self.folder / f"latent{latent_dim}-fold{fold}.json"

    def finished(self, units: list[tuple[int, int]]) -> dict[tuple[int, int], dict]:
        """The stored units of this plan among ``units``; anything unreadable or of another plan is not one."""
        done = {}
        for d, fold in units:
            try:
                stored = json.loads(self._path(d, fold).read_text())
            except (OSError, ValueError):
                continue
            unit = stored.get("unit") if isinstance(stored, dict) and stored.get("plan") == self.key else None
            if isinstance(unit, dict) and unit.get("results") and not unit.get("skipped"):
                done[(d, fold)] = unit
        return done

    def save(self, unit: dict) -> None:
        if unit["skipped"]:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        write_text(self._path(unit["latent_dim"], unit["fold"]), json.dumps({"plan": self.key, "unit": unit}) + "\n")
