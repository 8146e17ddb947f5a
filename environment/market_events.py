"""What the simulated market's customers do, as the product's events.

Customers arrive on the first day (``lead_created``, ``customer_attributes``, a ``consent_changed`` per channel they
granted). On each day, for every customer contacted or visiting: the decision (when the simulator took it itself),
the message's ``*_sent`` / ``offer_sent`` / ``auction_result`` + ``ad_impression``, then opens, clicks,
``unsubscribe`` + ``consent_changed``, ``page_view`` and ``purchase``. Every event of a day lies within that day (UTC),
after its tick. Event ids derive from (run, customer, day, kind), so writing a run twice appends nothing new.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from data.events import (
    AdClick,
    AdImpression,
    AdProperties,
    AuctionResult,
    AuctionResultProperties,
    Channel,
    ClickProperties,
    ConsentChanged,
    ConsentChangedProperties,
    CustomerAttributes,
    CustomerAttributesProperties,
    DecisionMade,
    DecisionMadeProperties,
    EmailClick,
    EmailOpen,
    EmailSent,
    EventBase,
    LeadCreated,
    LeadCreatedProperties,
    MessageProperties,
    OfferSent,
    OfferSentProperties,
    PageView,
    PageViewProperties,
    Purchase,
    PurchaseProperties,
    PushOpen,
    PushSent,
    SmsClick,
    SmsSent,
    Unsubscribe,
    UnsubscribeProperties,
    derive_event_id,
)
from data.ticks import TICK_TIME
from environment.dynamics import StepOutcome
from environment.observation import attributes_of_profiles
from environment.population import ACTIONS, AD, EMAIL, OFFER, PUSH, SMS, WAIT, Profiles

SOURCE = "simulator"
CAMPAIGN = "sim-journey"
AGENT = "simulator"
"""The ``agent`` of the simulator's own decisions (the engine's journey agent logs its own as ``journey``)."""
_CHANNEL = {EMAIL: Channel.EMAIL, SMS: Channel.SMS, PUSH: Channel.PUSH, AD: Channel.AD, OFFER: Channel.EMAIL}
_CONSENT = ((1, Channel.EMAIL), (2, Channel.SMS), (4, Channel.PUSH))
_TICK_MINUTE = TICK_TIME.hour * 60.0 + TICK_TIME.minute
_LAST_MINUTE = 24 * 60.0 - 1 / 60_000  # the last moment of a day: a day's events never spill into the next


@dataclass(frozen=True, slots=True)
class DayDecisions:
    """Who decided each customer's action on a day.

    :param propensity: the probability of each action carried out (logged with the simulator's own decisions).
    :param label: (policy name, version) of the simulator's own decisions; None when the engine decided (closed loop):
        the engine logged its decisions, and the messages name them.
    :param decision_ids: the engine's decision ids per customer (closed loop); None: the simulator's own ids.
    """

    propensity: np.ndarray
    label: tuple[str, str] | None = None
    decision_ids: list[str] | None = None


@dataclass(frozen=True, slots=True)
class _Customer:
    """One customer's day: the ids and times every event of theirs derives from."""

    run: str
    day: int
    base: datetime
    cid: str
    i: int
    minutes: np.ndarray

    def eid(self, kind: str) -> str:
        return derive_event_id(self.run, self.cid, self.day, kind)

    def at(self, minute: float) -> datetime:
        return self.base + timedelta(minutes=min(float(minute), _LAST_MINUTE))

    @property
    def click_minute(self) -> float:
        return _TICK_MINUTE + 5 + float(self.minutes[0])


def arrival_events(run: str, start: datetime, customer_ids: list[str], profiles: Profiles, consent: np.ndarray) -> Iterator[EventBase]:
    """Every customer's arrival at the start of the first day: the lead, their attributes, their consent."""
    for idx, cid in enumerate(customer_ids):
        def eid(kind: str, cid: str = cid) -> str:
            return derive_event_id(run, cid, 0, kind)

        common = {"customer_id": cid, "occurred_at": start, "source": SOURCE}
        yield LeadCreated(event_id=eid("lead"), **common,
                          properties=LeadCreatedProperties(acquisition_source="hillstrom_sim", campaign_id=CAMPAIGN))
        yield CustomerAttributes(event_id=eid("attributes"), **common,
                                 properties=CustomerAttributesProperties(**attributes_of_profiles(profiles, idx)))
        for bit, channel in _CONSENT:
            if consent[idx] & bit:
                yield ConsentChanged(event_id=eid(f"consent-{channel}"), **common,
                                     properties=ConsentChangedProperties(channel=channel, granted=True))


def day_events(run: str, day: int, start: datetime, customer_ids: list[str], outcome: StepOutcome, decisions: DayDecisions,
               rng: np.random.Generator, discount_pct: float, ad_cost: float) -> Iterator[EventBase]:
    """The events of one simulated day for every customer who was contacted or visited, in time order per customer."""
    base = start + timedelta(days=day)
    minutes = rng.integers(0, 12 * 60, size=(len(customer_ids), 3))  # open delay, organic visit time, dwell
    for idx in np.flatnonzero((outcome.action != WAIT) | outcome.visited):
        c = _Customer(run, day, base, customer_ids[idx], int(idx), minutes[idx])
        click_id = None
        if outcome.action[idx] != WAIT:
            decision = c.eid("decision") if decisions.decision_ids is None else decisions.decision_ids[idx]
            if decisions.label is not None:
                yield _decision(c, int(outcome.action[idx]), float(decisions.propensity[idx]), decisions.label, decision)
            yield from _contact(c, int(outcome.action[idx]), decision, discount_pct, ad_cost)
            click_id = yield from _responses(c, outcome, int(outcome.action[idx]), decision)
        if outcome.visited[idx]:
            yield from _visit(c, outcome, int(outcome.action[idx]), click_id)


def _decision(c: _Customer, action: int, propensity: float, label: tuple[str, str], decision: str) -> DecisionMade:
    return DecisionMade(
        event_id=decision, customer_id=c.cid, occurred_at=c.at(_TICK_MINUTE), source=SOURCE,
        properties=DecisionMadeProperties(agent=AGENT, action=ACTIONS[action], channel=_CHANNEL[action],
                                          propensity=propensity, policy_name=label[0], policy_version=label[1]),
    )


def _contact(c: _Customer, action: int, decision: str, discount_pct: float, ad_cost: float) -> Iterator[EventBase]:
    """The message (or the ad shown) that carries the decision out."""
    common = {"customer_id": c.cid, "source": SOURCE, "causation_id": decision, "occurred_at": c.at(_TICK_MINUTE)}
    msg = MessageProperties(campaign_id=CAMPAIGN, decision_id=decision)
    if action == EMAIL:
        yield EmailSent(event_id=c.eid("sent"), properties={"campaign_id": CAMPAIGN, "decision_id": decision}, **common)
    elif action == OFFER:
        yield OfferSent(event_id=c.eid("sent"), **common,
                        properties=OfferSentProperties(campaign_id=CAMPAIGN, decision_id=decision, discount_pct=discount_pct))
    elif action == SMS:
        yield SmsSent(event_id=c.eid("sent"), properties=msg, **common)
    elif action == PUSH:
        yield PushSent(event_id=c.eid("sent"), properties=msg, **common)
    else:
        yield AuctionResult(event_id=c.eid("auction"), **common, properties=AuctionResultProperties(
            campaign_id=CAMPAIGN, auction_id=c.eid("auction-id"), bid=ad_cost, won=True, price_paid=ad_cost))
        yield AdImpression(event_id=c.eid("sent"), **common,
                           properties=AdProperties(campaign_id=CAMPAIGN, cost=ad_cost, placement="retargeting"))


def _responses(c: _Customer, o: StepOutcome, action: int, decision: str) -> Iterator[EventBase]:
    """Opens, clicks and an unsubscribe, as far as events show them; returns the id the visit is caused by."""
    after = {"customer_id": c.cid, "source": SOURCE, "causation_id": c.eid("sent")}
    msg = MessageProperties(campaign_id=CAMPAIGN, decision_id=decision)
    i, click_minute, click_id = c.i, c.click_minute, c.eid("click")
    if o.opened[i] and action in (EMAIL, OFFER):
        yield EmailOpen(event_id=c.eid("open"), occurred_at=c.at(click_minute - 2), properties=msg, **after)
    if o.opened[i] and action == PUSH:
        yield PushOpen(event_id=c.eid("open"), occurred_at=c.at(click_minute - 2), properties=msg, **after)
    if o.clicked[i]:
        click = ClickProperties(campaign_id=CAMPAIGN, decision_id=decision, url="https://shop.example/landing")
        if action in (EMAIL, OFFER):
            yield EmailClick(event_id=click_id, occurred_at=c.at(click_minute), properties=click, **after)
        elif action == SMS:
            yield SmsClick(event_id=click_id, occurred_at=c.at(click_minute), properties=click, **after)
        elif action == AD:
            yield AdClick(event_id=click_id, occurred_at=c.at(click_minute), **after,
                          properties=AdProperties(campaign_id=CAMPAIGN, placement="retargeting"))
        else:
            click_id = c.eid("open")  # a push click is its open
    if o.unsubscribed[i]:
        channel = Channel.EMAIL if action in (EMAIL, OFFER) else _CHANNEL[action]
        yield Unsubscribe(event_id=c.eid("unsub"), occurred_at=c.at(click_minute + 1), **after,
                          properties=UnsubscribeProperties(channel=channel, campaign_id=CAMPAIGN))
        yield ConsentChanged(event_id=c.eid("consent-withdrawn"), customer_id=c.cid, occurred_at=c.at(click_minute + 1),
                             source=SOURCE, causation_id=c.eid("unsub"),
                             properties=ConsentChangedProperties(channel=channel, granted=False))
    return click_id


def _visit(c: _Customer, o: StepOutcome, action: int, click_id: str | None) -> Iterator[EventBase]:
    """A visit (through the click, or organic), and a purchase on it."""
    via_click = bool(o.clicked[c.i])
    visit_minute = c.click_minute + 0.5 if via_click else 12 * 60.0 + float(c.minutes[1])
    yield PageView(
        event_id=c.eid("visit"), customer_id=c.cid, occurred_at=c.at(visit_minute), source=SOURCE,
        causation_id=click_id if via_click else None,
        properties=PageViewProperties(url="https://shop.example/landing" if via_click else "https://shop.example/",
                                      session_id=c.eid("session")[:32], duration_s=float(30 + c.minutes[2])),
    )
    if o.purchased[c.i]:
        yield Purchase(
            event_id=c.eid("purchase"), customer_id=c.cid, occurred_at=c.at(visit_minute + 10), source=SOURCE,
            causation_id=c.eid("visit"),
            properties=PurchaseProperties(order_id=c.eid("order")[:36], amount=float(o.amount[c.i]),
                                          discount=float(o.discount[c.i]),
                                          campaign_id=CAMPAIGN if via_click or action == OFFER else None),
        )
