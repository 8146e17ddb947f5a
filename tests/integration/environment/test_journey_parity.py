"""The joints of the journey: what the simulator computes, the journey agent folds and the API reads with the same
meaning (``ame sim parity``), and what the log's reward projection reads is what the simulator paid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import environment.observation as observation
from agents.journey import JourneyAgent, JourneyConfig
from agents.runtime import AgentShard, ShardConfig
from ame.cli import app
from ame.parity import run_parity, serving_policy
from data.log import open_log
from environment.config import load_market_config
from environment.stream import stream_market
from policies.ope_log import pick_behaviour, read_decisions

runner = CliRunner()


def test_the_parity_command_holds_for_a_sampled_policy(tmp_path: Path) -> None:
    out = tmp_path / "parity.json"
    result = runner.invoke(app, ["sim", "parity", "--customers", "120", "--days", "12", "--seed", "3",
                                 "--policy", "offer_every_k-eps0.2", "--registry", str(tmp_path / "reg"), "--json", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    assert figures["ok"] and figures["customer_days"] == 120 * 12
    assert max(figures["agent_columns"].values()) <= 1e-6 and max(figures["serve_columns"].values()) <= 1e-6
    assert figures["agent_agreement"] == 1.0 and figures["serve_agreement"] == 1.0
    assert "recent_visits" in result.output and "parity holds" in result.output


@pytest.mark.parametrize("kind", [3, 1])  # visits, opens
def test_the_parity_command_fails_when_the_agents_fold_changes_one_column(tmp_path: Path, monkeypatch, kind: int) -> None:
    real = observation.fold_event

    def off_by_a_day(record, event_type, t_us, properties, spec):
        shifted = t_us - observation.DAY_US if observation.KIND_OF_EVENT.get(event_type) == kind else t_us
        return real(record, event_type, shifted, properties, spec)

    monkeypatch.setattr("agents.journey.fold_event", off_by_a_day)
    result = run_parity(150, 12, 4, tmp_path, serving_policy("engagement_ladder", tmp_path / "reg"), shards=1)
    column = ("since_open", "since_visit")[kind == 3]
    index = observation.OBSERVATION_COLUMNS.index(column)
    assert result.agent_columns[index] > 1e-6 and not result.ok(1e-6, 0.999)
    assert result.agent_columns[observation.OBSERVATION_COLUMNS.index("consent_email")] == 0.0  # the others hold


def test_the_reward_projection_reads_what_the_simulator_paid(tmp_path: Path) -> None:
    """Each decision's reward joined from the log (purchases, discounts, costs, unsubscribes in its window) equals
    the simulator's reward for that customer-day."""
    log_url = f"sqlite:///{tmp_path / 'events.db'}"
    policy = serving_policy("engagement_ladder-eps0.3", tmp_path / "reg")
    paid: dict[int, np.ndarray] = {}
    stream_market(open_log(log_url), 300, 15, policy=policy.policy, seed=8, ticks=True,
                  on_outcome=lambda day, outcome: paid.__setitem__(day, outcome.reward.copy()))
    shard = AgentShard(JourneyAgent(JourneyConfig(holdout_share=0.0), policy=policy.policy),
                       ShardConfig(log_url=log_url, state_dir=tmp_path / "agents"), start=False)
    shard.catch_up()
    shard.close()
    logged = pick_behaviour(read_decisions(open_log(log_url), load_market_config().journey))
    assert len(logged) == 300 * 15 and logged.behaviour.name == "engagement_ladder-eps0.3"
    customer = np.array([int(logged.customers[c][-7:]) for c in logged.customer])
    expected = np.array([paid[s][c] for c, s in zip(customer, logged.step, strict=True)])
    assert np.allclose(logged.reward, expected, atol=1e-9), np.abs(logged.reward - expected).max()
    assert (expected > 0).sum() > 5 and (expected < 0).sum() > 100  # some bought; contacts cost
