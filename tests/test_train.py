"""`make train`: refuses to overwrite, writes nothing on bad data, reproduces the shipped v1.0."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import DEPLOYMENT_DIR, REPO_ROOT

pytestmark = pytest.mark.convert


def _train(*args):
    return subprocess.run(
        [sys.executable, "-m", "convert.train", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )


def test_train_refuses_to_overwrite_an_existing_version(tmp_path):
    (tmp_path / "v9").mkdir()
    (tmp_path / "v9" / "keep.txt").write_text("untouched")
    proc = _train("--version", "v9", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert "already exists; pass --force" in proc.stderr
    assert (tmp_path / "v9" / "keep.txt").read_text() == "untouched"


def test_train_on_a_bad_csv_names_the_column_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.csv"
    with open(REPO_ROOT / "data" / "die_casting.csv") as src, bad.open("w", newline="") as dst:
        rows = list(csv.reader(src))[:20]
        rows[5][2] = "fast"
        csv.writer(dst).writerows(rows)
    out = tmp_path / "models"
    proc = _train("--version", "v2", "--data", str(bad), "--out", str(out))
    assert proc.returncode == 2
    assert "column 'Process_InjectionSpeed', row 5: not a number: 'fast'" in proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_train_help():
    proc = _train("--help")
    assert proc.returncode == 0
    assert "--force" in proc.stdout


@pytest.mark.slow
def test_training_reproduces_the_shipped_v1_deterministically(tmp_path, reference, dataset_xy):
    import torch

    from convert.reference import load_reference

    proc = _train("--version", "v1.0", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    again = load_reference(tmp_path / "v1.0")
    for key, tensor in reference.autoencoder.state_dict().items():
        torch.testing.assert_close(again.autoencoder.state_dict()[key], tensor, rtol=0, atol=0, msg=key)
    X, _ = dataset_xy
    np.testing.assert_array_equal(again.predict(X)["probability"], reference.predict(X)["probability"])
    assert again.metadata["threshold"] == reference.metadata["threshold"]
    assert again.metadata["metrics"] == reference.metadata["metrics"]
    assert DEPLOYMENT_DIR.exists()
