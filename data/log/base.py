"""The event log's interface, split by capability: every backend is an :class:`EventSink` with
:class:`DeadLetters`; the embedded SQLite and the PostgreSQL logs are :class:`PositionalReader` s too, Pub/Sub is
not. Callers that need positions check with :func:`positional` (an ``isinstance`` on the runtime-checkable
protocol) and get a clear error naming the backend."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, NamedTuple, Protocol, TypeVar, runtime_checkable

import orjson
from pydantic import BaseModel

from data.events import EVENT_ADAPTER, EventBase
from data.sharding import Shard

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch of a timezone-aware datetime (the log's time unit)."""
    return (moment - EPOCH) // ONE_MICROSECOND


def from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def properties_default(value: Any) -> Any:
    """orjson's ``default`` for event properties: a nested model as its JSON form."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    raise TypeError(f"cannot serialize {type(value).__name__}")


def properties_json(event: EventBase) -> str:
    """The event's properties as compact JSON, every field included (unset ones as null): the model's full
    form, written straight from its fields because this runs once per appended event."""
    return orjson.dumps(event.properties.__dict__, default=properties_default).decode()


class LogError(RuntimeError):
    """Base of the event log's own errors."""


class LogUnavailable(LogError):
    """The backend cannot be reached or opened."""


class UnsupportedBackend(LogError):
    """The URL names a backend that this build does not know."""


class StoredEvent(NamedTuple):
    """An event as the log holds it: its position, the envelope's columns and the properties as JSON.

    Readers on hot paths use the columns directly; :meth:`to_event` gives the validated pydantic model.
    (A named tuple, not a dataclass: replays build millions of them, and tuples are built fastest.)
    """

    position: int
    event_id: str
    event_type: str
    customer_id: str
    occurred_at_us: int
    recorded_at_us: int
    source: str
    schema_version: int
    causation_id: str | None
    properties_json: str

    @classmethod
    def of(cls, event: EventBase, position: int, recorded_at_us: int) -> StoredEvent:
        """``event`` as the log would hold it at ``position``, recorded at ``recorded_at_us``."""
        return cls(position, event.event_id, event.event_type, event.customer_id, to_micros(event.occurred_at),
                   recorded_at_us, event.source, event.schema_version, event.causation_id, properties_json(event))

    @property
    def occurred_at(self) -> datetime:
        return from_micros(self.occurred_at_us)

    @property
    def recorded_at(self) -> datetime:
        return from_micros(self.recorded_at_us)

    @property
    def properties(self) -> dict[str, Any]:
        return orjson.loads(self.properties_json)

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data, in the shape producers send it."""
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "customer_id": self.customer_id,
            "occurred_at": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "recorded_at": self.recorded_at.isoformat().replace("+00:00", "Z"),
            "source": self.source,
            "schema_version": self.schema_version,
            "causation_id": self.causation_id,
            "properties": self.properties,
        }

    def to_event(self) -> EventBase:
        return EVENT_ADAPTER.validate_python(self.to_dict())


class ReplayEvent(NamedTuple):
    """The columns a fold reads, and nothing else: what :meth:`EventLog.replay` returns. ``properties_json``
    is filled only for the event types the reader asked properties of, and is None for the others."""

    position: int
    event_type: str
    customer_id: str
    occurred_at_us: int
    properties_json: str | None


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What one append did: how many events were new and how many were already in the log."""

    appended: int
    duplicates: int
    last_position: int


E = TypeVar("E", StoredEvent, ReplayEvent)


@dataclass(frozen=True, slots=True)
class ReadBatch(Generic[E]):
    """Events read after a position; ``next_after`` is where the next read starts (it moves past
    positions that were scanned but filtered out, so a consumer never rescans them)."""

    events: list[E]
    next_after: int

    def __len__(self) -> int:
        return len(self.events)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Input that failed validation, kept with its raw bytes, the reason and where it came from."""

    id: int
    received_at: datetime
    source: str
    line: int | None
    raw: bytes
    reason: str
    status: str  # pending | redriven
    times_seen: int
    event_id: str | None = None
    position: int | None = None


@dataclass(frozen=True, slots=True)
class RejectedInput:
    """One input to send to the dead-letter store."""

    raw: bytes
    reason: str
    source: str
    line: int | None = None
    event_id: str | None = None


@dataclass(slots=True)
class LogStats:
    events: int
    first_position: int
    last_position: int
    by_type: dict[str, int] = field(default_factory=dict)
    dead_letters_pending: int = 0
    dead_letters_redriven: int = 0
    size_bytes: int | None = None


def check_read(limit: int, shard: Shard | None) -> None:
    """The arguments every positional read refuses: a limit below 1, a shard index outside its count."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if shard is not None and not 0 <= shard.index < shard.count:
        raise ValueError(f"shard index {shard.index} is outside 0..{shard.count - 1}")


