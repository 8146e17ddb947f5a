"""AuctionEnv and the auction market: the gymnasium contract, seeding, mechanics, and the hindsight bound."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import environment  # noqa: F401
from environment.auction import AuctionEnv
from environment.auction_market import resolve_auctions
from environment.bidding import ConstantMultiplier, LinearPreviousDay, bidding_baselines, evaluate_bidding
from environment.vector import AuctionVectorEnv, SB3VecEnvAdapter

SMALL = {"opportunities_per_day": 20_000, "days": 3}


@pytest.mark.parametrize("mode", ["multiplier", "bid"])
def test_check_env_passes(mode: str) -> None:
    check_env(AuctionEnv(action_mode=mode, opportunities_per_day=500, days=1), skip_render_check=True)


def test_gym_make_registered_id() -> None:
    env = gym.make("ame/Auction-v0", opportunities_per_day=1_000, days=1)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("mode", ["multiplier", "bid"])
def test_same_seed_same_trajectory(mode: str) -> None:
    def run(seed: int) -> np.ndarray:
        env = AuctionEnv(action_mode=mode, opportunities_per_day=2_000, days=1)
        obs, _ = env.reset(seed=seed)
        out = []
        for _ in range(300):
            obs, r, _, truncated, info = env.step(np.array([0.5 if mode == "multiplier" else 0.03], dtype=np.float32))
            out.append(np.concatenate([obs, [r, info["spend"]]]))
            if truncated:
                break
        return np.array(out)

    assert np.array_equal(run(4), run(4))
    assert not np.array_equal(run(4), run(5))


def test_second_and_first_price_and_reserve() -> None:
    bids = np.array([1.0, 1.0, 0.5, 0.001])
    competing = np.array([0.6, 1.2, 0.1, 0.0])
    env = np.zeros(4, dtype=np.int64)
    won, cost = resolve_auctions(bids, competing, env, np.array([100.0]), reserve=0.2, first_price=False)
    assert won.tolist() == [True, False, True, False]  # the last bid is under the reserve
    assert cost.tolist() == pytest.approx([0.6, 0.0, 0.2, 0.0])  # second price, at least the reserve
    _, cost = resolve_auctions(bids, competing, env, np.array([100.0]), reserve=0.2, first_price=True)
    assert cost.tolist() == pytest.approx([1.0, 0.0, 0.5, 0.0])


def test_budget_is_never_exceeded_per_campaign() -> None:
    bids = np.full(6, 1.0)
    competing = np.full(6, 0.5)
    env = np.array([0, 0, 0, 1, 1, 1])
    won, _cost = resolve_auctions(bids, competing, env, np.array([1.2, 10.0]), reserve=0.0, first_price=False)
    assert won.tolist() == [True, True, False, True, True, True]
    venv = AuctionVectorEnv(3, **SMALL)
    venv.reset(seed=1)
    spent_today = np.zeros(3)
    for step in range(96 * 3):
        _, _, _, _, info = venv.step(np.full((3, 1), 5.0))  # bid far too high: the budget binds early
        spent_today += info["spend"]
        if (step + 1) % 96 == 0:
            assert (spent_today <= venv.model.daily_budget + 1e-6).all()
            assert spent_today.min() > 0.9 * venv.model.daily_budget
            spent_today[:] = 0


def test_conversions_arrive_with_a_delay_and_are_all_paid() -> None:
    env = AuctionEnv(opportunities_per_day=20_000, days=1)
    env.reset(seed=3)
    rewards, wins_before_first_reward = [], 0
    while True:
        _, r, _, truncated, info = env.step(np.array([0.4], dtype=np.float32))
        if not rewards or sum(rewards) == 0:
            wins_before_first_reward += info["wins"]
        rewards.append(r)
        if truncated:
            break
    assert sum(rewards) > 0 and wins_before_first_reward > 0
    assert rewards[-1] >= 0  # the flush pays what is still pending


def test_market_is_not_stationary() -> None:
    venv = AuctionVectorEnv(1, opportunities_per_day=50_000, days=3)
    venv.reset(seed=0)
    volumes = [venv.market.day_data.counts[0].copy()]
    for _ in range(96 * 2):
        venv.step(np.full((1, 1), 0.4))
        if venv.market.slot == 0:
            volumes.append(venv.market.day_data.counts[0].copy())
    hourly = volumes[0].reshape(24, 4).sum(axis=1)
    assert hourly.max() > 3 * hourly.min()  # an hour-of-day profile
    totals = [v.sum() for v in volumes]
    assert max(totals) / min(totals) > 1.02  # day-to-day drift beyond Poisson noise (~0.5%)


@pytest.mark.parametrize("auction_type", ["second_price", "first_price"])
def test_hindsight_bound_beats_every_bidding_baseline(auction_type: str) -> None:
    for policy in [*bidding_baselines(), ConstantMultiplier(0.4), ConstantMultiplier(2.0)]:
        score = evaluate_bidding(policy, n_campaigns=2, seed=0, auction_type=auction_type, **SMALL)
        assert (score.per_campaign_value <= score.per_campaign_hindsight + 1e-6).all(), policy.name
        assert score.expected_value > 0


def test_previous_day_multiplier_is_far_from_the_bound() -> None:
    """Drift and adapting competitors: yesterday's best multiplier is not enough (nothing-to-learn guard)."""
    score = evaluate_bidding(LinearPreviousDay(), n_campaigns=2, seed=0, opportunities_per_day=50_000, days=5)
    assert score.fraction < 0.97


def test_auction_vector_env_with_sb3_adapter() -> None:
    venv = SB3VecEnvAdapter(AuctionVectorEnv(2, opportunities_per_day=2_000, days=1))
    obs = venv.reset()
    assert obs.shape == (2, 10)
    for _ in range(96):
        obs, _rewards, dones, infos = venv.step(np.full((2, 1), 0.5, dtype=np.float32))
    assert dones.all() and "terminal_observation" in infos[0]
