"""The customer profile projection: a pure fold of each customer's events into one record.

It holds event counts by type, first and last seen, purchases and revenue, the last channel the customer
engaged through, and the consent state of every channel. Recency is derived at read time from ``last_seen``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence

import orjson

from data.log.base import ReplayEvent
from data.projections.profile_columns import ColumnarProfileFolder
from data.projections.profile_records import (
    CONSENT_EVENTS,
    ENGAGEMENT_CHANNEL,
    NOT_SEEN_FIRST,
    NOT_SEEN_LAST,
    CustomerProfile,
    OrdersAndConsent,
    save_records,
)

__all__ = ["CONSENT_EVENTS", "ENGAGEMENT_CHANNEL", "CustomerProfile", "ProfileFolder", "ProfileProjection", "fold_profiles"]


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
        return ColumnarProfileFolder(state)

    def encode(self, records: Mapping[str, CustomerProfile]) -> bytes:
        return orjson.dumps([records[k].to_dict() for k in sorted(records)])

    def decode(self, data: bytes) -> dict[str, CustomerProfile]:
        return {d["customer_id"]: CustomerProfile.from_dict(d) for d in orjson.loads(data)}
