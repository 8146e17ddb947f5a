"""The auction market's dynamics as numpy batch functions, and ``AuctionMarket``: E campaigns stepped together
(the single :class:`~environment.auction.AuctionEnv` is a batch of one, the vector env a batch of E).

See :mod:`environment.auction` for the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from environment.bid_facts import BidSpec, CampaignFacts, fold_auctions, fold_conversions
from environment.bid_observation import N_SLOT_OBS, bid_observation
from environment.config import AuctionModel

__all__ = ["N_BID_OBS", "N_SLOT_OBS", "AuctionMarket", "MarketDay", "MarketShape", "bid_spec", "resolve_auctions"]

N_BID_OBS = 7


@dataclass(frozen=True, slots=True)
class MarketShape:
    """The fixed shape of the market: hour-of-day profiles and the segment table."""

    volume: np.ndarray  # (slots,) share of the day's volume, sums to 1
    competition: np.ndarray  # (slots,) log offset of competing bids
    ctr: np.ndarray  # (slots,) log offset of CTR
    seg_ctr: np.ndarray  # (segments,) log offsets
    seg_cvr: np.ndarray
    seg_comp: np.ndarray
    value_scale: float  # median value per impression

    @staticmethod
    def of(model: AuctionModel) -> MarketShape:
        hours = (np.arange(model.slots_per_day) + 0.5) * 24.0 / model.slots_per_day
        volume = 0.15 + np.exp(-(((hours - 12.5) / 3.0) ** 2)) + 1.3 * np.exp(-(((hours - 20.5) / 2.5) ** 2))
        competition = 0.35 * np.exp(-(((hours - 19.0) / 3.0) ** 2)) - 0.2 * np.exp(-(((hours - 4.0) / 3.0) ** 2))
        ctr = 0.25 * np.exp(-(((hours - 21.0) / 3.0) ** 2)) - 0.15 * np.exp(-(((hours - 9.0) / 2.0) ** 2))
        rng = np.random.default_rng(model.segment_seed)
        seg_ctr = rng.normal(0.0, 0.5, model.segments)
        seg_cvr = rng.normal(0.0, 0.4, model.segments)
        seg_comp = 0.6 * seg_ctr + rng.normal(0.0, 0.3, model.segments)
        value_scale = model.base_ctr * model.base_cvr * model.value_per_conversion
        return MarketShape(volume / volume.sum(), competition, ctr, seg_ctr, seg_cvr, seg_comp, value_scale)


def bid_spec(model: AuctionModel, shape: MarketShape | None = None) -> BidSpec:
    """The numbers the bid observation and the pacing controller read this market with."""
    shape = shape or MarketShape.of(model)
    return BidSpec(
        model.slots_per_day, model.days, model.opportunities_per_day, float(shape.value_scale), shape.volume.copy(),
        model.auction_type, model.reserve_price, model.max_multiplier, model.max_bid,
    )


@dataclass(slots=True)
class MarketDay:
    """Every opportunity of one day for E campaigns, flat and ordered by (slot, env)."""

    env: np.ndarray  # int64
    slot: np.ndarray  # int64
    segment: np.ndarray
    value: np.ndarray  # true expected value per impression ($)
    estimate: np.ndarray  # the bidder's estimate of value
    pctr: np.ndarray
    pcvr: np.ndarray
    competing: np.ndarray  # highest competing bid
    starts: np.ndarray  # (slots + 1,) offsets of each slot
    counts: np.ndarray  # (E, slots)

    def slot_range(self, slot: int) -> slice:
        return slice(int(self.starts[slot]), int(self.starts[slot + 1]))


def generate_day(
    model: AuctionModel, shape: MarketShape, log_volume: np.ndarray, log_competition: np.ndarray,
    log_ctr: np.ndarray, rng: np.random.Generator, opportunities: int | None = None,
) -> MarketDay:
    """Draw one day of opportunities for E = len(log_volume) campaigns under their drift factors (float32)."""
    n_env, slots = len(log_volume), model.slots_per_day
    per_day = model.opportunities_per_day if opportunities is None else opportunities
    counts = rng.poisson(per_day * np.exp(log_volume)[:, None] * shape.volume[None, :])  # (E, slots)
    by_slot = counts.T.ravel()  # (slot, env) order
    total = int(by_slot.sum())
    key = np.repeat(np.arange(slots * n_env, dtype=np.int32), by_slot)  # slot * E + env
    env = (key % n_env).astype(np.int64)
    slot = key // n_env
    segment = rng.integers(0, model.segments, total, dtype=np.int32)
    f32 = np.float32
    # per (slot, env) and per segment log terms, then one gather each
    ctr_se = (shape.ctr[:, None] + log_ctr[None, :]).ravel().astype(f32)
    comp_se = (shape.competition[:, None] + log_competition[None, :]).ravel().astype(f32)
    seg_ctr = (np.log(model.base_ctr) + shape.seg_ctr).astype(f32)
    seg_cvr = (np.log(model.base_cvr) + shape.seg_cvr).astype(f32)
    corr = model.competition_value_corr
    seg_comp = (model.competition_log_mean + shape.seg_comp - corr * np.log(shape.value_scale)).astype(f32)
    z = rng.standard_normal((4, total), dtype=f32)
    log_pctr = np.minimum(seg_ctr[segment] + ctr_se[key] + f32(model.ctr_log_sigma) * z[0], f32(np.log(0.5)))
    log_pcvr = np.minimum(seg_cvr[segment] + f32(model.cvr_log_sigma) * z[1], f32(np.log(0.9)))
    log_value = log_pctr + log_pcvr + f32(np.log(model.value_per_conversion))
    sigma = model.estimate_log_sigma
    value = np.exp(log_value)
    estimate = np.exp(log_value + f32(sigma) * z[2] - f32(0.5 * sigma * sigma))
    competing = np.exp(seg_comp[segment] + comp_se[key] + f32(corr) * log_value + f32(model.competition_log_sigma) * z[3])
    starts = np.concatenate([[0], np.cumsum(counts.sum(axis=0))])
    return MarketDay(env, slot, segment, value, estimate, np.exp(log_pctr), np.exp(log_pcvr), competing, starts, counts)


def resolve_auctions(
    bids: np.ndarray, competing: np.ndarray, env: np.ndarray, budget_left: np.ndarray, reserve: float, first_price: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Resolve auctions in order (grouped by ``env``, ascending): win when the bid beats the competing bid and
    the reserve, pay the second price (max(competing, reserve)) or the bid; a campaign stops winning once the
    next price would exceed its budget. Returns (won, cost)."""
    win = (bids > competing) & (bids >= reserve)
    price = np.where(win, bids if first_price else np.maximum(competing, reserve), 0.0)
    cum = np.cumsum(price, dtype=np.float64)
    if len(cum):
        first = np.searchsorted(env, np.arange(len(budget_left)), side="left")
        before = np.where(first > 0, cum[np.maximum(first - 1, 0)], 0.0)
        win &= (cum - before[env]) <= budget_left[env] + 1e-12
    return win, np.where(win, price, 0.0)


