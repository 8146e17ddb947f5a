"""Decisions appended to the event log off the request path: queued, batched, flushed on shutdown.

A handler calls :meth:`DecisionLogger.submit` with the decision's fields (a dict append, about a microsecond);
a background thread builds the ``decision_made`` events and appends them in batches (``batch_size`` events or
every ``flush_interval_s``). An append that fails is retried with backoff; nothing is dropped. ``close()``
drains the queue before it returns, so a replica that shuts down gracefully loses nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from data.events import DecisionMade, DecisionMadeProperties, EventBase, new_event_id
from data.log.base import EventLog

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """What the log keeps of one served decision (what off-policy evaluation needs).

    ``event_id`` None: the writer thread gives it a fresh time-ordered id (of ``at``) when it builds the event,
    so a handler that does not answer with the id does not pay for it.
    """

    event_id: str | None
    customer_id: str
    agent: str
    action: str
    channel: str | None
    propensity: float
    policy_name: str
    policy_version: str
    features_hash: str | None = None
    context: dict[str, Any] | None = None
    at: datetime | None = None

    def to_event(self) -> DecisionMade:
        at = self.at or datetime.now(UTC)
        return DecisionMade(
            event_id=self.event_id or new_event_id(at),
            customer_id=self.customer_id,
            occurred_at=at,
            source="serve",
            properties=DecisionMadeProperties(
                agent=self.agent, action=self.action[:128], channel=self.channel, propensity=self.propensity,
                policy_name=self.policy_name, policy_version=self.policy_version, features_hash=self.features_hash,
                context=self.context,
            ),
        )


class DecisionLogger:
    """Batched, asynchronous appends of decisions (see the module docstring).

    :param open_log: opens the log; called in the writer thread (SQLite connections stay in their thread).
    :param batch_size: most events per append.
    :param flush_interval_s: longest a decision waits in the queue while the writer is idle.
    """

    def __init__(self, open_log: Callable[[], EventLog], batch_size: int = 512, flush_interval_s: float = 0.05) -> None:
        self._open_log = open_log
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._queue: deque[DecisionRecord | EventBase] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._idle = threading.Condition()
        self._in_flight = 0
        self.appended = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return len(self._queue) + self._in_flight

    def submit(self, record: DecisionRecord | EventBase) -> None:
        """Queue one decision, as its fields or as a built event (never blocks on the log)."""
        if self._stopping:
            raise RuntimeError("the decision logger is closed; decisions can no longer be logged")
        self._queue.append(record)
        if len(self._queue) >= self.batch_size:
            self._wake.set()

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything queued so far is appended; False on timeout."""
        deadline = time.monotonic() + timeout_s
        self._wake.set()
        with self._idle:
            while self.pending and time.monotonic() < deadline:
                self._wake.set()
                self._idle.wait(0.01)
        return not self.pending

    def close(self, timeout_s: float = 30.0) -> None:
        """Append everything still queued, then stop the writer."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive() or self._queue:
            logger.error("decision log: %d decisions were not appended before the shutdown timeout", self.pending)

    def _take(self) -> list[DecisionRecord | EventBase]:
        batch: list[DecisionRecord | EventBase] = []
        while self._queue and len(batch) < self.batch_size:
            batch.append(self._queue.popleft())
        self._in_flight = len(batch)
        return batch

    def _run(self) -> None:
        log: EventLog | None = None
        backoff = 0.05
        while True:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            while self._queue:
                batch = self._take()
                try:
                    if log is None:
                        log = self._open_log()
                    # built once: a retried batch keeps its event ids, so the log's idempotent append holds
                    batch = [r.to_event() if isinstance(r, DecisionRecord) else r for r in batch]
                    log.append(batch)
                    self.appended += len(batch)
                    backoff = 0.05
                except Exception:
                    self.failures += 1
                    logger.exception("decision log: append of %d decisions failed; retrying in %.2f s", len(batch), backoff)
                    self._queue.extendleft(reversed(batch))
                    time.sleep(backoff)
                    backoff = min(2.0, backoff * 2)
                    if self._stopping and self.failures > 50:
                        break
                finally:
                    self._in_flight = 0
                    with self._idle:
                        self._idle.notify_all()
            if self._stopping:
                break
        if log is not None:
            log.close()
