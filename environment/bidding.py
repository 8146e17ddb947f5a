"""Bidding baselines for the auction env (multiplier mode) and their evaluation against the hindsight bound.

Every policy implements ``predict(obs, state=None, episode_start=None, deterministic=False)`` on the (E, 10)
observation of :class:`~environment.vector.AuctionVectorEnv` and returns (E, 1) bid multipliers. The two
linear baselines read the market's logged auctions (yesterday's, or today's in hindsight) through ``bind``:
that is the bid landscape a bidder would log, idealised to be complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from environment.acting import EnvBound
from environment.auction_market import MarketDay, resolve_auctions
from environment.bounds import hindsight_lp
from environment.config import AuctionModel, MarketConfig, load_market_config


def _per_env(day: MarketDay, e: int) -> np.ndarray:
    return np.flatnonzero(day.env == e)


def lp_multiplier(day: MarketDay, e: int, model: AuctionModel) -> float:
    """The multiplier 1/threshold of the LP on the bidder's estimates (what linear bidding aims for)."""
    idx = _per_env(day, e)
    price = np.maximum(day.competing[idx], model.reserve_price)
    result = hindsight_lp(day.estimate[idx], price, model.daily_budget)
    return float(np.clip(1.0 / result.threshold if np.isfinite(result.threshold) else model.max_multiplier, 0.0, model.max_multiplier))


def replay_value(day: MarketDay, e: int, model: AuctionModel, multipliers: np.ndarray) -> np.ndarray:
    """Expected value a constant multiplier would have bought on ``day`` (campaign ``e``), for each multiplier."""
    idx = _per_env(day, e)
    est, comp, value = day.estimate[idx], day.competing[idx], day.value[idx]
    first = model.auction_type == "first_price"
    out = np.empty(len(multipliers))
    zero_env = np.zeros(len(idx), dtype=np.int64)
    for j, m in enumerate(multipliers):
        bids = np.minimum(m * est, model.max_bid)
        won, _ = resolve_auctions(bids, comp, zero_env, np.array([model.daily_budget]), model.reserve_price, first)
        out[j] = value[won].sum()
    return out


@dataclass
class ConstantMultiplier:
    """Bid ``multiplier x estimate`` everywhere, always."""

    multiplier: float = 0.4
    name: str = "constant_multiplier"

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return np.full((np.atleast_2d(observation).shape[0], 1), self.multiplier, dtype=np.float32), state


@dataclass
class LinearPreviousDay:
    """Linear bidding with the multiplier that was LP-optimal yesterday (``initial`` on the first day)."""

    initial: float = 0.4
    name: str = "linear_previous_day"
    env: Any = None
    _mult: np.ndarray | None = None
    _day: int = -1

    def bind(self, env: Any) -> None:
        self.env, self._mult, self._day = env, None, -1

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        market = self.env.market
        if self._mult is None or market.day < self._day:
            self._mult, self._day = np.full(self.env.num_envs, self.initial), market.day
        if market.day != self._day:
            self._day = market.day
            if market.yesterday is not None:
                self._mult = np.array([lp_multiplier(market.yesterday, e, market.model) for e in range(self.env.num_envs)])
        return self._mult[:, None].astype(np.float32), state


@dataclass
class LinearHindsight:
    """Linear bidding with the best single multiplier for the day, found in hindsight by replaying it."""

    name: str = "linear_hindsight"
    env: Any = None
    _mult: np.ndarray | None = None
    _day: tuple[int, int] = (-1, -1)
    grid: np.ndarray = field(default_factory=lambda: np.geomspace(0.05, 5.0, 41))

    def bind(self, env: Any) -> None:
        self.env, self._mult, self._day = env, None, (-1, -1)

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        market = self.env.market
        key = (id(market.day_data), market.day)
        if key != self._day:
            self._day = key
            self._mult = np.array([self._best(market.day_data, e, market.model) for e in range(self.env.num_envs)])
        return self._mult[:, None].astype(np.float32), state

    def _best(self, day: MarketDay, e: int, model: AuctionModel) -> float:
        values = replay_value(day, e, model, self.grid)
        j = int(np.argmax(values))
        lo, hi = self.grid[max(j - 1, 0)], self.grid[min(j + 1, len(self.grid) - 1)]
        fine = np.geomspace(lo, hi, 21)
        fine_values = replay_value(day, e, model, fine)
        return float(fine[int(np.argmax(fine_values))] if fine_values.max() >= values[j] else self.grid[j])


