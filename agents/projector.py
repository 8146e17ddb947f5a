"""The projector actor: keeps a projection current with the log, so every decision reads fresh state.

The customer profile projection (:mod:`data.projections.profile`) holds each customer's consent, which Serve's
``/v1/bid`` reads. :class:`ProjectionRunner` runs a :class:`~data.projections.base.Projector` over it in a
background loop: it polls the log every ``poll_interval_s`` when caught up, and otherwise folds batch after batch,
each committed with its position in one transaction of the state store (the tracking record). The plain class is
wrapped for Ray by :func:`projector_actor_class` (restarted on failure, its calls retried); a restarted actor
reopens the store and resumes from the committed position. Its status has the shape of an agent shard's
(:class:`agents.runtime.ShardStatus`), so ``ame agents status`` shows it beside the shards.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agents.runtime import ShardStatus
from data.log import EventLog, open_log
from data.projections.base import KeyedProjection, Projector
from data.projections.profile import ProfileProjection
from data.projections.store import open_state_store

log = logging.getLogger(__name__)

PROJECTOR_PREFIX = "projector:"
"""Actor names and status rows of projectors start with this (``projector:profile``)."""

PROJECTIONS: dict[str, Callable[[], KeyedProjection[Any]]] = {"profile": ProfileProjection}
"""The projections a projector actor can keep current, by name."""

_RESTARTS_SCHEMA = "create table if not exists agent_restarts (consumer text primary key, restarts integer not null)"


class ProjectorConfig(BaseModel):
    """Which projection to keep current, where, and how often to look for new events.

    :param log_url: the event log to fold.
    :param state_url: the state store Serve reads the projection from (``sqlite:///path``).
    :param projection: the projection's name (a key of :data:`PROJECTIONS`).
    :param batch_size: most events folded per transaction while catching up.
    :param poll_interval_s: wait between polls when caught up; with the fold's time it bounds freshness.
    :param snapshot_every: snapshot the projection every N positions (0: never).
    :param max_backoff_s: longest wait before retrying a failed batch (the wait doubles from the poll interval).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    log_url: str = Field(min_length=1)
    state_url: str = Field(pattern=r"^sqlite:///.+", description="The state store Serve reads (sqlite:///path).")
    projection: Literal["profile"] = "profile"
    batch_size: int = Field(50_000, ge=1, le=1_000_000)
    poll_interval_s: float = Field(0.05, gt=0, le=10)
    snapshot_every: int = Field(0, ge=0)
    max_backoff_s: float = Field(5.0, gt=0, le=300)

    @property
    def actor_name(self) -> str:
        return projector_actor_name(self.projection)

    @field_validator("state_url")
    @classmethod
    def _absolute(cls, url: str) -> str:
        """The store's path made absolute here, in the caller, since the actor's working folder may differ."""
        return f"sqlite:///{Path(url.removeprefix('sqlite:///')).resolve()}"

    @classmethod
    def from_settings(cls, log_url: str, state_url: str, settings: Any) -> ProjectorConfig:
        """The profile projector with the engine's settings (:class:`data.settings.Settings`)."""
        return cls(log_url=log_url, state_url=state_url, batch_size=settings.read_batch_size,
                   poll_interval_s=settings.projector_poll_interval_s, snapshot_every=settings.snapshot_every)


def projector_actor_name(projection: str) -> str:
    return f"{PROJECTOR_PREFIX}{projection}"


def was_reconstructed() -> bool:
    """Whether this process is a Ray actor that Ray restarted after a failure (False outside Ray)."""
    ray = sys.modules.get("ray")  # only inside a Ray worker; a plain projector never imports Ray
    if ray is None or not ray.is_initialized():
        return False
    try:
        context = ray.get_runtime_context()
        return context.get_actor_id() is not None and bool(context.was_current_actor_reconstructed)
    except Exception:  # noqa: BLE001 - not in an actor
        return False


class ProjectionRunner:
    """One projection kept current by a background loop (see the module docstring).

    :param config: the projection, its log and store, and the pacing.
    :param start: start the loop now (actors do; unit tests call :meth:`step` and :meth:`catch_up`).
    """

    def __init__(self, config: ProjectorConfig, start: bool = True) -> None:
        self.config = config
        self.name = config.actor_name
        self.log: EventLog = open_log(config.log_url)
        self.store = open_state_store(config.state_url)
        self.projector = Projector(self.log, self.store, PROJECTIONS[config.projection](), config.batch_size,
                                   config.snapshot_every)
        reconstructed = was_reconstructed()
        self._restarts = self._count_restart(reconstructed)
        self._position = self.projector.position()
        self._head = self._position
        self._events = self._errors = 0
        self._last_error: str | None = None
        self._rate: deque[tuple[float, int]] = deque(maxlen=64)
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one batch at a time (the loop thread and direct step() calls)
        self._thread: threading.Thread | None = None
        if start or reconstructed:  # a restarted actor resumes on its own
            self.start()

    def _count_restart(self, reconstructed: bool) -> int:
        with self.store.transaction() as conn:
            conn.execute(_RESTARTS_SCHEMA)
            return _bump_restarts(conn, self.name, reconstructed)

    # -- the loop ---------------------------------------------------------------------------------------

    def step(self) -> int:
        """Fold one batch after the committed position and commit it; returns the positions moved past
        (0 when caught up)."""
        with self._lock:
            moved = self.projector.catch_up(max_events=self.config.batch_size)
            self._position = self.projector.position()
            self._head = max(self._head, self._position)
            if moved:
                self._events += moved
                self._rate.append((time.monotonic(), self._events))
            return moved

    def catch_up(self, max_batches: int | None = None) -> int:
        """Fold batches until caught up with the log's head; returns the positions moved past."""
        done = batches = 0
        while max_batches is None or batches < max_batches:
            moved = self.step()
            if moved == 0:
                break
            done += moved
            batches += 1
        return done

    def _loop(self) -> None:
        backoff = self.config.poll_interval_s
        while not self._stop.is_set():
            try:
                moved = self.step()
            except Exception as error:  # keep projecting; the batch is retried from the last commit
                self._errors += 1
                self._last_error = f"{type(error).__name__}: {error}"
                log.exception("%s: batch failed, retrying from position %d", self.name, self._position)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.config.max_backoff_s)
                continue
            backoff = self.config.poll_interval_s
            if moved == 0:
                self._stop.wait(self.config.poll_interval_s)

    def start(self) -> bool:
        """Start the background loop (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()
        return True

    def stop(self) -> bool:
        """Stop the loop after the current batch (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        return True

    # -- status -----------------------------------------------------------------------------------------

    def events_per_s(self) -> float:
        """Events folded per second over the last batches (0 when idle for 5 s)."""
        if len(self._rate) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._rate[0], self._rate[-1]
        return (n1 - n0) / (t1 - t0) if time.monotonic() - t1 < 5 and t1 > t0 else 0.0

    def status(self) -> dict[str, Any]:
        """Position, lag, events/s, restarts and errors, as an agent shard reports them (idempotent, cheap)."""
        try:
            head = self.log.head()
        except Exception:  # noqa: BLE001 - a busy log must not fail the status
            head = self._head
        return ShardStatus(
            agent=self.name, shard=0, shards=1, position=self._position, head=head, lag=max(0, head - self._position),
            events=self._events, events_per_s=self.events_per_s(), appended=0, duplicates=0, restarts=self._restarts,
            errors=self._errors, running=self._thread is not None and self._thread.is_alive(),
            last_error=self._last_error,
        ).to_dict()

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        self.stop()
        self.store.close()
        self.log.close()


def _bump_restarts(conn: sqlite3.Connection, consumer: str, reconstructed: bool) -> int:
    """The consumer's restarts so far, one more when this start is a restart (written in ``conn``)."""
    row = conn.execute("select restarts from agent_restarts where consumer = ?", (consumer,)).fetchone()
    restarts = (row[0] if row else 0) + (1 if reconstructed else 0)
    conn.execute("insert or replace into agent_restarts (consumer, restarts) values (?, ?)", (consumer, restarts))
    return restarts


def projector_actor_class(max_restarts: int = -1) -> Any:
    """:class:`ProjectionRunner` as a Ray actor class: restarted on failure, its calls retried (idempotent)."""
    import ray  # heavy; only the supervisor's process needs it

    return ray.remote(max_restarts=max_restarts, max_task_retries=-1, num_cpus=0)(ProjectionRunner)
