"""Capture inputs -> local files: paths, folders (the Firehose ``YYYY/MM/DD/HH/`` layout), globs and ``s3://`` URLs.

DuckDB's own S3 reader (the ``httpfs`` extension) downloads itself at run time, which this project forbids, and no
offline build of it matches DuckDB 2.0; so ``s3://`` objects are listed and fetched with boto3 (its usual
credential chain; ``AWS_ENDPOINT_URL_S3`` points it at another endpoint) into a scratch folder and read from there
like local files. Gzip is recognised by its magic bytes, not its name (Firehose names vary).
"""

from __future__ import annotations

import fnmatch
import glob
import gzip
import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from monitor.exceptions import MonitorInputError

GLOB_CHARS = "*?["
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class InputFile:
    """One file to read: where it is on disk, how to name it in messages, what it holds."""

    path: Path
    name: str  # the path or s3:// URL the user gave, for messages
    gzip: bool
    parquet: bool
    size: int


def _describe(path: Path, name: str) -> InputFile:
    with path.open("rb") as fh:
        head = fh.read(4)
    return InputFile(path, name, head[:2] == GZIP_MAGIC, head == b"PAR1", path.stat().st_size)


def _local(spec: str) -> list[Path]:
    path = Path(spec)
    if any(c in spec for c in GLOB_CHARS):
        found = [Path(p) for p in glob.glob(spec, recursive=True)]
    elif path.is_dir():
        found = [p for p in path.rglob("*") if not any(part.startswith(".") for part in p.relative_to(path).parts)]
    elif path.is_file():
        found = [path]
    else:
        raise MonitorInputError(
            f"--captures {spec}: no such file or folder; give a file, a folder, a glob or s3:// URL"
        )
    return sorted(p for p in found if p.is_file())


def _split_s3(url: str) -> tuple[str, str]:
    bucket, _, key = url[len("s3://") :].partition("/")
    if not bucket:
        raise MonitorInputError(f"--captures {url}: an S3 URL needs a bucket, e.g. s3://my-bucket/captures/2026/")
    return bucket, key


def _s3_keys(client: object, bucket: str, pattern: str) -> list[str]:
    """Keys under ``pattern``: a glob, an exact key, or a prefix (a folder)."""
    cut = min((pattern.index(c) for c in GLOB_CHARS if c in pattern), default=None)
    prefix = pattern if cut is None else pattern[:cut]
    keys: list[str] = []
    paginator = client.get_paginator("list_objects_v2")  # type: ignore[attr-defined]
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/")]
    if cut is not None:
        return sorted(k for k in keys if fnmatch.fnmatchcase(k, pattern))
    if pattern in keys:
        return [pattern]
    folder = pattern if not pattern or pattern.endswith("/") else pattern + "/"
    return sorted(k for k in keys if k.startswith(folder))


def _s3(url: str, scratch: Path, progress: bool) -> list[InputFile]:
    import boto3
    import botocore.exceptions
    from tqdm import tqdm

    bucket, pattern = _split_s3(url)
    client = boto3.client("s3")
    try:
        keys = _s3_keys(client, bucket, pattern)
        if not keys:
            raise MonitorInputError(f"--captures {url}: no objects there; check the bucket, prefix or glob")
        out = []
        for key in tqdm(keys, desc=f"fetch s3://{bucket}", unit="obj", disable=not progress, leave=False):
            local = scratch / bucket / key
            local.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, key, str(local))
            out.append(_describe(local, f"s3://{bucket}/{key}"))
        return out
    except botocore.exceptions.BotoCoreError as exc:
        raise MonitorInputError(f"--captures {url}: cannot reach S3 ({exc}); check credentials and region") from None
    except botocore.exceptions.ClientError as exc:
        raise MonitorInputError(
            f"--captures {url}: S3 refused ({exc}); check the bucket name and permissions"
        ) from None


def resolve(specs: list[str], scratch: Path, progress: bool = False) -> list[InputFile]:
    """Every file the capture arguments name, in a stable order; s3:// objects fetched into ``scratch``."""
    files: list[InputFile] = []
    for spec in specs:
        if spec.startswith("s3://"):
            files += _s3(spec, scratch, progress)
            continue
        found = _local(spec)
        if not found:
            raise MonitorInputError(f"--captures {spec}: matches no file; check the path or glob")
        files += [_describe(p, str(p)) for p in found]
    return files


def salvage_gzip(source: InputFile, scratch: Path) -> tuple[Path, bool]:
    """Decompress what a gzip file holds, up to a truncation or corruption, into a plain file of whole lines.

    Returns (the plain file, whether the gzip stream was complete). A partial last line is dropped.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="salvaged-", suffix=".txt", dir=scratch)
    os.close(handle)
    out = Path(name)
    complete, tail = True, b""
    with gzip.open(source.path, "rb") as src, out.open("wb") as dst:
        try:
            while chunk := src.read(1 << 20):
                data = tail + chunk
                cut = data.rfind(b"\n") + 1
                dst.write(data[:cut])
                tail = data[cut:]
        except (EOFError, zlib.error, gzip.BadGzipFile):
            complete = False
        if complete and tail:
            dst.write(tail + b"\n")  # a last line without a newline is whole when the stream is
    return out, complete


def gzip_is_complete(path: Path) -> bool:
    """Read a gzip file through to its end marker; False when it is truncated or corrupt."""
    try:
        with gzip.open(path, "rb") as src:
            while src.read(1 << 22):
                pass
    except (EOFError, zlib.error, gzip.BadGzipFile):
        return False
    return True
