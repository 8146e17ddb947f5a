"""Where the scheduler's memory and the CRM watermark live: a positional log is its own memory; a log without
positions (a sink that only takes events, as Pub/Sub) keeps them in the state store, and still gets every run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from agents.scheduler import Job, Scheduler
from agents.scheduler_memory import LogRunMemory, RunMemory, StoreRunMemory, open_run_memory
from data.crm.outcomes import LogWatermark, OutcomeWatermark, StoreWatermark, open_watermark
from data.log import open_log
from data.log.base import AppendResult, LogStats

T0 = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)


class SinkOnly:
    """A log that takes events and cannot be read back (what a pubsub:// log offers)."""

    url = "pubsub://p/t"

    def __init__(self) -> None:
        self.events: list = []

    def append(self, events) -> AppendResult:
        self.events += list(events)
        return AppendResult(len(self.events), 0, 0)

    def stats(self) -> LogStats:
        return LogStats(len(self.events), 0, 0)

    def close(self) -> None:
        return None


def test_the_memory_and_the_watermark_follow_the_log(log_url: str, state_url: str) -> None:
    log = open_log(log_url)
    assert isinstance(open_run_memory(log), LogRunMemory) and isinstance(open_watermark(log), LogWatermark)
    memory, mark = open_run_memory(SinkOnly(), state_url), open_watermark(SinkOnly(), state_url)  # type: ignore[arg-type]
    assert isinstance(memory, StoreRunMemory) and isinstance(memory, RunMemory)
    assert isinstance(mark, StoreWatermark) and isinstance(mark, OutcomeWatermark)
    memory.close()
    mark.close()
    log.close()


def test_a_scheduler_on_a_sink_remembers_in_the_store_and_catches_up_once(tmp_path: Path, monkeypatch) -> None:
    sink, calls, now = SinkOnly(), [], [T0]
    monkeypatch.setattr("agents.scheduler.open_log", lambda url: sink)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    job = Job("hourly", "0 * * * *", lambda: calls.append(1) or "done")
    first = Scheduler([job], "pubsub://p/t", lambda: now[0], state_url=state)
    now[0] = T0 + timedelta(minutes=31)
    (run,) = first.tick()
    first.close()
    now[0] = T0 + timedelta(hours=5)
    second = Scheduler([job], "pubsub://p/t", lambda: now[0], state_url=state)
    assert second.last["hourly"] == run
    (caught_up,) = second.tick()
    assert caught_up.trigger == "catch_up" and second.tick() == [] and len(calls) == 2
    assert [e.properties.job for e in sink.events] == ["hourly", "hourly"], "every run is still an event"
    second.close()


def test_the_store_watermark_never_moves_back(state_url: str) -> None:
    mark = open_watermark(SinkOnly(), state_url)  # type: ignore[arg-type]
    assert mark.since() is None
    mark.advance(T0)
    mark.advance(T0 - timedelta(days=1))
    assert mark.since() == T0
    mark.close()
