"""``ame train scoring`` / ``ame models score`` on CSV files as users have them (a ``;`` file with quoted headers)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from policies.cli import models_app, train_app
from tests.unit.data.test_csvfile import bank_marketing_csv

runner = CliRunner()


def test_train_scoring_on_a_semicolon_file_with_quoted_headers(tmp_path: Path, log_url: str) -> None:
    csv = bank_marketing_csv(tmp_path / "bank-additional-full.csv", rows=3_000)
    registry = tmp_path / "models"
    result = runner.invoke(train_app, ["scoring", "--csv", str(csv), "--target", "y", "--registry", str(registry)],
                           catch_exceptions=False, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "ROC-AUC" in result.output and "saved lead model" in result.output
    entry = next((registry / "lead").iterdir())
    metrics = json.loads((entry / "metrics.json").read_text())
    assert metrics["test"]["roc_auc"] > 0.7  # y depends on duration, euribor3m, poutcome and contact
    scored = runner.invoke(models_app, ["score", "--csv", str(csv), "--sep", ";", "--registry", str(registry), "--log", log_url,
                                        "--as-of", "2026-01-01T00:00:00Z", "--no-events"], catch_exceptions=False)
    assert scored.exit_code == 0 and "scored 3,000 customers" in scored.output


def test_a_wrong_separator_is_one_clear_error(tmp_path: Path) -> None:
    csv = bank_marketing_csv(tmp_path / "bank.csv", rows=50)
    result = runner.invoke(train_app, ["scoring", "--csv", str(csv), "--target", "y", "--sep", ",",
                                       "--registry", str(tmp_path / "models")], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert "read as one column" in result.output and "pass --sep ';'" in result.output
