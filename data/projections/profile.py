"""The customer profile projection: a pure fold of each customer's events into one record.

It holds event counts by type, first and last seen, purchases and revenue, the last channel the customer
engaged through, and the consent state of every channel. Recency is derived at read time from ``last_seen``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from data.log.base import ReplayEvent, from_micros, to_micros

if TYPE_CHECKING:
    from data.projections.profile_columns import ColumnarProfileFolder

ENGAGEMENT_CHANNEL: dict[str, str] = {
    "email_open": "email",
    "email_click": "email",
    "sms_click": "sms",
    "push_open": "push",
    "ad_click": "ad",
    "page_view": "web",
    "content_download": "web",
}
"""Inbound events and the channel the customer engaged through."""
CONSENT_EVENTS = frozenset({"consent_changed", "unsubscribe"})
"""Events that state a customer's consent on one channel (an unsubscribe withdraws it)."""
NOT_SEEN_FIRST = 2**63 - 1
NOT_SEEN_LAST = -(2**63)
"""``first_seen_us`` and ``last_seen_us`` of a profile before its first event (any event time replaces them)."""
RECORD_FIELDS: tuple[str, ...] = (
    "customer_id", "event_counts", "events_total", "first_seen_us", "last_seen_us", "purchases", "revenue",
    "last_purchase_us", "last_channel", "last_channel_at", "consent", "last_position",
)
"""The keys of a stored profile in their stored order (state store rows, snapshots and state hashes depend on it)."""


@dataclass(frozen=True, slots=True)
class ConsentState:
    granted: bool
    at_us: int
    position: int


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    customer_id: str
    event_counts: Mapping[str, int]
    events_total: int
    first_seen_us: int
    last_seen_us: int
    purchases: int = 0
    revenue: float = 0.0
    last_purchase_us: int | None = None
    last_channel: str | None = None
    last_channel_at: tuple[int, int] | None = None  # (occurred_at_us, position) of that engagement
    consent: Mapping[str, ConsentState] = field(default_factory=dict)
    last_position: int = 0

    @property
    def first_seen(self) -> datetime:
        return from_micros(self.first_seen_us)

    @property
    def last_seen(self) -> datetime:
        return from_micros(self.last_seen_us)

    def recency_days(self, as_of: datetime) -> float:
        """Days between the last event and ``as_of``."""
        return (to_micros(as_of) - self.last_seen_us) / 86_400e6

    def consent_for(self, channel: str) -> bool | None:
        """True or False where the customer said so on this channel; None where they never did."""
        state = self.consent.get(channel)
        return None if state is None else state.granted

    def to_dict(self) -> dict[str, Any]:
        """The stored form (the keys of :data:`RECORD_FIELDS`, counts and consent in name order)."""
        return dict(zip(RECORD_FIELDS, (
            self.customer_id, dict(sorted(self.event_counts.items())), self.events_total, self.first_seen_us,
            self.last_seen_us, self.purchases, self.revenue, self.last_purchase_us, self.last_channel,
            list(self.last_channel_at) if self.last_channel_at else None, consent_record(self.consent),
            self.last_position,
        ), strict=True))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CustomerProfile:
        return cls(
            customer_id=d["customer_id"],
            event_counts=dict(d["event_counts"]),
            events_total=d["events_total"],
            first_seen_us=d["first_seen_us"],
            last_seen_us=d["last_seen_us"],
            purchases=d["purchases"],
            revenue=d["revenue"],
            last_purchase_us=d["last_purchase_us"],
            last_channel=d["last_channel"],
            last_channel_at=tuple(d["last_channel_at"]) if d["last_channel_at"] else None,  # type: ignore[arg-type]
            consent={c: ConsentState(*v) for c, v in d["consent"].items()},
            last_position=d["last_position"],
        )


def consent_record(consent: Mapping[str, ConsentState]) -> dict[str, list[Any]]:
    """The stored form of a profile's consent: ``{channel: [granted, at_us, position]}`` in channel order."""
    return {c: [s.granted, s.at_us, s.position] for c, s in sorted(consent.items())}


