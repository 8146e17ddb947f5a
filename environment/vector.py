"""Numpy-vectorized environments (gymnasium's vector API) and the adapter that lets stable-baselines3 train on them.

``JourneyVectorEnv`` steps N customers at once with the same :func:`~environment.dynamics.step_batch` as the
single :class:`~environment.journey.JourneyEnv`. It autoresets in the same step (``AutoresetMode.SAME_STEP``):
a finished customer's last observation is in ``info["final_obs"]`` and the returned one is a new customer's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from environment.auction_market import N_SLOT_OBS, AuctionMarket
from environment.belief import N_BELIEF, BeliefTracker
from environment.config import AuctionModel, MarketConfig, load_market_config
from environment.dynamics import (
    JourneyState,
    StepOutcome,
    Tables,
    legal_mask,
    observe,
    reset_batch,
    step_batch,
    where_state,
)
from environment.observation import N_OBS
from environment.population import N_ACTIONS


class JourneyVectorEnv(VectorEnv):
    """N independent customer journeys stepped as one numpy batch (see :class:`~environment.journey.JourneyEnv`
    for the spaces and rewards). ``info`` holds ``action_mask`` (N, 6) and ``illegal_action`` (N,).
    With ``belief``, the observation also carries the engine's belief over the hidden (stage, intent, fatigue)
    state, 60 columns from :class:`~environment.belief.BeliefTracker` (computed from observed events only)."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}  # noqa: RUF012 - gymnasium's convention

    def __init__(self, num_envs: int, config: MarketConfig | None = None, belief: bool = False) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = num_envs
        self.config = config or load_market_config()
        self.tables = Tables.of(self.config.journey)
        self.horizon = self.config.journey.horizon_days
        self.tracker = BeliefTracker(self.config, self.tables) if belief else None
        width = N_OBS + (N_BELIEF if belief else 0)
        self.single_observation_space = spaces.Box(0.0, 1.0, shape=(width,), dtype=np.float32)
        self.single_action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.state: JourneyState | None = None
        self.last_outcome: StepOutcome | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seed)
        self.state = reset_batch(self.config, self.num_envs, self.np_random)
        obs = observe(self.state, self.tables.spec)
        if self.tracker is not None:
            obs = _with_belief(obs, self.tracker.reset(obs))
        return obs, {"action_mask": legal_mask(self.state)}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        before = self.state
        state, outcome = step_batch(before, np.asarray(actions), self.np_random, self.tables)
        self.last_outcome = outcome
        truncated = state.day >= self.horizon
        terminated = np.zeros(self.num_envs, dtype=bool)
        info: dict[str, Any] = {"illegal_action": outcome.illegal}
        if truncated.any():
            final = observe(state, self.tables.spec)
            if self.tracker is not None:  # the finished customers' last belief
                final = _with_belief(final, self.tracker.step(before, outcome, final, np.zeros(self.num_envs, bool)))
            final_obs = np.full(self.num_envs, None, dtype=object)
            for idx in np.flatnonzero(truncated):
                final_obs[idx] = final[idx]
            info["final_obs"], info["_final_obs"] = final_obs, truncated.copy()
            state = reset_batch(self.config, self.num_envs, self.np_random) if truncated.all() else _masked_reset(
                self.config, state, truncated, self.np_random
            )
        self.state = state
        info["action_mask"] = legal_mask(state)
        obs = observe(state, self.tables.spec)
        if self.tracker is not None:
            if truncated.any():  # already stepped into the final belief above: only the new customers restart
                obs = _with_belief(obs, self.tracker.restart(obs, truncated))
            else:
                obs = _with_belief(obs, self.tracker.step(before, outcome, obs, truncated))
        return obs, outcome.reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """(N, 6) legal actions now."""
        if self.state is None:
            return np.ones((self.num_envs, N_ACTIONS), dtype=bool)
        return legal_mask(self.state)


