"""The Pub/Sub backend of the event log (``pubsub://project/topic``), on the real google-cloud-pubsub client.

- :class:`PubSubEventLog` validates and publishes: batched, ordered by ``customer_id`` (the ordering key), with
  ``event_type``, ``event_id`` and ``schema_version`` as attributes (for subscription filters). Input that fails
  validation goes to a local SQLite dead-letter store (the embedded log's own table, by composition). It publishes
  events as given: :func:`data.log.open_log` wraps it in :class:`~data.privacy.encrypting_log.EncryptingLog`, so
  the registered PII fields are encrypted before they get here, and message bodies on the wire and in retention
  hold only ``enc:v1:`` tokens.
- :class:`~data.log.pubsub_subscriber.PubSubSubscriber` consumes a subscription by unary pull with flow control (backpressure), filters
  by event type on our side too, hands batches to a handler inside one state-store transaction that also records
  every ``event_id`` in ``processed_events`` and the consumer's position, and acks only after that commit.
  Pub/Sub delivers at least once; the ``processed_events`` table makes processing effectively once.

Pub/Sub has no log positions, so this backend is an :class:`~data.log.base.EventSink` with
:class:`~data.log.base.DeadLetters`, not a :class:`~data.log.base.PositionalReader`: a caller that needs positions
gets :class:`PositionsUnsupported` from :func:`~data.log.base.positional`. Consume through a subscription, or
replay from the warehouse raw table (the durable copy of every event).
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, Self

import orjson
from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.auth.exceptions import DefaultCredentialsError
from google.cloud import pubsub_v1

from data.events import EventBase, EventError, validate_event
from data.log.base import (
    AppendResult,
    LogStats,
    LogUnavailable,
    PositionsUnsupported,
    from_micros,
    properties_json,
)
from data.log.postgres_dead_letters import ForwardsDeadLetters, open_dead_letter_store
from data.log.pubsub_admin import TopicRef, parse_pubsub_url
from data.privacy.codec import FieldCodec
from data.privacy.registry import TOKEN_PREFIX
from data.settings import get_settings

log = logging.getLogger(__name__)

__all__ = [
    "PositionsUnsupported",
    "PubSubEventLog",
    "decode_message",
    "encode_event",
    "holds_pii_token",
]

_RETRYABLE = gretry.if_exception_type(
    gexc.Aborted, gexc.DeadlineExceeded, gexc.InternalServerError, gexc.ResourceExhausted,
    gexc.ServiceUnavailable, gexc.Unknown, gexc.Cancelled,
)


_TOKEN_MARK = b'"' + TOKEN_PREFIX.encode()
"""How an encrypted value starts inside a message body (a JSON string holding a token)."""


def _iso(moment: Any) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def encode_event(event: EventBase, recorded_at_us: int) -> bytes:
    """The message body: the envelope as JSON, the same shape producers send and the warehouse loads."""
    return orjson.dumps({
        "event_id": event.event_id,
        "event_type": event.event_type,
        "customer_id": event.customer_id,
        "occurred_at": _iso(event.occurred_at),
        "recorded_at": _iso(from_micros(recorded_at_us)),
        "source": event.source,
        "schema_version": event.schema_version,
        "causation_id": event.causation_id,
        "properties": orjson.Fragment(properties_json(event)),
    })


def holds_pii_token(data: bytes) -> bool:
    """Whether a message body holds an encrypted value (a cheap byte search; most messages hold none)."""
    return _TOKEN_MARK in data


def decode_message(data: bytes, codec: FieldCodec | None = None) -> EventBase:
    """A message body back to a validated event; raises :class:`~data.events.EventError` for a poison message.

    :param codec: decrypts the encrypted PII fields before validation (a field whose key was deleted by an
        erasure reads as null); None: the body is validated as it is (bodies without tokens decode the same)."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise EventError(f"the message is not valid JSON: {error}") from None
    if codec is not None and isinstance(raw, dict) and holds_pii_token(data):
        raw = codec.reveal_envelope(raw)
    return validate_event(raw)


