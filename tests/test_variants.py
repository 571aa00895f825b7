"""The certificate passes every honestly trained model: retrains with another seed, on a bootstrap resample, on a
jittered subset, and with torch's portable kernels (plus AVX-512 kernels where the CPU has them) all train,
certify and publish. Each is a real `make train` + `make convert` in subprocesses, two at a time (one per core).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from convert import dataset, kernels
from tests.conftest import DATA_CSV, REPO_ROOT

pytestmark = [pytest.mark.convert, pytest.mark.slow]

MAX_EPOCHS = "12"  # early stopping rarely ends sooner; enough to train a real, different encoder
FUZZ_ROWS = "5000"


def _write(path: Path, rows: list[list[str]], header: list[str]) -> Path:
    with path.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([header, *rows])
    return path


def _bootstrap(src: list[list[str]], header: list[str], path: Path) -> Path:
    idx = np.random.default_rng(1).integers(0, len(src), len(src))
    return _write(path, [src[i] for i in idx], header)


def _jittered_subset(src: list[list[str]], header: list[str], path: Path) -> Path:
    """60 % of the rows, each reading moved by 1 % of its feature's spread: another plant's sensors."""
    rng = np.random.default_rng(2)
    keep = np.sort(rng.choice(len(src), size=int(0.6 * len(src)), replace=False))
    X = np.array([[float(r[header.index(n)]) for n in dataset.FEATURE_NAMES] for r in src])
    X = X + rng.normal(0.0, 0.01, X.shape) * X.std(axis=0)
    rows = []
    for i in keep:
        row = list(src[i])
        for j, name in enumerate(dataset.FEATURE_NAMES):
            row[header.index(name)] = repr(float(X[i, j]))
        rows.append(row)
    return _write(path, rows, header)


def _variants(tmp: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    with DATA_CSV.open(newline="") as fh:
        header, *src = list(csv.reader(fh))
    out = {
        "seed 7": (["--seed", "7"], {}),
        "bootstrap resample": (["--data", str(_bootstrap(src, header, tmp / "bootstrap.csv"))], {}),
        "jittered 60% subset": (["--data", str(_jittered_subset(src, header, tmp / "jitter.csv")), "--seed", "3"], {}),
        "portable kernels": ([], {kernels.LEVEL_VAR: "default"}),
    }
    flags = kernels.cpu_flags() or set()
    if set(kernels.LEVELS["avx512"].cpu_flags) <= flags:
        out["avx512 kernels"] = ([], {kernels.LEVEL_VAR: "avx512"})
    return out


def _train_and_convert(tmp: Path, index: int, name: str, train_args: list[str], env: dict[str, str]) -> dict:
    slug = name.replace(" ", "-").replace("%", "")
    version = f"v0.{index}"  # a served version must match v<n>[.<n>...] (runtime/artifacts.py)
    run_env = {**os.environ, **env}
    steps = [
        ["convert.train", "--model", str(tmp / "originals" / version), "--max-epochs", MAX_EPOCHS],
        ["convert", "--model", str(tmp / "originals" / version), "--out", str(tmp / "onnx" / version)],
    ]
    steps[0] += ["--cv-folds", "0", *train_args]  # CV only reports (tests/test_retrain.py): skipped, to stay cheap
    steps[1] += ["--no-ort-cache", "--fuzz-rows", FUZZ_ROWS, "--report-dir", str(tmp / "reports" / slug)]
    for step in steps:
        proc = subprocess.run(
            [sys.executable, "-m", *step], cwd=REPO_ROOT, env=run_env, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            return {"name": name, "ok": False, "log": proc.stdout[-4000:] + proc.stderr[-4000:]}
    manifest = json.loads((tmp / "onnx" / version / "manifest.json").read_text())
    return {"name": name, "ok": True, "manifest": manifest, "log": proc.stdout}


def test_honest_retrains_all_certify_and_publish(tmp_path):
    variants = _variants(tmp_path)
    with ThreadPoolExecutor(max_workers=max(2, min(len(variants), os.cpu_count() or 2))) as pool:
        jobs = [(i, name, *spec) for i, (name, spec) in enumerate(variants.items(), 1)]
        results = list(pool.map(lambda job: _train_and_convert(tmp_path, *job), jobs))
    failed = [r for r in results if not r["ok"]]
    assert not failed, "\n\n".join(f"== {r['name']}\n{r['log']}" for r in failed)
    digests = set()
    for r in results:
        cert = r["manifest"]["certificate"]
        assert cert["passed"] is True, r["name"]
        assert {rs["engine"] for rs in cert["row_sets"]} == {"onnxruntime model.onnx", "onnx.reference model.onnx"}
        digests.add(r["manifest"]["files"]["model"]["sha256"])
        print(f"\n== {r['name']}\n{r['log']}")
    assert len(digests) == len(results), "every variant must be a different model"