class PositionsUnsupported(LogError):
    """The backend keeps no log positions, so it cannot be read, replayed or waited on by position."""


@runtime_checkable
class EventSink(Protocol):
    """Takes events: every backend is one."""

    def append(self, events: Iterable[EventBase | Mapping[str, Any]]) -> AppendResult:
        """Validate and append a batch: all of it or, on a validation error, none of it. A backend that keeps
        positions skips events whose event_id it holds (and counts them as duplicates); one that does not
        (Pub/Sub) leaves the de-duplication to its consumers."""
        ...

    def stats(self) -> LogStats: ...

    def close(self) -> None: ...


@runtime_checkable
class PositionalReader(Protocol):
    """Reads events by their gap-free position: what replays, projections, the loader and `tail` need."""

    def read(
        self, after: int = 0, limit: int = 1000, event_types: Sequence[str] | None = None, shard: Shard | None = None
    ) -> ReadBatch[StoredEvent]:
        """Up to ``limit`` events with position > ``after``, in position order, optionally of some types and
        of one shard's customers (plus broadcast events)."""
        ...

    def replay(
        self,
        after: int = 0,
        limit: int = 1000,
        event_types: Sequence[str] | None = None,
        properties_of: Collection[str] = (),
        shard: Shard | None = None,
    ) -> ReadBatch[ReplayEvent]:
        """Like :meth:`read`, but only the columns a fold needs, with properties only for ``properties_of``."""
        ...

    def head(self) -> int:
        """The last position written (0 for an empty log)."""
        ...

    def wait(self, after: int, timeout_s: float) -> int:
        """Block until the head passes ``after`` or ``timeout_s`` runs out; the head then."""
        ...


@runtime_checkable
class DeadLetters(Protocol):
    """Keeps rejected input with the reason, lists it and records its re-drive."""

    def dead_letter(self, rejected: Sequence[RejectedInput]) -> int:
        """Store rejected input; the same raw bytes twice are kept once (and counted)."""
        ...

    def dead_letters(self, status: str | None = "pending", limit: int = 1000) -> list[DeadLetter]: ...

    def mark_redriven(self, letter_id: int, position: int | None) -> None: ...

    def update_dead_letter(self, letter_id: int, raw: bytes, reason: str) -> None: ...

    def dead_letter_counts(self) -> tuple[int, int]:
        """(pending, redriven) dead letters."""
        ...


@runtime_checkable
class EventLog(EventSink, DeadLetters, Protocol):
    """What every backend offers (:func:`data.log.open_log` returns one): a sink with a dead-letter store."""

    url: str


@runtime_checkable
class PositionalLog(EventLog, PositionalReader, Protocol):
    """A log read by position as well (the embedded SQLite log, the PostgreSQL log)."""


CAPABILITIES: tuple[type, ...] = (EventSink, PositionalReader, DeadLetters)
"""The capabilities a backend may claim, in the order the docs' table lists them."""


def capabilities(backend: object) -> list[str]:
    """The names of the capabilities ``backend`` (an instance or a class) implements."""
    test = issubclass if isinstance(backend, type) else isinstance
    return [c.__name__ for c in CAPABILITIES if test(backend, c)]  # type: ignore[operator]


def positional(log: EventLog, needed_by: str) -> PositionalLog:
    """``log`` as a positional reader, for ``needed_by``; :class:`PositionsUnsupported` naming the backend and
    what it lacks when it keeps no positions."""
    if isinstance(log, PositionalReader):
        return log  # type: ignore[return-value]
    backend = log.url.split("://", 1)[0]
    raise PositionsUnsupported(
        f"{needed_by} reads the log by position, but the {backend} log {log.url} is not a positional reader: it keeps "
        "no positions (it offers: " + ", ".join(capabilities(log)) + "). Use a sqlite:/// or postgresql:// log, "
        "or consume a Pub/Sub log through a subscription and replay it from the warehouse raw table (raw_events)."
    )


def replay_all(log: PositionalReader, event_types: Sequence[str], after: int = 0, batch: int = 200_000) -> Iterator[ReplayEvent]:
    """Every event of ``event_types`` after ``after``, in log order, with their properties, page by page."""
    position = after
    while True:
        page = log.replay(position, batch, event_types, properties_of=event_types)
        if page.next_after == position:
            return
        yield from page.events
        position = page.next_after
