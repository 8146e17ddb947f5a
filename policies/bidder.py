"""The bidder: profile pacing (the controller of :mod:`policies.bid_pacer`) with a learned residual.

The base controller bids ``m x estimate``; each day it starts from the multiplier that was LP-optimal on
yesterday's auctions and paces spend to the spend curve that multiplier would have drawn (see
:mod:`policies.bid_pacer`, which plans from the day's bid sketch, the bounded summary the bidding agent folds).

The residual (trained with SAC, :mod:`policies.train_bidder`) is a factor in ``[1 - r, 1 + r]`` on the base
multiplier, read from :func:`residual_observation` (10 pacing features). Without a network it is 1.

In the simulator the controller reads the market's campaign facts through ``bind(env)`` (the facts the bidding
agent folds from the market's events); served, its state is the bidding agent's record
(:mod:`policies.bid_serving`). Either way :meth:`ProfilePacing.multipliers` turns the controller's state and the
bid observation into the multiplier, so what is trained is what is served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from environment.bid_facts import BidSpec
from policies.bid_pacer import DayPlan, PacerState, PacingParams, advance
from policies.registry import ExportedPolicy

N_RESIDUAL_OBS = 10
RESIDUAL_RANGE = 0.1  # the residual factor lies in [1 - r, 1 + r]
_DEFAULTS = PacingParams()


def residual_observation(
    slot: int | np.ndarray, slots: int, budget_left_share: np.ndarray, plan_left_share: np.ndarray, log_m: np.ndarray,
    log_m_start: np.ndarray, last_spend_ratio: np.ndarray, env_obs: np.ndarray, yesterday_win_rate: np.ndarray,
) -> np.ndarray:
    """(E, 10) float32: time left in the day, budget left, planned spend left, log multiplier, its move since
    the day began, last slot's spend / its target, win rate, price paid / median value, volume / expected,
    yesterday's win rate. Every column is O(1)."""
    e = len(budget_left_share)
    obs = np.empty((e, N_RESIDUAL_OBS), dtype=np.float32)
    obs[:, 0] = 1.0 - slot / slots
    obs[:, 1] = budget_left_share
    obs[:, 2] = plan_left_share
    obs[:, 3] = log_m / 2.0
    obs[:, 4] = log_m - log_m_start
    obs[:, 5] = np.clip(last_spend_ratio, 0.0, 5.0)
    obs[:, 6] = env_obs[:, 4] * 5.0
    obs[:, 7] = np.clip(env_obs[:, 7], 0.0, 5.0)
    obs[:, 8] = np.clip(env_obs[:, 5], 0.0, 5.0)
    obs[:, 9] = yesterday_win_rate * 5.0
    return obs


def residual_features(state: PacerState, observation: np.ndarray, spec: BidSpec) -> np.ndarray:
    """The residual's (E, 10) observation from the controller's state and the (E, 10) bid observation."""
    obs = np.atleast_2d(observation)
    slots = spec.slots_per_day
    t = state.g % slots
    plan_left = np.where(np.arange(slots)[None, :] >= t[:, None], state.curve, 0.0).sum(axis=1)
    return residual_observation(t, slots, obs[:, 2], plan_left, state.log_m, state.log_m_start, state.ratio, obs, state.y_win)


@runtime_checkable
class PacedBidder(Protocol):
    """A bidder whose multiplier comes from a pacing controller's state (not from the observation alone)."""

    def multipliers(self, state: PacerState, observation: np.ndarray, spec: BidSpec) -> np.ndarray:
        """(E,) multipliers for controllers in ``state`` seeing the (E, 10) bid ``observation``."""
        ...


@dataclass
class ProfilePacing:
    """The base controller (see the module docstring); ``residual`` maps (E, 10) pacing features to (E, 1)
    factors (a registered policy's ``predict``), or None for the controller alone. ``eta``, ``curve_memory`` and
    ``initial`` are the controller's settings (see :class:`~policies.bid_pacer.PacingParams`).
    """

    eta: float = _DEFAULTS.eta
    curve_memory: float = _DEFAULTS.curve_memory
    initial: float = _DEFAULTS.initial
    residual: Any = None
    name: str = "profile_pacing"
    env: Any = None
    _state: PacerState | None = None

    @property
    def params(self) -> PacingParams:
        return PacingParams(self.eta, self.curve_memory, self.initial)

    def bind(self, env: Any) -> None:
        self.env, self._state = env, None

    def base(self, observation: np.ndarray) -> np.ndarray:
        """Bring the controller to the market's current slot (from the campaigns' facts) and return the base
        multipliers (E,)."""
        market = self.env.market
        g = market.global_slot
        if self._state is None or len(self._state.g) != market.n_env or (self._state.g > g).any():
            self._state = PacerState.empty(market.n_env, market.spec)  # a new episode
        advance(self._state, market.facts, g, market.spec, self.params, self.day_plan(market))
        return self._state.multiplier

    def day_plan(self, market: Any) -> DayPlan | None:
        """The plan a new day starts from; None: the day's bid sketch in the facts (what serving has too)."""
        return None

    def features(self, observation: np.ndarray) -> np.ndarray:
        """The residual's (E, 10) observation for the current slot (after :meth:`base`)."""
        return residual_features(self._state, observation, self.env.market.spec)

    def multipliers(self, state: PacerState, observation: np.ndarray, spec: BidSpec) -> np.ndarray:
        """(E,) the controller's multiplier times the residual's factor, within ``[0, max_multiplier]``."""
        m = state.multiplier
        if self.residual is not None:
            factor, _ = self.residual.predict(residual_features(state, observation, spec), deterministic=True)
            m = m * np.asarray(factor, dtype=np.float64).reshape(-1)
        return np.clip(m, 0.0, spec.max_multiplier)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        self.base(observation)
        return self.multipliers(self._state, observation, self.env.market.spec)[:, None].astype(np.float32), state


def as_bidder(policy: Any) -> Any:
    """A registered residual (``env_options.residual_of == "profile_pacing"``) inside its controller, with the
    controller settings it was trained with; any other policy as it is."""
    if not isinstance(policy, ExportedPolicy) or policy.metadata.env_options.get("residual_of") != "profile_pacing":
        return policy
    options = policy.metadata.env_options
    return ProfilePacing(eta=float(options.get("eta", 0.08)), curve_memory=float(options.get("curve_memory", 0.5)),
                         initial=float(options.get("initial", 0.4)), residual=policy, name=policy.metadata.name)
