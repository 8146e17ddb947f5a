"""The vector env: the gymnasium vector API, autoreset, matching the single env in distribution, the SB3 adapter."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from environment.heuristics import EmailEveryK
from environment.journey import JourneyEnv
from environment.vector import JourneyVectorEnv, SB3VecEnvAdapter


def test_vector_api_shapes_and_same_step_autoreset() -> None:
    env = JourneyVectorEnv(7)
    obs, info = env.reset(seed=0)
    assert obs.shape == (7, 24) and env.observation_space.contains(obs)
    assert info["action_mask"].shape == (7, 6)
    for _day in range(60):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert reward.shape == (7,) and not terminated.any()
    assert truncated.all() and info["_final_obs"].all()
    assert info["final_obs"][0].shape == (24,)
    assert (env.state.day == 0).all() and obs[:, 13].max() == 0.0  # new customers, day 0


def test_vector_seeding_is_reproducible() -> None:
    a, b = JourneyVectorEnv(50), JourneyVectorEnv(50)
    actions = np.random.default_rng(1).integers(0, 6, size=(60, 50))
    outs = []
    for env in (a, b):
        obs, _ = env.reset(seed=9)
        total = np.zeros(50)
        for act in actions:
            obs, r, *_ = env.step(act)
            total += r
        outs.append((obs, total))
    assert np.array_equal(outs[0][0], outs[1][0]) and np.array_equal(outs[0][1], outs[1][1])


def _episode_stats_single(policy, episodes: int) -> np.ndarray:
    env = JourneyEnv()
    rows = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=10_000 + ep)
        total, clicks, buys = 0.0, 0, 0
        while True:
            action, _ = policy.predict(obs)
            obs, r, _, truncated, info = env.step(int(action))
            total += r
            clicks += info["clicked"]
            buys += info["purchased"]
            if truncated:
                break
        rows.append((total, clicks, buys))
    return np.array(rows, dtype=np.float64)


def test_vector_env_matches_single_env_in_distribution() -> None:
    policy = EmailEveryK(k=3)
    single = _episode_stats_single(policy, 400)
    env = JourneyVectorEnv(4000)
    obs, _ = env.reset(seed=77)
    total, clicks, buys = np.zeros(4000), np.zeros(4000), np.zeros(4000)
    for _ in range(60):
        action, _ = policy.predict(obs)
        obs, r, _, _, _ = env.step(action)
        total += r
        clicks += env.last_outcome.clicked
        buys += env.last_outcome.purchased
    vector = np.column_stack([total, clicks, buys])
    for col, name in enumerate(("return", "clicks", "purchases")):
        result = stats.ks_2samp(single[:, col], vector[:, col])
        assert result.pvalue > 1e-3, f"{name}: KS p={result.pvalue:.2e}"
        welch = stats.ttest_ind(single[:, col], vector[:, col], equal_var=False)
        assert welch.pvalue > 1e-3, f"{name}: means differ, p={welch.pvalue:.2e}"


def test_sb3_adapter_contract() -> None:
    from stable_baselines3.common.vec_env import VecMonitor  # lazy: stable-baselines3 is heavy

    venv = VecMonitor(SB3VecEnvAdapter(JourneyVectorEnv(16)))
    venv.seed(3)
    obs = venv.reset()
    assert obs.shape == (16, 24)
    for _day in range(60):
        obs, rewards, dones, infos = venv.step(np.zeros(16, dtype=np.int64))
        assert len(infos) == 16 and rewards.dtype == np.float32
    assert dones.all()
    assert all(info["terminal_observation"].shape == (24,) and info["TimeLimit.truncated"] for info in infos)
    assert all("episode" in info for info in infos)  # VecMonitor saw the episode end
    masks = np.stack(venv.env_method("action_masks"))
    assert masks.shape == (16, 6) and masks[:, 0].all()


def test_sb3_adapter_seed_reproduces() -> None:
    runs = []
    for _ in range(2):
        venv = SB3VecEnvAdapter(JourneyVectorEnv(8))
        venv.seed(11)
        runs.append(venv.reset())
    assert np.array_equal(runs[0], runs[1])


def test_ppo_trains_on_the_vector_env_smoke() -> None:
    from stable_baselines3 import PPO  # lazy: stable-baselines3 is heavy

    venv = SB3VecEnvAdapter(JourneyVectorEnv(64))
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=256, n_epochs=1, seed=0, device="cpu", verbose=0)
    model.learn(total_timesteps=2_048)
    action, _ = model.predict(venv.reset(), deterministic=True)
    assert action.shape == (64,)


def test_maskable_ppo_reads_the_masks() -> None:
    pytest.importorskip("sb3_contrib")
    from sb3_contrib.common.maskable.utils import get_action_masks  # lazy: sb3-contrib is heavy

    venv = SB3VecEnvAdapter(JourneyVectorEnv(4))
    venv.reset()
    assert get_action_masks(venv).shape == (4, 6)
