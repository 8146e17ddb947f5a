"""The market stream: simulated customers under a journey policy, written to the event log as the product's events.

Customers arrive on the first day (``lead_created``, ``customer_attributes``, a ``consent_changed`` per channel they
granted). Each simulated day is then, optionally, the engine's daily tick, and for every customer that day's
``decision_made`` (agent ``simulator``, with the true propensity), the message's ``*_sent`` / ``offer_sent`` /
``auction_result`` + ``ad_impression``, then opens, clicks, ``page_view``, ``purchase``, ``unsubscribe`` +
``consent_changed``. Every event of a day lies within that day (UTC), after its tick.

The policy acts as the engine acts (:func:`environment.acting.choose`), and a sampling policy draws from the id
of the decision the engine's journey agent takes for that customer on that day's tick
(:func:`data.ticks.tick_decision_id`), so the agents running the same policy on this stream choose the same actions.
Event ids are derived from (run seed, customer, day, kind), so writing the same run twice appends nothing new.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
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
    CustomerAttributes,
    CustomerAttributesProperties,
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
from data.ticks import TICK_TIME, tick_decision_id, tick_event
from environment.acting import Choice, Predictor, acting_mode, choose, draws_of
from environment.config import MarketConfig, load_market_config
from environment.dynamics import (
    JourneyState,
    StepOutcome,
    Tables,
    legal_mask,
    observe,
    reset_batch,
    step_batch,
)
from environment.heuristics import heuristic_policy
from environment.observation import attributes_of_profiles
from environment.population import (
    ACTIONS,
    AD,
    EMAIL,
    OFFER,
    PUSH,
    SMS,
    WAIT,
    Profiles,
    sample_profiles,
)

logger = logging.getLogger(__name__)
SOURCE = "simulator"
CAMPAIGN = "sim-journey"
_CHANNEL = {EMAIL: Channel.EMAIL, SMS: Channel.SMS, PUSH: Channel.PUSH, AD: Channel.AD, OFFER: Channel.EMAIL}
_CONSENT = ((1, Channel.EMAIL), (2, Channel.SMS), (4, Channel.PUSH))


AGENT = "simulator"
"""The ``agent`` of the simulator's own decisions (the engine's journey agent logs its own as ``journey``)."""
DecisionHook = Callable[[int, np.ndarray, np.ndarray, Choice], None]
"""Called each day with (day, observation, allowed actions, the choice) before the day is simulated."""


def resolve_policy(name: str) -> Predictor:
    """A journey policy the stream can run, by name: a tuned heuristic, ``no_contact``, or ``<name>-eps<e>``."""
    if name == "wait":
        name = "no_contact"
    return heuristic_policy(name)


@dataclass(frozen=True, slots=True)
class StreamReport:
    customers: int
    days: int
    events: int
    appended: int
    duplicates: int
    by_type: dict[str, int]
    total_reward: float
    policy: str = ""


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


def day_events(
    run: str, day: int, start: datetime, customer_ids: list[str], outcome: StepOutcome, choice: Choice,
    policy: tuple[str, str], rng: np.random.Generator, discount_pct: float, ad_cost: float,
) -> Iterator[EventBase]:
    """The events of one simulated day for every customer who was contacted or visited, in time order per customer."""
    base = start + timedelta(days=day)
    n = len(customer_ids)
    minutes = rng.integers(0, 12 * 60, size=(n, 3))  # open delay, organic visit time, dwell
    for idx in np.flatnonzero((outcome.action != WAIT) | outcome.visited):
        yield from _customer_day(run, day, base, customer_ids[idx], outcome, choice, int(idx), policy, minutes[idx],
                                 discount_pct, ad_cost)


def _customer_day(
    run: str, day: int, base: datetime, cid: str, o: StepOutcome, choice: Choice, i: int, policy: tuple[str, str],
    minutes: np.ndarray, discount_pct: float, ad_cost: float,
) -> Iterator[EventBase]:
    def eid(kind: str) -> str:
        return derive_event_id(run, cid, day, kind)

    def at(minute: float) -> datetime:
        return base + timedelta(minutes=min(float(minute), _LAST_MINUTE))

    action = int(o.action[i])
    sent_id, click_id, visit_id = eid("sent"), eid("click"), eid("visit")
    send_minute = _TICK_MINUTE
    click_minute = send_minute + 5 + float(minutes[0])
    if action != WAIT:
        decision = eid("decision")
        channel = _CHANNEL[action]
        yield DecisionMade(
            event_id=decision, customer_id=cid, occurred_at=at(send_minute), source=SOURCE,
            properties=DecisionMadeProperties(
                agent=AGENT, action=ACTIONS[action], channel=channel, propensity=float(choice.propensity[i]),
                policy_name=policy[0], policy_version=policy[1],
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
                event_id=eid("auction"), occurred_at=at(send_minute), **common,
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


_TICK_MINUTE = TICK_TIME.hour * 60.0 + TICK_TIME.minute
_LAST_MINUTE = 24 * 60.0 - 1 / 60_000  # the last moment of a day: a day's events never spill into the next


class _Appender:
    """Appends events to a log in batches and counts them."""

    def __init__(self, log: Any, batch_size: int) -> None:
        self.log, self.batch_size = log, batch_size
        self.buffer: list[EventBase] = []
        self.appended = self.duplicates = self.events = 0
        self.by_type: dict[str, int] = {}

    def add(self, events: Iterable[EventBase]) -> None:
        for event in events:
            self.buffer.append(event)
            self.by_type[event.event_type] = self.by_type.get(event.event_type, 0) + 1
            self.events += 1
            if len(self.buffer) >= self.batch_size:
                self.flush()

    def flush(self) -> None:
        if self.buffer:
            result = self.log.append(self.buffer)
            self.appended += result.appended
            self.duplicates += result.duplicates
            self.buffer.clear()


def _draws(policy: Predictor, start: datetime, day: int, ids: list[str]) -> np.ndarray | None:
    """The draws of a sampling policy: those of the engine's decisions on this day's tick."""
    if acting_mode(policy) != "sample":
        return None
    when = (start + timedelta(days=day)).date()
    return draws_of([tick_decision_id(when, "journey", cid) for cid in ids])


def stream_market(
    log: Any, customers: int, days: int, policy: str | Predictor = "offer_every_k", seed: int = 0,
    config: MarketConfig | None = None, start: datetime | None = None, batch_size: int = 5_000,
    on_day: Callable[[int, int], None] | None = None, ticks: bool = False, on_decisions: DecisionHook | None = None,
    policy_version: str = "builtin", before_day: Callable[[int], None] | None = None,
    on_outcome: Callable[[int, StepOutcome], None] | None = None,
) -> StreamReport:
    """Simulate ``customers`` for ``days`` days under ``policy`` and append their events to ``log`` (an
    :class:`~data.log.base.EventLog`) in batches; ``on_day(day, events_so_far)`` reports progress.

    :param ticks: append the engine's daily tick before each day's events (for agents that run on this log).
    :param on_decisions: see :data:`DecisionHook` (the parity check reads the simulator's observations there).
    :param before_day: called with each day before its tick, everything before it appended (agents catch up there).
    :param on_outcome: called with each day's outcome (what every customer did, and the reward it paid).
    :param policy_version: the version logged with the simulator's decisions (a registry version, or builtin).
    """
    if customers < 1 or days < 1:
        raise ValueError("customers and days must be at least 1")
    config = config or load_market_config()
    journey = config.journey.model_copy(update={"horizon_days": max(days, config.journey.horizon_days)})
    config = config.model_copy(update={"journey": journey})
    tab = Tables.of(journey)
    predictor = resolve_policy(policy) if isinstance(policy, str) else policy
    label = (getattr(predictor, "name", type(predictor).__name__), policy_version)
    rng = np.random.default_rng(seed)
    time_rng = np.random.default_rng([seed, 1])
    start = start or datetime(2024, 1, 1, tzinfo=UTC)
    run = f"sim-{seed}"
    ids = [f"sim{seed}-c{n:07d}" for n in range(customers)]
    profiles = sample_profiles(config.profile, customers, rng)
    state = reset_batch(config, customers, rng, profiles=profiles)
    out = _Appender(log, batch_size)
    out.add(arrival_events(run, start, ids, profiles, state.consent))
    total_reward = 0.0
    for day in range(days):
        out.flush()
        if before_day is not None:
            before_day(day)
        if ticks:
            out.add([tick_event((start + timedelta(days=day)).date())])
        state, outcome, choice = _decide_and_step(state, tab, predictor, start, day, ids, rng, on_decisions)
        total_reward += float(outcome.reward.sum())
        if on_outcome is not None:
            on_outcome(day, outcome)
        out.add(day_events(run, day, start, ids, outcome, choice, label, time_rng, journey.discount_pct, journey.cost[AD]))
        out.flush()
        if on_day is not None:
            on_day(day, out.events)
    return StreamReport(customers, days, out.events, out.appended, out.duplicates, out.by_type, total_reward, label[0])


def _decide_and_step(
    state: JourneyState, tab: Tables, policy: Predictor, start: datetime, day: int, ids: list[str],
    rng: np.random.Generator, on_decisions: DecisionHook | None,
) -> tuple[JourneyState, StepOutcome, Choice]:
    """One simulated day: the policy chooses as the engine would, then the market responds."""
    obs = observe(state, tab.spec)
    allowed = legal_mask(state)
    choice = choose(policy, obs, allowed, _draws(policy, start, day, ids))
    if on_decisions is not None:
        on_decisions(day, obs, allowed, choice)
    state, outcome = step_batch(state, choice.executed, rng, tab)
    return state, outcome, choice
