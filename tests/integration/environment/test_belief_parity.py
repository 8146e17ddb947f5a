"""The belief over the hidden journey state, at the joint between the simulator and the engine: the journey agent's
day-fold over the events holds the same belief as the simulator's filter, and the servable planner acts the same
through the simulator, the agent and the API (``ame sim parity``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import environment.belief_fold as belief_fold
from agents.journey import JourneyAgent, JourneyConfig
from agents.runtime import AgentShard, ShardConfig
from ame.cli import app
from ame.parity import run_parity
from data.log import open_log
from environment.belief import PlannerSpec
from environment.belief_planner import BeliefObserving, ServedPlanner, VisibleState
from environment.config import load_market_config
from environment.stream import stream_market
from policies.ope import OPEError
from policies.ope_log import pick_behaviour, read_decisions
from policies.ope_trajectory import target_probabilities
from policies.slots import LoadedPolicy

runner = CliRunner()
PLANNER = "belief_lookahead_u4_grid"
PLANNER_SPEC = PlannerSpec(lookahead=True, unsub_price=4.0, grid=True)


class _Recording(ServedPlanner):
    """The servable planner, keeping the belief it was last given (the simulator's filter)."""

    def on_belief(self, belief: np.ndarray, visible: VisibleState) -> Any:
        self.last = belief.copy()
        return super().on_belief(belief, visible)


def _agent_beliefs(tmp_path: Path, customers: int, days: int) -> tuple[np.ndarray, np.ndarray]:
    """(simulator's belief, agent's belief) at the last day's tick, per customer."""
    log_url = _log_url(tmp_path)
    planner = _Recording(PLANNER_SPEC)
    stream_market(open_log(log_url), customers, days, policy=planner, seed=5, ticks=True)
    served = ServedPlanner(PLANNER_SPEC)  # its own instance: the recording keeps the simulator's belief
    shard = AgentShard(JourneyAgent(JourneyConfig(holdout_share=0.0), policy=served),
                       ShardConfig(log_url=log_url, state_dir=tmp_path / "agents"), start=False)
    shard.catch_up()
    records = shard.state.records()
    shard.close()
    ids = sorted(k for k in records if k.startswith("sim5-"))
    agent = np.array([records[cid]["belief"] for cid in ids])
    return planner.last.reshape(len(ids), -1), agent


def _log_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'events.db'}"


def test_the_agents_belief_is_the_simulators(tmp_path: Path) -> None:
    sim, agent = _agent_beliefs(tmp_path, 60, 8)
    assert sim.shape == agent.shape == (60, 60)
    np.testing.assert_allclose(agent, sim, rtol=0, atol=1e-9)


def test_the_belief_parity_fails_when_the_fold_misses_what_a_day_showed(tmp_path: Path, monkeypatch) -> None:
    real = belief_fold.note_seen

    def without_opens(record, event_type, t_us, *rest):
        if event_type not in ("email_open", "push_open"):
            real(record, event_type, t_us, *rest)

    monkeypatch.setattr("agents.journey.note_seen", without_opens)
    sim, agent = _agent_beliefs(tmp_path, 60, 8)
    assert np.abs(agent - sim).max() > 1e-3


def test_off_policy_evaluation_reads_the_logged_belief(tmp_path: Path) -> None:
    """Each decision logs the belief it was taken on; the planner, judged on its own log, gives the action the agent
    carried out probability 1 (the joint between the agent's log and OPE)."""
    _agent_beliefs(tmp_path, 60, 8)
    found = read_decisions(open_log(_log_url(tmp_path)), load_market_config().journey)
    logged = pick_behaviour(found, f"{PLANNER}@builtin")
    assert logged.belief is not None and logged.belief.shape == (len(logged), 5, 3, 4)
    p = target_probabilities(ServedPlanner(PLANNER_SPEC), logged)
    agree = p[np.arange(len(logged)), logged.action]
    assert len(logged) == 60 * 8 and (agree == 1.0).mean() >= 0.995
    blind = dataclasses.replace(logged, belief=None)
    with pytest.raises(OPEError, match="belief"):
        target_probabilities(ServedPlanner(PLANNER_SPEC), blind)


class _ReadsTheBelief:
    """A stand-in for a policy trained on the belief columns: it offers where the belief says "considering"."""

    name = "reads-the-belief"

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        considering = observation[:, 24:].reshape(len(observation), 5, 3, 4)[:, 2].sum(axis=(1, 2))
        return np.where(considering > 0.2, 5, np.where(considering > 0.1, 1, 0)), state


def test_a_belief_observing_policy_acts_the_same_through_the_agent_and_the_api(tmp_path: Path) -> None:
    """A trained policy that observes the belief columns is served with the belief the agent keeps: the simulator,
    the agent and the API choose the same actions."""
    policy = LoadedPolicy("reads-the-belief", "builtin", BeliefObserving(_ReadsTheBelief()))
    result = run_parity(60, 6, 9, tmp_path, policy, shards=1)
    assert result.agent_agreement == 1.0 and result.serve_agreement == 1.0
    assert float(result.agent_columns.max()) == 0.0


@pytest.mark.slow
def test_the_parity_command_holds_for_the_servable_planner(tmp_path: Path) -> None:
    out = tmp_path / "parity.json"
    result = runner.invoke(app, ["sim", "parity", "--customers", "80", "--days", "8", "--seed", "3",
                                 "--policy", PLANNER, "--registry", str(tmp_path / "reg"), "--json", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    assert figures["agent_agreement"] == 1.0 and figures["serve_agreement"] == 1.0
