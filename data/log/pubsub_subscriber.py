"""The Pub/Sub consumer: pull into a state store, effectively once.

:class:`PubSubSubscriber` consumes a subscription by unary pull (:mod:`data.log.pubsub_pull`: why not streaming pull)
with flow control (backpressure), filters by event type on our
side too (the emulator accepts subscription filters but does not apply them), hands batches to a handler inside
one state-store transaction that also records every ``event_id`` in ``processed_events`` and the consumer's
position, and acks only after that commit. Pub/Sub delivers at least once; ``processed_events`` makes
processing effectively once. Messages that hold encrypted PII are decrypted as they are decoded, so handlers see
plaintext, and an erased customer's PII as null.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Self

from google.cloud import pubsub_v1

from data.events import EventBase, EventError
from data.log.base import LogUnavailable, ReplayEvent, StoredEvent, properties_json, to_micros
from data.log.pubsub import decode_message, holds_pii_token
from data.log.pubsub_pull import PullSource
from data.privacy.codec import FieldCodec, codec_for_log
from data.projections.base import KeyedProjection
from data.projections.store import SqliteStateStore
from data.settings import get_settings

log = logging.getLogger(__name__)

BatchHandler = Callable[[sqlite3.Connection, Sequence[Any]], None]
"""Writes the state derived from a batch on the given connection, inside the subscriber's transaction. Events
(``ReplayEvent``, or ``StoredEvent`` with ``full_events=True``) carry consumer-local positions (1, 2, ... in the
order this consumer applied them), in delivery order, which is publish order for each customer (ordering key)."""

_PROCESSED_SCHEMA = """
create table if not exists processed_events (
    consumer        text    not null,
    event_id        text    not null,
    position        integer not null,
    processed_at_us integer not null,
    primary key (consumer, event_id)
)
"""


def projection_handler(projection: KeyedProjection[Any]) -> BatchHandler:
    """A handler that folds each batch into a keyed projection (for example the profile projection)."""

    def handle(conn: sqlite3.Connection, events: Sequence[ReplayEvent]) -> None:
        current = projection.load(conn, projection.keys_of(events))
        projection.save(conn, projection.fold(current, events))

    return handle


@dataclass(slots=True)
class SubscriberStats:
    """What a subscriber did since it started."""

    received: int = 0
    applied: int = 0
    duplicates: int = 0
    filtered: int = 0
    poison_nacked: int = 0
    failed_nacked: int = 0
    batches: int = 0


class _Crash(Exception):
    pass


class PubSubSubscriber:
    """Consumes one subscription into a state store, effectively once.

    A pulling thread delivers messages into a bounded queue (flow control caps what is held unacked: the
    backpressure). One worker thread takes batches off it and, for each batch, in ONE transaction of the store:
    skips event ids already in ``processed_events``, calls the handler, records the new event ids and the
    consumer's position. Only after the commit does it ack. A message that cannot be decoded is nacked (the
    subscription's dead-letter policy moves it to the dead-letter topic after its last attempt); a batch whose
    handler fails is retried message by message, and the failing messages are nacked.
    """

    def __init__(
        self,
        subscription_path: str,
        store: SqliteStateStore,
        consumer: str,
        handler: BatchHandler,
        event_types: Collection[str] | None = None,
        flow_control: pubsub_v1.types.FlowControl | None = None,
        max_batch: int = 500,
        max_wait_s: float = 0.005,
        before_ack: Callable[[Sequence[str]], None] | None = None,
        client: pubsub_v1.SubscriberClient | None = None,
        full_events: bool = False,
        codec: FieldCodec | None = None,
    ) -> None:
        """:param subscription_path: ``projects/<p>/subscriptions/<s>`` (see :mod:`data.log.pubsub_admin`).
        :param consumer: the name under which positions and processed event ids are kept.
        :param event_types: the types to apply; others are acked and skipped (the emulator ignores filters).
        :param flow_control: default: ``AME_PUBSUB_FLOW_MAX_MESSAGES`` / ``AME_PUBSUB_FLOW_MAX_BYTES``.
        :param before_ack: called with the batch's event ids after the commit and before the ack (a seam for
            crash tests: if it raises, the batch is nacked, as a crashed process's leases would expire).
        :param full_events: hand the handler whole :class:`StoredEvent` s (ids, causation, source: what agents
            need) instead of the lean :class:`ReplayEvent` s a fold needs.
        :param codec: decrypts the PII of the messages that hold encrypted values; default: the settings' key
            store (``AME_KEY_STORE``, else ``<AME_HOME>/keys.db``, as the publisher's), opened on the first such
            message.
        :param client: a ``pubsub_v1.SubscriberClient`` (default: one of its own, closed by :meth:`stop`)."""
        settings = get_settings()
        self.subscription_path = subscription_path
        self.store = store
        self.consumer = consumer
        self.handler = handler
        self.event_types = frozenset(event_types) if event_types else None
        self.flow_control = flow_control or pubsub_v1.types.FlowControl(
            max_messages=settings.pubsub_flow_max_messages, max_bytes=settings.pubsub_flow_max_bytes)
        self.pull_wait_s = settings.pubsub_pull_wait_s
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.before_ack = before_ack
        self.full_events = full_events
        self._codec = codec
        self._owns_codec = codec is None
        self._client = client or pubsub_v1.SubscriberClient()
        self._owns_client = client is None
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=self.flow_control.max_messages + 1)
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._source: PullSource | None = None
        self._worker: threading.Thread | None = None
        self.stats = SubscriberStats()
        self.error: BaseException | None = None
        with store.transaction() as conn:
            conn.execute(_PROCESSED_SCHEMA)

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> PubSubSubscriber:
        try:
            deadline = self._client.get_subscription(subscription=self.subscription_path, timeout=30).ack_deadline_seconds
        except Exception as error:  # noqa: BLE001 - the client raises several kinds; all mean "cannot consume"
            raise LogUnavailable(f"cannot consume Pub/Sub subscription {self.subscription_path}: {error}") from None
        self._source = PullSource(self._client, self.subscription_path, self._receive,
                                  max_messages=self.flow_control.max_messages, max_bytes=self.flow_control.max_bytes,
                                  ack_deadline_s=deadline, pull_wait_s=self.pull_wait_s)
        self._worker = threading.Thread(target=self._work, name=f"pubsub-{self.consumer}", daemon=True)
        self._worker.start()
        self._source.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop pulling, finish the batch in hand and return; what is held unprocessed is nacked (due again at once)."""
        if self._source is not None:
            self._source.stop_pulling()
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout_s)
        leftovers: list[Any] = []
        while not self._queue.empty():
            leftovers.append(self._queue.get_nowait())
        if self._source is not None:
            self._source.release_all(leftovers)
        else:
            for m in leftovers:
                m.nack()
        if self._owns_client:
            self._client.close()  # also ends a pull in flight
        if self._source is not None:
            self._source.join(self.pull_wait_s + 1)
        if self._owns_codec and self._codec is not None:
            self._codec.keys.close()
            self._codec = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, condition: Callable[[SubscriberStats], bool], timeout_s: float) -> bool:
        """Block until ``condition(stats)`` holds (True) or the timeout passes (False)."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not condition(self.stats):
                left = deadline - time.monotonic()
                if left <= 0 or self.failure() is not None:
                    return condition(self.stats)
                self._changed.wait(min(left, 0.2))
        return True

    def failure(self) -> BaseException | None:
        """The last error of processing, or the error that stopped the pulling."""
        return self.error or (self._source.error if self._source is not None else None)

    def held(self) -> int:
        """Messages received and not yet processed (this consumer's local backlog)."""
        return self._queue.qsize()

    def processed(self, event_id: str) -> bool:
        row = self.store.read().execute(
            "select 1 from processed_events where consumer = ? and event_id = ?", (self.consumer, event_id)
        ).fetchone()
        return row is not None

    def prune_processed(self, older_than_s: float) -> int:
        """Forget processed event ids older than the subscription's retention (7 days by default): Pub/Sub
        cannot redeliver them any more, so they cannot be duplicates."""
        cutoff = time.time_ns() // 1000 - int(older_than_s * 1e6)
        with self.store.transaction() as conn:
            return conn.execute(
                "delete from processed_events where consumer = ? and processed_at_us < ?", (self.consumer, cutoff)
            ).rowcount

    # -- receiving ----------------------------------------------------------------------------------------

    def _codec_for(self, data: bytes) -> FieldCodec | None:
        """The codec when the message holds an encrypted value (opened then, on the worker thread), else None."""
        if not holds_pii_token(data):
            return None
        if self._codec is None:
            project, _, subscription = self.subscription_path.removeprefix("projects/").partition("/subscriptions/")
            self._codec = codec_for_log(f"pubsub://{project}/{subscription}")
        return self._codec

    def _receive(self, message: Any) -> None:
        """Runs on the pulling thread: hand over to the worker (bounded by flow control)."""
        self._queue.put(message)

    def _next_batch(self) -> list[Any]:
        try:
            first = self._queue.get(timeout=0.1)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=left))
            except queue.Empty:
                break
        return batch

    def _work(self) -> None:
        extended = time.monotonic()
        while not self._stop.is_set():
            batch = self._next_batch()
            if batch:
                try:
                    self._process(batch)
                except BaseException as error:  # keep the consumer alive; the batch is redelivered
                    log.exception("consumer %s: batch failed, nacking %d messages", self.consumer, len(batch))
                    self.error = error
                    for m in batch:
                        m.nack()
            if self._source is not None:
                self._source.flush()
                if time.monotonic() - extended >= 1.0:
                    self._source.extend_leases()
                    extended = time.monotonic()
            if batch:
                with self._changed:
                    self._changed.notify_all()

    def _process(self, batch: list[Any]) -> None:
        wanted: list[tuple[Any, EventBase]] = []
        for m in batch:
            self.stats.received += 1
            if self.event_types is not None and m.attributes.get("event_type") not in self.event_types:
                m.ack()
                self.stats.filtered += 1
                continue
            try:
                wanted.append((m, decode_message(m.data, self._codec_for(m.data))))
            except EventError as error:
                attempt = m.delivery_attempt
                log.warning("consumer %s: poison message %s (delivery attempt %s): %s",
                            self.consumer, m.message_id, attempt, error)
                m.nack()
                self.stats.poison_nacked += 1
        if not wanted:
            return
        try:
            self._apply(wanted)
        except _Crash:
            for m, _ in wanted:
                m.nack()
            return
        except Exception:  # isolate the failing message(s)
            if len(wanted) == 1:
                log.exception("consumer %s: handler failed on %s", self.consumer, wanted[0][1].event_id)
                wanted[0][0].nack()
                self.stats.failed_nacked += 1
                return
            for one in wanted:
                self._process_one(one)

    def _process_one(self, item: tuple[Any, EventBase]) -> None:
        try:
            self._apply([item])
        except _Crash:
            item[0].nack()
        except Exception:  # isolate the failing message(s)
            log.exception("consumer %s: handler failed on %s", self.consumer, item[1].event_id)
            item[0].nack()
            self.stats.failed_nacked += 1

    def _apply(self, items: list[tuple[Any, EventBase]]) -> None:
        """One transaction: de-duplicate, hand the new events to the handler, record them; then ack."""
        ids = [e.event_id for _, e in items]
        applied = 0
        with self.store.transaction() as conn:
            seen = {
                row[0] for i in range(0, len(ids), 900) for row in conn.execute(
                    f"select event_id from processed_events where consumer = ? and event_id in "
                    f"({','.join('?' * len(ids[i:i + 900]))})", (self.consumer, *ids[i:i + 900]))
            }
            position = self.store.position(self.consumer)
            fresh: list[ReplayEvent] = []
            rows: list[tuple[str, str, int, int]] = []
            now = time.time_ns() // 1000
            for _, e in items:
                if e.event_id in seen:
                    continue
                seen.add(e.event_id)
                position += 1
                if self.full_events:
                    recorded = to_micros(e.recorded_at) if e.recorded_at is not None else now
                    fresh.append(StoredEvent.of(e, position, recorded))
                else:
                    fresh.append(ReplayEvent(position, e.event_type, e.customer_id, to_micros(e.occurred_at),
                                             properties_json(e)))
                rows.append((self.consumer, e.event_id, position, now))
            if fresh:
                self.handler(conn, fresh)
                conn.executemany(
                    "insert into processed_events (consumer, event_id, position, processed_at_us) values (?, ?, ?, ?)",
                    rows,
                )
                self.store.commit_position(conn, self.consumer, position)
                applied = len(fresh)
        if self.before_ack is not None:
            try:
                self.before_ack(ids)
            except Exception as error:  # the seam simulates a crash between commit and ack
                raise _Crash(str(error)) from error
        for m, _ in items:
            m.ack()
        self.stats.applied += applied
        self.stats.duplicates += len(items) - applied
        self.stats.batches += 1
