"""The auction simulator's events: what one closed slot of :class:`~environment.auction_market.AuctionMarket`
reports, as the product's events.

Each resolved auction is an ``auction_result`` (the bid, won, the price paid, the bidder's estimate and the
price to beat: max(highest competing bid, reserve)), stamped evenly inside its slot; each conversion that
arrived in the slot is a ``purchase`` attributed to the campaign, stamped at the slot's last microsecond. The
simulator's day ``d`` is the calendar day ``start_day + d`` (days since 1970-01-01, UTC). Before its first auction
each campaign is stated by a ``campaign_updated`` (:func:`campaign_events`): a readable name, the ad channel, its
first and last day and its daily budget, so the warehouse's campaign mart shows names instead of ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

from data.events import (
    AuctionResult,
    AuctionResultProperties,
    CampaignUpdated,
    CampaignUpdatedProperties,
    Channel,
    EventBase,
    Purchase,
    PurchaseProperties,
    derive_event_id,
)
from data.sharding import ANONYMOUS_CUSTOMER, BROADCAST_CUSTOMER
from environment.auction_market import AuctionMarket, ClosedSlot
from environment.bid_facts import slot_start_us

SIM_CUSTOMER = ANONYMOUS_CUSTOMER
SOURCE = "simulator"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CAMPAIGN_NAMES = ("Search - prospecting", "Search - retargeting", "Display - prospecting", "Display - retargeting",
                  "Social - prospecting", "Social - retargeting", "Video - awareness", "Shopping - catalogue")
"""The simulated campaigns' names, by index (a campaign past the list gets the name of its index modulo, numbered)."""


def _at(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(us))


def campaign_name(index: int) -> str:
    """The readable name of the market's campaign number ``index``: the same index, the same name."""
    base, round_ = CAMPAIGN_NAMES[index % len(CAMPAIGN_NAMES)], index // len(CAMPAIGN_NAMES)
    return f"{base} {round_ + 1}" if round_ else base


def campaign_events(campaigns: Sequence[str], start_day: int, days: int, daily_budget: float | None) -> list[EventBase]:
    """One ``campaign_updated`` per campaign, logged under the broadcast id at the first day's midnight (before the
    first auction): its name by index, the ad channel, the market's first and last day and its daily budget.

    :param campaigns: the campaign ids, in the market's order.
    :param start_day: the first day (days since 1970-01-01, UTC).
    :param days: how many days the campaigns bid (the last day is ``start_day + days - 1``).
    :param daily_budget: each campaign's daily budget, when the market has one.
    """
    if days < 1:
        raise ValueError(f"a campaign bids on at least one day; got days={days}")
    first, last = (EPOCH + timedelta(days=start_day)), (EPOCH + timedelta(days=start_day + days - 1))
    return [CampaignUpdated(
        event_id=derive_event_id("sim-campaign", campaign, start_day), customer_id=BROADCAST_CUSTOMER, occurred_at=first,
        source=SOURCE, properties=CampaignUpdatedProperties(
            campaign_id=campaign, name=campaign_name(e), channel=Channel.AD, start_date=first.date(),
            end_date=last.date(), daily_budget=daily_budget))
        for e, campaign in enumerate(campaigns)]


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
