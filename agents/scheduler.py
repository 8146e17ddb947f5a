"""The scheduler: runs the engine's periodic jobs on cron strings, inside the cluster, and logs every run.

Each job has a name, a cron string (5 fields, UTC) and a function that returns a one-line summary or raises.
Every run becomes a ``schedule_run`` event (job, due slot, start, finish, outcome, error). On start the scheduler
reads the last run of each job back from its memory (:mod:`agents.scheduler_memory`: those events on a positional
log, records in the state store on a Pub/Sub log), so a restarted scheduler, on any node, knows what ran.
A job whose slots passed while the scheduler was down runs **once** for the latest missed slot (not once per
slot); a job that never ran starts at its first slot after the scheduler started. A failing job logs
its error and the others still run.

The plain class :class:`Scheduler` takes its clock as an argument (tests drive it with a fake clock and call
:meth:`Scheduler.tick`); :func:`scheduler_actor_class` wraps :class:`SchedulerService`, which builds the jobs and
ticks in a background thread, as a supervised Ray actor (``max_restarts``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from croniter import croniter

from agents.scheduler_memory import RunMemory, RunRecord, last_runs, open_run_memory, run_event

__all__ = ["Job", "JobStatus", "RunRecord", "ScheduleError", "Scheduler", "SchedulerService", "last_runs", "run_event"]
from data.activation.config import validate_cron
from data.log import open_log

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Trigger = Literal["cron", "catch_up", "manual"]
SCHEDULER_ACTOR = "scheduler-0of1"
"""The actor's name: the supervisor's naming of shards, so ``ame agents status`` and ``down`` find it."""


class ScheduleError(ValueError):
    """A job is misconfigured or unknown; the message names it."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Job:
    """A periodic job. ``run`` returns a one-line summary of what it did, or raises."""

    name: str
    cron: str
    run: Callable[[], str]
    description: str = ""


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A job's line in ``ame schedule list``."""

    name: str
    cron: str
    description: str
    last: RunRecord | None
    next_due: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cron": self.cron, "description": self.description,
                "last": self.last.to_dict() if self.last else None, "next_due": self.next_due.isoformat()}


def latest_slot(cron: str, now: datetime) -> datetime:
    """The cron's latest slot at or before ``now``."""
    return croniter(cron, now + timedelta(seconds=1)).get_prev(datetime)


