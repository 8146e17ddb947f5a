"""Consent as a property (issue 10): over random event sequences, a customer who withdrew consent on a channel
(``consent_changed`` granted=false or ``unsubscribe``) is never messaged on that channel, by the journey agent
(in any batching) or by the next-best-action decision the API serves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.journey import JourneyAgent, JourneyConfig
from agents.runtime import StateView
from data.events import EVENT_ADAPTER
from data.log.base import StoredEvent, to_micros
from data.log.sqlite import event_row
from data.projections.profile import fold_profiles
from data.log.base import ReplayEvent
from serve.nba import ACTIONS, CHANNEL_OF_ACTION, NextBestAction

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # a Monday morning, outside quiet hours
CUSTOMERS = ("c-1", "c-2", "c-3")
CHANNELS = ("email", "sms", "push", "ad")
MESSAGING = [i for i, a in enumerate(ACTIONS) if a in CHANNEL_OF_ACTION]


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
        row = event_row(event, 0)
        out.append(StoredEvent(i + 1, *row[:8], row[8]))
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
       cuts=st.lists(st.integers(min_value=1, max_value=39), max_size=4), explicit=st.booleans())
def test_the_journey_agent_never_messages_an_opted_out_channel(steps, action, cuts, explicit) -> None:
    events = _stored(steps)
    agent = JourneyAgent(JourneyConfig(holdout_share=0.0, require_explicit_consent=explicit, min_hours_between_contacts=0,
                                       max_contacts_per_week=1000, quiet_hours=(0, 0)), policy=Always(action))
    committed: dict = {}
    decisions = []
    bounds = sorted({0, len(events), *(c for c in cuts if c < len(events))})
    for a, b in zip(bounds, bounds[1:]):
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
        if explicit:
            assert said is True, f"{d.customer_id} messaged on {p.channel} without explicit consent"
        messaged += 1


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=40), action=st.sampled_from(MESSAGING))
def test_the_served_next_best_action_never_messages_an_opted_out_channel(steps, action) -> None:
    events = _stored(steps)
    nba = NextBestAction()
    replay = [ReplayEvent(e.position, e.event_type, e.customer_id, e.occurred_at_us, e.properties_json) for e in events]
    for n in range(1, len(replay) + 1):
        profiles = fold_profiles({}, replay[:n])
        cid = replay[n - 1].customer_id
        noon = to_micros(datetime(2025, 3, 3, 12, tzinfo=UTC))
        choice = nba.decide(Always(action), profiles[cid], noon)
        said = _consent_at(events, n).get((cid, choice.channel)) if choice.channel else None
        assert said is not False, f"{cid} offered {choice.action} on {choice.channel} after opting out"
