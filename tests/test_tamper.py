"""The tamper suite: manipulated copies of the shipped model folder. Each one either fails ``runtime.load`` with a
``ModelArtifactError`` naming the problem, or answers bit-identically to the untouched model. numpy + onnxruntime
only."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import runtime
from runtime import ModelArtifactError
from tests.conftest import DATA_CSV, ONNX_DIR

MANIFEST = json.loads((ONNX_DIR / "manifest.json").read_text())
X = np.loadtxt(DATA_CSV, delimiter=",", skiprows=1, usecols=range(30), max_rows=64)


@pytest.fixture(scope="module")
def untouched():
    """Outputs of the shipped folder, per graph the runtime may pick."""
    return {cache: runtime.load(ONNX_DIR, use_ort_cache=cache).predict(X) for cache in (True, False)}


def edit(change: Callable[[dict], object]) -> Callable[[Path], None]:
    """A tamper that rewrites manifest.json after ``change`` edited a copy of it in place."""

    def apply(folder: Path) -> None:
        manifest = copy.deepcopy(MANIFEST)
        change(manifest)
        (folder / "manifest.json").write_text(json.dumps(manifest))

    return apply


def replace(value: Callable[[dict], object]) -> Callable[[Path], None]:
    """A tamper that writes ``value(manifest)`` as the whole manifest.json."""

    def apply(folder: Path) -> None:
        (folder / "manifest.json").write_text(json.dumps(value(copy.deepcopy(MANIFEST))))

    return apply


def drop(*path: str):
    def change(m: dict) -> None:
        node = m
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return edit(change)


def put(value: object, *path: str | int):
    def change(m: dict) -> None:
        node = m
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit(change)


def swap_first_two_features(m: dict) -> None:
    m["features"][0]["name"], m["features"][1]["name"] = m["features"][1]["name"], m["features"][0]["name"]


def swap_min_max(m: dict) -> None:
    for f in m["features"]:
        f["min"], f["max"] = f["max"], f["min"]


def corrupt(name: str, how: str) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        path = folder / name
        blob = bytearray(path.read_bytes())
        if how == "flip":
            blob[len(blob) // 3] ^= 0x01
        elif how == "truncate":
            blob = blob[: len(blob) // 2]
        elif how == "append":
            blob += b"\0"
        path.write_bytes(bytes(blob))

    return apply


def garbage_with_matching_hash(folder: Path) -> None:
    junk = b"\x08\x09 not a protobuf"
    (folder / "model.onnx").write_bytes(junk)
    m = copy.deepcopy(MANIFEST)
    m["files"]["model"] |= {"sha256": hashlib.sha256(junk).hexdigest(), "bytes": len(junk)}
    m["files"].pop("ort_cache")
    (folder / "manifest.json").write_text(json.dumps(m))


def point_model_at(path: str) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        m = copy.deepcopy(MANIFEST)
        m["files"]["model"]["path"] = path
        m["files"].pop("ort_cache")
        (folder / "manifest.json").write_text(json.dumps(m))

    return apply


def symlink(name: str, target: str) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        real = folder.parent / f"outside-{name}"
        if target == "copy":
            shutil.copy(folder / name, real)
        (folder / name).unlink()
        os.symlink(real if target == "copy" else target, folder / name)

    return apply


def replace_with_directory(name: str) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        (folder / name).unlink()
        (folder / name).mkdir()

    return apply


def huge_manifest(folder: Path) -> None:
    m = copy.deepcopy(MANIFEST)
    m["padding"] = "x" * (2 << 20)
    (folder / "manifest.json").write_text(json.dumps(m))


def raw_manifest(text: bytes) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        (folder / "manifest.json").write_bytes(text)

    return apply


# (tamper, what the error must name); None: the folder must answer bit-identically.
REFUSED: dict[str, tuple[Callable[[Path], None], str]] = {
    "first two feature names swapped": (edit(swap_first_two_features), "disagrees with the serving fields"),
    "threshold raised to 0.9": (put(0.9, "threshold"), "disagrees with the serving fields"),
    "min and max swapped": (edit(swap_min_max), r"features\[0\]\.max: expected a number in"),
    "model_version renamed": (put("v9.9_12D_GB", "model_version"), "disagrees with the serving fields"),
    "metrics inflated": (put(0.99, "metrics", "f1_score"), "disagrees with the serving fields"),
    "confidence bands moved": (put(0.1, "confidence_bands", "high"), "confidence_bands.high: expected a number"),
    "bands renamed inside the bounds": (put(0.5, "confidence_bands", "high"), "disagrees with the serving fields"),
    "envelope widened": (put(1e5, "envelope_widths"), "disagrees with the serving fields"),
    "training std edited": (put(123.0, "features", 3, "std"), "disagrees with the serving fields"),
    "no confidence_bands": (drop("confidence_bands"), "lacks the key 'confidence_bands'"),
    "no metrics": (drop("metrics"), "lacks the key 'metrics'"),
    "no input": (drop("input"), "lacks the key 'input'"),
    "no input name": (drop("input", "name"), "input lacks the key 'name'"),
    "no features": (drop("features"), "lacks the key 'features'"),
    "a feature without min": (drop("features", 4, "min"), r"features\[4\] lacks the key 'min'"),
    "no files": (drop("files"), "lacks the key 'files'"),
    "no model entry": (drop("files", "model"), "files lacks the key 'model'"),
    "no envelope": (drop("envelope_widths"), "lacks the key 'envelope_widths'"),
    "no threshold": (drop("threshold"), "lacks the key 'threshold'"),
    "threshold as text": (put("abc", "threshold"), "threshold: expected a number in"),
    "threshold above 1": (put(2.0, "threshold"), "threshold: expected a number in"),
    "threshold a boolean": (put(True, "threshold"), "threshold: expected a number in"),
    "NaN minimum": (put(float("nan"), "features", 0, "min"), r"features\[0\]\.min: expected a number"),
    "feature name a number": (put(7, "features", 2, "name"), r"features\[2\]\.name: expected a string"),
    "duplicate feature name": (put(MANIFEST["features"][0]["name"], "features", 1, "name"), "listed twice"),
    "29 features": (edit(lambda m: m["features"].pop()), "lists 29 features; the graph"),
    "31 features": (edit(lambda m: m["features"].append(dict(m["features"][0], name="Extra"))), "lists 31"),
    "0 features": (put([], "features"), "features: expected a non-empty array"),
    "manifest is a number": (replace(lambda m: 42), "expected a JSON object, got int"),
    "manifest is null": (replace(lambda m: None), "expected a JSON object, got NoneType"),
    "manifest is a string": (replace(lambda m: "manifest"), "expected a JSON object, got str"),
    "manifest is a list": (replace(lambda m: [m]), "expected a JSON object, got list"),
    "format 1": (put(1, "format"), "format 1, this runtime reads format 2"),
    "version with a path": (put("../v1.0", "version"), "version: expected a string matching"),
    "model_file not a string": (put(["model.onnx"], "files", "model", "path"), "files.model.path: expected a string"),
    "malformed sha256": (put("abc", "files", "model", "sha256"), "sha256: expected a string matching"),
    "model bytes a string": (put("747855", "files", "model", "bytes"), "bytes: expected an integer"),
    "model bytes over the cap": (put(1 << 40, "files", "model", "bytes"), "bytes: expected an integer"),
    "cache bytes understated": (put(100, "files", "ort_cache", "bytes"), "at most 100 expected"),
    "cache without its onnxruntime": (drop("files", "ort_cache", "onnxruntime"), "lacks the key 'onnxruntime'"),
    "cache flipped bit": (corrupt("model.ort.onnx", "flip"), "model.ort.onnx does not match its manifest"),
    "cache truncated": (corrupt("model.ort.onnx", "truncate"), "the manifest says"),
    "cache grown by a byte": (corrupt("model.ort.onnx", "append"), "at most"),
    "garbage graph with a matching hash": (garbage_with_matching_hash, "onnxruntime cannot load model.onnx"),
    "model path absolute": (point_model_at("/etc/passwd"), "must be a plain file name"),
    "model path climbing out": (point_model_at("../v1.0/model.onnx"), "must be a plain file name"),
    "model path /dev/zero": (point_model_at("/dev/zero"), "must be a plain file name"),
    "model path empty": (point_model_at(""), "files.model.path: expected a string"),
    "cache a symlink to an outside copy": (symlink("model.ort.onnx", "copy"), "must be a regular file"),
    "cache a symlink to /dev/zero": (symlink("model.ort.onnx", "/dev/zero"), "must be a regular file"),
    "manifest a symlink": (symlink("manifest.json", "copy"), "must be a regular file"),
    "cache replaced by a directory": (replace_with_directory("model.ort.onnx"), "must be a regular file"),
    "manifest over 1 MiB": (huge_manifest, "at most 1048576 expected"),
    "manifest not JSON": (raw_manifest(b"{not json"), "is not valid JSON"),
    "manifest not UTF-8": (raw_manifest(b"\xff\xfe{}"), "is not valid JSON"),
    "manifest missing": (lambda folder: (folder / "manifest.json").unlink(), "no manifest.json in"),
}

ANSWERS_THE_SAME: dict[str, tuple[Callable[[Path], None], bool]] = {
    "model.onnx flipped while the cache serves": (corrupt("model.onnx", "flip"), True),
    "an unknown extra key": (put("hello", "comment"), True),
    "a stray file in the folder": (lambda folder: (folder / "notes.txt").write_text("x"), True),
    "cache from another onnxruntime": (put("0.0.1", "files", "ort_cache", "onnxruntime"), False),
    "no cache at all": (edit(lambda m: m["files"].pop("ort_cache")), False),
    "keys reordered": (replace(lambda m: dict(reversed(list(m.items())))), True),
}


@pytest.fixture
def folder(tmp_path):
    dst = tmp_path / "v1.0"
    shutil.copytree(ONNX_DIR, dst)
    return dst


def test_the_suite_covers_at_least_40_tampered_folders():
    assert len(REFUSED) + len(ANSWERS_THE_SAME) >= 40


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_tampered_folders_fail_init_naming_the_problem(folder, case):
    tamper, named = REFUSED[case]
    tamper(folder)
    with pytest.raises(ModelArtifactError, match=named):
        runtime.load(folder)


@pytest.mark.parametrize("case", sorted(ANSWERS_THE_SAME))
def test_harmless_changes_answer_bit_identically(folder, untouched, case):
    tamper, cache = ANSWERS_THE_SAME[case]
    tamper(folder)
    model = runtime.load(folder)
    assert model.graph_kind == ("ort_cache" if cache else "model")
    got = model.predict(X)
    for key, value in untouched[cache].items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
