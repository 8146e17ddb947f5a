"""The bidder: profile pacing (a dual-gradient controller on the log bid multiplier) with a learned residual.

The base controller bids ``m x estimate``. Each day it starts from the multiplier that was LP-optimal on
yesterday's logged auctions, and it paces spend to the *spend curve* that multiplier would have drawn
yesterday (per slot, smoothed over days), not to the traffic curve: competition and CTR move over the day,
so the LP-optimal spend is not proportional to volume. After each slot the log multiplier moves by ``eta``
times the relative spend error against the re-planned target (the budget left spread over the curve left).

The residual (trained with SAC, :mod:`policies.train_bidder`) is a factor in ``[1 - r, 1 + r]`` on the base
multiplier, read from :func:`residual_observation` (10 pacing features). Without a network it is 1.

Like the linear baselines of :mod:`environment.bidding`, the controller reads the logged auctions of
yesterday through ``bind(env)`` (the bid landscape a bidder logs) and today's slot index and budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from environment.auction_market import resolve_auctions
from environment.bounds import hindsight_lp

N_RESIDUAL_OBS = 10
RESIDUAL_RANGE = 0.1  # the residual factor lies in [1 - r, 1 + r]
_LOG_M_MIN, _LOG_M_MAX = np.log(0.01), np.log(10.0)


def yesterday_plan(day: Any, e: int, model: Any, est_price: bool = True) -> tuple[float, np.ndarray, float]:
    """For campaign ``e`` on a logged ``day``: the LP multiplier on the estimates, the per-slot spend curve it
    draws (sums to 1) and the spend that would have won everything."""
    idx = np.flatnonzero(day.env == e)
    price = np.maximum(day.competing[idx], model.reserve_price)
    lp = hindsight_lp(day.estimate[idx], price, model.daily_budget)
    mult = float(np.clip(1.0 / lp.threshold if np.isfinite(lp.threshold) and lp.threshold > 0 else model.max_multiplier,
                         0.01, model.max_multiplier))
    bids = np.minimum(mult * day.estimate[idx], model.max_bid)
    _won, cost = resolve_auctions(bids, day.competing[idx], np.zeros(len(idx), dtype=np.int64),
                                 np.array([np.inf]), model.reserve_price, model.auction_type == "first_price")
    curve = np.bincount(day.slot[idx], weights=cost, minlength=model.slots_per_day)
    total = curve.sum()
    return mult, (curve / total if total > 0 else np.full(model.slots_per_day, 1.0 / model.slots_per_day)), float(price.sum())


def residual_observation(
    slot: int, slots: int, budget_left_share: np.ndarray, plan_left_share: np.ndarray, log_m: np.ndarray,
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


@dataclass
class ProfilePacing:
    """The base controller (see the module docstring); ``residual`` maps (E, 10) pacing features to (E, 1)
    factors (a registered policy's ``predict``), or None for the controller alone.

    :param eta: step of the log multiplier per unit of relative spend error.
    :param curve_memory: weight of the older spend curve when yesterday's is blended in.
    :param initial: the multiplier of the first day (no log yet).
    """

    eta: float = 0.08
    curve_memory: float = 0.5
    initial: float = 0.4
    residual: Any = None
    name: str = "profile_pacing"
    env: Any = None
    _state: dict[str, Any] = field(default_factory=dict)

    def bind(self, env: Any) -> None:
        self.env, self._state = env, {}

    # ---- day bookkeeping ------------------------------------------------------------------------------
    def _start_day(self, market: Any) -> None:
        s, model, e = self._state, market.model, market.n_env
        volume = market.shape.volume
        if market.yesterday is None or "curve" not in s:
            s["curve"] = np.tile(volume, (e, 1))
            s["log_m_start"] = np.full(e, np.log(self.initial))
            s["y_win"] = np.zeros(e)
        else:
            plans = [yesterday_plan(market.yesterday, i, model) for i in range(e)]
            new = np.stack([p[1] for p in plans])
            smooth = np.apply_along_axis(lambda c: np.convolve(np.pad(c, 2, mode="edge"), np.ones(5) / 5, "valid"), 1, new)
            s["curve"] = self.curve_memory * s["curve"] + (1 - self.curve_memory) * smooth
            s["curve"] = 0.9 * s["curve"] + 0.1 * volume  # never plan zero spend in a slot
            s["curve"] /= s["curve"].sum(axis=1, keepdims=True)
            s["log_m_start"] = np.log([p[0] for p in plans])
            s["y_win"] = s.get("wins", np.zeros(e)) / np.maximum(s.get("opps", np.ones(e)), 1.0)
        s["log_m"] = s["log_m_start"].copy()
        s["left_before"] = np.ones(e)  # budget left share at the start of the last slot
        s["wins"], s["opps"] = np.zeros(e), np.zeros(e)
        s["ratio"] = np.ones(e)
        s["day"] = market.day
        s["slot"] = 0

    def base(self, observation: np.ndarray) -> np.ndarray:
        """Update the controller on the last slot's outcome and return the base multipliers (E,)."""
        obs = np.atleast_2d(observation)
        market = self.env.market
        model = market.model
        slots = model.slots_per_day
        s = self._state
        if not s or market.day != s["day"]:
            if s and market.day < s["day"]:
                s.clear()  # a new episode
            self._start_day(market)
        t = market.slot
        if t > 0 and t != s["slot"]:
            curve = s["curve"]
            plan_left = curve[:, t - 1 :].sum(axis=1)
            target = np.maximum(s["left_before"] * curve[:, t - 1] / np.maximum(plan_left, 1e-9), 1e-6)
            spend = obs[:, 3] / slots  # share of the daily budget spent in the last slot
            ratio = spend / target
            s["ratio"] = ratio
            s["log_m"] = np.clip(s["log_m"] - self.eta * np.clip(ratio - 1.0, -1.0, 2.0), _LOG_M_MIN, _LOG_M_MAX)
            s["left_before"] = obs[:, 2].astype(np.float64)
            s["wins"] = s["wins"] + obs[:, 4] * obs[:, 5]
            s["opps"] = s["opps"] + obs[:, 5]
        s["slot"] = t
        return np.exp(s["log_m"])

    def features(self, observation: np.ndarray) -> np.ndarray:
        """The residual's (E, 10) observation for the current slot (after :meth:`base`)."""
        s, market = self._state, self.env.market
        slots = market.model.slots_per_day
        t = min(market.slot, slots - 1)
        return residual_observation(
            t, slots, np.atleast_2d(observation)[:, 2], s["curve"][:, t:].sum(axis=1), s["log_m"], s["log_m_start"],
            s["ratio"], np.atleast_2d(observation), s["y_win"],
        )

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        m = self.base(observation)
        if self.residual is not None:
            factor, _ = self.residual.predict(self.features(observation), deterministic=True)
            m = m * np.asarray(factor, dtype=np.float64).reshape(-1)
        return np.clip(m, 0.0, self.env.market.model.max_multiplier)[:, None].astype(np.float32), state
