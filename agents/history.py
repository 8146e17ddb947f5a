"""Where a fold over the whole history reads its events: the log by position, or the warehouse's ``raw_events``.

The lead retrain and the drift check fold every customer's events. A positional log (SQLite, PostgreSQL) is
replayed in log order; a Pub/Sub log keeps no positions, so its history comes from ``raw_events`` (filled by the
BigQuery subscription or ``ame warehouse load``), in ``(occurred_at, event_id)`` order. Both sources are a
:class:`History`; :func:`history_of` picks one for a log.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

from data.log.base import EventLog, PositionalReader, ReplayEvent, StoredEvent, replay_all
from data.warehouse import Warehouse, open_warehouse
from data.warehouse.replay import raw_events


@runtime_checkable
class History(Protocol):
    """The events of some types, oldest first, with their properties."""

    def events(self, event_types: Sequence[str]) -> Iterator[ReplayEvent | StoredEvent]: ...

    def close(self) -> None: ...


class LogHistory:
    """A positional log's events, in log order (the log stays the caller's to close)."""

    def __init__(self, log: PositionalReader) -> None:
        self.log = log

    def events(self, event_types: Sequence[str]) -> Iterator[ReplayEvent | StoredEvent]:
        yield from replay_all(self.log, event_types)

    def close(self) -> None:
        return None


class WarehouseHistory:
    """The events in the warehouse's ``raw_events``, in (occurred_at, event_id) order."""

    def __init__(self, warehouse: Warehouse, page: int = 50_000) -> None:
        self.warehouse = warehouse
        self.page = page

    def events(self, event_types: Sequence[str]) -> Iterator[ReplayEvent | StoredEvent]:
        yield from raw_events(self.warehouse, event_types, self.page)

    def close(self) -> None:
        self.warehouse.close()


def as_history(source: History | PositionalReader) -> History:
    """``source`` as a :class:`History` (a positional log is replayed in log order)."""
    return LogHistory(source) if isinstance(source, PositionalReader) else source


def history_of(log: EventLog, warehouse_url: str | None = None) -> History:
    """The history of ``log``: the log itself when it keeps positions, else the warehouse at ``warehouse_url``
    (default ``AME_WAREHOUSE``). Close it when done."""
    if isinstance(log, PositionalReader):
        return LogHistory(log)
    return WarehouseHistory(open_warehouse(warehouse_url))
