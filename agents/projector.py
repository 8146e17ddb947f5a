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

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agents.polling import LoopTiming, PollingLoop, RateMeter, catch_up, was_reconstructed
from agents.runtime import ShardStatus
from agents.state_repository import bump_restarts
from data.log import EventLog, open_log
from data.postgres_db import is_postgres_url
from data.projections.base import KeyedProjection, Projector
from data.projections.profile import ProfileProjection
from data.projections.store import open_state_store
from data.settings import Settings, get_settings

PROJECTOR_PREFIX = "projector:"
"""Actor names and status rows of projectors start with this (``projector:profile``)."""

PROJECTIONS: dict[str, Callable[[], KeyedProjection[Any]]] = {"profile": ProfileProjection}
"""The projections a projector actor can keep current, by name."""

class ProjectorConfig(BaseModel):
    """Which projection to keep current, where, and how often to look for new events.

    :param log_url: the event log to fold.
    :param state_url: the state store Serve reads the projection from (``sqlite:///path`` or ``postgresql://…``).
    :param projection: the projection's name (a key of :data:`PROJECTIONS`).
    :param batch_size: most events folded per transaction while catching up.
    :param poll_interval_s: wait between polls when caught up; with the fold's time it bounds freshness.
    :param snapshot_every: snapshot the projection every N positions (0: never).
    :param max_backoff_s: longest wait before retrying a failed batch (the wait doubles from the poll interval).
    :param stop_timeout_s: how long stopping waits for the batch in hand.
    :param rate_window: batches the reported events/s is measured over.
    :param rate_idle_s: events/s reads 0 after this long without a batch.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    log_url: str = Field(min_length=1)
    state_url: str = Field(pattern=r"^(sqlite:///|postgres(ql)?://).+",
                           description="The state store Serve reads (sqlite:///path or postgresql://…).")
    projection: Literal["profile"] = "profile"
    batch_size: int = Field(50_000, ge=1, le=1_000_000)
    poll_interval_s: float = Field(0.05, gt=0, le=10)
    snapshot_every: int = Field(0, ge=0)
    max_backoff_s: float = Field(default_factory=lambda: get_settings().agent_max_backoff_s, gt=0, le=300)
    stop_timeout_s: float = Field(default_factory=lambda: get_settings().agent_stop_timeout_s, gt=0)
    rate_window: int = Field(default_factory=lambda: get_settings().agent_rate_window, ge=2)
    rate_idle_s: float = Field(default_factory=lambda: get_settings().agent_rate_idle_s, gt=0)

    @property
    def actor_name(self) -> str:
        return projector_actor_name(self.projection)

    @field_validator("state_url")
    @classmethod
    def _absolute(cls, url: str) -> str:
        """A SQLite store's path made absolute here, in the caller, since the actor's working folder may differ."""
        if is_postgres_url(url):
            return url
        return f"sqlite:///{Path(url.removeprefix('sqlite:///')).resolve()}"

    @classmethod
    def from_settings(cls, log_url: str, state_url: str, settings: Settings) -> ProjectorConfig:
        """The profile projector with the engine's settings (:class:`data.settings.Settings`)."""
        return cls(log_url=log_url, state_url=state_url, batch_size=settings.read_batch_size,
                   poll_interval_s=settings.projector_poll_interval_s, snapshot_every=settings.snapshot_every,
                   max_backoff_s=settings.agent_max_backoff_s, stop_timeout_s=settings.agent_stop_timeout_s,
                   rate_window=settings.agent_rate_window, rate_idle_s=settings.agent_rate_idle_s)

    def timing(self) -> LoopTiming:
        return LoopTiming(self.poll_interval_s, self.max_backoff_s, self.stop_timeout_s)


def projector_actor_name(projection: str) -> str:
    return f"{PROJECTOR_PREFIX}{projection}"


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
        self._rate = RateMeter(config.rate_window, config.rate_idle_s)
        self._lock = threading.Lock()  # one batch at a time (the loop thread and direct step() calls)
        self._loop = PollingLoop(self.name, self.step, config.timing())
        if start or reconstructed:  # a restarted actor resumes on its own
            self.start()

    def _count_restart(self, reconstructed: bool) -> int:
        with self.store.transaction() as conn:  # counted as the agent shards count theirs
            return bump_restarts(conn, self.name, reconstructed)

    # -- the loop ---------------------------------------------------------------------------------------

    def step(self) -> int:
        """Fold one batch after the committed position and commit it; returns the positions moved past
        (0 when caught up)."""
        with self._lock:
            moved = self.projector.catch_up(max_events=self.config.batch_size)
            self._position = self.projector.position()
            self._head = max(self._head, self._position)
            if moved:
                self._rate.add(moved)
            return moved

    def catch_up(self, max_batches: int | None = None) -> int:
        """Fold batches until caught up with the log's head; returns the positions moved past."""
        return catch_up(self.step, max_batches)

    def start(self) -> bool:
        """Start the background loop (idempotent)."""
        return self._loop.start()

    def stop(self) -> bool:
        """Stop the loop after the current batch (idempotent)."""
        return self._loop.stop()

    # -- status -----------------------------------------------------------------------------------------

    def events_per_s(self) -> float:
        """Events folded per second over the last batches (0 when idle)."""
        return self._rate.per_second()

    def status(self) -> dict[str, Any]:
        """Position, lag, events/s, restarts and errors, as an agent shard reports them (idempotent, cheap)."""
        try:
            head = self.log.head()
        except Exception:  # noqa: BLE001 - a busy log must not fail the status
            head = self._head
        return ShardStatus(
            agent=self.name, shard=0, shards=1, position=self._position, head=head, lag=max(0, head - self._position),
            events=self._rate.total, events_per_s=self.events_per_s(), appended=0, duplicates=0, restarts=self._restarts,
            errors=self._loop.errors, running=self._loop.running, last_error=self._loop.last_error,
        ).to_dict()

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        self.stop()
        self.store.close()
        self.log.close()


def projector_actor_class(max_restarts: int = -1) -> Any:
    """:class:`ProjectionRunner` as a Ray actor class: restarted on failure, its calls retried (idempotent)."""
    import ray  # heavy; only the supervisor's process needs it

    return ray.remote(max_restarts=max_restarts, max_task_retries=-1, num_cpus=0)(ProjectionRunner)
