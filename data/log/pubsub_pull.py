"""Synchronous (unary) pull of a Pub/Sub subscription into a consumer's queue, with the leases kept here.

Why unary Pull and not StreamingPull: on an ordered subscription a stream holds its customers (ordering keys) until
the server learns that the stream ended, and the Pub/Sub emulator never learns it when a client dies or cancels (its
cancel path fails), so a killed subscriber's customers stayed undelivered for the stream's whole life (30 minutes).
A pull is one request: what a dead puller held comes back to the next one when its ack deadline passes, each
customer's messages in publish order (the server holds a customer's later messages while earlier ones are out). A
pull waits up to ``pull_wait_s`` for messages and returns as soon as some arrive.

:class:`PullSource` pulls on its own thread while there is room (``max_messages`` / ``max_bytes`` held: the
backpressure) and hands each message to ``deliver``. The consumer acks and nacks the messages it processed;
:meth:`PullSource.flush` sends those in one request each, and :meth:`PullSource.extend_leases` keeps the ack
deadline of what is still held from passing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.api_core import exceptions as gexc

log = logging.getLogger(__name__)

_TRANSIENT = (gexc.DeadlineExceeded, gexc.ServiceUnavailable, gexc.InternalServerError, gexc.Aborted,
              gexc.ResourceExhausted, gexc.Unknown)
_MAX_IDS_PER_REQUEST = 1_000


class LeaseBook:
    """The messages pulled and not yet settled, and the acks and nacks waiting to be sent (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, tuple[float, int]] = {}  # ack id -> (last extended, monotonic; size in bytes)
        self._acks: list[str] = []
        self._nacks: list[str] = []
        self.bytes = 0

    def add(self, ack_id: str, size: int, now: float) -> None:
        with self._lock:
            self._held[ack_id] = (now, size)
            self.bytes += size

    def settle(self, ack_id: str, ack: bool) -> None:
        with self._lock:
            held = self._held.pop(ack_id, None)
            if held is None:
                return  # settled already
            self.bytes -= held[1]
            (self._acks if ack else self._nacks).append(ack_id)

    def take_settled(self) -> tuple[list[str], list[str]]:
        with self._lock:
            acks, nacks, self._acks, self._nacks = self._acks, self._nacks, [], []
        return acks, nacks

    def due(self, now: float, every_s: float) -> list[str]:
        """The held messages last extended at least ``every_s`` ago, marked extended now."""
        with self._lock:
            ids = [a for a, (at, _) in self._held.items() if now - at >= every_s]
            for a in ids:
                self._held[a] = (now, self._held[a][1])
        return ids

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)


@dataclass(slots=True, eq=False)
class PulledMessage:
    """One pulled message: what the consumer reads of it, and ``ack``/``nack`` recorded in the lease book."""

    ack_id: str
    data: bytes
    attributes: Mapping[str, str]
    message_id: str
    ordering_key: str
    delivery_attempt: int | None
    book: LeaseBook = field(repr=False)

    def ack(self) -> None:
        self.book.settle(self.ack_id, True)

    def nack(self) -> None:
        self.book.settle(self.ack_id, False)


class PullSource:
    """Pulls ``subscription`` on a thread into ``deliver`` while fewer than ``max_messages`` / ``max_bytes`` are held.

    :param client: a ``pubsub_v1.SubscriberClient``.
    :param ack_deadline_s: the subscription's ack deadline; held messages are extended to it every half of it.
    :param pull_wait_s: how long one pull waits for messages before it is asked again."""

    def __init__(self, client: Any, subscription: str, deliver: Callable[[PulledMessage], None], *,
                 max_messages: int, max_bytes: int, ack_deadline_s: int, pull_wait_s: float) -> None:
        self.client = client
        self.subscription = subscription
        self.deliver = deliver
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.ack_deadline_s = ack_deadline_s
        self.pull_wait_s = pull_wait_s
        self.book = LeaseBook()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> PullSource:
        self._thread = threading.Thread(target=self._run, name=f"pull-{self.subscription.rsplit('/', 1)[-1]}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop_pulling(self) -> None:
        """Ask no more (a pull in flight returns within ``pull_wait_s``; what it brings is nacked)."""
        self._stop.set()

    def join(self, timeout_s: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)

    # -- on the consumer's thread ---------------------------------------------------------------------------

    def flush(self) -> None:
        """Send the acks and nacks recorded since the last flush (a nack makes the message due again at once)."""
        acks, nacks = self.book.take_settled()
        for i in range(0, len(acks), _MAX_IDS_PER_REQUEST):
            self._quietly(self.client.acknowledge, subscription=self.subscription, ack_ids=acks[i:i + _MAX_IDS_PER_REQUEST])
        self._modify(nacks, 0)

    def extend_leases(self) -> None:
        """Push back the ack deadline of the messages held for half of it or longer."""
        self._modify(self.book.due(time.monotonic(), self.ack_deadline_s / 2), self.ack_deadline_s)

    def release_all(self, messages: list[Any]) -> None:
        """Nack ``messages`` (held and never processed) and send it now."""
        for m in messages:
            m.nack()
        self.flush()

    def _modify(self, ack_ids: list[str], seconds: int) -> None:
        for i in range(0, len(ack_ids), _MAX_IDS_PER_REQUEST):
            self._quietly(self.client.modify_ack_deadline, subscription=self.subscription,
                          ack_ids=ack_ids[i:i + _MAX_IDS_PER_REQUEST], ack_deadline_seconds=seconds)

    def _quietly(self, call: Callable[..., Any], **request: Any) -> None:
        """An ack or deadline change that fails is not fatal: the message comes again, and is then a duplicate."""
        try:
            call(**request, timeout=self.pull_wait_s + 5)
        except gexc.GoogleAPICallError as error:
            log.warning("%s on %s failed (the messages will be delivered again): %s",
                        call.__name__, self.subscription, error)

    # -- the pulling thread ---------------------------------------------------------------------------------

    def _room(self) -> int:
        if self.book.bytes >= self.max_bytes:
            return 0
        return min(self.max_messages - len(self.book), _MAX_IDS_PER_REQUEST)

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            room = self._room()
            if room <= 0:
                self._stop.wait(0.005)
                continue
            try:
                response = self.client.pull(subscription=self.subscription, max_messages=room,
                                            timeout=self.pull_wait_s)
            except _TRANSIENT as error:
                log.debug("pull on %s: %r; asking again in %.1f s", self.subscription, error, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            except Exception as error:  # noqa: BLE001 - a closed client or a missing subscription ends the pulling
                if not self._stop.is_set():
                    log.error("pull on %s stopped: %r", self.subscription, error)
                    self.error = error
                return
            backoff = 0.1
            self._hand_over(response.received_messages)

    def _hand_over(self, received: Any) -> None:
        now = time.monotonic()
        for r in received:
            m = r.message
            pulled = PulledMessage(r.ack_id, m.data, dict(m.attributes), m.message_id, m.ordering_key,
                                   r.delivery_attempt or None, self.book)
            self.book.add(r.ack_id, len(m.data), now)
            if self._stop.is_set():
                pulled.nack()  # pulled as the consumer stopped: due again at once for the next one
            else:
                self.deliver(pulled)
