"""Consent as a property: over random event sequences, a customer is messaged on e-mail, SMS or push only after
granting consent there and not since withdrawing it (``consent_changed`` granted=false or ``unsubscribe``), and is
never shown an ad after withdrawing ad consent, by the journey agent (in any batching) or by the next-best-action
decision the API serves."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.journey import JourneyAgent, JourneyConfig
from agents.journey_decision import JourneyRules
from agents.runtime import StateView
from data.events import EVENT_ADAPTER
from data.log.base import StoredEvent, to_micros
from environment.guardrails import ACTION_CHANNEL, ACTIONS
from serve.nba import NextBestAction

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # a Monday morning, outside quiet hours
CUSTOMERS = ("c-1", "c-2", "c-3")
CHANNELS = ("email", "sms", "push", "ad")
MESSAGING = [i for i, _ in enumerate(ACTIONS) if ACTION_CHANNEL[i] is not None]
KINDS = ("page_view", "email_open", "email_click", "sms_click", "ad_click", "content_download", "lead_created",
         "purchase", "consent_changed", "unsubscribe")


class Always:
    def __init__(self, action: int) -> None:
        self.action, self.name, self.version = action, "always", "1"

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return np.array([self.action] * np.atleast_2d(observation).shape[0]), state


def _props(kind: str, channel: str, granted: bool) -> dict:
    return {"page_view": {"url": "/p"}, "email_open": {}, "email_click": {}, "sms_click": {}, "ad_click": {"campaign_id": "k"},
            "content_download": {"content_id": "d"}, "lead_created": {},
            "purchase": {"order_id": "o", "amount": 5.0},
            "consent_changed": {"channel": channel, "granted": granted},
            "unsubscribe": {"channel": channel if channel != "ad" else "email"}}[kind]


step = st.tuples(
    st.sampled_from(CUSTOMERS),
    st.sampled_from(["page_view", "email_open", "email_click", "sms_click", "ad_click", "content_download", "lead_created",
                     "purchase", "consent_changed", "consent_changed", "unsubscribe"]),
    st.sampled_from(CHANNELS),
    st.booleans(),
    st.integers(min_value=1, max_value=600),  # minutes since the previous event
)


def _stored(steps: list[tuple]) -> list[StoredEvent]:
    out, t = [], T0
    for i, (cid, kind, channel, granted, gap) in enumerate(steps):
        t = t + timedelta(minutes=gap)
        event = EVENT_ADAPTER.validate_python({"event_id": f"e{i}", "event_type": kind, "customer_id": cid,
                                               "occurred_at": t, "properties": _props(kind, channel, granted)})
        out.append(StoredEvent.of(event, i + 1, 0))
    return out


def _consent_at(events: list[StoredEvent], upto: int) -> dict[tuple[str, str], bool]:
    """The oracle: the latest consent_changed/unsubscribe per (customer, channel) among positions <= upto."""
    said: dict[tuple[str, str], bool] = {}
    for e in events:
        if e.position > upto:
            break
        if e.event_type in ("consent_changed", "unsubscribe"):
            p = e.properties
            said[(e.customer_id, p["channel"])] = bool(p.get("granted", False))
    return said


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=40), action=st.sampled_from(MESSAGING),
       cuts=st.lists(st.integers(min_value=1, max_value=39), max_size=4))
def test_the_journey_agent_never_messages_an_opted_out_channel(steps, action, cuts) -> None:
    events = _stored(steps)
    agent = JourneyAgent(JourneyConfig(holdout_share=0.0, quiet_hours=(0, 0), decide_on=frozenset(KINDS)),
                         policy=Always(action))
    committed: dict = {}
    decisions = []
    bounds = sorted({0, len(events), *(c for c in cuts if c < len(events))})
    for a, b in itertools.pairwise(bounds):
        view = StateView(dict(committed), lambda keys: {}, lambda: list(committed))
        decisions += agent.decide(events[a:b], view)
        committed.update(view.changes)
    by_id = {e.event_id: e for e in events}
    messaged = 0
    for d in decisions:
        p = d.properties
        if p.channel is None or p.action == "wait":
            continue
        trigger = by_id[d.causation_id]
        said = _consent_at(events, trigger.position).get((d.customer_id, str(p.channel)))
        assert said is not False, f"{d.customer_id} messaged on {p.channel} after opting out"
        if p.channel != "ad":
            assert said is True, f"{d.customer_id} messaged on {p.channel} without explicit consent"
        messaged += 1


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=40), action=st.sampled_from(MESSAGING))
def test_the_served_next_best_action_never_messages_an_opted_out_channel(steps, action) -> None:
    events = _stored(steps)
    agent = JourneyAgent()
    records: dict = {}
    nba = NextBestAction(records.get, JourneyRules.of(quiet_hours=(0, 0)))
    for n, event in enumerate(events, start=1):
        records[event.customer_id] = agent.fold(records.get(event.customer_id), event)
        cid = event.customer_id
        later = to_micros(datetime(2025, 3, 9, 12, tzinfo=UTC))  # after every event, past the frequency cap
        choice = nba.decide(Always(action), nba.record(cid), later, f"d{n}")
        said = _consent_at(events, n).get((cid, choice.channel)) if choice.channel else None
        assert said is not False, f"{cid} offered {choice.action} on {choice.channel} after opting out"
        if choice.channel not in (None, "ad"):
            assert said is True, f"{cid} offered {choice.action} on {choice.channel} without explicit consent"
