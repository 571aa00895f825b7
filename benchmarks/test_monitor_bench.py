"""The monitor's throughput: 1,000,000 capture lines in <= 60 s on this machine, end to end.

The lines are written by DuckDB (fast to generate) in the record schema runtime/capture.py writes, spread over
Firehose-layout files, half of them gzip; the gzip half also carries a shadow model's result (as the handler writes
with SHADOW_MODEL_VERSION), so the shadow comparison is timed too. Labels for half the parts. The timed part is
``python -m monitor`` as a user runs it: a fresh process, reading, deduplicating, joining, every statistic, the HTML
report.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from benchmarks.conftest import REPO_ROOT, RESULTS

LINES = 1_000_000
FILES = 8
GATE_S = 60.0


@pytest.fixture(scope="module")
def augmented_model(tmp_path_factory):
    from monitor.demo import trained_on
    from monitor.manifest import parse_utc

    out = tmp_path_factory.mktemp("model") / "v1.0"
    return trained_on(REPO_ROOT / "models_onnx" / "v1.0", out, parse_utc("2026-09-01T00:00:00Z"))


@pytest.fixture(scope="module")
def million_lines(tmp_path_factory, augmented_model):
    import duckdb

    from convert import dataset

    root = tmp_path_factory.mktemp("captures")
    version = json.loads((augmented_model / "manifest.json").read_text())["model_version"]
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE ds AS SELECT row_number() OVER () - 1 AS r, * FROM read_csv(?)", [str(dataset.DEFAULT_CSV)]
    )
    features = ", ".join(f'"{n}" := d."{n}"' for n in dataset.FEATURE_NAMES)
    per = LINES // FILES
    shadow = (
        ", struct_pack(model_version := 'v1.1_12D_GB', probability := (hash(i + 1) % 1000) / 1000.0, "
        "label := CAST(hash(i + 1) % 1000 >= 250 AS INTEGER)) AS shadow"
    )
    for f in range(FILES):
        folder = root / "2026" / "10" / f"{1 + f:02d}" / "00"
        folder.mkdir(parents=True)
        gz = f % 2 == 1
        path = folder / f"captures-{f}.jsonl{'.gz' if gz else ''}"
        con.execute(
            f"""COPY (SELECT 'prediction' AS record, 1 AS schema, 'SN-' || i AS inference_id, 'req-' || (i // 10) AS
                request_id, strftime(TIMESTAMP '2026-10-01' + to_microseconds(i * 1200), '%Y-%m-%dT%H:%M:%S.%fZ')
                AS "timestamp", '{version}' AS model_version, struct_pack({features}) AS features,
                (hash(i) % 1000) / 1000.0 AS probability, CAST(hash(i) % 1000 >= 250 AS INTEGER) AS label,
                'normal' AS "class", 'high' AS confidence, [] :: VARCHAR[] AS out_of_range{shadow if gz else ""}
              FROM range({f * per}, {(f + 1) * per}) t(i) JOIN ds d ON d.r = i % 7535)
              TO '{path}' (FORMAT json{", COMPRESSION gzip" if gz else ""})"""
        )
    labels = root / "labels.csv"
    con.execute(
        f"COPY (SELECT 'SN-' || i AS inference_id, CAST(i % 5 = 0 AS INTEGER) AS defect "
        f"FROM range(0, {LINES}, 2) t(i)) "
        f"TO '{labels}' (HEADER)"
    )
    return root / "2026", labels


def test_monitor_reads_a_million_lines_within_a_minute(million_lines, augmented_model, tmp_path):
    captures, labels = million_lines
    out = tmp_path / "report"
    command = [
        sys.executable,
        "-m",
        "monitor",
        "--captures",
        str(captures),
        "--labels",
        str(labels),
        "--model",
        str(augmented_model),
        "--out",
        str(out),
        "--no-progress",
    ]
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    assert proc.returncode in (0, 10, 20), proc.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["inputs"]["captures"]["prediction"] == LINES
    assert report["inputs"]["captures"]["unique_predictions"] == LINES
    assert report["inputs"]["labels"]["joined"] == LINES // 2
    assert report["shadow"]["rows"] == LINES // 2
    RESULTS["monitor_1m_lines_s"] = elapsed
    assert elapsed <= GATE_S, f"the monitor took {elapsed:.1f} s for {LINES:,} lines (gate {GATE_S:.0f} s)"
