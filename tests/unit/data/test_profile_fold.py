"""The profile fold is pure and does not depend on how the log is cut into batches."""

from __future__ import annotations

import hashlib

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from data.log.base import ReplayEvent
from data.projections.profile import CustomerProfile, ProfileProjection, fold_profiles

PROJECTION = ProfileProjection()
TYPES = ["page_view", "email_open", "email_click", "ad_click", "purchase", "consent_changed", "unsubscribe", "email_sent"]


def make(position: int, kind: str, customer: str, at: int, amount: float = 10.0, channel: str = "email",
         granted: bool = True) -> ReplayEvent:
    props = None
    if kind == "purchase":
        props = orjson.dumps({"order_id": f"o{position}", "amount": amount}).decode()
    elif kind == "consent_changed":
        props = orjson.dumps({"channel": channel, "granted": granted}).decode()
    elif kind == "unsubscribe":
        props = orjson.dumps({"channel": channel}).decode()
    return ReplayEvent(position, kind, customer, at, props)


events_strategy = st.lists(
    st.tuples(
        st.sampled_from(TYPES), st.sampled_from(["a", "b", "c"]), st.integers(0, 10_000),
        st.floats(0, 500, allow_nan=False), st.sampled_from(["email", "sms"]), st.booleans(),
    ),
    max_size=60,
).map(lambda rows: [make(i + 1, k, c, t, a, ch, g) for i, (k, c, t, a, ch, g) in enumerate(rows)])


def digest(state: dict[str, CustomerProfile]) -> str:
    return hashlib.sha256(PROJECTION.encode(state)).hexdigest()


def fold_in_batches(events: list[ReplayEvent], cuts: list[int]) -> dict[str, CustomerProfile]:
    state: dict[str, CustomerProfile] = {}
    bounds = sorted({0, len(events), *(c % (len(events) + 1) for c in cuts)})
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        state.update(fold_profiles(state, events[lo:hi]))
    return state


@settings(max_examples=150, deadline=None)
@given(events=events_strategy, cuts=st.lists(st.integers(0, 100), max_size=6))
def test_batching_does_not_change_the_state(events: list[ReplayEvent], cuts: list[int]) -> None:
    assert digest(fold_in_batches(events, cuts)) == digest(fold_in_batches(events, []))


@settings(max_examples=100, deadline=None)
@given(events=events_strategy)
def test_redelivered_events_change_nothing(events: list[ReplayEvent]) -> None:
    once = fold_in_batches(events, [])
    again = dict(once)
    again.update(fold_profiles(once, events))
    assert digest(again) == digest(once)


@settings(max_examples=100, deadline=None)
@given(events=events_strategy)
def test_encode_decode_round_trip(events: list[ReplayEvent]) -> None:
    state = fold_in_batches(events, [])
    assert PROJECTION.decode(PROJECTION.encode(state)) == state


def test_fold_is_pure() -> None:
    first = fold_profiles({}, [make(1, "purchase", "a", 100, amount=5)])
    snapshot = digest(first)
    fold_profiles(first, [make(2, "purchase", "a", 200, amount=7)])
    assert digest(first) == snapshot


def test_profile_fields() -> None:
    events = [
        make(1, "page_view", "a", 1_000),
        make(2, "purchase", "a", 5_000, amount=20.5),
        make(3, "email_click", "a", 3_000),  # late-arriving: earlier in event time
        make(4, "purchase", "a", 4_000, amount=9.5),
        make(5, "consent_changed", "a", 6_000, channel="email", granted=True),
        make(6, "unsubscribe", "a", 7_000, channel="email"),
        make(7, "consent_changed", "a", 6_500, channel="email", granted=True),  # older than the unsubscribe
        make(8, "consent_changed", "a", 2_000, channel="sms", granted=True),
    ]
    p = fold_profiles({}, events)["a"]
    assert p.events_total == 8 and p.event_counts["purchase"] == 2 and p.event_counts["consent_changed"] == 3
    assert (p.first_seen_us, p.last_seen_us) == (1_000, 7_000)
    assert p.purchases == 2 and p.revenue == 30.0 and p.last_purchase_us == 5_000
    assert p.last_channel == "email"  # the click at t=3000 is later than the page view at t=1000
    assert p.consent_for("email") is False  # the unsubscribe is the latest statement in event time
    assert p.consent_for("sms") is True
    assert p.consent_for("push") is None
    assert p.last_position == 8


@settings(max_examples=100, deadline=None)
@given(events=events_strategy, cut=st.integers(0, 60))
def test_a_folder_over_many_batches_equals_the_fold(events: list[ReplayEvent], cut: int) -> None:
    folder = PROJECTION.folder({})
    folder.apply(events[:cut]).apply(events[cut:])
    assert digest(folder.result()) == digest(fold_in_batches(events, []))