class Scheduler:
    """Runs due jobs when :meth:`tick` is called (see the module docstring).

    :param jobs: the jobs (unique names, valid cron strings).
    :param log_url: the event log the runs are appended to (and read back from, when it keeps positions).
    :param clock: the current UTC time (a fake clock in tests).
    :param state_url: where the memory lives on a log without positions (default ``AME_STATE_STORE``).
    """

    def __init__(self, jobs: Sequence[Job], log_url: str, clock: Clock = utc_now, state_url: str | None = None) -> None:
        names = [j.name for j in jobs]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ScheduleError(f"job names must be unique; repeated: {', '.join(duplicated)}")
        for job in jobs:
            try:
                validate_cron(job.cron)
            except ValueError as error:
                raise ScheduleError(f"job {job.name!r}: {error}") from None
        self.jobs = {j.name: j for j in jobs}
        self.clock = clock
        self.log = open_log(log_url)
        self.memory: RunMemory = open_run_memory(self.log, state_url)
        self.started_at = clock()
        self.last = self.memory.last_runs()

    def next_due(self, name: str) -> datetime:
        """The first slot after the job's last run (after the scheduler's start when it never ran)."""
        job = self.jobs[name]
        last = self.last.get(name)
        return croniter(job.cron, last.due_at if last else self.started_at).get_next(datetime)

    def status(self) -> list[JobStatus]:
        return [JobStatus(j.name, j.cron, j.description, self.last.get(j.name), self.next_due(j.name)) for j in self.jobs.values()]

    def due(self) -> list[tuple[Job, datetime, Trigger]]:
        """The jobs due now, each with the slot it serves: the latest passed slot, once however many passed."""
        now = self.clock()
        out: list[tuple[Job, datetime, Trigger]] = []
        for job in self.jobs.values():
            if self.next_due(job.name) <= now:
                slot = latest_slot(job.cron, now)
                out.append((job, slot, "catch_up" if slot < self.started_at else "cron"))
        return out

    def tick(self) -> list[RunRecord]:
        """Run every due job, one after the other; a failure is logged and does not stop the others."""
        return [self._run(job, slot, trigger) for job, slot, trigger in self.due()]

    def run_now(self, name: str) -> RunRecord:
        """Run one job now (``ame schedule run``), whether due or not."""
        if name not in self.jobs:
            raise ScheduleError(f"no job named {name!r}; known: {', '.join(sorted(self.jobs))}")
        return self._run(self.jobs[name], self.clock(), "manual")

    def _run(self, job: Job, due_at: datetime, trigger: Trigger) -> RunRecord:
        started = self.clock()
        summary = error = None
        try:
            summary = job.run()
            outcome = "ok"
        except Exception as failure:  # noqa: BLE001 - a failing job is logged with its error; the others run on
            log.warning("scheduled job %s failed: %s", job.name, failure)
            error, outcome = f"{type(failure).__name__}: {failure}"[:2048], "failed"
        record = RunRecord(job.name, due_at, started, self.clock(), outcome, trigger,
                           summary[:2048] if summary else None, error)
        self.memory.record(record)
        self.last[job.name] = record
        return record

    def close(self) -> None:
        self.memory.close()
        self.log.close()


class SchedulerService:
    """The scheduler as a long-running service: builds its jobs, ticks every ``interval_s`` in a thread.

    :param build_jobs: makes the jobs in the process that runs them (a Ray actor pickles only this function).
    :param log_url: the event log.
    :param interval_s: how often it checks for due jobs.
    :param start: start ticking now.
    """

    def __init__(self, build_jobs: Callable[[], Sequence[Job]], log_url: str, interval_s: float = 30.0,
                 start: bool = True) -> None:
        self.scheduler = Scheduler(build_jobs(), log_url)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one run at a time: the loop and `ame schedule run`
        self._thread: threading.Thread | None = None
        self.errors = 0
        self.last_error: str | None = None
        if start:
            self.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                with self._lock:
                    self.scheduler.tick()
            except Exception as error:
                self.errors += 1
                self.last_error = str(error)
                log.exception("scheduler tick failed")

    def start(self) -> bool:
        if self._thread is not None and self._thread.is_alive():
            return False
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> bool:
        self._stop.set()
        return True

    def jobs(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.scheduler.status()]

    def run(self, name: str) -> dict[str, Any]:
        with self._lock:
            return self.scheduler.run_now(name).to_dict()

    def status(self) -> dict[str, Any]:
        """The shape of a shard's status, so ``ame agents status`` lists the scheduler beside the agents."""
        last = [s.last for s in self.scheduler.status() if s.last]
        running = self._thread is not None and self._thread.is_alive() and not self._stop.is_set()
        return {"agent": "scheduler", "shard": 0, "shards": 1, "position": 0, "head": 0, "lag": 0, "events": len(last),
                "events_per_s": 0.0, "appended": len(last), "duplicates": 0, "restarts": 0,
                "errors": self.errors + sum(r.outcome == "failed" for r in last), "running": running,
                "last_error": self.last_error}

    def ping(self) -> bool:
        return True


def scheduler_actor_class(max_restarts: int = -1) -> Any:
    """:class:`SchedulerService` as a Ray actor, restarted on failure (it re-reads its memory from the log)."""
    import ray  # lazy: Ray is heavy

    return ray.remote(max_restarts=max_restarts, max_task_retries=-1, num_cpus=0)(SchedulerService)
