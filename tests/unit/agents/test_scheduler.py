"""The scheduler with an injected clock: runs on its cron, catches a missed run up once after downtime, logs every
run with its outcome, and a failing job neither stops the others nor goes unrecorded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from agents.scheduler import Job, ScheduleError, Scheduler, last_runs
from data.log import open_log

T0 = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)


@dataclass
class FakeClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def _counting(name: str, cron: str, calls: list[str]) -> Job:
    def run() -> str:
        calls.append(name)
        return f"{name} done"
    return Job(name, cron, run)


def _runs(log_url: str) -> list[dict]:
    log = open_log(log_url)
    try:
        return [e.properties for e in log.read(0, 1000, ["schedule_run"]).events]
    finally:
        log.close()


def test_a_job_runs_on_its_slots_and_each_run_is_an_event(log_url: str) -> None:
    clock, calls = FakeClock(), []
    scheduler = Scheduler([_counting("hourly", "0 * * * *", calls)], log_url, clock)
    assert scheduler.tick() == [] and calls == [], "nothing is due at start: the first slot is after the start"
    assert scheduler.next_due("hourly") == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    clock.advance(minutes=31)
    (run,) = scheduler.tick()
    assert (run.outcome, run.trigger, run.due_at, run.summary) == ("ok", "cron", datetime(2026, 3, 2, 11, 0, tzinfo=UTC), "hourly done")
    assert scheduler.tick() == [], "a slot runs once"
    (event,) = _runs(log_url)
    assert event["job"] == "hourly" and event["outcome"] == "ok" and event["started_at"] == "2026-03-02T11:01:00+00:00"
    scheduler.close()


def test_missed_slots_are_caught_up_once_after_a_restart(log_url: str) -> None:
    clock, calls = FakeClock(), []
    first = Scheduler([_counting("hourly", "0 * * * *", calls)], log_url, clock)
    clock.advance(minutes=30)
    first.tick()
    first.close()  # down from 11:00 to 15:20: the slots 12:00 .. 15:00 pass
    clock.advance(hours=4, minutes=20)
    again = Scheduler([_counting("hourly", "0 * * * *", calls)], log_url, clock)
    assert again.last["hourly"].due_at == datetime(2026, 3, 2, 11, 0, tzinfo=UTC), "the memory is the log"
    (run,) = again.tick()
    assert (run.trigger, run.due_at) == ("catch_up", datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    assert again.tick() == [] and calls == ["hourly", "hourly"]
    clock.advance(minutes=40)
    (run,) = again.tick()
    assert (run.trigger, run.due_at) == ("cron", datetime(2026, 3, 2, 16, 0, tzinfo=UTC))
    again.close()


def test_a_failing_job_logs_its_error_and_the_others_run(log_url: str) -> None:
    clock, calls = FakeClock(), []

    def broken() -> str:
        raise ConnectionError("warehouse unreachable")

    jobs = [Job("broken", "*/15 * * * *", broken), _counting("fine", "*/15 * * * *", calls)]
    scheduler = Scheduler(jobs, log_url, clock)
    clock.advance(minutes=15)
    runs = {r.job: r for r in scheduler.tick()}
    assert runs["broken"].outcome == "failed" and runs["broken"].error == "ConnectionError: warehouse unreachable"
    assert runs["fine"].outcome == "ok" and calls == ["fine"]
    logged = {e["job"]: e for e in _runs(log_url)}
    assert logged["broken"]["error"] == "ConnectionError: warehouse unreachable" and logged["fine"]["outcome"] == "ok"
    scheduler.close()


def test_run_now_is_a_manual_run_and_bad_jobs_are_named(log_url: str) -> None:
    clock, calls = FakeClock(), []
    scheduler = Scheduler([_counting("daily", "0 3 * * *", calls)], log_url, clock)
    assert scheduler.run_now("daily").trigger == "manual" and calls == ["daily"]
    with pytest.raises(ScheduleError, match="no job named 'nightly'; known: daily"):
        scheduler.run_now("nightly")
    scheduler.close()
    with pytest.raises(ScheduleError, match="job 'x': cron '0 3 \\* \\*' has 4 fields"):
        Scheduler([Job("x", "0 3 * *", lambda: "")], log_url, clock)
    with pytest.raises(ScheduleError, match="repeated: a"):
        Scheduler([Job("a", "0 3 * * *", lambda: ""), Job("a", "0 4 * * *", lambda: "")], log_url, clock)
    log = open_log(log_url)
    assert last_runs(log)["daily"].trigger == "manual"
    log.close()