def _with_belief(obs: np.ndarray, belief: np.ndarray) -> np.ndarray:
    return np.concatenate([obs, belief.reshape(len(obs), -1).astype(np.float32)], axis=1)


def _masked_reset(config: MarketConfig, state: JourneyState, mask: np.ndarray, rng: np.random.Generator) -> JourneyState:
    return where_state(mask, reset_batch(config, len(state), rng), state)


class SB3VecEnvAdapter(VecEnv):
    """Presents a same-step-autoreset gymnasium ``VectorEnv`` as an SB3 ``VecEnv`` (``terminal_observation`` in
    ``infos``), so stable-baselines3 trains on the numpy batch directly."""

    def __init__(self, venv: VectorEnv) -> None:
        if venv.metadata.get("autoreset_mode") != AutoresetMode.SAME_STEP:
            raise ValueError("SB3VecEnvAdapter needs a vector env with autoreset_mode SAME_STEP")
        self.venv = venv
        self._actions: np.ndarray | None = None
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)

    def reset(self) -> VecEnvObs:
        seed = self._seeds[0]
        obs, _ = self.venv.reset(seed=seed)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            final_obs = info["final_obs"]
            for idx in np.flatnonzero(dones):
                infos[idx]["terminal_observation"] = final_obs[idx]
                infos[idx]["TimeLimit.truncated"] = bool(truncated[idx] and not terminated[idx])
        return obs, np.asarray(rewards, dtype=np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.venv, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **kwargs: Any) -> list[Any]:
        result = getattr(self.venv, method_name)(*method_args, **kwargs)
        idx = list(self._get_indices(indices))
        if isinstance(result, np.ndarray) and result.shape[:1] == (self.num_envs,):
            return [result[i] for i in idx]  # per-env results, such as action_masks
        return [result for _ in idx]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def _get_indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return list(indices)


class AuctionVectorEnv(VectorEnv):
    """E campaigns in independent auction markets, one slot per step, in the multiplier action mode of
    :class:`~environment.auction.AuctionEnv` (same spaces, rewards and ``info`` keys, as (E,) arrays).
    All campaigns end together; the episode autoresets in the same step (``final_obs`` in ``info``)."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}  # noqa: RUF012 - gymnasium's convention

    def __init__(
        self, num_envs: int, config: MarketConfig | None = None, opportunities_per_day: int | None = None,
        days: int | None = None, auction_type: str | None = None,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        config = config or load_market_config()
        update = {
            k: v for k, v in
            {"opportunities_per_day": opportunities_per_day, "days": days, "auction_type": auction_type}.items()
            if v is not None
        }
        self.model = AuctionModel.model_validate(config.auction.model_dump() | update)
        self.num_envs = num_envs
        self.market = AuctionMarket(self.model, num_envs)
        self.single_observation_space = spaces.Box(0.0, np.inf, shape=(N_SLOT_OBS,), dtype=np.float32)
        self.single_action_space = spaces.Box(0.0, self.model.max_multiplier, shape=(1,), dtype=np.float32)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._started = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seed)
        self.market.reset(self.np_random)
        self._started = True
        return self.market.observe(), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        result = self.market.step_slot(np.asarray(actions, dtype=np.float64).reshape(self.num_envs), self.np_random)
        info: dict[str, Any] = {
            "expected_value": result.expected_value, "spend": result.spend, "wins": result.wins,
            "opportunities": result.opportunities,
        }
        done = self.market.finished
        truncated = np.full(self.num_envs, done)
        obs = self.market.observe()
        if done:
            final_obs = np.empty(self.num_envs, dtype=object)
            for idx in range(self.num_envs):
                final_obs[idx] = obs[idx]
            info["final_obs"], info["_final_obs"] = final_obs, truncated.copy()
            self.market.reset(self.np_random)
            obs = self.market.observe()
        return obs, result.reward, np.zeros(self.num_envs, dtype=bool), truncated, info
