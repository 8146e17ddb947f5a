"""Off-policy evaluation on logged trajectories: the estimators on simulated logs with a known truth, and
``ame ope`` on the engine's own log (the journey agent's decisions, rewards joined from the log)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from agents.journey import JourneyAgent, JourneyConfig
from agents.runtime import AgentShard, ShardConfig
from ame.cli import app
from data.log import open_log
from environment.acting import choose
from environment.heuristics import heuristic_policy
from environment.stream import stream_market
from environment.vector import JourneyVectorEnv
from policies.ope import OPEError
from policies.ope_log import Behaviour, LoggedDecisions
from policies.ope_trajectory import behaviour_value, evaluate_trajectories

runner = CliRunner()


def simulated_log(behaviour, n: int, days: int, seed: int) -> LoggedDecisions:
    """A behaviour's trajectories on the simulator, logged as the engine logs them."""
    env = JourneyVectorEnv(n)
    obs, info = env.reset(seed=seed)
    draws = np.random.default_rng(seed + 1)
    rows = []
    for t in range(days):
        choice = choose(behaviour, obs, info["action_mask"], draws.random(n))
        before, mask = obs, info["action_mask"]
        obs, reward, _, _, info = env.step(choice.executed)
        rows.append((before, mask, choice.executed, choice.propensity, reward, t))
    order = np.lexsort((np.repeat(np.arange(days), n), np.tile(np.arange(n), days)))

    def cat(i: int) -> np.ndarray:
        return np.concatenate([r[i] for r in rows])[order]

    return LoggedDecisions(Behaviour("b", "1"), np.tile(np.arange(n), days)[order], np.repeat(np.arange(days), n)[order],
                           cat(0), cat(1), cat(2), cat(3), cat(4), tuple(map(str, range(n))))


def true_value(policy, n: int, days: int, seed: int) -> float:
    env = JourneyVectorEnv(n)
    obs, info = env.reset(seed=seed)
    total = np.zeros(n)
    for _ in range(days):
        obs, reward, _, _, info = env.step(choose(policy, obs, info["action_mask"]).executed)
        total += reward
    return float(total.mean())


def test_evaluating_the_logged_policy_itself_gives_what_it_earned() -> None:
    logged = simulated_log(heuristic_policy("offer_every_k"), 500, 10, seed=3)
    est = evaluate_trajectories(heuristic_policy("offer_every_k"), logged, n_boot=50)
    for name in ("is", "snips", "dr"):
        assert est[name].value == pytest.approx(behaviour_value(logged), rel=1e-9)
    assert est["is"].effective_sample_size == pytest.approx(500)


def test_a_different_target_is_recovered_from_an_exploring_behaviour() -> None:
    logged = simulated_log(heuristic_policy("offer_every_k-eps0.1"), 15_000, 20, seed=5)
    target = heuristic_policy("offer_every_k")
    truth = true_value(target, 40_000, 20, seed=6)  # the same market, more customers: a precise truth
    est = evaluate_trajectories(target, logged, n_boot=200)
    assert abs(behaviour_value(logged) / truth - 1) > 0.04  # the behaviour earns visibly less than the target
    for name in ("snips", "dr"):
        assert est[name].ci_low <= truth <= est[name].ci_high, (name, est[name], truth)
        assert abs(est[name].value / truth - 1) < 0.10


def test_bad_propensities_are_refused() -> None:
    logged = simulated_log(heuristic_policy("offer_every_k"), 50, 3, seed=1)
    broken = LoggedDecisions(**{**{f: getattr(logged, f) for f in logged.__dataclass_fields__},
                                "propensity": np.zeros(len(logged))})
    with pytest.raises(OPEError, match=r"\(0, 1\]"):
        evaluate_trajectories(heuristic_policy("offer_every_k"), broken, n_boot=0)


def _engine_log(tmp_path: Path, policy: str, customers: int = 400, days: int = 20) -> str:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    stream_market(open_log(url), customers, days, policy=policy, seed=2, ticks=True)
    shard = AgentShard(JourneyAgent(JourneyConfig(holdout_share=0.0), policy=heuristic_policy(policy)),
                       ShardConfig(log_url=url, state_dir=tmp_path / "agents"), start=False)
    shard.catch_up()
    shard.close()
    return url


def test_ame_ope_reads_the_engines_own_log(tmp_path: Path) -> None:
    url = _engine_log(tmp_path, "offer_every_k-eps0.2")
    out = tmp_path / "ope.json"
    result = runner.invoke(app, ["ope", "--policy", "offer_every_k", "--log", url, "--n-boot", "100", "--json", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    assert figures["behaviour"] == "offer_every_k-eps0.2@builtin" and figures["decisions"] == 400 * 20
    assert set(figures["estimates"]) == {"is", "snips", "dm", "dr"}
    assert all(e["ci_low"] <= e["value"] <= e["ci_high"] for e in figures["estimates"].values())


def test_ame_ope_names_the_behaviours_it_found_when_asked_for_another(tmp_path: Path) -> None:
    url = _engine_log(tmp_path, "offer_every_k-eps0.2", customers=50, days=3)
    result = runner.invoke(app, ["ope", "--policy", "offer_every_k", "--log", url, "--behaviour", "journey-ppo@v0001"])
    assert result.exit_code == 2 and "offer_every_k-eps0.2@builtin" in result.output
    empty = runner.invoke(app, ["ope", "--policy", "offer_every_k", "--log", f"sqlite:///{tmp_path / 'none.db'}"])
    assert empty.exit_code == 2 and "no journey decision" in empty.output
