"""The scheduler's memory: the last run of each job, kept where a restarted scheduler on any node reads it back.

Every run is a ``schedule_run`` event in the log (the audit trail), whatever the log. On a positional log (SQLite,
PostgreSQL) those events are the memory too: :class:`LogRunMemory` replays them. A Pub/Sub log cannot be read
back, so :class:`StoreRunMemory` also keeps each job's last run as a small record in the state store
(``AME_STATE_STORE``; PostgreSQL in a cluster), written with each run. :func:`open_run_memory` picks one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import orjson

from agents.state_repository import AgentStateRepository
from data.events import ScheduleRun, derive_event_id
from data.log import EventLog, PositionalReader
from data.log.base import replay_all
from data.projections.store import open_state_store
from data.sharding import BROADCAST_CUSTOMER

MEMORY_CONSUMER = "scheduler"
"""The state store's consumer under which the scheduler keeps one record per job (a log without positions)."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run of a job, as its ``schedule_run`` event holds it."""

    job: str
    due_at: datetime
    started_at: datetime
    finished_at: datetime
    outcome: str
    trigger: str
    summary: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, p: dict[str, Any]) -> RunRecord:
        """A run from its event's properties or its stored record."""
        return cls(p["job"], _parse(p["due_at"]), _parse(p["started_at"]), _parse(p["finished_at"]), p["outcome"],
                   p.get("trigger", "cron"), p.get("summary"), p.get("error"))


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def run_event(record: RunRecord) -> ScheduleRun:
    """The ``schedule_run`` event of one run; its id is derived from the job, slot and trigger (a replay keeps one)."""
    extra = record.started_at.isoformat() if record.trigger == "manual" else ""
    return ScheduleRun(
        event_id=derive_event_id("schedule", record.job, record.due_at.isoformat(), record.trigger, extra, at=record.due_at),
        customer_id=BROADCAST_CUSTOMER, occurred_at=record.finished_at, source="agent:scheduler",
        properties={"job": record.job, "due_at": record.due_at, "started_at": record.started_at,
                    "finished_at": record.finished_at, "outcome": record.outcome, "trigger": record.trigger,
                    "summary": record.summary, "error": record.error},
    )


def last_runs(log_: PositionalReader) -> dict[str, RunRecord]:
    """The last run of every job in the log (by its due slot; a later log position wins a tie)."""
    out: dict[str, RunRecord] = {}
    for event in replay_all(log_, ["schedule_run"]):
        record = RunRecord.from_dict(orjson.loads(event.properties_json or "{}"))
        if record.job not in out or record.due_at >= out[record.job].due_at:
            out[record.job] = record
    return out


@runtime_checkable
class RunMemory(Protocol):
    """What the scheduler remembers of its runs, and how it records a new one."""

    def last_runs(self) -> dict[str, RunRecord]:
        """The last run of every job that ever ran."""
        ...

    def record(self, run: RunRecord) -> None:
        """Log the run's ``schedule_run`` event and remember it as its job's last run."""
        ...

    def close(self) -> None: ...


class LogRunMemory:
    """The memory of a positional log: its ``schedule_run`` events (the log stays the caller's to close)."""

    def __init__(self, log: EventLog) -> None:
        self.log = log

    def last_runs(self) -> dict[str, RunRecord]:
        return last_runs(self.log)  # type: ignore[arg-type]  # open_run_memory gives this class positional logs only

    def record(self, run: RunRecord) -> None:
        self.log.append([run_event(run)])

    def close(self) -> None:
        return None


class StoreRunMemory:
    """The memory of a log without positions: one record per job in the state store, beside the logged event.

    :param log: where the runs' events go (the audit trail).
    :param repository: the state store's records under :data:`MEMORY_CONSUMER` (closed with the memory).
    """

    def __init__(self, log: EventLog, repository: AgentStateRepository) -> None:
        self.log = log
        self.repository = repository

    def last_runs(self) -> dict[str, RunRecord]:
        return {job: RunRecord.from_dict(r) for job, r in self.repository.records().items()}

    def record(self, run: RunRecord) -> None:
        self.log.append([run_event(run)])
        with self.repository.store.transaction() as conn:
            previous = self.repository.load_in(conn, [run.job]).get(run.job)
            if previous is None or RunRecord.from_dict(previous).due_at <= run.due_at:
                self.repository.put_in(conn, {run.job: run.to_dict()})

    def close(self) -> None:
        self.repository.close()


def open_run_memory(log: EventLog, state_url: str | None = None) -> RunMemory:
    """The memory for ``log``: its own events when it keeps positions, else the state store at ``state_url``
    (default ``AME_STATE_STORE``)."""
    if isinstance(log, PositionalReader):
        return LogRunMemory(log)
    return StoreRunMemory(log, AgentStateRepository(open_state_store(state_url), MEMORY_CONSUMER))
