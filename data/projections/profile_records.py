"""A customer's profile as the profile projection stores it, and the fold of its rare fields (purchases, consent)
that the reference fold (:mod:`data.projections.profile`) and the columnar replay
(:mod:`data.projections.profile_columns`) share."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from data.log.base import from_micros, to_micros

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


def save_records(conn: sqlite3.Connection, records: Iterable[tuple[str, dict[str, Any]]]) -> None:
    """Upsert profiles given in their stored form (:meth:`CustomerProfile.to_dict`) into table ``profiles``."""
    conn.executemany(
        "insert into profiles (customer_id, state) values (?, ?) on conflict(customer_id)"
        " do update set state = excluded.state",
        [(cid, orjson.dumps(record).decode()) for cid, record in records],
    )
