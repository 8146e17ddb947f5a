"""The profile fold of a full replay, done a batch at a time on numpy columns.

:class:`ColumnarProfileFolder` gives exactly the records of the per-event fold
(:func:`~data.projections.profile.fold_profiles`) on the same events: counts, totals, first and last seen,
last position and last engagement channel are numpy reductions per customer (``ufunc.at``, a sort for the
channel); purchases and consent statements, a few percent of the log, go through the per-event code of
:class:`~data.projections.profile.OrdersAndConsent` in log order, so revenue adds up in the same order.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import compress, count, islice
from operator import itemgetter
from typing import Any

import numpy as np

from data.log.base import ReplayEvent
from data.projections.profile_records import (
    CONSENT_EVENTS,
    ENGAGEMENT_CHANNEL,
    NOT_SEEN_FIRST,
    NOT_SEEN_LAST,
    RECORD_FIELDS,
    CustomerProfile,
    OrdersAndConsent,
    consent_record,
    save_records,
)

CHANNELS: tuple[str, ...] = tuple(sorted(set(ENGAGEMENT_CHANNEL.values())))
_NO_CHANNEL = -1
_RARE_EVENTS = frozenset({"purchase", *CONSENT_EVENTS})
_INITIAL_ROWS = 1_024
_INITIAL_KINDS = 16


def _column(events: Sequence[ReplayEvent], field: str) -> Iterator[Any]:
    """One field of every event, without building a tuple per field."""
    return map(itemgetter(ReplayEvent._fields.index(field)), events)


def _grown(column: np.ndarray, size: int, fill: Any, axis: int = 0) -> np.ndarray:
    """``column`` with room for at least ``size`` entries along ``axis`` (doubling), new entries ``fill``."""
    if column.shape[axis] >= size:
        return column
    shape = list(column.shape)
    shape[axis] = max(size, 2 * column.shape[axis])
    bigger = np.full(shape, fill, column.dtype)
    bigger[tuple(slice(0, n) for n in column.shape)] = column
    return bigger


class _Kinds:
    """Event types as column numbers, with what the fold does with each."""

    def __init__(self) -> None:
        self.index: defaultdict[str, int] = defaultdict(count().__next__)  # event type -> kind, as first seen
        self.channel = np.full(_INITIAL_KINDS, _NO_CHANNEL, np.intp)  # kind -> CHANNELS index, or -1
        self.rare = np.zeros(_INITIAL_KINDS, bool)  # kind -> purchase or consent statement

    def of(self, event_types: Iterable[str], n: int) -> np.ndarray:
        before = len(self.index)
        kinds = np.fromiter(map(self.index.__getitem__, event_types), np.intp, n)  # a new type gets the next kind
        if len(self.index) > before:
            self.channel = _grown(self.channel, len(self.index), _NO_CHANNEL)
            self.rare = _grown(self.rare, len(self.index), False)
            for etype in islice(self.index, before, None):
                channel = ENGAGEMENT_CHANNEL.get(etype)
                self.channel[self.index[etype]] = _NO_CHANNEL if channel is None else CHANNELS.index(channel)
                self.rare[self.index[etype]] = etype in _RARE_EVENTS
        return kinds

    def by_name(self) -> tuple[list[str], np.ndarray]:
        """The event types in name order, and their column numbers."""
        names = sorted(self.index)
        return names, np.array([self.index[n] for n in names], np.intp)


class ColumnarProfileFolder:
    """A :class:`~data.projections.base.Folder` of customer profiles for full replays: one row of numpy
    columns per customer touched, folded one batch at a time. ``state`` is only read."""

    def __init__(self, state: Mapping[str, CustomerProfile]) -> None:
        self._state = state
        self._rows: defaultdict[str, int] = defaultdict(count().__next__)  # customer_id -> row, rows as first seen
        self._kinds = _Kinds()
        self._counts = np.zeros((_INITIAL_ROWS, _INITIAL_KINDS), np.int64)
        self._total = np.zeros(_INITIAL_ROWS, np.int64)
        self._first = np.full(_INITIAL_ROWS, NOT_SEEN_FIRST, np.int64)
        self._last = np.full(_INITIAL_ROWS, NOT_SEEN_LAST, np.int64)
        self._position = np.zeros(_INITIAL_ROWS, np.int64)
        self._channel_names = list(CHANNELS)
        self._channel = np.full(_INITIAL_ROWS, _NO_CHANNEL, np.intp)  # last engagement: channel number or -1,
        self._channel_at = np.zeros(_INITIAL_ROWS, np.int64)  # its occurred_at_us
        self._channel_position = np.zeros(_INITIAL_ROWS, np.int64)  # and its position
        self._rare: dict[int, OrdersAndConsent] = {}  # row -> purchases and consent, where there are any

    # -- folding ------------------------------------------------------------------------------------------

    def apply(self, events: Sequence[ReplayEvent]) -> ColumnarProfileFolder:
        if not events:
            return self
        rows = self._rows_of(_column(events, "customer_id"), len(events))
        kinds = self._kinds_of(_column(events, "event_type"), len(events))
        position = np.fromiter(_column(events, "position"), np.int64, len(events))
        new = self._not_folded_yet(rows, position)
        at = np.fromiter(_column(events, "occurred_at_us"), np.int64, len(events))[new]
        rows, kinds, position = rows[new], kinds[new], position[new]
        np.add.at(self._counts, (rows, kinds), 1)
        np.add.at(self._total, rows, 1)
        np.minimum.at(self._first, rows, at)
        np.maximum.at(self._last, rows, at)
        np.maximum.at(self._position, rows, position)
        self._fold_channels(rows, kinds, at, position)
        for i in np.flatnonzero(new)[self._kinds.rare[kinds]].tolist():  # in log order
            self._fold_rare(events[i])
        return self

    def _not_folded_yet(self, rows: np.ndarray, position: np.ndarray) -> np.ndarray:
        """Which events the per-event fold applies: those after the last position folded into their customer."""
        if bool(np.all(position[1:] > position[:-1])):  # log order: only the state before the batch matters
            return position > self._position[rows]
        latest: dict[int, int] = {}
        new = np.zeros(len(rows), bool)
        for i, (row, pos) in enumerate(zip(rows.tolist(), position.tolist(), strict=True)):
            if pos > latest.get(row, int(self._position[row])):
                new[i], latest[row] = True, pos
        return new

    def _fold_channels(self, rows: np.ndarray, kinds: np.ndarray, at: np.ndarray, position: np.ndarray) -> None:
        """The latest engagement of each customer, by (occurred_at_us, position), if later than its current one."""
        channel = self._kinds.channel[kinds]
        engaged = channel != _NO_CHANNEL
        rows, channel, at, position = rows[engaged], channel[engaged], at[engaged], position[engaged]
        if not rows.size:
            return
        order = np.lexsort((position, at, rows))
        rows, channel, at, position = rows[order], channel[order], at[order], position[order]
        latest = np.append(rows[1:] != rows[:-1], True)  # the last of each customer's run
        rows, channel, at, position = rows[latest], channel[latest], at[latest], position[latest]
        current_at, current_position = self._channel_at[rows], self._channel_position[rows]
        later = (self._channel[rows] == _NO_CHANNEL) | (at > current_at) | ((at == current_at) & (position > current_position))
        rows = rows[later]
        self._channel[rows], self._channel_at[rows], self._channel_position[rows] = channel[later], at[later], position[later]

    def _fold_rare(self, event: ReplayEvent) -> None:
        position, etype, customer, at, properties = event
        row = self._rows[customer]
        rare = self._rare.get(row)
        if rare is None:
            rare = self._rare[row] = OrdersAndConsent(None)
        if etype == "purchase":
            rare.apply_purchase(at, properties)
        else:
            rare.apply_consent(at, position, properties)

    # -- customers and event types ------------------------------------------------------------------------

    def _rows_of(self, customers: Iterable[str], n: int) -> np.ndarray:
        before = len(self._rows)
        rows = np.fromiter(map(self._rows.__getitem__, customers), np.intp, n)  # a new customer gets the next row
        if len(self._rows) > before:
            self._make_room(len(self._rows))
            if self._state:
                self._load(islice(self._rows, before, None))
        return rows

    def _kinds_of(self, event_types: Iterable[str], n: int) -> np.ndarray:
        kinds = self._kinds.of(event_types, n)
        self._counts = _grown(self._counts, len(self._kinds.index), 0, axis=1)
        return kinds

    def _make_room(self, rows: int) -> None:
        self._counts = _grown(self._counts, rows, 0)
        self._total = _grown(self._total, rows, 0)
        self._first = _grown(self._first, rows, NOT_SEEN_FIRST)
        self._last = _grown(self._last, rows, NOT_SEEN_LAST)
        self._position = _grown(self._position, rows, 0)
        self._channel = _grown(self._channel, rows, _NO_CHANNEL)
        self._channel_at = _grown(self._channel_at, rows, 0)
        self._channel_position = _grown(self._channel_position, rows, 0)

    def _load(self, customers: Iterable[str]) -> None:
        """Start the rows of these customers from their records in ``state``, where they have one."""
        loaded = [(self._rows[c], p) for c in customers if (p := self._state.get(c)) is not None]
        if not loaded:
            return
        types = [etype for _, p in loaded for etype in p.event_counts]
        rows = [row for row, p in loaded for _ in p.event_counts]
        self._counts[rows, self._kinds_of(types, len(types))] = [n for _, p in loaded for n in p.event_counts.values()]
        rows = [row for row, _ in loaded]
        self._total[rows] = [p.events_total for _, p in loaded]
        self._first[rows] = [p.first_seen_us for _, p in loaded]
        self._last[rows] = [p.last_seen_us for _, p in loaded]
        self._position[rows] = [p.last_position for _, p in loaded]
        for row, p in loaded:
            if p.last_channel is not None and p.last_channel_at is not None:
                self._channel[row] = self._channel_code(p.last_channel)
                self._channel_at[row], self._channel_position[row] = p.last_channel_at
            self._rare[row] = OrdersAndConsent(p)

    def _channel_code(self, channel: str) -> int:
        """The number of a channel, also of one a state holds that no event type maps to any more."""
        if channel not in self._channel_names:
            self._channel_names.append(channel)
        return self._channel_names.index(channel)

    # -- results ------------------------------------------------------------------------------------------

    def records(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(customer_id, stored form)`` of every customer touched, in the order they were first seen."""
        customers = list(self._rows)
        values = zip(customers, self._event_counts(), *self._columns(len(customers)), strict=True)
        return zip(customers, (dict(zip(RECORD_FIELDS, v, strict=True)) for v in values), strict=True)

    def _event_counts(self) -> list[dict[str, int]]:
        """Each customer's counts by event type, in name order, without the types it has none of."""
        names, kinds = self._kinds.by_name()
        return [dict(compress(zip(names, row, strict=True), row)) for row in self._counts[: len(self._rows), kinds].tolist()]

    def _columns(self, n: int) -> tuple[list[Any], ...]:
        """The other fields of :data:`RECORD_FIELDS` after ``event_counts``, one list each, in row order."""
        purchases, revenue, last_purchase = [0] * n, [0.0] * n, [None] * n
        consent: list[dict[str, list[Any]]] = [{}] * n  # one empty dict for all: records are written, never changed
        for row, rare in self._rare.items():
            purchases[row], revenue[row], last_purchase[row] = rare.purchases, rare.revenue, rare.last_purchase
            consent[row] = consent_record(rare.consent)
        channel = self._channel[:n].tolist()
        engaged_at = zip(self._channel_at[:n].tolist(), self._channel_position[:n].tolist(), strict=True)
        return (
            self._total[:n].tolist(), self._first[:n].tolist(), self._last[:n].tolist(), purchases, revenue,
            last_purchase, [None if c == _NO_CHANNEL else self._channel_names[c] for c in channel],
            [None if c == _NO_CHANNEL else list(at) for c, at in zip(channel, engaged_at, strict=True)],
            consent, self._position[:n].tolist(),
        )

    def result(self) -> dict[str, CustomerProfile]:
        return {customer: CustomerProfile.from_dict(record) for customer, record in self.records()}

    def save(self, conn: sqlite3.Connection) -> None:
        save_records(conn, self.records())
