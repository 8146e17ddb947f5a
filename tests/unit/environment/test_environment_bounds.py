"""The oracle (exact DP on the latent model) bounds every journey baseline on the same seeds."""

from __future__ import annotations

import numpy as np
import pytest

from environment.bounds import OraclePolicy, hindsight_lp, solve_oracle
from environment.heuristics import EmailEveryK, evaluate_journey, journey_baselines
from environment.vector import JourneyVectorEnv

N = 400


@pytest.fixture(scope="module")
def oracle_scores():
    return {seed: evaluate_journey(OraclePolicy(), n_customers=N, seed=seed) for seed in (0, 1)}


@pytest.mark.parametrize("seed", [0, 1])
def test_oracle_scores_at_least_every_tuned_baseline(oracle_scores, seed) -> None:
    oracle = oracle_scores[seed]
    for policy in [*journey_baselines(), EmailEveryK(k=2), EmailEveryK(k=7)]:
        score = evaluate_journey(policy, n_customers=N, seed=seed)
        assert oracle.mean >= score.mean, f"{score.policy} {score.mean:.3f} beats the oracle {oracle.mean:.3f}"


def test_dp_value_matches_monte_carlo() -> None:
    env = JourneyVectorEnv(N)
    env.reset(seed=5)
    start = env.state
    oracle = OraclePolicy(env)
    expected = oracle.expected_value().mean()
    runs = []
    for seed in range(3):  # the same customers and initial states, three independent futures
        env.state, env._np_random = start, np.random.default_rng(1000 + seed)
        total = np.zeros(N)
        for _ in range(env.horizon):
            action, _ = oracle.predict(None)
            _, r, *_ = env.step(action)
            total += r
        runs.append(total)
    sample = np.concatenate(runs)
    assert abs(sample.mean() - expected) < 4 * sample.std() / np.sqrt(len(sample))


def test_dp_one_day_is_the_best_immediate_expected_reward() -> None:
    env = JourneyVectorEnv(50)
    env.reset(seed=2)
    solution = solve_oracle(env.tables, env.state.resp, horizon=1)
    assert (solution.value0 >= -1e-12).all()  # waiting is always available and costs nothing on the last day


def test_hindsight_lp_is_a_fractional_knapsack() -> None:
    value = np.array([4.0, 3.0, 1.0, 0.5])
    price = np.array([1.0, 2.0, 1.0, 1.0])
    result = hindsight_lp(value, price, budget=3.5)  # ratios 4, 1.5, 1, 0.5: take 1, 2, then half of 3
    assert result.value == pytest.approx(4 + 3 + 0.5)
    assert result.spend == pytest.approx(3.5)
