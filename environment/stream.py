"""The market stream: simulated customers under a journey policy, written to the event log as the product's events.

Each simulated day becomes ``decision_made`` (with the policy's propensity), the message's ``*_sent`` /
``offer_sent`` / ``auction_result`` + ``ad_impression``, then opens, clicks, ``page_view``, ``purchase``,
``unsubscribe`` + ``consent_changed``. Event ids are derived from (run seed, customer, day, kind), so writing the
same run twice appends nothing new.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
    DecisionMade,
    DecisionMadeProperties,
    EmailClick,
    EmailOpen,
    EmailSent,
    EmailSentProperties,
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
from environment.config import MarketConfig, load_market_config
from environment.dynamics import StepOutcome, Tables, observe, reset_batch, step_batch
from environment.heuristics import EmailEveryK, EngagementLadder, OfferEveryK, Predictor, PropensityThreshold
from environment.population import ACTIONS, AD, EMAIL, OFFER, PUSH, SMS, WAIT

logger = logging.getLogger(__name__)
SOURCE = "simulator"
CAMPAIGN = "sim-journey"
_CHANNEL = {EMAIL: Channel.EMAIL, SMS: Channel.SMS, PUSH: Channel.PUSH, AD: Channel.AD, OFFER: Channel.EMAIL}
_CONSENT = ((1, Channel.EMAIL), (2, Channel.SMS), (4, Channel.PUSH))


class _Wait:
    name = "wait"

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return np.zeros(len(observation), dtype=np.int64), state


POLICIES: dict[str, Callable[[], Predictor]] = {
    "engagement_ladder": EngagementLadder,
    "email_every_k": EmailEveryK,
    "propensity_threshold": PropensityThreshold,
    "offer_every_k": OfferEveryK,
    "wait": _Wait,
}
"""Journey policies the stream can run, by name (the default is the first)."""


def resolve_policy(name: str) -> Predictor:
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}")
    return POLICIES[name]()


@dataclass(frozen=True, slots=True)
class StreamReport:
    customers: int
    days: int
    events: int
    appended: int
    duplicates: int
    by_type: dict[str, int]
    total_reward: float


def day_events(
    run: str, day: int, start: datetime, customer_ids: list[str], outcome: StepOutcome, consent_before: np.ndarray,
    policy_name: str, rng: np.random.Generator, first_day: bool, discount_pct: float, ad_cost: float,
) -> Iterator[EventBase]:
    """The events of one simulated day for every customer, in time order per customer."""
    base = start + timedelta(days=day)
    n = len(customer_ids)
    minutes = rng.integers(0, 12 * 60, size=(n, 3))  # open delay, organic visit time, dwell
    active = np.ones(n, dtype=bool) if first_day else (outcome.action != WAIT) | outcome.visited
    for idx in np.flatnonzero(active):
        yield from _customer_day(
            run, day, base, customer_ids[idx], outcome, int(idx), int(consent_before[idx]), policy_name,
            minutes[idx], first_day, discount_pct, ad_cost,
        )


def _customer_day(
    run: str, day: int, base: datetime, cid: str, o: StepOutcome, i: int, consent: int, policy: str,
    minutes: np.ndarray, first_day: bool, discount_pct: float, ad_cost: float,
) -> Iterator[EventBase]:
    def eid(kind: str) -> str:
        return derive_event_id(run, cid, day, kind)

    def at(minute: float) -> datetime:
        return base + timedelta(minutes=float(minute))

    if first_day:
        yield LeadCreated(
            event_id=eid("lead"), customer_id=cid, occurred_at=base, source=SOURCE,
            properties=LeadCreatedProperties(acquisition_source="hillstrom_sim", campaign_id=CAMPAIGN),
        )
        for bit, channel in _CONSENT:
            if consent & bit:
                yield ConsentChanged(
                    event_id=eid(f"consent-{channel}"), customer_id=cid, occurred_at=base, source=SOURCE,
                    properties=ConsentChangedProperties(channel=channel, granted=True),
                )
    action = int(o.action[i])
    sent_id, click_id, visit_id = eid("sent"), eid("click"), eid("visit")
    send_minute = 9 * 60.0
    click_minute = send_minute + 5 + float(minutes[0])
    if action != WAIT:
        decision = eid("decision")
        channel = _CHANNEL[action]
        yield DecisionMade(
            event_id=decision, customer_id=cid, occurred_at=at(send_minute - 1), source=SOURCE,
            properties=DecisionMadeProperties(
                agent="journey", action=ACTIONS[action], channel=channel, propensity=1.0, policy_name=policy,
                policy_version="sim-1",
            ),
        )
        msg = MessageProperties(campaign_id=CAMPAIGN, decision_id=decision)
        common = {"customer_id": cid, "source": SOURCE, "causation_id": decision}
        if action == EMAIL:
            yield EmailSent(event_id=sent_id, occurred_at=at(send_minute), properties=EmailSentProperties(campaign_id=CAMPAIGN, decision_id=decision), **common)
        elif action == OFFER:
            yield OfferSent(
                event_id=sent_id, occurred_at=at(send_minute), **common,
                properties=OfferSentProperties(campaign_id=CAMPAIGN, decision_id=decision, discount_pct=discount_pct),
            )
        elif action == SMS:
            yield SmsSent(event_id=sent_id, occurred_at=at(send_minute), properties=msg, **common)
        elif action == PUSH:
            yield PushSent(event_id=sent_id, occurred_at=at(send_minute), properties=msg, **common)
        else:
            cost = ad_cost
            yield AuctionResult(
                event_id=eid("auction"), occurred_at=at(send_minute - 0.5), **common,
                properties=AuctionResultProperties(
                    campaign_id=CAMPAIGN, auction_id=eid("auction-id"), bid=cost, won=True, price_paid=cost,
                ),
            )
            yield AdImpression(
                event_id=sent_id, occurred_at=at(send_minute), **common,
                properties=AdProperties(campaign_id=CAMPAIGN, cost=cost, placement="retargeting"),
            )
        after = {"customer_id": cid, "source": SOURCE, "causation_id": sent_id}
        if o.opened[i] and action in (EMAIL, OFFER):
            yield EmailOpen(event_id=eid("open"), occurred_at=at(click_minute - 2), properties=msg, **after)
        if o.opened[i] and action == PUSH:
            yield PushOpen(event_id=eid("open"), occurred_at=at(click_minute - 2), properties=msg, **after)
        if o.clicked[i]:
            click = ClickProperties(campaign_id=CAMPAIGN, decision_id=decision, url="https://shop.example/landing")
            if action in (EMAIL, OFFER):
                yield EmailClick(event_id=click_id, occurred_at=at(click_minute), properties=click, **after)
            elif action == SMS:
                yield SmsClick(event_id=click_id, occurred_at=at(click_minute), properties=click, **after)
            elif action == AD:
                yield AdClick(
                    event_id=click_id, occurred_at=at(click_minute), **after,
                    properties=AdProperties(campaign_id=CAMPAIGN, placement="retargeting"),
                )
            else:
                click_id = eid("open")  # a push click is its open
        if o.unsubscribed[i]:
            channel = Channel.EMAIL if action in (EMAIL, OFFER) else channel
            yield Unsubscribe(
                event_id=eid("unsub"), occurred_at=at(click_minute + 1), **after,
                properties=UnsubscribeProperties(channel=channel, campaign_id=CAMPAIGN),
            )
            yield ConsentChanged(
                event_id=eid("consent-withdrawn"), customer_id=cid, occurred_at=at(click_minute + 1), source=SOURCE,
                causation_id=eid("unsub"), properties=ConsentChangedProperties(channel=channel, granted=False),
            )
    if o.visited[i]:
        via_click = bool(o.clicked[i])
        visit_minute = click_minute + 0.5 if via_click else 12 * 60.0 + float(minutes[1])
        yield PageView(
            event_id=visit_id, customer_id=cid, occurred_at=at(visit_minute), source=SOURCE,
            causation_id=click_id if via_click else None,
            properties=PageViewProperties(
                url="https://shop.example/landing" if via_click else "https://shop.example/",
                session_id=eid("session")[:32], duration_s=float(30 + minutes[2]),
            ),
        )
        if o.purchased[i]:
            yield Purchase(
                event_id=eid("purchase"), customer_id=cid, occurred_at=at(visit_minute + 10), source=SOURCE,
                causation_id=visit_id,
                properties=PurchaseProperties(
                    order_id=eid("order")[:36], amount=float(o.amount[i]), discount=float(o.discount[i]),
                    campaign_id=CAMPAIGN if via_click or action == OFFER else None,
                ),
            )


def stream_market(
    log: Any, customers: int, days: int, policy: str = "engagement_ladder", seed: int = 0,
    config: MarketConfig | None = None, start: datetime | None = None, batch_size: int = 5_000,
    on_day: Callable[[int, int], None] | None = None,
) -> StreamReport:
    """Simulate ``customers`` for ``days`` days under ``policy`` and append their events to ``log`` (an
    :class:`~data.log.base.EventLog`) in batches; ``on_day(day, events_so_far)`` reports progress."""
    if customers < 1 or days < 1:
        raise ValueError("customers and days must be at least 1")
    config = config or load_market_config()
    journey = config.journey.model_copy(update={"horizon_days": max(days, config.journey.horizon_days)})
    config = config.model_copy(update={"journey": journey})
    tab = Tables.of(journey)
    predictor = resolve_policy(policy)
    rng = np.random.default_rng(seed)
    time_rng = np.random.default_rng([seed, 1])
    start = start or datetime(2024, 1, 1, tzinfo=UTC)
    run = f"sim-{seed}"
    ids = [f"sim{seed}-c{n:07d}" for n in range(customers)]
    state = reset_batch(config, customers, rng)
    appended = duplicates = events = 0
    by_type: dict[str, int] = {}
    total_reward = 0.0
    buffer: list[EventBase] = []

    def flush() -> None:
        nonlocal appended, duplicates
        if buffer:
            result = log.append(buffer)
            appended += result.appended
            duplicates += result.duplicates
            buffer.clear()

    for day in range(days):
        obs = observe(state, journey.horizon_days)
        action, _ = predictor.predict(obs, deterministic=True)
        consent_before = state.consent
        state, outcome = step_batch(state, action, rng, tab)
        total_reward += float(outcome.reward.sum())
        for event in day_events(
            run, day, start, ids, outcome, consent_before, predictor.name, time_rng, day == 0, journey.discount_pct,
            journey.cost[AD],
        ):
            buffer.append(event)
            by_type[event.event_type] = by_type.get(event.event_type, 0) + 1
            events += 1
            if len(buffer) >= batch_size:
                flush()
        flush()
        if on_day is not None:
            on_day(day, events)
    return StreamReport(customers, days, events, appended, duplicates, by_type, total_reward)