def geometric_delay(rng: np.random.Generator, mean: float, size: int) -> np.ndarray:
    """Delays in slots (0, 1, 2, ...) with the given mean."""
    if mean <= 0:
        return np.zeros(size, dtype=np.int64)
    return rng.geometric(1.0 / (1.0 + mean), size) - 1


@dataclass(frozen=True, slots=True)
class SlotResult:
    """What one step bought, per campaign."""

    reward: np.ndarray  # conversion value arriving now
    expected_value: np.ndarray
    spend: np.ndarray
    wins: np.ndarray
    opportunities: np.ndarray

    def info(self, e: int) -> dict[str, Any]:
        return {
            "expected_value": float(self.expected_value[e]), "spend": float(self.spend[e]),
            "wins": int(self.wins[e]), "opportunities": int(self.opportunities[e]),
        }


@dataclass(frozen=True, slots=True)
class ResolvedAuctions:
    """The auctions one resolution settled (what the simulator's ``auction_result`` events report)."""

    g: int  # global slot
    index: slice  # into the day's opportunities
    bids: np.ndarray
    won: np.ndarray
    cost: np.ndarray


@dataclass(frozen=True, slots=True)
class ClosedSlot:
    """One closed slot: its day's opportunities, the auctions resolved in it and the conversion value that arrived."""

    g: int
    day: MarketDay
    auctions: list[ResolvedAuctions]
    conversions: np.ndarray  # (E,)


