"""The profile fold is pure and does not depend on how the log is cut into batches; the columnar folder of
full replays gives exactly its records."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from itertools import pairwise
from random import Random

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from data.log.base import ReplayEvent, to_micros
from data.projections.profile import (
    CONSENT_EVENTS,
    ENGAGEMENT_CHANNEL,
    CustomerProfile,
    ProfileProjection,
    fold_profiles,
)
from data.projections.profile_columns import ColumnarProfileFolder
from data.synthetic import MIX, synthetic_events

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
    for lo, hi in pairwise(bounds):
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


# -- the columnar folder of full replays gives exactly the records of the per-event fold --------------------

FOLDED_TYPES = sorted({*ENGAGEMENT_CHANNEL, "purchase", *CONSENT_EVENTS, "email_sent", "ad_impression"})
"""Every event type the profile folds (engagements, purchases, consent statements) and two it only counts."""

mixed_stream = st.lists(
    st.tuples(
        st.sampled_from(FOLDED_TYPES), st.sampled_from(["a", "b", "c", "d", "e"]), st.integers(-10**12, 10**12),
        st.floats(0, 500, allow_nan=False), st.sampled_from(["email", "sms", "push"]), st.booleans(),
        st.integers(1, 3),
    ),
    max_size=120,
).map(lambda rows: log_ordered([(k, c, t, a, ch, g) for k, c, t, a, ch, g, _ in rows], [gap for *_, gap in rows]))


def log_ordered(rows: list[tuple[str, str, int, float, str, bool]], gaps: list[int]) -> list[ReplayEvent]:
    """Events at increasing positions with gaps (as a filtered or sharded read returns them)."""
    positions = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    return [make(p, k, c, t, a, ch, g) for p, (k, c, t, a, ch, g) in zip(positions, rows, strict=True)]


def fold_columnar(state: dict[str, CustomerProfile], batches: list[list[ReplayEvent]]) -> dict[str, CustomerProfile]:
    folder = ColumnarProfileFolder(state)
    for batch in batches:
        folder.apply(batch)
    return folder.result()


def cut(events: list[ReplayEvent], cuts: list[int]) -> list[list[ReplayEvent]]:
    bounds = sorted({0, len(events), *(c % (len(events) + 1) for c in cuts)})
    return [events[lo:hi] for lo, hi in pairwise(bounds)]


@settings(max_examples=200, deadline=None)
@given(events=mixed_stream, cuts=st.lists(st.integers(0, 200), max_size=5))
def test_columnar_replay_equals_the_event_by_event_fold(events: list[ReplayEvent], cuts: list[int]) -> None:
    expected = fold_profiles({}, events)
    columnar = fold_columnar({}, cut(events, cuts))
    assert columnar == expected
    assert digest(columnar) == digest(expected)


@settings(max_examples=150, deadline=None)
@given(events=mixed_stream, split=st.integers(0, 120), overlap=st.integers(0, 20), cuts=st.lists(st.integers(0, 200), max_size=3))
def test_columnar_replay_from_a_snapshot_equals_the_fold(
    events: list[ReplayEvent], split: int, overlap: int, cuts: list[int]
) -> None:
    """From a state (a snapshot), with the last ``overlap`` events before it delivered again."""
    snapshot = fold_profiles({}, events[:split])
    rest = events[max(0, split - overlap) :]
    expected = {**snapshot, **fold_profiles(snapshot, rest)}
    assert digest({**snapshot, **fold_columnar(snapshot, cut(rest, cuts))}) == digest(expected)


@settings(max_examples=150, deadline=None)
@given(events=mixed_stream, order=st.randoms(use_true_random=False), repeats=st.integers(0, 30))
def test_columnar_fold_of_redelivered_and_reordered_events_equals_the_fold(
    events: list[ReplayEvent], order: Random, repeats: int
) -> None:
    """Out of log order and with duplicates, the columnar folder skips exactly what the per-event fold skips."""
    shuffled = events + [order.choice(events) for _ in range(repeats if events else 0)]
    order.shuffle(shuffled)
    assert digest(fold_columnar({}, [shuffled])) == digest(fold_profiles({}, shuffled))


def synthetic_replay(n: int, customers: int, seed: int) -> list[ReplayEvent]:
    """The synthetic stream as the log replays it to the profile projection (properties only where folded)."""
    events = synthetic_events(n, customers, seed)
    return [
        ReplayEvent(i, e.event_type, e.customer_id, to_micros(e.occurred_at),
                    orjson.dumps(e.properties.model_dump(mode="json")).decode()
                    if e.event_type in PROJECTION.properties_of else None)
        for i, e in enumerate(events, start=1)
    ]


def test_columnar_replay_of_the_synthetic_stream_saves_the_same_rows() -> None:
    events = synthetic_replay(20_000, 300, seed=5)
    assert {e.event_type for e in events} == set(MIX)  # every type the synthetic stream has
    expected = fold_profiles({}, events)
    folder = PROJECTION.folder({})
    for batch in cut(events, [3_000, 3_001, 12_345]):
        folder.apply(batch)
    assert digest(folder.result()) == digest(expected)
    assert saved_rows(lambda conn: folder.save(conn)) == saved_rows(lambda conn: PROJECTION.save(conn, expected))


def saved_rows(save: Callable[[sqlite3.Connection], None]) -> list[tuple[str, str]]:
    conn = sqlite3.connect(":memory:")
    PROJECTION.create_tables(conn)
    save(conn)
    return conn.execute("select customer_id, state from profiles order by customer_id").fetchall()


def test_columnar_replay_keeps_a_state_channel_no_event_type_maps_to() -> None:
    state = {"a": CustomerProfile("a", {"fax_reply": 1}, 1, 5_000, 5_000, last_channel="fax",
                                  last_channel_at=(5_000, 1), last_position=1)}
    later = [make(2, "page_view", "a", 4_000), make(3, "purchase", "a", 6_000, amount=3.5)]
    assert fold_columnar(state, [later]) == fold_profiles(state, later)
    assert fold_columnar(state, [later])["a"].last_channel == "fax"
