"""Fairness audit on the real Hillstrom data: a visit score trained without the customer's area (zip_code) and
new-customer flag, audited per group; the figures are checked against pandas on the same rows, and a bound on
the calibration gap refuses the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from policies.cli import models_app, train_app
from policies.scoring.registry import ModelRegistry

runner = CliRunner()
TRAIN = ["scoring", "--target", "visit", "--drop", "conversion,spend", "--sensitive", "zip_code", "--sensitive", "newbie"]


def test_hillstrom_audit_matches_pandas_and_a_bound_refuses_the_model(datasets: Path, tmp_path: Path) -> None:
    csv = datasets / "hillstrom" / "hillstrom.csv"
    registry = str(tmp_path / "models")
    trained = runner.invoke(train_app, [*TRAIN, "--csv", str(csv), "--registry", registry], env={"COLUMNS": "220"})
    assert trained.exit_code == 0, trained.output
    entry = ModelRegistry(registry).path("lead")
    assert "zip_code (sensitive: audited, not a feature)" in (entry / "model_card.md").read_text()
    test_split = json.loads((entry / "metrics.json").read_text())["fairness"]
    assert sum(g["rows"] for g in test_split["columns"][0]["groups"]) == 12_800

    sample = tmp_path / "sample.csv"
    frame = pd.read_csv(csv).sample(n=20_000, random_state=1)
    frame.to_csv(sample, index=False)
    audited = runner.invoke(models_app, ["audit", "--csv", str(sample), "--registry", registry, "--json", "--resamples", "200"])
    assert audited.exit_code == 0, audited.output
    audit = json.loads(audited.output)
    zip_code = {g["group"]: g for g in audit["columns"][0]["groups"]}
    assert set(zip_code) == {"Urban", "Surburban", "Rural"} and audit["columns"][0]["reference"] == "Surburban"

    scores = ModelRegistry(registry).load_scoring("lead").score_frame(frame.reset_index(drop=True))
    selected = pd.Series(scores["score"].to_numpy() >= 80, index=frame.index)
    for area, figures in zip_code.items():
        rows = frame["zip_code"] == area
        assert figures["rows"] == rows.sum()
        assert figures["observed_rate"]["value"] == np.float64(frame.loc[rows, "visit"].mean())
        assert abs(figures["selection_rate"]["value"] - selected[rows].mean()) < 1e-12
        assert abs(figures["tpr"]["value"] - selected[rows & (frame["visit"] == 1)].mean()) < 1e-12
        assert abs(figures["fpr"]["value"] - selected[rows & (frame["visit"] == 0)].mean()) < 1e-12
        assert figures["tpr"]["low"] < figures["tpr"]["value"] < figures["tpr"]["high"]
    # without its area the model under-predicts rural customers' visits (18.8% visit against 14.7% overall)
    rural = zip_code["Rural"]["calibration_gap"]
    assert rural["high"] < 0
    assert audit["columns"][0]["disparities"]["calibration_gap"]["group"] == "Rural"

    refused = runner.invoke(train_app, [*TRAIN, "--csv", str(csv), "--registry", registry, "--fairness-bound", "calibration_diff=0.03"],
                            env={"COLUMNS": "220"})
    assert refused.exit_code == 2
    assert "was not registered" in refused.output and "calibration_diff=0.03: newbie=0 has calibration gap" in refused.output
    assert len(ModelRegistry(registry).versions("lead")) == 1
