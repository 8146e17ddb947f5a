"""The ad auction market: a non-stationary day of T auctions per campaign, as pure numpy batch functions, and
``AuctionEnv`` on top of them (the vector version is :class:`environment.vector_auction.AuctionVectorEnv`).

A day is ``slots_per_day`` slots (96 of 15 minutes). Volume, competition and CTR follow an hour-of-day
profile and drift from day to day (AR(1) log factors, std ``daily_drift`` ~ 15%); competitors raise or lower
their bids the next day as our win rate goes above or below their target. Each opportunity has a segment, a
true pCTR and pCVR, a value (expected conversion value = pCTR x pCVR x value_per_conversion), the bidder's
noisy estimate of it, and the highest competing bid, lognormal around a segment-, hour- and value-dependent
median. Won impressions click and convert with the true probabilities; a conversion arrives after a
geometric delay (mean ``conversion_delay_slots``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from environment.auction_market import N_BID_OBS, N_SLOT_OBS, AuctionMarket
from environment.config import AuctionModel, MarketConfig, load_market_config


class AuctionEnv(gym.Env[np.ndarray, np.ndarray]):
    """One campaign bidding in a non-stationary auction market for ``days`` days with a daily budget.

    **Action modes** (``action_mode``):

    - ``"multiplier"`` (RL pacing): one step per slot (96 a day); the action ``Box(0, max_multiplier, (1,))`` is a
      bid multiplier and every opportunity in the slot is bid ``multiplier x estimated value``.
    - ``"bid"`` (what serving does): one step per opportunity; the action ``Box(0, max_bid, (1,))`` is its bid.

    **Observation Space**: multiplier mode ``Box(0, inf, (10,))``: the bid observation of
    :mod:`environment.bid_observation` (the one ``/v1/bid`` and the bidding agent build from the same events):
    slot/slots, day/days, budget left/budget, last slot's spend / (budget/slots), win rate, volume / expected,
    mean estimate / median value, mean price paid / median value, conversion value received / (budget/slots),
    share of the day's volume still to come. Bid mode ``Box(0, inf, (7,))``: estimate / median value,
    segment/segments, slot/slots, day/days, budget left/budget, share of volume to come, spend today/budget.

    **Rewards**: the value of the conversions that arrive in the step (delayed clicks and conversions, drawn from
    the true pCTR and pCVR); the pending ones are paid at the end. ``info["expected_value"]`` is the expected
    value bought in the step (what the hindsight bound counts).

    **Mechanics**: ``auction_type`` first or second price, a reserve price, and the budget: no win is allowed
    once its price would exceed the day's remaining budget.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self, config: MarketConfig | None = None, action_mode: str = "multiplier", opportunities_per_day: int | None = None,
        days: int | None = None, auction_type: str | None = None,
    ) -> None:
        if action_mode not in ("multiplier", "bid"):
            raise ValueError(f"action_mode must be 'multiplier' or 'bid', got {action_mode!r}")
        config = config or load_market_config()
        update: dict[str, Any] = {}
        if opportunities_per_day is not None:
            update["opportunities_per_day"] = opportunities_per_day
        if days is not None:
            update["days"] = days
        if auction_type is not None:
            update["auction_type"] = auction_type
        self.model = AuctionModel.model_validate(config.auction.model_dump() | update)
        self.action_mode = action_mode
        self.market = AuctionMarket(self.model, 1)
        if action_mode == "multiplier":
            self.action_space = spaces.Box(0.0, self.model.max_multiplier, shape=(1,), dtype=np.float32)
            self.observation_space = spaces.Box(0.0, np.inf, shape=(N_SLOT_OBS,), dtype=np.float32)
        else:
            self.action_space = spaces.Box(0.0, self.model.max_bid, shape=(1,), dtype=np.float32)
            self.observation_space = spaces.Box(0.0, np.inf, shape=(N_BID_OBS,), dtype=np.float32)
        self._cursor = 0  # bid mode: index of the current opportunity within the slot

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.market.reset(self.np_random)
        self._cursor = 0
        if self.action_mode == "bid":
            self._skip_empty_slots()
            return self._bid_obs(), {}
        return self.market.observe()[0], {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        value = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], 0.0, None))
        if self.action_mode == "multiplier":
            result = self.market.step_slot(np.array([value]), self.np_random)
            done = self.market.finished
            return self.market.observe()[0], float(result.reward[0]), False, done, result.info(0)
        m = self.market
        rng_slice = m.day_data.slot_range(m.slot)
        index = rng_slice.start + self._cursor
        result = m.resolve_one(index, value, self.np_random)
        self._cursor += 1
        reward = float(result.reward[0])
        if self._cursor >= rng_slice.stop - rng_slice.start:
            reward += float(m.close_slot(self.np_random)[0])
            self._cursor = 0
            self._skip_empty_slots()
        done = m.finished
        if done:
            reward += float(m.flush()[0])
        return self._bid_obs(), reward, False, done, result.info(0)

    def _skip_empty_slots(self) -> None:
        m = self.market
        while not m.finished and m.day_data.counts[0, m.slot] == 0:
            m.close_slot(self.np_random)

    def _bid_obs(self) -> np.ndarray:
        m, model = self.market, self.model
        obs = np.zeros(N_BID_OBS, dtype=np.float32)
        if not m.finished:
            index = m.day_data.slot_range(m.slot).start + self._cursor
            obs[0] = m.day_data.estimate[index] / m.shape.value_scale
            obs[1] = m.day_data.segment[index] / model.segments
        obs[2] = min(m.slot, model.slots_per_day - 1) / model.slots_per_day
        obs[3] = min(m.day, model.days - 1) / model.days
        obs[4] = m.budget_left[0] / model.daily_budget
        obs[5] = m.volume_to_come()
        obs[6] = m.spend_today[0] / model.daily_budget
        return obs