class PubSubEventLog(ForwardsDeadLetters):
    """The Pub/Sub backend (``pubsub://project/topic``): an :class:`~data.log.base.EventSink` with
    :class:`~data.log.base.DeadLetters`; it publishes, and consumers read through subscriptions."""

    def __init__(
        self,
        url: str,
        dead_letter_store: str | None = None,
        publish_timeout_s: float | None = None,
        publisher: pubsub_v1.PublisherClient | None = None,
    ) -> None:
        """:param url: ``pubsub://project/topic``.
        :param dead_letter_store: URL of the store of rejected input, ``sqlite:///path`` or ``postgresql://…``
            (default ``AME_PUBSUB_DEAD_LETTER_STORE``).
        :param publish_timeout_s: how long :meth:`append` waits for the server (default ``AME_PUBSUB_PUBLISH_TIMEOUT_S``).
        :param publisher: a ready client (tests); by default one with batching and message ordering on."""
        settings = get_settings()
        self.url = url
        self.ref: TopicRef = parse_pubsub_url(url)
        self.topic_path = self.ref.path
        self.publish_timeout_s = publish_timeout_s or settings.pubsub_publish_timeout_s
        try:
            self._publisher = publisher or pubsub_v1.PublisherClient(
                batch_settings=pubsub_v1.types.BatchSettings(
                    max_messages=settings.pubsub_batch_max_messages,
                    max_bytes=1_000_000,
                    max_latency=settings.pubsub_batch_max_latency_s,
                ),
                publisher_options=pubsub_v1.types.PublisherOptions(
                    enable_message_ordering=True,
                    retry=gretry.Retry(predicate=_RETRYABLE, initial=0.1, maximum=5.0, timeout=self.publish_timeout_s),
                    timeout=min(self.publish_timeout_s, 60.0),
                ),
            )
        except DefaultCredentialsError:
            raise LogUnavailable(
                f"no Google credentials for {url}: run `gcloud auth application-default login` (or use Workload "
                "Identity), or set PUBSUB_EMULATOR_HOST to use a local emulator"
            ) from None
        self._letters = open_dead_letter_store(
            dead_letter_store or settings.pubsub_dead_letter_store_url(), busy_timeout_ms=settings.sqlite_busy_timeout_ms
        )
        self._published: dict[str, int] = {}
        self._lock = threading.Lock()

    # -- events -----------------------------------------------------------------------------------------

    def append(self, events: Iterable[EventBase | Mapping[str, Any]]) -> AppendResult:
        """Validate every event, then publish them all and wait for the server's acknowledgement.

        Validation errors raise before anything is published. A publish that fails or outlasts the timeout raises
        :class:`LogUnavailable`; events of that batch may have been published, so retrying the append is safe
        (consumers de-duplicate on ``event_id``). ``duplicates`` is always 0 here: Pub/Sub does not de-duplicate,
        the subscriber does. ``last_position`` is 0: Pub/Sub has no positions.
        """
        validated = [e if isinstance(e, EventBase) else validate_event(dict(e)) for e in events]
        if not validated:
            return AppendResult(appended=0, duplicates=0, last_position=0)
        now = time.time_ns() // 1000
        futures: list[concurrent.futures.Future[str]] = []
        keys: set[str] = set()
        try:
            for event in validated:
                keys.add(event.customer_id)
                futures.append(self._publisher.publish(
                    self.topic_path,
                    encode_event(event, now),
                    ordering_key=event.customer_id,
                    event_type=event.event_type,
                    event_id=event.event_id,
                    schema_version=str(event.schema_version),
                ))
        except Exception as error:  # noqa: BLE001 - the client refuses at once, e.g. a key paused by an earlier failure
            self._resume(keys)
            raise LogUnavailable(f"cannot publish to {self.topic_path}: {error}") from None
        done, pending = concurrent.futures.wait(futures, timeout=self.publish_timeout_s)
        failed = [f.exception() for f in done if f.exception() is not None]
        if pending or failed:
            self._resume(keys)
            why = (f"{len(pending)} of {len(futures)} publishes still pending after {self.publish_timeout_s:g} s"
                   if pending else f"{len(failed)} of {len(futures)} publishes failed: {failed[0]}")
            raise LogUnavailable(
                f"Pub/Sub topic {self.topic_path} did not take the batch ({why}). Check the topic exists "
                "(data.log.pubsub_admin.ensure_consumer_resources), credentials or PUBSUB_EMULATOR_HOST, then retry "
                "the append: it is safe, consumers de-duplicate on event_id."
            )
        with self._lock:
            for event in validated:
                self._published[event.event_type] = self._published.get(event.event_type, 0) + 1
        return AppendResult(appended=len(validated), duplicates=0, last_position=0)

    def _resume(self, keys: Iterable[str]) -> None:
        """Un-pause ordering keys after a failure (the client pauses a key whose publish failed)."""
        for key in keys:
            self._publisher.resume_publish(self.topic_path, key)

    # -- introspection ----------------------------------------------------------------------------------

    def stats(self) -> LogStats:
        """Events published by this instance (Pub/Sub keeps no count) and the dead-letter store's counts."""
        letters = self._letters.stats()
        with self._lock:
            by_type = dict(sorted(self._published.items(), key=lambda kv: -kv[1]))
        return LogStats(
            events=sum(by_type.values()), first_position=0, last_position=0, by_type=by_type,
            dead_letters_pending=letters.dead_letters_pending, dead_letters_redriven=letters.dead_letters_redriven,
        )

    def close(self) -> None:
        """Flush what is batched, then close the publisher and the dead-letter store."""
        try:
            self._publisher.stop()
        except Exception as error:  # noqa: BLE001 - closing must not mask the caller's own error
            log.warning("closing the Pub/Sub publisher: %s", error)
        self._letters.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
