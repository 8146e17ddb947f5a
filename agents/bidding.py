"""The bidding agent: each campaign's facts and pacing controller, folded from ``auction_result`` events and the
``purchase`` events attributed to the campaign.

It is sharded by campaign (not customer), so one shard holds a campaign's whole state. It appends nothing; the
bid endpoint reads a campaign's record from the owning shard (``AgentSupervisor.bidding_state``, an actor method)
and prices from it (:mod:`policies.bid_serving`).

A batch is folded per campaign in runs of consecutive events of one kind and one slot (slot = time of day /
(24 h / slots per day)): before a run of slot ``g`` the controller is moved to the start of ``g``, then the run is
folded into the facts with :func:`environment.bid_facts.fold_auctions` or ``fold_conversions``, the functions the
auction simulator folds its slots with. The record stays bounded however many auctions a day brings.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field

from agents.runtime import Agent, StateView
from data.events import EventBase
from data.log.base import StoredEvent
from environment.auction_market import bid_spec
from environment.bid_facts import BidSpec, CampaignFacts, fold_auctions, fold_conversions, global_slot
from environment.config import AuctionModel, load_market_config
from policies.bid_pacer import PacerState, PacingParams, advance
from policies.bid_serving import campaign_record, campaign_state, current_record, sketch_key


class BiddingConfig(BaseModel):
    """Daily budgets, the market the bid observation is read with, and the pacing controller's settings (the
    served bidder's controller state is what this agent folds, so these must be the ones it was trained with)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    daily_budgets: dict[str, float] = Field(default_factory=dict, description="campaign_id -> daily budget.")
    default_daily_budget: float = Field(1_000.0, gt=0)
    market: AuctionModel = Field(default_factory=lambda: load_market_config().auction,
                                 description="Slots per day and the observation's scales (the simulator's market).")
    pacing: PacingParams = PacingParams()

    def budget(self, campaign: str) -> float:
        return float(self.daily_budgets.get(campaign, self.default_daily_budget))


@dataclass(slots=True)
class _Campaign:
    """One campaign's working state while a batch is folded (arrays of one campaign)."""

    facts: CampaignFacts
    pacer: PacerState
    updated_us: int


class BiddingAgent(Agent):
    """Keeps each campaign's facts and pacing controller (see the module docstring)."""

    name: ClassVar[str] = "bidding"
    event_types: ClassVar[frozenset[str]] = frozenset({"auction_result", "purchase"})
    keyed_by_customer = False  # keyed by campaign, so shards filter after the read

    def __init__(self, config: BiddingConfig | None = None) -> None:
        self.config = config or BiddingConfig()
        self.spec: BidSpec = bid_spec(self.config.market)

    def key_of(self, event: StoredEvent) -> str:
        return orjson.loads(event.properties_json).get("campaign_id") or ""

    def is_broadcast(self, event: StoredEvent) -> bool:
        return False

    def decide(self, batch: Sequence[StoredEvent], state: StateView) -> list[EventBase]:
        parsed = [(e, p) for e in batch if (p := orjson.loads(e.properties_json)).get("campaign_id")]
        parsed.sort(key=lambda ep: ep[1]["campaign_id"])  # stable: each campaign's events keep their log order
        campaigns = {p["campaign_id"] for _, p in parsed}
        state.prefetch([*campaigns, *map(sketch_key, campaigns)])
        working: dict[str, _Campaign] = {}
        slots = self.spec.slots_per_day
        runs = itertools.groupby(parsed, key=lambda ep: (ep[1]["campaign_id"], ep[0].event_type,
                                                        global_slot(ep[0].occurred_at_us, slots)))
        for (campaign, kind, g), run in runs:
            events = list(run)
            work = working.get(campaign) or self._load(campaign, state, kind)
            if work is None:
                continue  # a purchase attributed to a campaign that never bid
            working[campaign] = work
            self._fold(work, kind, g, [p for _, p in events])
            work.updated_us = max(work.updated_us, max(e.occurred_at_us for e, _ in events))
        for campaign, work in working.items():
            record, sketch = campaign_record(campaign, work.facts, work.pacer, self.spec, self.config.pacing, work.updated_us)
            state.put(campaign, record)
            state.put(sketch_key(campaign), sketch)
        return []

    def _load(self, campaign: str, state: StateView, kind: str) -> _Campaign | None:
        record = current_record(state.get(campaign))
        if record is None:
            if kind != "auction_result":
                return None
            facts = CampaignFacts.empty(1, self.config.budget(campaign), self.spec)
            return _Campaign(facts, PacerState.empty(1, self.spec), 0)
        facts, pacer, _, _, _ = campaign_state(record, state.get(sketch_key(campaign)))
        facts.budget[0] = self.config.budget(campaign)
        return _Campaign(facts, pacer, int(record.get("updated_us", 0)))

    def _fold(self, work: _Campaign, kind: str, g: int, props: list[dict[str, Any]]) -> None:
        """Fold one run (one campaign, one kind, one slot): the controller first, then the facts."""
        advance(work.pacer, work.facts, g, self.spec, self.config.pacing)
        if kind == "purchase":
            fold_conversions(work.facts, self.spec, g, np.array([sum(float(p.get("amount") or 0.0) for p in props)]))
            return
        won = np.array([bool(p.get("won")) for p in props])
        cost = np.array([float(p.get("price_paid") or 0.0) for p in props]) * won
        estimate = np.array([np.nan if p.get("estimate") is None else float(p["estimate"]) for p in props])
        price_to_beat = np.array([np.nan if p.get("price_to_beat") is None else float(p["price_to_beat"]) for p in props])
        fold_auctions(work.facts, self.spec, g, np.zeros(len(props), dtype=np.int64), estimate, price_to_beat, won, cost)
