"""JourneyEnv: the gymnasium contract, seeding, enforcement of consent and caps, the observation."""

from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import environment  # noqa: F401  (registers the ids)
from environment.config import load_market_config
from environment.dynamics import observe
from environment.journey import JourneyEnv
from environment.population import EMAIL, SMS, WAIT


def rollout(env: JourneyEnv, seed: int, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for a in actions:
        obs, r, terminated, truncated, _ = env.step(int(a))
        observations.append(obs)
        rewards.append(r)
        if terminated or truncated:
            break
    return np.array(observations), np.array(rewards)


def test_check_env_passes() -> None:
    check_env(JourneyEnv(), skip_render_check=True)


def test_sb3_check_env_passes() -> None:
    from stable_baselines3.common.env_checker import check_env as sb3_check_env  # lazy: stable-baselines3 is heavy

    sb3_check_env(JourneyEnv(), warn=True)


def test_gym_make_registered_id() -> None:
    env = gym.make("ame/Journey-v0")
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


def test_same_seed_same_trajectory_and_other_seed_differs() -> None:
    actions = np.random.default_rng(0).integers(0, 6, size=60)
    env = JourneyEnv()
    runs = [rollout(env, 42, actions) for _ in range(2)]
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])
    other = [rollout(env, seed, actions)[0] for seed in range(43, 53)]
    assert any(not np.array_equal(runs[0][0], o) for o in other)


def test_episode_is_sixty_days_and_never_terminates() -> None:
    env = JourneyEnv()
    env.reset(seed=1)
    for day in range(1, 61):
        _, _, terminated, truncated, _ = env.step(WAIT)
        assert not terminated
        assert truncated == (day == 60)


def test_frequency_cap_turns_contact_into_wait() -> None:
    env = JourneyEnv()
    _, info = env.reset(seed=3)
    while not info["action_mask"][EMAIL]:  # find a customer with email consent
        _, info = env.reset(seed=int(np.random.default_rng().integers(1e6)))
    _, _, _, _, info = env.step(EMAIL)
    assert info["action"] == EMAIL and not info["illegal_action"]
    assert not info["action_mask"][EMAIL] and info["action_mask"][WAIT]  # the cap (2 days) blocks tomorrow
    _, _reward, _, _, info = env.step(EMAIL)
    assert info["illegal_action"] and info["action"] == WAIT and info["requested_action"] == EMAIL


def test_no_consent_means_illegal() -> None:
    env = JourneyEnv()
    for seed in range(200):
        _, info = env.reset(seed=seed)
        if not info["action_mask"][SMS]:
            _, _, _, _, info = env.step(SMS)
            assert info["illegal_action"] and info["action"] == WAIT
            return
    pytest.fail("no customer without sms consent in 200 seeds")


def test_observation_does_not_carry_the_latent_state() -> None:
    env = JourneyEnv()
    obs, _info = env.reset(seed=5)
    assert obs.shape == (24,) and obs.dtype == np.float32
    # two customers with the same profile/engagement but different latent state observe the same thing
    state = env.state


    other = replace(state, stage=(state.stage + 1) % 5, intent=(state.intent + 1) % 3, fatigue=(state.fatigue + 2) % 4)
    assert np.array_equal(observe(state, env.tables.spec), observe(other, env.tables.spec))


def test_reward_is_margin_minus_cost_minus_discount() -> None:
    config = load_market_config()
    env = JourneyEnv(config)
    j = config.journey
    for seed in range(300):
        _, info = env.reset(seed=seed)
        for _ in range(60):
            mask = info["action_mask"]
            action = 5 if mask[5] else 0
            _obs, reward, _, _truncated, info = env.step(action)
            if info["purchased"] and not info["unsubscribed"]:
                cost = j.cost[info["action"]]
                discount = round(info["amount"] * j.discount_pct / 100, 2) if info["action"] == 5 else 0.0
                assert reward == pytest.approx(j.margin_rate * info["amount"] - discount - cost)
                return
    pytest.fail("no purchase under offers in 300 customers")
