"""Tiny trainings through the entry points and the CLI: they register, evaluate and export correctly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ame.cli import app
from environment.belief_planner import ActsOnBelief
from environment.config import load_market_config
from environment.heuristics import journey_baselines
from policies.evaluate import bidding_suite, mean_ci, resolve_policy, run_journey
from policies.imitation import planner_demonstrations
from policies.slots import RegistrySource, SlotTarget


def test_train_journey_tiny_registers_a_policy(tmp_path: Path) -> None:
    from policies.train_journey import JourneyArgs, main  # lazy: loads torch and stable-baselines3

    path = main(JourneyArgs(timesteps=512, num_envs=16, batch_size=240, eval_customers=100, registry=str(tmp_path / "reg"),
                            run_dir=str(tmp_path / "run"), progress=False, checkpoint_every=256))
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["algo"] == "MaskablePPO" and meta["masked"] and meta["timesteps"] == 512
    assert {"profit_per_customer", "best_heuristic_profit", "unsubscribe_rate"} <= set(meta["metrics"])
    assert (path / "progress.csv").is_file() and list((tmp_path / "run" / "checkpoints").glob("*.zip"))


@pytest.mark.parametrize("algo", ["a2c", "dqn"])
def test_train_journey_other_algorithms(tmp_path: Path, algo: str) -> None:
    from policies.train_journey import JourneyArgs, main  # lazy: loads torch and stable-baselines3

    path = main(JourneyArgs(algo=algo, timesteps=400, num_envs=8, eval_customers=50, registry=str(tmp_path),
                            run_dir=str(tmp_path / "run"), progress=False))
    assert json.loads((path / "metadata.json").read_text())["masked"] is False


def test_train_bidding_tiny(tmp_path: Path) -> None:
    from policies.train_bidding import BiddingArgs, main  # lazy: loads torch and stable-baselines3

    path = main(BiddingArgs(algo="ppo", timesteps=400, num_envs=2, opportunities_per_day=2_000, days=2, eval_campaigns=2,
                            eval_opportunities=2_000, registry=str(tmp_path), run_dir=str(tmp_path / "run"), progress=False))
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["export_kind"] == "continuous" and 0 <= meta["metrics"]["spend_share"] <= 1.0 + 1e-9


def test_cli_policies_evaluate_and_ope(tmp_path: Path) -> None:
    from policies.train_journey import JourneyArgs, main  # lazy: loads torch and stable-baselines3

    reg = str(tmp_path / "reg")
    main(JourneyArgs(timesteps=256, num_envs=16, batch_size=240, eval_customers=50, registry=reg, run_dir=str(tmp_path / "run"),
                     progress=False))
    runner = CliRunner()
    result = runner.invoke(app, ["policies", "list", "--registry", reg])
    assert result.exit_code == 0 and "journey-ppo" in result.output
    log = f"sqlite:///{tmp_path / 'events.db'}"
    gate = ["--gate-seeds", "2", "--gate-customers", "200", "--log", log]
    result = runner.invoke(app, ["policies", "promote", "journey-ppo", "--registry", reg, "--force", *gate])
    assert result.exit_code == 0 and "journey-ppo@v0001" in result.output  # barely trained: forced past the gate
    result = runner.invoke(app, ["policies", "show", "journey-ppo", "--registry", reg])
    assert result.exit_code == 0 and "env_config_hash" in result.output
    result = runner.invoke(app, ["policies", "promote", "nope", "--registry", reg])
    assert result.exit_code == 2 and "ame train" in result.output
    out = tmp_path / "report"
    result = runner.invoke(app, ["evaluate", "journey", "--policies", "email_every_k,journey-ppo", "--seeds", "2", "--customers", "100",
                                 "--out", str(out), "--registry", reg])
    assert result.exit_code == 0, result.output
    assert (out / "journey.png").stat().st_size > 1000 and "oracle" in result.output


def test_evaluate_bidding_suite_small() -> None:
    res = bidding_suite(["dual_pacing", "linear_previous_day"], seeds=2, budgets=(0.125,), opportunities_per_day=2_000, days=2,
                        n_campaigns=2)
    for ms in res.values():
        assert len(ms) == 2
        for m in ms:
            assert not m.overspent and 0 < m.lp_share <= 1.0 + 1e-9


def test_mean_ci() -> None:
    m, h = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and h == pytest.approx(4.303 * 1.0 / np.sqrt(3), rel=1e-3)


def test_train_journey_warm_started_from_the_planner(tmp_path: Path) -> None:
    """Cloning the planner gives a policy that agrees with it; it is evaluated and served with the belief (the agents
    and the API feed it the belief they keep, and act as the simulator does). Trained with unsubscribes priced 2x, it
    is still evaluated (and compared) on the true market."""
    from policies.train_journey import JourneyArgs, main  # lazy: loads torch and stable-baselines3

    reg = str(tmp_path / "reg")
    path = main(JourneyArgs(timesteps=256, num_envs=16, batch_size=240, eval_customers=100, registry=reg,
                            run_dir=str(tmp_path / "run"), progress=False, belief=True, warm_start="planner",
                            demo_customers=300, demo_seeds=2, bc_epochs=8, learning_rate=1e-5, name="journey-bc",
                            unsub_price=2.0, dagger_rounds=1))
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["observation_dim"] == 84 and meta["env_options"]["belief"] is True
    assert meta["env_options"]["unsub_price"] == 2.0
    true_best = max(run_journey(h, None, 100, 10_000).profit for h in journey_baselines())
    assert meta["metrics"]["best_heuristic_profit"] == pytest.approx(true_best)
    assert meta["env_options"]["act"] in ("sample", "argmax")
    assert meta["metrics"]["bc_agreement"] > 0.8 and meta["metrics"]["bc_decisions"] == 2 * 2 * 300 * 60  # + 1 DAgger round
    assert np.isfinite(meta["metrics"]["warm_start_validation_profit"])
    policy = resolve_policy("journey-bc", reg)
    assert policy.name == "journey-bc" and np.isfinite(run_journey(policy, None, 100, 3).profit)
    served = RegistrySource(reg, {}).load("journey", SlotTarget("journey-bc", "v0001"))
    assert isinstance(served, ActsOnBelief)  # the agents feed it the belief they keep (parity: test_belief_parity)
    assert served.acting == meta["env_options"]["act"]


def test_warm_start_needs_a_belief_observing_ppo(tmp_path: Path) -> None:
    from policies.train_journey import JourneyArgs, main  # lazy: loads torch and stable-baselines3

    with pytest.raises(ValueError, match="--belief"):
        main(JourneyArgs(timesteps=64, num_envs=4, registry=str(tmp_path), run_dir=str(tmp_path / "run"), progress=False,
                         warm_start="planner"))


def test_lookahead_demonstrations_are_legal_decisions() -> None:
    demos = planner_demonstrations(load_market_config(), 60, [1], 0.995, lookahead=True)
    assert len(demos) == 60 * 60 and demos.observations.shape == (3600, 84)
    assert demos.masks[np.arange(len(demos)), demos.actions].all()
    assert (demos.actions != 0).any()


def test_dagger_labels_what_the_planner_would_do_where_the_learner_went() -> None:
    """With a learner, the env follows the learner (here: always wait) and the planner only labels: the returns are
    those of waiting every day, the labels the planner's (it would contact)."""
    from environment.vector import JourneyVectorEnv  # lazy: loads torch and stable-baselines3

    config = load_market_config()
    demos = planner_demonstrations(config, 80, [4], 0.9, learner=lambda x, mask: np.zeros(len(x), dtype=np.int64))
    env = JourneyVectorEnv(80, config)
    env.reset(seed=4)
    rewards = [env.step(np.zeros(80, dtype=np.int64))[1] for _ in range(env.horizon)]
    to_go, expected = np.zeros(80), []
    for reward in reversed(rewards):
        to_go = reward + 0.9 * to_go
        expected.append(to_go)
    np.testing.assert_allclose(demos.returns, np.concatenate(expected[::-1]), rtol=1e-5, atol=1e-5)
    assert (demos.actions != 0).any() and demos.masks[np.arange(len(demos)), demos.actions].all()
