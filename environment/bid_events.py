"""The auction simulator's events: what one closed slot of :class:`~environment.auction_market.AuctionMarket`
reports, as the product's events.

Each resolved auction is an ``auction_result`` (the bid, won, the price paid, the bidder's estimate and the
price to beat: max(highest competing bid, reserve)), stamped evenly inside its slot; each conversion that
arrived in the slot is a ``purchase`` attributed to the campaign, stamped at the slot's last microsecond. The
simulator's day ``d`` is the calendar day ``start_day + d`` (days since 1970-01-01, UTC).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

from data.events import AuctionResult, AuctionResultProperties, EventBase, Purchase, PurchaseProperties, derive_event_id
from data.sharding import ANONYMOUS_CUSTOMER
from environment.auction_market import AuctionMarket, ClosedSlot
from environment.bid_facts import slot_start_us

SIM_CUSTOMER = ANONYMOUS_CUSTOMER
SOURCE = "simulator"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _at(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(us))


def slot_events(market: AuctionMarket, closed: ClosedSlot, campaigns: Sequence[str], start_day: int) -> list[EventBase]:
    """The events of a closed slot, in the order the market folded them (auctions, then conversions)."""
    model, slots = market.model, market.model.slots_per_day
    g = start_day * slots + closed.g
    start, end = slot_start_us(g, slots), slot_start_us(g + 1, slots)
    day = closed.day
    out: list[EventBase] = []
    total = sum(a.index.stop - a.index.start for a in closed.auctions)
    seen = 0
    for batch in closed.auctions:
        sl = batch.index
        price_to_beat = np.maximum(day.competing[sl], np.float32(model.reserve_price))
        for j, i in enumerate(range(sl.start, sl.stop)):
            campaign = campaigns[int(day.env[i])]
            at = _at(start + (seen + j) * (end - start) // max(total, 1))
            props = AuctionResultProperties(
                campaign_id=campaign, auction_id=f"{campaign}-{g}-{i}", bid=float(batch.bids[j]), won=bool(batch.won[j]),
                price_paid=float(batch.cost[j]), reserve_price=model.reserve_price, auction_type=model.auction_type,
                pctr=float(day.pctr[i]), estimate=float(day.estimate[i]), price_to_beat=float(price_to_beat[j]),
            )
            out.append(AuctionResult(event_id=derive_event_id("sim-auction", campaign, g, i), customer_id=SIM_CUSTOMER,
                                     occurred_at=at, source=SOURCE, properties=props))
        seen += sl.stop - sl.start
    out.extend(_conversions(closed, campaigns, g, model.value_per_conversion, _at(end - 1)))
    return out


def _conversions(closed: ClosedSlot, campaigns: Sequence[str], g: int, value: float, at: datetime) -> list[EventBase]:
    """One ``purchase`` per conversion that arrived in the slot (the market pays ``value`` each)."""
    out: list[EventBase] = []
    for e, amount in enumerate(closed.conversions):
        for k in range(round(amount / value)):
            order = f"{campaigns[e]}-{g}-{k}"
            out.append(Purchase(event_id=derive_event_id("sim-conversion", order), customer_id=SIM_CUSTOMER, occurred_at=at,
                                source=SOURCE, properties=PurchaseProperties(order_id=order, amount=value, campaign_id=campaigns[e])))
    return out
