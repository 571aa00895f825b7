"""Batch scoring (``diecast score``, the ``batch`` package): the same numbers as ``runtime.load(...).predict`` bit
for bit at any chunking, worker count and file format; rejects named by row; nothing half-written. Needs
requirements-batch.txt (pyarrow, tqdm); the Ray tests also need ray. Kept out of the runtime-only test list."""

from __future__ import annotations

import csv
import fnmatch
import os
import subprocess
import sys

import numpy as np
import pytest

import runtime
from batch import io as batch_io
from diecast import cli
from diecast.commands import score
from runtime.confidence import confidence_rule
from tests.conftest import DATA_CSV, ONNX_DIR, REPO_ROOT

pa = pytest.importorskip("pyarrow")
pacsv = pytest.importorskip("pyarrow.csv")
pq = pytest.importorskip("pyarrow.parquet")

PACKAGE_DIRS = ",".join(str(REPO_ROOT / p) for p in ("batch", "runtime"))  # shipped to the Ray actors
SUBSET = 600  # rows for the slow cases (1-row chunks, worker pools)


@pytest.fixture(scope="module")
def expected(dataset_xy):
    """What predict() gives on the embedded data, with the handler's confidence bands."""
    X, _ = dataset_xy
    model = runtime.load(ONNX_DIR)
    out = model.predict(X)
    band = confidence_rule(model.threshold, model.manifest.confidence_bands)
    return {
        "probability": out["probability"],
        "label": out["label"],
        "confidence": [band(p) for p in out["probability"].tolist()],
        "model_version": model.manifest.model_version,
    }


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The embedded data as CSV (verbatim) and Parquet (typed), in full and its first SUBSET rows."""
    folder = tmp_path_factory.mktemp("score-inputs")
    table = pacsv.read_csv(DATA_CSV)
    paths = {}
    for name, t in (("full", table), ("subset", table.slice(0, SUBSET))):
        paths[name, "csv"] = folder / f"{name}.csv"
        pacsv.write_csv(t, paths[name, "csv"])
        paths[name, "parquet"] = folder / f"{name}.parquet"
        pq.write_table(t, paths[name, "parquet"])
    paths["full", "csv"].write_bytes(DATA_CSV.read_bytes())  # the original text, not Arrow's rewrite
    return paths


def run_score(*args) -> int:
    return cli.main(["score", *map(str, args), "--model", str(ONNX_DIR), "--no-progress"])


def read_output(path):
    if path.suffix == ".parquet":
        return pq.read_table(path)
    types = {"probability": pa.float32(), "label": pa.int64(), "confidence": pa.string(), "defect_type": pa.string()}
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))


def assert_same_as_predict(table, expected, rows):
    got = table["probability"].to_numpy()
    assert got.dtype == np.float32
    want = expected["probability"][:rows]
    mismatched = np.nonzero(got.view(np.uint32) != want.view(np.uint32))[0]
    assert mismatched.size == 0, f"rows {mismatched[:5]}: got {got[mismatched[:5]]}, predict() {want[mismatched[:5]]}"
    assert np.array_equal(table["label"].to_numpy(), expected["label"][:rows])
    assert table["confidence"].to_pylist() == expected["confidence"][:rows]


@pytest.mark.parametrize(
    ("rows", "fmt", "workers", "chunk"),
    [
        ("full", "csv", 1, 1000),
        ("full", "parquet", 1, 4096),
        ("full", "csv", 1, 10_000),  # one chunk larger than the file
        ("subset", "csv", 1, 1),
        ("subset", "parquet", 1, 7),
        ("full", "csv", 2, 997),
        ("full", "parquet", 2, 1000),
        ("subset", "csv", 2, 13),
    ],
)
def test_scores_equal_predict_bit_for_bit_at_any_chunking(tmp_path, inputs, expected, rows, fmt, workers, chunk):
    # Given the embedded data, When it is scored in chunks by one or more workers
    for out_fmt in ("csv", "parquet"):
        output = tmp_path / f"scores.{out_fmt}"
        assert run_score(inputs[rows, fmt], output, "--workers", workers, "--chunk-rows", chunk) == score.EXIT_OK
        # Then every row is there, in order, with predict()'s exact numbers and the non-feature columns
        table = read_output(output)
        n = SUBSET if rows == "subset" else len(expected["label"])
        assert table.column_names == ["defect", "defect_type", "probability", "label", "confidence", "model_version"]
        assert table.num_rows == n
        assert set(table["model_version"].to_pylist()) == {expected["model_version"]}
        assert_same_as_predict(table, expected, n)
        source = pacsv.read_csv(inputs[rows, "csv"])
        assert table["defect_type"].to_pylist() == source["defect_type"].to_pylist()
    assert not list(tmp_path.glob(".*.tmp"))
    assert not list(tmp_path.glob("*.rejects.csv"))


def write_csv(path, header, rows):
    with path.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([header, *rows])


@pytest.fixture
def messy_csv(tmp_path):
    """The first 40 data rows with an id column and four bad readings; row 10 has a padded but valid number."""
    with DATA_CSV.open(newline="") as fh:
        header, *rows = list(csv.reader(fh))[:41]
    rows = [[f"P{i:03d}", *r] for i, r in enumerate(rows, start=1)]
    rows[2][1] = ""  # data row 3: missing
    rows[4][5] = "n/a"  # data row 5: not a number
    rows[6][3] = "inf"  # data row 7: not finite
    rows[8][1], rows[8][2] = "", "x"  # data row 9: two problems
    rows[9][2] = " " + rows[9][2] + " "  # data row 10: float() reads it, as training's loader does
    path = tmp_path / "messy.csv"
    write_csv(path, ["part_id", *header], rows)
    return path


def test_bad_readings_are_rejected_by_row_number_never_dropped_or_filled(tmp_path, messy_csv, expected, capsys):
    output = tmp_path / "scores.parquet"
    assert run_score(messy_csv, output, "--workers", 1, "--chunk-rows", 4) == score.EXIT_REJECTS
    assert "data rows 3, 5, 7, 9" in capsys.readouterr().err
    rejects = pacsv.read_csv(
        tmp_path / "scores.rejects.csv", convert_options=pacsv.ConvertOptions(strings_can_be_null=False)
    )
    assert rejects["row"].to_pylist() == [3, 5, 7, 9]
    assert rejects["part_id"].to_pylist() == ["P003", "P005", "P007", "P009"]
    reasons = rejects["reason"].to_pylist()
    assert reasons[0] == "Process_Temperature: missing"
    assert "not a number ('n/a')" in reasons[1]
    assert "not finite" in reasons[2]
    assert reasons[3].count(";") == 1  # both problems of row 9 named
    table = pq.read_table(output)
    kept = [i for i in range(40) if i + 1 not in {3, 5, 7, 9}]
    assert table["part_id"].to_pylist() == [f"P{i + 1:03d}" for i in kept]
    assert np.array_equal(table["probability"].to_numpy(), expected["probability"][kept])


def test_parquet_nulls_and_nans_are_rejected(tmp_path, inputs, expected):
    table = pq.read_table(inputs["subset", "parquet"])
    temp = table["Process_Temperature"].to_pylist()
    temp[0], temp[5] = None, float("nan")
    table = table.set_column(0, "Process_Temperature", pa.array(temp, pa.float64()))
    pq.write_table(table, tmp_path / "in.parquet")
    assert run_score(tmp_path / "in.parquet", tmp_path / "out.csv", "--workers", 1) == score.EXIT_REJECTS
    rejects = pacsv.read_csv(tmp_path / "out.rejects.csv")
    assert rejects["row"].to_pylist() == [1, 6]
    assert rejects["reason"].to_pylist() == ["Process_Temperature: missing", "Process_Temperature: not finite (nan)"]
    assert read_output(tmp_path / "out.csv").num_rows == SUBSET - 2


def test_readings_beyond_the_envelope_are_rejected_not_scored(tmp_path, inputs, expected):
    table = pq.read_table(inputs["subset", "parquet"])
    temp = table["Process_Temperature"].to_pylist()
    temp[2] = 1e21  # the float32 encoder would overflow here; serving refuses it
    table = table.set_column(0, "Process_Temperature", pa.array(temp, pa.float64()))
    pq.write_table(table, tmp_path / "in.parquet")
    assert run_score(tmp_path / "in.parquet", tmp_path / "out.csv", "--workers", 1) == score.EXIT_REJECTS
    rejects = pacsv.read_csv(tmp_path / "out.rejects.csv")
    assert rejects["row"].to_pylist() == [3]
    assert rejects["reason"].to_pylist() == ["Process_Temperature: beyond the envelope the model answers"]
    kept = [i for i in range(SUBSET) if i != 2]
    assert np.array_equal(read_output(tmp_path / "out.csv")["probability"].to_numpy(), expected["probability"][kept])


def test_a_failure_midway_leaves_nothing_half_written(tmp_path, inputs):
    # Given a CSV whose last row is malformed (too many cells), after the first blocks Arrow reads (~23k rows)
    header, *rows = inputs["full", "csv"].read_text().splitlines()
    rows = rows * 6
    rows[-1] += ",surplus"
    broken = tmp_path / "broken.csv"
    broken.write_text("\n".join([header, *rows]) + "\n")
    assert broken.stat().st_size > 2 * batch_io.CSV_BLOCK_BYTES
    # When it is scored, Then it fails as an input error and neither the output nor a temp file exists
    assert run_score(broken, tmp_path / "out.parquet", "--chunk-rows", 500, "--workers", 1) == score.EXIT_USAGE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.csv"]


def test_a_previous_output_is_kept_without_force_and_replaced_with_it(tmp_path, inputs, capsys):
    output = tmp_path / "out.csv"
    output.write_text("previous\n")
    assert run_score(inputs["subset", "csv"], output, "--workers", 1) == score.EXIT_USAGE
    assert "already exists; pass --force" in capsys.readouterr().err
    assert output.read_text() == "previous\n"
    assert run_score(inputs["subset", "csv"], output, "--workers", 1, "--force") == score.EXIT_OK
    assert read_output(output).num_rows == SUBSET


@pytest.mark.parametrize(
    ("header_edit", "args", "message"),
    [
        (lambda h: h[1:], (), r"missing feature column\(s\): Process_Temperature"),
        (lambda h: [*h[:-1], "probability"], (), r"column\(s\) probability would be overwritten.*--prefix"),
        (lambda h: [*h[:-1], h[0]], (), r"duplicated column\(s\): Process_Temperature"),
    ],
)
def test_unusable_inputs_are_refused_with_the_fix(tmp_path, header_edit, args, message, capsys):
    with DATA_CSV.open(newline="") as fh:
        header, *rows = list(csv.reader(fh))[:6]
    new_header = header_edit(header)
    write_csv(tmp_path / "in.csv", new_header, [r[len(r) - len(new_header) :] for r in rows])
    assert run_score(tmp_path / "in.csv", tmp_path / "out.csv", *args) == score.EXIT_USAGE
    err = capsys.readouterr().err
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "out.csv").exists()


def test_prefix_names_the_score_columns_beside_older_ones(tmp_path, inputs, expected):
    table = pacsv.read_csv(inputs["subset", "csv"]).append_column("probability", pa.array([0.5] * SUBSET))
    pacsv.write_csv(table, tmp_path / "history.csv")
    assert run_score(tmp_path / "history.csv", tmp_path / "out.parquet", "--prefix", "v1_0_") == score.EXIT_OK
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.column_names[-5:] == [
        "probability",
        "v1_0_probability",
        "v1_0_label",
        "v1_0_confidence",
        "v1_0_model_version",
    ]
    assert np.array_equal(out["v1_0_probability"].to_numpy(), expected["probability"][:SUBSET])


def test_wrong_paths_are_usage_errors(tmp_path, inputs, capsys):
    assert run_score(inputs["subset", "csv"], tmp_path / "out.json") == score.EXIT_USAGE
    assert "unknown file type '.json'" in capsys.readouterr().err
    assert run_score(tmp_path / "none.csv", tmp_path / "out.csv") == score.EXIT_USAGE
    assert run_score(inputs["subset", "csv"], inputs["subset", "csv"], "--force") == score.EXIT_USAGE
    assert "OUTPUT is the INPUT" in capsys.readouterr().err


def test_the_model_is_a_version_or_a_folder_and_the_output_folder_is_created(tmp_path, inputs, capsys):
    # Given a version instead of a folder, and an output whose folder does not exist yet
    output = tmp_path / "not" / "yet" / "scores.csv"
    args = ["score", str(inputs["subset", "csv"]), str(output), "--workers", "1", "--no-progress"]
    # When it is scored, Then the folder is created and the file written
    assert cli.main([*args, "--model", "v1.0"]) == score.EXIT_OK
    assert read_output(output).num_rows == SUBSET
    # And a model that is not there is named by its flag and both places looked at, never by MODEL_PATH
    assert cli.main([*args, "--force", "--model", "v7.7"]) == score.EXIT_USAGE
    err = capsys.readouterr().err
    assert "--model v7.7: no model folder at " in err
    assert f"nor at {ONNX_DIR.parent / 'v7.7'}" in err
    assert "MODEL_PATH" not in err
    # And a folder that is not a certified model says so, again without MODEL_PATH
    assert cli.main([*args, "--force", "--model", str(tmp_path)]) == score.EXIT_USAGE
    err = capsys.readouterr().err
    assert "holds no manifest.json, so it is not a certified model" in err
    assert "MODEL_PATH" not in err


def test_the_library_takes_typed_arguments_and_names_a_bad_one(tmp_path, inputs, expected):
    from batch.job import BatchInputError
    from batch.score import score_file

    output = tmp_path / "out.parquet"
    summary = score_file(inputs["subset", "parquet"], output, model_dir=ONNX_DIR, workers=1, progress=False)
    assert (summary.scored, summary.rejected, summary.first_rejected) == (SUBSET, 0, [])
    assert_same_as_predict(pq.read_table(output), expected, SUBSET)
    with pytest.raises(BatchInputError, match="chunk_rows must be an integer of at least 1, got 0"):
        score_file(inputs["subset", "csv"], tmp_path / "b.csv", model_dir=ONNX_DIR, chunk_rows=0)
    with pytest.raises(BatchInputError, match="engine 'spark' is not one of local, ray"):
        score_file(inputs["subset", "csv"], tmp_path / "b.csv", model_dir=ONNX_DIR, engine="spark")
    assert not (tmp_path / "b.csv").exists()


def test_help_documents_the_exit_codes():
    proc = subprocess.run(
        [sys.executable, "-m", "batch", "--help"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    text = " ".join(proc.stdout.split())  # argparse wraps to the terminal's width
    assert "--workers" in text
    assert "exit codes: 0 every row was scored" in text
    assert "3 some rows were rejected: the rest is written" in text


def test_serving_path_never_imports_the_scorer_or_its_dependencies():
    probe = (
        "import sys, runtime; import handler; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('batch', 'pyarrow', 'tqdm', 'ray') "
        "or m == 'diecast.commands.score'))"
    )
    env_path = f"{REPO_ROOT}:{REPO_ROOT / 'lambda'}"
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env={"PYTHONPATH": env_path}
    )
    assert proc.stdout.strip() == "[]"


def in_build_context(path: str, rules: list[str]) -> bool:
    """Whether ``.dockerignore``'s ``rules`` let ``path`` into the image's build context: the last rule matching
    the path or a folder above it wins; ``!`` lets it in."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for rule in rules:
        if not rule or rule.startswith("#"):
            continue
        pattern = rule.removeprefix("!").rstrip("/")
        if any(fnmatch.fnmatch(c, pattern) for c in candidates):
            included = rule.startswith("!")
    return included


