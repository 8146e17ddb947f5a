"""The bidding agent: per-campaign budget and pacing state, folded from ``auction_result`` events.

It is sharded by campaign (not customer), so one shard holds a campaign's whole state. It appends nothing;
the bid endpoint reads a campaign's record from the owning shard (``AgentSupervisor.bidding_state``, an actor
method). Pacing compares the share of the day's budget spent with the share of the day gone (event time):
the multiplier scales bids down when spending runs ahead and up when it lags, within ``[min, max]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

from agents.runtime import Agent, Record, StateView
from data.events import EventBase
from data.log.base import StoredEvent

DAY_US = 86_400_000_000


class BiddingConfig(BaseModel):
    """Daily budgets and the pacing controller's bounds."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    daily_budgets: dict[str, float] = Field(default_factory=dict, description="campaign_id -> daily budget.")
    default_daily_budget: float = Field(1_000.0, gt=0)
    pacing_gain: float = Field(2.0, ge=0, description="How hard the multiplier reacts to being ahead or behind.")
    min_multiplier: float = Field(0.0, ge=0)
    max_multiplier: float = Field(2.0, gt=0)


def pacing_multiplier(spent: float, budget: float, day_share: float, config: BiddingConfig) -> float:
    """Bid multiplier from spend against the straight-line plan (0 once the day's budget is gone)."""
    if spent >= budget:
        return 0.0
    ahead = spent / budget - day_share
    return round(min(config.max_multiplier, max(config.min_multiplier, 1.0 - config.pacing_gain * ahead)), 4)


class BiddingAgent(Agent):
    """Keeps each campaign's spend, wins and pacing (see the module docstring)."""

    name: ClassVar[str] = "bidding"
    event_types: ClassVar[frozenset[str]] = frozenset({"auction_result"})
    keyed_by_customer = False  # keyed by campaign, so shards filter after the read

    def __init__(self, config: BiddingConfig | None = None) -> None:
        self.config = config or BiddingConfig()

    def key_of(self, event: StoredEvent) -> str:
        return orjson.loads(event.properties_json)["campaign_id"]

    def is_broadcast(self, event: StoredEvent) -> bool:
        return False

    def fold(self, record: Record | None, event: StoredEvent, props: dict) -> Record:
        campaign = props["campaign_id"]
        t = event.occurred_at_us
        day = t // DAY_US
        rec = dict(record) if record else {"campaign_id": campaign, "day": day, "spend_today": 0.0, "won_today": 0,
                                            "auctions_today": 0, "spend_total": 0.0, "won_total": 0, "auctions_total": 0}
        if day > rec["day"]:  # a new day: today's counters restart
            rec.update(day=day, spend_today=0.0, won_today=0, auctions_today=0)
        paid = float(props.get("price_paid") or 0.0) if props.get("won") else 0.0
        if day == rec["day"]:
            rec["spend_today"] = round(rec["spend_today"] + paid, 6)
            rec["won_today"] += int(bool(props.get("won")))
            rec["auctions_today"] += 1
        rec["spend_total"] = round(rec["spend_total"] + paid, 6)
        rec["won_total"] += int(bool(props.get("won")))
        rec["auctions_total"] += 1
        budget = self.config.daily_budgets.get(campaign, self.config.default_daily_budget)
        rec["budget"] = budget
        rec["remaining_today"] = round(max(0.0, budget - rec["spend_today"]), 6)
        rec["pacing_multiplier"] = pacing_multiplier(rec["spend_today"], budget, (t % DAY_US) / DAY_US, self.config)
        rec["updated_us"] = max(t, rec.get("updated_us", 0))
        return rec

    def decide(self, batch: Sequence[StoredEvent], state: StateView) -> list[EventBase]:
        parsed = [(e, orjson.loads(e.properties_json)) for e in batch]
        state.prefetch(p["campaign_id"] for _, p in parsed)
        for event, props in parsed:
            state.put(props["campaign_id"], self.fold(state.get(props["campaign_id"]), event, props))
        return []
