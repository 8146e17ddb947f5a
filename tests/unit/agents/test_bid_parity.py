"""``ame sim parity-bid``: the simulator, the bidding agent and /v1/bid's read path agree on every bid-observation
column and on the multiplier; one column folded wrongly by the agent, or a residual reading its features
wrongly, makes it fail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import agents.bidding
import policies.bid_serving
import serve.decide
from ame.cli import app
from ame.parity_bid import run_parity
from policies.bidder import ProfilePacing

SMALL = ["--campaigns", "2", "--days", "2", "--opportunities", "1000", "--seed", "3"]


def test_parity_bid_passes_on_a_small_case() -> None:
    result = CliRunner().invoke(app, ["sim", "parity-bid", *SMALL], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "last_conversion_value" in result.output and "multiplier" in result.output and "NO" not in result.output


def test_parity_bid_fails_when_the_agent_folds_one_column_wrongly(monkeypatch: pytest.MonkeyPatch) -> None:
    fold = agents.bidding.fold_conversions
    monkeypatch.setattr(agents.bidding, "fold_conversions", lambda facts, spec, g, value: fold(facts, spec, g, value * 1.01))
    result = CliRunner().invoke(app, ["sim", "parity-bid", *SMALL], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    wrong = [line for line in result.output.splitlines() if "NO" in line]
    assert len(wrong) == 1 and "last_conversion_value" in wrong[0]


class _Features:
    """A residual that moves with every one of its features (so a feature read differently shows)."""

    def __init__(self, shift: float = 0.0) -> None:
        self.shift = shift

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        weights = np.linspace(0.2, 1.0, obs.shape[1])
        return (1.0 + 0.1 * np.tanh(obs @ weights + self.shift))[:, None], state


def test_parity_holds_with_a_residual_inside_the_controller(tmp_path: Path) -> None:
    result = run_parity(2, 2, 1, 1_000, 1 / 16, tmp_path, bidder=ProfilePacing(residual=_Features()))
    assert result.ok() and result.moments == 2 * 2 * 96


def test_a_served_residual_that_reads_differently_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    view = policies.bid_serving.campaign_view

    def shifted(*args, **kwargs):  # /v1/bid's read path with budget left read one point high
        out = view(*args, **kwargs)
        out.observation[:, 2] += 0.01
        return out

    monkeypatch.setattr(policies.bid_serving, "campaign_view", shifted)
    monkeypatch.setattr(serve.decide, "campaign_view", shifted)
    result = run_parity(1, 1, 1, 1_000, 1 / 16, tmp_path, bidder=ProfilePacing(residual=_Features()))
    assert not result.ok() and result.columns[2] == pytest.approx(0.01, rel=1e-3) and result.multiplier > 1e-6