@dataclass
class DualPacing:
    """Budget pacing by dual gradient: bid ``estimate / (1 + mu)``; after each slot ``mu`` moves by ``eta`` times
    (spend - target) / target, the target following the known hour-of-day volume profile."""

    eta: float = 0.05
    mu0: float = 1.5
    name: str = "dual_pacing"
    env: Any = None
    _mu: np.ndarray | None = None

    def bind(self, env: Any) -> None:
        self.env, self._mu = env, None

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        obs = np.atleast_2d(observation)
        market = self.env.market
        if self._mu is None or (market.day == 0 and market.slot == 0):
            self._mu = np.full(obs.shape[0], self.mu0)
        elif market.slot > 0:  # obs[:, 3] is last slot's spend / (budget / slots)
            slots = market.model.slots_per_day
            target = market.shape.volume[market.slot - 1] * slots
            self._mu = np.maximum(0.0, self._mu + self.eta * (obs[:, 3] - target) / target)
        return (1.0 / (1.0 + self._mu))[:, None].astype(np.float32), state


@dataclass(frozen=True, slots=True)
class BiddingScore:
    """Totals per campaign over the episode, averaged over campaigns."""

    policy: str
    expected_value: float  # what the hindsight bound also counts
    realized_value: float  # the rewards: conversions drawn, delayed
    spend: float
    hindsight: float  # sum over days of the LP bound on that day's realized prices
    per_campaign_value: np.ndarray
    per_campaign_hindsight: np.ndarray

    @property
    def fraction(self) -> float:
        return self.expected_value / self.hindsight if self.hindsight > 0 else float("nan")


def evaluate_bidding(
    policy: Any, config: MarketConfig | None = None, n_campaigns: int = 4, seed: int = 0, **overrides: Any
) -> BiddingScore:
    """Run ``policy`` for one episode of ``days`` days on ``n_campaigns`` campaigns (same seed, same first day)."""
    from environment.vector import AuctionVectorEnv  # lazy: loads torch and stable-baselines3

    env = AuctionVectorEnv(n_campaigns, config or load_market_config(), **overrides)
    obs, _ = env.reset(seed=seed)
    if isinstance(policy, EnvBound):
        policy.bind(env)
    model = env.model
    value, reward, spend, bound = (np.zeros(n_campaigns) for _ in range(4))
    while True:
        market = env.market
        if market.slot == 0:  # a new day: its hindsight bound on the prices it will realise
            day = market.day_data
            for e in range(n_campaigns):
                idx = _per_env(day, e)
                bound[e] += hindsight_lp(day.value[idx], np.maximum(day.competing[idx], model.reserve_price), model.daily_budget).value
        action, _ = policy.predict(obs)
        obs, r, _, truncated, info = env.step(action)
        value += info["expected_value"]
        reward += r
        spend += info["spend"]
        if truncated.all():
            break
    return BiddingScore(
        getattr(policy, "name", type(policy).__name__), float(value.mean()), float(reward.mean()), float(spend.mean()),
        float(bound.mean()), value, bound,
    )


def bidding_baselines() -> list[Any]:
    """The bidding baselines of the issue: previous-day linear, hindsight linear, dual-gradient pacing."""
    return [LinearPreviousDay(), LinearHindsight(), DualPacing()]
