"""Bidding in a closed loop: the auction market's campaigns bid what the engine serves.

At the start of every slot the bidding agent has folded everything before it, and each campaign's multiplier is
read exactly as ``/v1/bid`` reads it (:func:`serve.decide.bid_multiplier` on the agent's record); the market resolves
the slot's auctions at those bids and its results (``auction_result``, attributed ``purchase``) go into the log.
What the engine achieved is then measured from the log alone (:func:`bidding_from_log`): per campaign and day the
spend against the budget, the value won (the sum of the won impressions' value estimates, an unbiased estimate of
their expected value) and the hindsight LP on the logged auctions (estimates and prices to beat).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from data.log import EventLog
from data.log.base import replay_all
from environment.bid_events import campaign_events, slot_events
from environment.bid_facts import slot_start_us
from environment.bounds import hindsight_lp
from environment.config import MarketConfig, load_market_config
from environment.vector import AuctionVectorEnv
from policies.evaluate import budget_config, win_all_spend
from serve.decide import bid_multiplier

START_DAY = 20_000  # the auction simulator's day 0 (days since 1970-01-01, UTC)
DAY_US = 86_400_000_000


@dataclass(frozen=True, slots=True)
class BidLoop:
    """The auction market of a closed loop: its campaigns, their daily budget and the market model."""

    env: AuctionVectorEnv
    campaigns: list[str]
    budget: float


@dataclass(frozen=True, slots=True)
class CampaignDay:
    campaign: str
    day: int
    budget: float
    spend: float
    value: float
    lp_value: float

    @property
    def spend_share(self) -> float:
        return self.spend / self.budget

    @property
    def lp_share(self) -> float:
        return self.value / self.lp_value if self.lp_value > 0 else float("nan")


def bid_market(campaigns: int, days: int, seed: int, opportunities: int, budget_fraction: float,
               config: MarketConfig | None = None) -> BidLoop:
    """Campaigns whose daily budget is ``budget_fraction`` of the spend that would win every auction."""
    base = config or load_market_config()
    over = {"opportunities_per_day": opportunities, "days": days + 1}  # one spare day: the last slot closes in the log
    priced = budget_config(base, budget_fraction * win_all_spend(base, campaigns, seed, **over))
    env = AuctionVectorEnv(campaigns, priced, **over)
    env.reset(seed=seed)
    return BidLoop(env, [f"sim-campaign-{e}" for e in range(campaigns)], float(env.model.daily_budget))


def run_bid_loop(log: EventLog, loop: BidLoop, days: int, served: Any, record_of: Callable[[str], Any],
                 catch_up: Callable[[], None], on_slot: Callable[[int], None] | None = None) -> int:
    """``days`` days of the market bidding the served multipliers; returns the events appended. The campaigns are
    stated first (``campaign_updated``: name, channel, these days, the daily budget)."""
    market, slots = loop.env.market, loop.env.model.slots_per_day
    appended = log.append(campaign_events(loop.campaigns, START_DAY + market.global_slot // slots, days, loop.budget)).appended
    for _ in range(days * slots):
        catch_up()
        now_us = slot_start_us(START_DAY * slots + market.global_slot, slots)
        multipliers = np.array([bid_multiplier(served, record_of(c), now_us, market.spec).multiplier for c in loop.campaigns])
        loop.env.step(multipliers[:, None])
        events = slot_events(market, market.closed, loop.campaigns, START_DAY)
        appended += log.append(events).appended if events else 0
        if on_slot is not None:
            on_slot(market.global_slot)
    catch_up()
    return appended


def bidding_from_log(log: EventLog, budget: float, campaigns: list[str]) -> list[CampaignDay]:
    """Per campaign and day, from the log's ``auction_result`` events: spend, value won and the hindsight LP."""
    rows: dict[tuple[str, int], list[tuple[bool, float, float, float]]] = {}
    wanted = set(campaigns)
    for e in replay_all(log, ["auction_result"]):
        p = orjson.loads(e.properties_json)
        if p["campaign_id"] in wanted and p.get("estimate") is not None:
            rows.setdefault((p["campaign_id"], e.occurred_at_us // DAY_US - START_DAY), []).append(
                (bool(p["won"]), float(p.get("price_paid") or 0.0), float(p["estimate"]), float(p["price_to_beat"])))
    out = []
    for (campaign, day), auctions in sorted(rows.items()):
        won, paid, estimate, price = (np.array(x) for x in zip(*auctions, strict=True))
        lp = hindsight_lp(estimate, price, budget).value
        out.append(CampaignDay(campaign, day, budget, float(paid.sum()), float(estimate[won.astype(bool)].sum()), lp))
    return out