class OrdersAndConsent:
    """The fields only purchases and consent statements change, folded one event at a time (they are rare,
    so both the per-event fold and the columnar replay fold share this code)."""

    __slots__ = ("consent", "last_purchase", "purchases", "revenue")

    def __init__(self, p: CustomerProfile | None) -> None:
        if p is None:
            self.purchases, self.revenue, self.last_purchase = 0, 0.0, None
            self.consent: dict[str, ConsentState] = {}
        else:
            self.purchases, self.revenue, self.last_purchase = p.purchases, p.revenue, p.last_purchase_us
            self.consent = dict(p.consent)

    def apply_purchase(self, at: int, properties: str | None) -> None:
        props = orjson.loads(properties or "{}")
        self.purchases += 1
        self.revenue += props["amount"]
        if self.last_purchase is None or at > self.last_purchase:
            self.last_purchase = at

    def apply_consent(self, at: int, position: int, properties: str | None) -> None:
        props = orjson.loads(properties or "{}")
        granted = bool(props.get("granted", False))  # an unsubscribe withdraws consent
        current = self.consent.get(props["channel"])
        if current is None or (at, position) > (current.at_us, current.position):
            self.consent[props["channel"]] = ConsentState(granted, at, position)


class _Working:
    """A mutable copy of one profile while a batch is folded into it (never visible outside the fold)."""

    __slots__ = ("channel", "channel_at", "cid", "counts", "first", "last", "position", "rare", "total")

    def __init__(self, cid: str, p: CustomerProfile | None) -> None:
        self.cid = cid
        self.rare = OrdersAndConsent(p)
        if p is None:
            self.counts: dict[str, int] = {}
            self.total, self.first, self.last = 0, NOT_SEEN_FIRST, NOT_SEEN_LAST
            self.channel, self.channel_at = None, None
            self.position = 0
        else:
            self.counts = dict(p.event_counts)
            self.total, self.first, self.last = p.events_total, p.first_seen_us, p.last_seen_us
            self.channel, self.channel_at = p.last_channel, p.last_channel_at
            self.position = p.last_position

    def apply(self, e: ReplayEvent) -> None:
        position, etype, _, at, properties = e  # unpacking is faster than five attribute reads (hot path)
        if position <= self.position:  # already folded in: a redelivery changes nothing
            return
        self.position = position
        counts = self.counts
        counts[etype] = counts.get(etype, 0) + 1
        self.total += 1
        if at < self.first:  # a comparison, not min(): cheaper on this hot path
            self.first = at
        if at > self.last:
            self.last = at
        channel = ENGAGEMENT_CHANNEL.get(etype)
        if channel is not None:
            key = (at, position)
            if self.channel_at is None or key > self.channel_at:
                self.channel, self.channel_at = channel, key
        elif etype == "purchase":
            self.rare.apply_purchase(at, properties)
        elif etype in CONSENT_EVENTS:
            self.rare.apply_consent(at, position, properties)

    def freeze(self) -> CustomerProfile:
        rare = self.rare
        return CustomerProfile(
            customer_id=self.cid, event_counts=self.counts, events_total=self.total, first_seen_us=self.first,
            last_seen_us=self.last, purchases=rare.purchases, revenue=rare.revenue,
            last_purchase_us=rare.last_purchase, last_channel=self.channel, last_channel_at=self.channel_at,
            consent=rare.consent, last_position=self.position,
        )


