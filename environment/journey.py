"""``JourneyEnv``: one customer's 60-day journey as a gymnasium environment (a batch of one)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from environment.config import MarketConfig, load_market_config
from environment.dynamics import (
    JourneyState,
    StepOutcome,
    Tables,
    latent_index,
    legal_mask,
    observe,
    reset_batch,
    step_batch,
)
from environment.observation import N_OBS, OBSERVATION_COLUMNS  # noqa: F401 - the env's spec, re-exported
from environment.population import ACTIONS, N_ACTIONS, STAGES


def outcome_info(outcome: StepOutcome, index: int = 0) -> dict[str, Any]:
    """The per-step ``info`` of one customer: what was done, and whether the request was illegal."""
    return {
        "requested_action": int(outcome.requested[index]),
        "action": int(outcome.action[index]),
        "illegal_action": bool(outcome.illegal[index]),
        "clicked": bool(outcome.clicked[index]),
        "purchased": bool(outcome.purchased[index]),
        "amount": float(outcome.amount[index]),
        "unsubscribed": bool(outcome.unsubscribed[index]),
    }


class JourneyEnv(gym.Env[np.ndarray, np.int64]):
    """A customer's journey, one step per day, for ``horizon_days`` days (default 60).

    **Action Space** ``Discrete(6)``: 0 wait, 1 email, 2 sms, 3 push, 4 retargeting ad, 5 discount offer (by
    e-mail). Email, offer, sms and push need the channel's consent; every contact respects the frequency cap
    (``min_days_between_contacts``). An illegal action is replaced by wait and reported in
    ``info["illegal_action"]``; ``info["action_mask"]`` and :meth:`action_masks` give the legal actions.

    **Observation Space** ``Box(0, 1, (24,), float32)``, only what the engine can observe, never the latent state:
    the journey observation of :mod:`environment.observation` (its table of columns), computed from the facts the
    day's events show, exactly as the agents and the decision API compute it from the log.

    **Rewards** per day: margin x purchase amount - discount - channel cost - the future value of a lost
    subscriber (``unsub_value`` of the channel) on an unsubscribe.

    **Episode**: truncated after ``horizon_days``; never terminated (churn is latent).
    The latent stage, intent and fatigue are in ``info["latent"]`` for analysis and for the oracle only.
    """

    metadata = {"render_modes": []}  # noqa: RUF012 - gymnasium's Env.metadata, a class attribute by convention

    def __init__(self, config: MarketConfig | None = None) -> None:
        self.config = config or load_market_config()
        self.tables = Tables.of(self.config.journey)
        self.horizon = self.config.journey.horizon_days
        self.action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(N_OBS,), dtype=np.float32)
        self.state: JourneyState | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.state = reset_batch(self.config, 1, self.np_random)
        return observe(self.state, self.tables.spec)[0], self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(np.int64(action)):
            raise ValueError(f"action {action!r} is not in {self.action_space}; use 0..5 ({', '.join(ACTIONS)})")
        self.state, outcome = step_batch(self.state, np.array([action]), self.np_random, self.tables)
        truncated = bool(self.state.day[0] >= self.horizon)
        info = self._info() | outcome_info(outcome)
        return observe(self.state, self.tables.spec)[0], float(outcome.reward[0]), False, truncated, info

    def action_masks(self) -> np.ndarray:
        """The legal actions now (sb3-contrib's MaskablePPO calls this)."""
        if self.state is None:
            return np.ones(N_ACTIONS, dtype=bool)
        return legal_mask(self.state)[0]

    def _info(self) -> dict[str, Any]:
        s = self.state
        return {
            "action_mask": legal_mask(s)[0],
            "latent": {"stage": STAGES[int(s.stage[0])], "intent": int(s.intent[0]), "fatigue": int(s.fatigue[0])},
            "latent_index": int(latent_index(s, self.tables.gap)[0]),
        }
