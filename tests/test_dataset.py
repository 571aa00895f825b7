"""The embedded synthetic dataset: shape, names, label rate, determinism, and CSV validation."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from convert import dataset
from convert.dataset import DataValidationError, load_csv

pytestmark = pytest.mark.convert


def test_shape_names_and_label_rate(dataset_xy):
    X, y = dataset_xy
    assert X.shape == (7535, 30)
    assert X.dtype == np.float64
    names = dataset.FEATURE_NAMES
    assert sum(n.startswith("Process_") for n in names) == 16
    assert sum(n.startswith("Sensor_") for n in names) == 14
    assert names[0] == "Process_Temperature"
    assert names[1] == "Process_Pressure"
    assert set(np.unique(y)) == {0, 1}
    assert 1689 - 40 <= y.sum() <= 1689 + 40
    # the examples the plant gave: melt ~650 degC, intensification pressure ~120
    assert abs(np.median(X[:, 0]) - 650) < 5
    assert abs(np.median(X[:, 1]) - 120) < 5


def test_readings_sit_mostly_in_the_schema_ranges(dataset_xy):
    X, _ = dataset_xy
    for j, f in enumerate(dataset.FEATURES):
        inside = np.mean((X[:, j] >= f.low) & (X[:, j] <= f.high))
        assert inside > 0.9, f"{f.name}: only {inside:.1%} of rows inside {f.low}..{f.high}"


def test_defect_types_are_consistent_with_the_label():
    with dataset.DEFAULT_CSV.open() as fh:
        rows = list(csv.DictReader(fh))
    kinds = {r["defect_type"] for r in rows}
    assert kinds <= {"none", *dataset.DEFECT_TYPES}
    assert len(kinds - {"none"}) >= 5
    assert all((r["defect"] == "1") == (r["defect_type"] != "none") for r in rows)


def test_generator_reproduces_the_shipped_csv_bit_for_bit(tmp_path):
    X, y, types = dataset.generate()
    out = tmp_path / "again.csv"
    dataset.write_csv(out, X, y, types)
    assert out.read_bytes() == dataset.DEFAULT_CSV.read_bytes()


def test_schema_file_lists_every_feature_with_group_unit_and_range():
    schema = json.loads(dataset.SCHEMA_JSON.read_text())
    assert [f["name"] for f in schema["features"]] == list(dataset.FEATURE_NAMES)
    for f in schema["features"]:
        assert f["group"] in {"process", "sensor"}
        assert f["unit"]
        low, high = f["expected_range"]
        assert low < high


def _write(path, header, rows):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _good_rows(n=4):
    X, y, _ = dataset.generate(n_rows=50)
    y[:2] = [0, 1]
    return [[*map(str, X[i]), str(y[i])] for i in range(n)]


HEADER = [*dataset.FEATURE_NAMES, "defect"]


def test_missing_column_is_named(tmp_path):
    header = [h for h in HEADER if h != "Sensor_Vibration"]
    rows = [r[:27] + r[28:] for r in _good_rows()]
    with pytest.raises(DataValidationError, match=r"missing column\(s\): Sensor_Vibration"):
        load_csv(_write(tmp_path / "a.csv", header, rows))


def test_non_numeric_cell_names_column_and_row(tmp_path):
    rows = _good_rows()
    rows[2][1] = "high"
    with pytest.raises(DataValidationError, match=r"column 'Process_Pressure', row 3: not a number: 'high'"):
        load_csv(_write(tmp_path / "a.csv", HEADER, rows))


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "NaN"])
def test_non_finite_cell_is_rejected(tmp_path, bad):
    rows = _good_rows()
    rows[0][4] = bad
    with pytest.raises(DataValidationError, match=r"column 'Process_FillTime', row 1: value must be finite"):
        load_csv(_write(tmp_path / "a.csv", HEADER, rows))


@pytest.mark.parametrize("bad", ["2", "yes", "", "0.5"])
def test_non_binary_label_is_rejected(tmp_path, bad):
    rows = _good_rows()
    rows[1][-1] = bad
    with pytest.raises(DataValidationError, match=r"column 'defect', row 2: label must be 0 or 1"):
        load_csv(_write(tmp_path / "a.csv", HEADER, rows))


def test_a_valid_csv_loads_in_schema_order_even_with_shuffled_columns(tmp_path):
    rows = _good_rows()
    order = list(reversed(range(len(HEADER))))
    shuffled = _write(tmp_path / "a.csv", [HEADER[i] for i in order], [[r[i] for i in order] for r in rows])
    X, _y = load_csv(shuffled)
    assert X.shape == (4, 30)
    np.testing.assert_array_equal(X[:, 0], [float(r[0]) for r in rows])


def test_production_without_drift_matches_the_training_plant():
    X, y, types = dataset.generate_production(6000, 11)
    assert X.shape == (6000, 30)
    assert abs(y.mean() - dataset.TARGET_DEFECT_RATE) < 0.03
    assert all((t == "none") == (d == 0) for t, d in zip(types, y, strict=True))


def test_a_hydrogen_calibration_shift_moves_the_reading_not_the_defects():
    base_X, base_y, _ = dataset.generate_production(3000, 12)
    X, y, _ = dataset.generate_production(3000, 12, dataset.Drift(hydrogen_offset=0.05))
    h = dataset.FEATURE_NAMES.index("Sensor_MeltHydrogen")
    np.testing.assert_array_equal(y, base_y)
    np.testing.assert_allclose(X[:, h] - base_X[:, h], 0.05, atol=1e-4)  # readings are rounded to 4 decimals
    np.testing.assert_array_equal(np.delete(X, h, axis=1), np.delete(base_X, h, axis=1))


def test_a_degrading_vacuum_raises_the_vacuum_level_and_the_defect_rate():
    base_X, base_y, _ = dataset.generate_production(6000, 13)
    X, y, _ = dataset.generate_production(6000, 13, dataset.Drift(vacuum=0.5))
    v = dataset.FEATURE_NAMES.index("Process_VacuumLevel")
    assert np.median(X[:, v]) > 1.2 * np.median(base_X[:, v])
    assert y.mean() > base_y.mean() + 0.03


def test_diecast_data_check_says_whether_a_csv_is_the_generators(tmp_path, capsys):
    from diecast import cli, exits

    assert cli.main(["data", "--check"]) == 0
    assert "identical to the generator's output" in capsys.readouterr().out
    rows = dataset.DEFAULT_CSV.read_text().splitlines()
    (tmp_path / "edited.csv").write_text("\n".join([rows[0], *rows[2:]]) + "\n")
    assert cli.main(["data", "--check", str(tmp_path / "edited.csv")]) == exits.DATA_DIFFERS
    assert "DIFFERS from the generator's output" in capsys.readouterr().out


def test_diecast_data_writes_simulated_production_and_never_over_the_embedded_csv(tmp_path, capsys):
    from diecast import cli

    out = tmp_path / "weeks" / "week5.csv"  # its folder is created
    assert cli.main(["data", "--production", "40", "--vacuum", "0.5", str(out)]) == 0
    X, y = load_csv(out)
    assert X.shape == (40, 30)
    assert y.shape == (40,)
    assert f"wrote {out}: 40 rows" in capsys.readouterr().out
    older = tmp_path / "older.csv"  # the older spelling, --out FILE, still works
    assert cli.main(["data", "--production", "40", "--out", str(older)]) == 0
    assert load_csv(older)[0].shape == (40, 30)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["data", "--production", "40"])
    assert exit_info.value.code == 2
    assert "--production writes a new file: name it" in capsys.readouterr().err
