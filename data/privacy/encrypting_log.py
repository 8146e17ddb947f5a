"""The event log with its personal data encrypted: one wrapper around any backend.

:class:`EncryptingLog` encrypts the registered PII properties (:mod:`data.privacy.registry`) of every appended
event with its customer's key before the backend stores or publishes it, and decrypts them in what it reads, so
a backend (the SQLite file, a Pub/Sub topic and its retention) only ever holds ``enc:v1:`` tokens while readers
see plaintext, and an erased customer's PII as null. :func:`data.log.open_log` wraps every backend in it.

The key store is opened on the first event that carries PII: most batches hold none and cost one type test each.
This module needs only the log's interface, for typing, so the log may import it without a cycle.
The wrapper claims the capabilities of its backend: around a positional reader (SQLite, PostgreSQL) it is an
:class:`EncryptingPositionalLog`, around Pub/Sub a sink with dead letters only.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Self

from data.dead_letter_counts import dead_letter_counts
from data.events import EventBase, validate_event
from data.privacy.codec import FieldCodec, codec_for_log, holds_token
from data.privacy.registry import PII_EVENT_TYPES
from data.sharding import Shard

if TYPE_CHECKING:
    from data.log.base import (
        AppendResult,
        DeadLetter,
        E,
        EventLog,
        LogStats,
        PositionalLog,
        ReadBatch,
        RejectedInput,
        ReplayEvent,
        StoredEvent,
    )


class EncryptingLog:
    """An :class:`~data.log.base.EventLog` that encrypts PII on append and decrypts it on read (see the module).

    :param inner: the backend (:class:`~data.log.sqlite.SqliteEventLog`, :class:`~data.log.pubsub.PubSubEventLog`).
    :param codec: opens the codec on first use; default: the key store and switch of the settings for this log
        (``AME_KEY_STORE``, ``AME_PRIVACY_ENCRYPT``).

    Constructed around a positional reader, it is an :class:`EncryptingPositionalLog`.
    """

    def __new__(cls, inner: EventLog | None = None, codec: Callable[[], FieldCodec] | None = None) -> Self:
        from data.log.base import PositionalReader  # here, not at the top: data.log imports this module

        if cls is EncryptingLog and isinstance(inner, PositionalReader):
            cls = EncryptingPositionalLog  # type: ignore[assignment]
        return super().__new__(cls)

    def __init__(self, inner: EventLog, codec: Callable[[], FieldCodec] | None = None) -> None:
        self.inner = inner
        self.url = inner.url
        self._open_codec = codec or partial(codec_for_log, inner.url)
        self._codec: FieldCodec | None = None
        self._lock = threading.Lock()

    @property
    def codec(self) -> FieldCodec:
        """The codec of this log, opened on first use."""
        with self._lock:
            if self._codec is None:
                self._codec = self._open_codec()
            return self._codec

    # -- events -----------------------------------------------------------------------------------------

    def append(self, events: Iterable[EventBase | Mapping[str, Any]]) -> AppendResult:
        """Validate, encrypt the PII of the events that carry any, and append through the backend."""
        validated = [e if isinstance(e, EventBase) else validate_event(dict(e)) for e in events]
        if any(e.event_type in PII_EVENT_TYPES for e in validated):
            validated = self.codec.protect_events(validated)
        return self.inner.append(validated)

    # -- dead letters and introspection: the backend's own ------------------------------------------------

    def dead_letter(self, rejected: Sequence[RejectedInput]) -> int:
        return self.inner.dead_letter(rejected)

    def dead_letters(self, status: str | None = "pending", limit: int = 1000) -> list[DeadLetter]:
        return self.inner.dead_letters(status, limit)

    def mark_redriven(self, letter_id: int, position: int | None) -> None:
        self.inner.mark_redriven(letter_id, position)

    def update_dead_letter(self, letter_id: int, raw: bytes, reason: str) -> None:
        self.inner.update_dead_letter(letter_id, raw, reason)

    def dead_letter_counts(self) -> tuple[int, int]:
        """(pending, redriven) dead letters of the backend (its own count where it keeps one)."""
        return dead_letter_counts(self.inner)

    def stats(self) -> LogStats:
        return self.inner.stats()

    def close(self) -> None:
        """Close the backend, then the key store (if it was opened)."""
        self.inner.close()
        with self._lock:
            if self._codec is not None:
                self._codec.keys.close()
                self._codec = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EncryptingPositionalLog(EncryptingLog):
    """:class:`EncryptingLog` around a backend that reads by position: its reads come back decrypted."""

    inner: PositionalLog

    def read(
        self, after: int = 0, limit: int = 1000, event_types: Sequence[str] | None = None, shard: Shard | None = None
    ) -> ReadBatch[StoredEvent]:
        return self._revealed(self.inner.read(after, limit, event_types, shard))

    def replay(
        self,
        after: int = 0,
        limit: int = 1000,
        event_types: Sequence[str] | None = None,
        properties_of: Collection[str] = (),
        shard: Shard | None = None,
    ) -> ReadBatch[ReplayEvent]:
        batch = self.inner.replay(after, limit, event_types, properties_of, shard)
        return self._revealed(batch) if PII_EVENT_TYPES.intersection(properties_of) else batch

    def _revealed(self, batch: ReadBatch[E]) -> ReadBatch[E]:
        """The batch with its tokens decrypted; the batch itself when it holds none (nearly always)."""
        if not any(e.event_type in PII_EVENT_TYPES and holds_token(e.properties_json) for e in batch.events):
            return batch
        codec = self.codec
        return dataclasses.replace(batch, events=[codec.reveal_event(e) for e in batch.events])

    def head(self) -> int:
        return self.inner.head()

    def wait(self, after: int, timeout_s: float) -> int:
        return self.inner.wait(after, timeout_s)
