"""A second certified model for the compare and batch-scoring tests: v1.1 trained on a bootstrap resample of the
embedded data, converted with the existing CLIs (the originals' training takes ~2 min, the conversion ~1 min).

``python -m tests.second_model DIR`` builds it by hand (DIR/onnx/v1.1 is the converted folder); the test fixture
``second_model`` builds it once per test session, or reuses ``DIECAST_SECOND_MODEL`` (a converted folder) when set.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_CSV = REPO_ROOT / "data" / "die_casting.csv"
VERSION = "v1.1"
RESAMPLE_SEED = 11  # which bootstrap resample v1.1 trains on
FUZZ_ROWS = 2000  # a small certificate: this model is test material, not shipped


def write_bootstrap_csv(source: Path, target: Path, seed: int = RESAMPLE_SEED) -> None:
    """Rows of ``source`` drawn with replacement (as many as it has), header kept."""
    with source.open(newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    picks = np.random.default_rng(seed).integers(0, len(body), len(body))
    with target.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(body[i] for i in picks)


def build(work: Path) -> Path:
    """Train and convert v1.1 under ``work``; returns the converted folder ``work/onnx/v1.1``."""
    work.mkdir(parents=True, exist_ok=True)
    data = work / "bootstrap.csv"
    write_bootstrap_csv(DATA_CSV, data)
    py = sys.executable
    train = [py, "-m", "convert.train", "--version", VERSION, "--data", str(data), "--out", str(work / "originals")]
    convert = [py, "-m", "convert", "--version", VERSION, "--models", str(work / "originals")]
    convert += ["--out", str(work / "onnx"), "--fuzz-rows", str(FUZZ_ROWS), "--report-dir", str(work / "report")]
    for cmd in (train, convert):
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[1:4])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return work / "onnx" / VERSION


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))