class ProfileFolder:
    """Folds events one at a time into working copies of the profiles they touch, over as many batches as the
    caller likes; :meth:`result` gives the new, frozen profiles. ``state`` is only read. This is the reference
    fold (and the fast one for small batches); a full replay uses the columnar folder of
    :mod:`data.projections.profile_columns`, which gives the same records."""

    def __init__(self, state: Mapping[str, CustomerProfile]) -> None:
        self._state = state
        self._work: dict[str, _Working] = {}

    def apply(self, events: Sequence[ReplayEvent]) -> ProfileFolder:
        work, state = self._work, self._state
        for e in events:
            cid = e[2]  # customer_id
            w = work.get(cid)
            if w is None:
                w = work[cid] = _Working(cid, state.get(cid))
            w.apply(e)
        return self

    def result(self) -> dict[str, CustomerProfile]:
        return {cid: w.freeze() for cid, w in self._work.items()}


def fold_profiles(state: Mapping[str, CustomerProfile], events: Sequence[ReplayEvent]) -> dict[str, CustomerProfile]:
    """Fold events (in log order) into the profiles they touch; returns the new profiles of those customers.

    Pure: ``state`` is not modified. The result does not depend on how the log is cut into batches.
    """
    return ProfileFolder(state).apply(events).result()


def save_records(conn: sqlite3.Connection, records: Iterable[tuple[str, dict[str, Any]]]) -> None:
    """Upsert profiles given in their stored form (:meth:`CustomerProfile.to_dict`) into table ``profiles``."""
    conn.executemany(
        "insert into profiles (customer_id, state) values (?, ?) on conflict(customer_id)"
        " do update set state = excluded.state",
        [(cid, orjson.dumps(record).decode()) for cid, record in records],
    )


class ProfileProjection:
    """The :class:`~data.projections.base.KeyedProjection` of customer profiles, stored in table ``profiles``."""

    name = "profile"
    event_types: frozenset[str] | None = None  # every event counts
    properties_of = frozenset({"purchase", *CONSENT_EVENTS})

    def create_tables(self, conn: sqlite3.Connection) -> None:
        conn.execute("create table if not exists profiles (customer_id text primary key, state text not null)")

    def clear(self, conn: sqlite3.Connection) -> None:
        conn.execute("delete from profiles")

    def load(self, conn: sqlite3.Connection, keys: Iterable[str]) -> dict[str, CustomerProfile]:
        keys = list(keys)
        out: dict[str, CustomerProfile] = {}
        for i in range(0, len(keys), 900):  # stay under SQLite's bound-parameter limit
            chunk = keys[i : i + 900]
            marks = ",".join("?" * len(chunk))
            for cid, state in conn.execute(f"select customer_id, state from profiles where customer_id in ({marks})", chunk):
                out[cid] = CustomerProfile.from_dict(orjson.loads(state))
        return out

    def load_all(self, conn: sqlite3.Connection) -> dict[str, CustomerProfile]:
        return {
            cid: CustomerProfile.from_dict(orjson.loads(state))
            for cid, state in conn.execute("select customer_id, state from profiles")
        }

    def get(self, conn: sqlite3.Connection, customer_id: str) -> CustomerProfile | None:
        return self.load(conn, [customer_id]).get(customer_id)

    def save(self, conn: sqlite3.Connection, records: Mapping[str, CustomerProfile]) -> None:
        save_records(conn, ((cid, p.to_dict()) for cid, p in records.items()))

    def keys_of(self, events: Sequence[ReplayEvent]) -> set[str]:
        return {e.customer_id for e in events}

    def fold(self, state: Mapping[str, CustomerProfile], events: Sequence[ReplayEvent]) -> dict[str, CustomerProfile]:
        return fold_profiles(state, events)

    def folder(self, state: Mapping[str, CustomerProfile]) -> ColumnarProfileFolder:
        # imported here: the columnar folder builds on this module
        from data.projections.profile_columns import ColumnarProfileFolder

        return ColumnarProfileFolder(state)

    def encode(self, records: Mapping[str, CustomerProfile]) -> bytes:
        return orjson.dumps([records[k].to_dict() for k in sorted(records)])

    def decode(self, data: bytes) -> dict[str, CustomerProfile]:
        return {d["customer_id"]: CustomerProfile.from_dict(d) for d in orjson.loads(data)}