class AuctionMarket:
    """E campaigns in their own markets, stepped slot by slot in lockstep (same day and slot for all)."""

    def __init__(self, model: AuctionModel, n_env: int) -> None:
        self.model, self.n_env = model, n_env
        self.shape = MarketShape.of(model)
        self.spec = bid_spec(model, self.shape)
        self.first_price = model.auction_type == "first_price"
        self.total_slots = model.days * model.slots_per_day
        self.day = self.slot = 0
        self.day_data: MarketDay | None = None
        self.yesterday: MarketDay | None = None

    # ---- lifecycle ----------------------------------------------------------------------------------
    def reset(self, rng: np.random.Generator) -> None:
        m, e = self.model, self.n_env
        self.day = self.slot = 0
        self.log_factors = m.daily_drift * rng.standard_normal((3, e))  # volume, competition, ctr (stationary)
        self.adaptation = np.zeros(e)
        self.pending = np.zeros((e, self.total_slots + 1))
        self.facts = CampaignFacts.empty(e, m.daily_budget, self.spec)
        self.resolved: list[ResolvedAuctions] = []  # the current slot's, so far
        self.closed: ClosedSlot | None = None  # the last slot closed: what its events report
        self.yesterday = None
        self.day_data = self._generate(rng)

    @property
    def finished(self) -> bool:
        return self.day >= self.model.days

    @property
    def global_slot(self) -> int:
        return self.day * self.model.slots_per_day + self.slot

    @property
    def budget_left(self) -> np.ndarray:
        return self.facts.budget_left(self.day)

    @property
    def spend_today(self) -> np.ndarray:
        return self.facts.today_at(self.day)[0]

    def _generate(self, rng: np.random.Generator) -> MarketDay:
        vol, comp, ctr = self.log_factors
        return generate_day(self.model, self.shape, vol, comp + self.adaptation, ctr, rng)

    # ---- stepping -----------------------------------------------------------------------------------
    def step_slot(self, multipliers: np.ndarray, rng: np.random.Generator) -> SlotResult:
        """Bid ``multiplier x estimate`` on every opportunity of the current slot, for each campaign."""
        sl = self.day_data.slot_range(self.slot)
        mult = np.clip(np.asarray(multipliers, dtype=np.float64).reshape(self.n_env), 0.0, self.model.max_multiplier)
        bids = np.minimum(mult[self.day_data.env[sl]] * self.day_data.estimate[sl], self.model.max_bid)
        result = self._resolve(sl, bids, rng)
        reward = self.close_slot(rng)
        if self.finished:
            reward = reward + self.flush()
        return SlotResult(reward, result.expected_value, result.spend, result.wins, result.opportunities)

    def resolve_one(self, index: int, bid: float, rng: np.random.Generator) -> SlotResult:
        """Bid mode (one campaign): resolve opportunity ``index`` of today at ``bid``."""
        return self._resolve(slice(index, index + 1), np.array([min(bid, self.model.max_bid)]), rng)

    def _resolve(self, sl: slice, bids: np.ndarray, rng: np.random.Generator) -> SlotResult:
        d, e, model = self.day_data, self.n_env, self.model
        env = d.env[sl]
        won, cost = resolve_auctions(bids, d.competing[sl], env, self.budget_left, model.reserve_price, self.first_price)
        spend = np.bincount(env, weights=cost, minlength=e)
        value = np.bincount(env, weights=np.where(won, d.value[sl], 0.0), minlength=e)
        wins = np.bincount(env, weights=won, minlength=e)
        opps = np.bincount(env, minlength=e).astype(np.float64)
        price_to_beat = np.maximum(d.competing[sl], np.float32(model.reserve_price))
        fold_auctions(self.facts, self.spec, self.global_slot, env, d.estimate[sl], price_to_beat, won, cost)
        self.resolved.append(ResolvedAuctions(self.global_slot, sl, bids, won, cost))
        winners = np.flatnonzero(won)
        if len(winners):
            u = rng.random((2, len(winners)))
            idx = winners + sl.start
            converted = (u[0] < d.pctr[idx]) & (u[1] < d.pcvr[idx])
            if converted.any():
                conv_env = d.env[idx[converted]]
                arrival = self.global_slot + geometric_delay(rng, self.model.conversion_delay_slots, int(converted.sum()))
                np.add.at(self.pending, (conv_env, np.minimum(arrival, self.total_slots)), self.model.value_per_conversion)
        return SlotResult(np.zeros(e), value, spend, wins, opps)

    def close_slot(self, rng: np.random.Generator) -> np.ndarray:
        """End the current slot: pay the conversions arriving now, move to the next slot (and day)."""
        reward = self.pending[:, self.global_slot].copy()
        self.pending[:, self.global_slot] = 0.0
        fold_conversions(self.facts, self.spec, self.global_slot, reward)
        self.closed = ClosedSlot(self.global_slot, self.day_data, self.resolved, reward)
        self.resolved = []
        self.slot += 1
        if self.slot >= self.model.slots_per_day:
            self._end_day(rng)
        return reward

    def _end_day(self, rng: np.random.Generator) -> None:
        m = self.model
        _, wins, opportunities = self.facts.today_at(self.day)
        win_rate = wins / np.maximum(opportunities, 1.0)
        self.adaptation = np.clip(
            self.adaptation + m.competitor_adaptation * (win_rate - m.competitor_target_win_rate), -1.0, 1.0
        )
        rho = m.drift_persistence
        self.log_factors = rho * self.log_factors + np.sqrt(1 - rho * rho) * m.daily_drift * rng.standard_normal(
            self.log_factors.shape
        )
        self.day += 1
        self.slot = 0
        self.yesterday = self.day_data
        if not self.finished:
            self.day_data = self._generate(rng)

    def flush(self) -> np.ndarray:
        """Pay every conversion still pending (the end of the episode)."""
        reward = self.pending[:, self.global_slot if not self.finished else self.total_slots - 1 :].sum(axis=1)
        reward = self.pending.sum(axis=1) if self.finished else reward
        self.pending[:] = 0.0
        return reward

    # ---- observation --------------------------------------------------------------------------------
    def volume_to_come(self) -> float:
        return float(self.shape.volume[min(self.slot, self.model.slots_per_day) :].sum()) if not self.finished else 0.0

    def observe(self) -> np.ndarray:
        """(E, 10) float32, the multiplier-mode observation: :func:`environment.bid_observation.bid_observation`
        of the campaigns' facts at the start of the current slot."""
        return bid_observation(self.facts, self.global_slot, self.spec)
