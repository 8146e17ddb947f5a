"""Benchmark results serialize to JSON whatever numbers a benchmark computed them with."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks.common import BenchResult, write_json


def test_numpy_figures_and_verdicts_write_as_json(tmp_path: Path) -> None:
    rate, single = np.float64(3.2e6), np.float64(5_000.0)
    results = [
        BenchResult("environment", "vector env", rate, "steps/s", "single env", single, ">= 1,000,000/s", rate >= 1_000_000),
        BenchResult("log", "no target", np.float32(1.5), "events/s", "-", None, "", None),
        BenchResult("creative", "not found", float("nan"), "impressions", "horizon", np.int64(100_000), "", np.False_),
    ]
    assert type(results[0].met) is bool and type(results[0].value) is float
    write_json(results, tmp_path / "out.json")
    rows = json.loads((tmp_path / "out.json").read_text())
    assert [r["met"] for r in rows] == [True, None, False]
    assert rows[0]["value"] == 3.2e6 and rows[1]["baseline_value"] is None
    assert rows[2]["value"] is None and rows[2]["baseline_value"] == 100_000.0  # NaN is not JSON: null
