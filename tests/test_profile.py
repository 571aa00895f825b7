"""benchmarks/profile.py's arithmetic: what bounds each benchmark target, from a run's results and profile."""

from __future__ import annotations

import pytest

from benchmarks.profile import bound_lines, table
from benchmarks.targets import TARGET

PROFILE = {
    "floor_s": 20e-6,
    "graph_batch_1_s": 120e-6,
    "graph_batch_1000_s_per_row": 28e-6,
    "stages": [
        {"stage": "scaler (float64) + Clip + Cast", "batch_1_s": 6e-6, "batch_1000_s_per_row": 0.1e-6},
        {"stage": "Softmax over 4 x 30 x 30", "batch_1_s": 10e-6, "batch_1000_s_per_row": 10e-6},
        {"stage": "Concat + 200 trees + Sigmoid + label", "batch_1_s": 20e-6, "batch_1000_s_per_row": 6e-6},
    ],
    "imports": {"python": 0.02, "numpy": 0.14, "numpy_onnxruntime": 0.19},
}
SLOW = {
    "onnx_handler": 230e-6,
    "onnx_predict": 155e-6,
    "reference_predict": 2100e-6,
    "onnx_rows_per_s_1000": 35_000.0,
    "reference_rows_per_s_1000": 18_000.0,
    "onnx_cold_start": 0.25,
    "reference_cold_start": 4.9,
}


def test_every_target_not_met_gets_its_budget_and_its_bound():
    lines = bound_lines(SLOW, PROFILE, TARGET)
    assert [line.split(":")[0].strip() for line in lines] == ["handler", "predict()", "batch 1000", "cold start"]
    handler, predict, batch, cold = lines
    assert "needs <= 140 us" in handler  # 2100 / 15
    assert "leaving 20 us" in handler  # 140 - 120
    assert "which takes 110 us" in handler  # 230 - 120
    assert "needs <= 84 us" in predict  # 2100 / 25
    assert "at most 17.5x" in predict  # 2100 / 120
    assert "needs <= 13.9 us/row" in batch  # 1e6 / 18000 / 4
    assert "alone take 16.0 us/row" in batch  # softmax 10 + trees 6
    assert "at most 3.5x" in batch  # 55.6 / 16
    assert "needs <= 245 ms" in cold  # 4900 / 20
    assert "take 210 ms" in cold  # 20 + 190
    assert "at most 23.3x" in cold


def test_a_graph_slower_than_the_whole_budget_leaves_nothing_for_python():
    results = SLOW | {"reference_predict": 1500e-6}  # 15x needs <= 100 us; the graph takes 120
    [handler] = [line for line in bound_lines(results, PROFILE, TARGET) if line.strip().startswith("handler")]
    assert "leaving 0 us" in handler


def test_targets_met_print_no_bound():
    fast = {
        "onnx_handler": 50e-6,
        "onnx_predict": 30e-6,
        "reference_predict": 2100e-6,
        "onnx_rows_per_s_1000": 80_000.0,
        "reference_rows_per_s_1000": 18_000.0,
        "onnx_cold_start": 0.2,
        "reference_cold_start": 4.9,
    }
    assert bound_lines(fast, PROFILE, TARGET) == []


@pytest.mark.parametrize("row", ["session.run fixed cost", "Softmax over", "the whole graph", "cold start"])
def test_the_table_shows_every_stage(row):
    assert any(row in line for line in table(PROFILE))