def test_the_serving_image_leaves_the_scorer_out():
    rules = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    assert in_build_context("runtime/model.py", rules)  # the rules are read as Docker reads them
    modules = [*sorted((REPO_ROOT / "batch").glob("*.py")), REPO_ROOT / "diecast" / "commands" / "score.py"]
    for module in modules:
        name = module.relative_to(REPO_ROOT).as_posix()
        assert not in_build_context(name, rules), name
    assert not list((REPO_ROOT / "runtime").glob("score*.py"))  # batch scoring lives in batch/, not the runtime


def batch_imports() -> dict[str, set[str]]:
    """Each ``batch`` module -> the modules it imports when run (``TYPE_CHECKING`` blocks left out; an entry of
    ``batch.engines.ENGINES`` counts as an import of its module by ``batch.engines``)."""
    import ast

    from batch.engines import ENGINES

    graph: dict[str, set[str]] = {}
    for path in sorted((REPO_ROOT / "batch").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
                node.body = []
        deps: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                deps |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module == "batch":
                deps |= {f"batch.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                deps.add(node.module)
        graph["batch" if path.stem == "__init__" else f"batch.{path.stem}"] = deps
    graph["batch.engines"] |= {target.split(":")[0] for target in ENGINES.values()}
    return graph


def test_batch_has_no_import_cycle_and_its_command_line_side_needs_only_the_standard_library():
    graph = batch_imports()
    state: dict[str, str] = {}

    def visit(module: str, trail: tuple[str, ...]) -> None:
        assert state.get(module) != "open", f"import cycle: {' -> '.join((*trail, module))}"
        if module in state or module not in graph:
            return
        state[module] = "open"
        for dep in sorted(graph[module]):
            visit(dep, (*trail, module))
        state[module] = "done"

    for module in graph:
        visit(module, ())
    third_party = {"numpy", "pyarrow", "tqdm", "ray", "onnxruntime", "runtime"}
    for module in ("batch", "batch.job", "batch.engines"):  # what `diecast score`'s configure() reads
        heavy = {d for d in graph[module] if d.split(".")[0] in third_party}
        assert not heavy, f"{module} imports {sorted(heavy)}"


RAY_SCRIPT = """
import sys
import ray
from diecast import cli
modules = sys.argv[1].split(",")
ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", runtime_env={"py_modules": modules})
codes = []
for source, output, chunk in zip(sys.argv[2::3], sys.argv[3::3], sys.argv[4::3]):
    args = [source, output, "--engine", "ray", "--workers", "2", "--chunk-rows", chunk, "--model", sys.argv[-1]]
    codes.append(cli.main(["score", *args, "--no-progress"]))
print("codes", codes)
"""
RAY_TIMEOUT_S = 420  # a wedged Ray fails this test instead of hanging CI


@pytest.mark.slow
def test_ray_engine_matches_predict_and_rejects_alike(tmp_path, inputs, expected, messy_csv):
    pytest.importorskip("ray")
    # Given a local Ray instance with 2 CPUs (in its own process, so a wedged Ray cannot hang the suite)
    jobs = [
        (inputs["full", "csv"], tmp_path / "ray-csv.parquet", 1000),
        (inputs["full", "parquet"], tmp_path / "ray-parquet.csv", 997),
        (messy_csv, tmp_path / "messy-scores.csv", 4),
    ]
    argv = [PACKAGE_DIRS, *(str(x) for job in jobs for x in job), str(ONNX_DIR)]
    # When the embedded data (both formats) and the messy file are scored by 2 actors in small batches
    proc = subprocess.run(
        [sys.executable, "-c", RAY_SCRIPT, *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RAY_TIMEOUT_S,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        check=False,
    )
    assert "codes [0, 0, 3]" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-4000:]
    # Then the rows come back in order with predict()'s exact numbers
    for _, output, _ in jobs[:2]:
        assert_same_as_predict(read_output(output), expected, len(expected["label"]))
    # And bad rows are rejected by the same rule and numbered as the local engine numbers them
    assert pacsv.read_csv(tmp_path / "messy-scores.rejects.csv")["row"].to_pylist() == [3, 5, 7, 9]
