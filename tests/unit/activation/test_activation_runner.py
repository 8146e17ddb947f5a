"""The runner on an in-memory destination: idempotent, mirror deletes, partial batches, the JSON report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from data.activation.config import SyncConfig
from data.activation.destinations.base import BatchOutcome, Operation, Record, RunInfo
from data.activation.errors import DestinationError
from data.activation.runner import is_due, model_query, run_sync
from data.activation.state import SyncState
from data.activation.transport import FakeClock


class Memory:
    """A destination that holds rows in a dict; refuses keys in ``refuse``; may fail on close."""

    kind = "memory"

    def __init__(self, commit_per_batch: bool = True, refuse: set[str] | None = None,
                 fail_close: bool = False) -> None:
        self.commit_per_batch = commit_per_batch
        self.refuse = refuse or set()
        self.fail_close = fail_close
        self.held: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, list[str]]] = []

    def open(self, run: RunInfo) -> None:
        self.calls.append(("open", []))

    def send(self, operation: Operation, records: Sequence[Record]) -> BatchOutcome:
        self.calls.append((operation, [r.key for r in records]))
        outcome = BatchOutcome()
        for r in records:
            if r.key in self.refuse:
                outcome.failed[r.key] = "refused"
            elif operation == "upsert":
                self.held[r.key] = r.fields
            else:
                self.held.pop(r.key, None)
        return outcome

    def close(self, ok: bool) -> None:
        if self.fail_close:
            raise DestinationError("job failed")


class Rows:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.data = rows

    def rows(self, sync: SyncConfig) -> list[dict[str, Any]]:
        return self.data


def config(mode: str = "upsert", batch_size: int = 2) -> SyncConfig:
    return SyncConfig.model_validate({
        "name": "s", "model": "m", "identity_key": "id", "mapping": {"email": "email", "score": "score"},
        "mode": mode, "batch_size": batch_size, "destination": {"type": "webhook", "url": "http://127.0.0.1:9/x"},
    })


ROWS = [{"id": i, "email": f"{i}@x", "score": i} for i in range(5)]


@pytest.fixture
def state(tmp_path: Path) -> SyncState:
    return SyncState(tmp_path / "state.db")


def go(sync: SyncConfig, rows: list[dict[str, Any]], state: SyncState, dest: Memory, **kw: Any):
    return run_sync(sync, Rows(rows), state, clock=FakeClock(), destination=dest, **kw)


def test_second_run_sends_nothing_and_a_change_sends_one_row(state: SyncState) -> None:
    dest = Memory()
    first = go(config(), ROWS, state, dest)
    assert first.status == "ok" and first.upserts_sent == 5 and len(dest.held) == 5
    dest.calls.clear()
    second = go(config(), ROWS, state, dest)
    assert second.upserts_sent == 0 and second.unchanged == 5 and dest.calls == []
    changed = [*ROWS[:4], {"id": 4, "email": "4@x", "score": 99}]
    third = go(config(), changed, state, dest)
    assert dest.calls == [("open", []), ("upsert", ["4"])] and third.succeeded == 1
    assert dest.held["4"]["score"] == 99


def test_mirror_deletes_rows_that_left_the_model(state: SyncState) -> None:
    dest = Memory()
    go(config("mirror"), ROWS, state, dest)
    report = go(config("mirror"), ROWS[:2], state, dest)
    assert report.deletes_sent == 3 and sorted(dest.held) == ["0", "1"] and state.held("s") == 2
    assert go(config("mirror"), ROWS[:2], state, dest).deletes_sent == 0
    upsert_only = go(config("upsert"), [], state, dest)
    assert upsert_only.deletes_sent == 0 and state.held("s") == 2


def test_partial_batch_marks_only_failed_rows_unsynced(state: SyncState, tmp_path: Path) -> None:
    dest = Memory(refuse={"1", "3"})
    report = go(config(), ROWS, state, dest, report_dir=tmp_path / "reports")
    assert report.status == "partial" and report.succeeded == 3 and report.failed == 2
    assert sorted(state.rows("s")) == ["0", "2", "4"]
    saved = json.loads(next((tmp_path / "reports" / "s").glob("*.json")).read_text())
    assert saved["errors"] == [{"key": "1", "operation": "upsert", "error": "refused"},
                               {"key": "3", "operation": "upsert", "error": "refused"}]
    dest.refuse.clear()
    dest.calls.clear()
    again = go(config(), ROWS, state, dest)
    assert dest.calls[1:] == [("upsert", ["1", "3"])] and again.status == "ok"
    assert [r.status for r in state.last_runs("s")] == ["ok", "partial"]


def test_deferred_destination_commits_only_after_close(state: SyncState) -> None:
    report = go(config(), ROWS, state, Memory(commit_per_batch=False, fail_close=True))
    assert report.status == "failed" and state.held("s") == 0 and "run not completed" in report.errors[0]["error"]
    report = go(config(), ROWS, state, Memory(commit_per_batch=False))
    assert report.status == "ok" and state.held("s") == 5


def test_unreadable_model_is_a_failed_run_not_a_crash(state: SyncState) -> None:
    class Broken:
        def rows(self, sync: SyncConfig) -> list[dict[str, Any]]:
            raise KeyError("score")

    with pytest.raises(KeyError):
        run_sync(config(), Broken(), state, destination=Memory())
    assert state.last_runs("s")[0].status == "failed"


def test_query_reads_only_mapped_columns_with_the_filter() -> None:
    sync = SyncConfig.model_validate({"name": "q", "model": "marts_sales_lead_scores", "filter": "lead_tier = 'High'",
                                      "mapping": {"Email": "email", "id": "customer_id"},
                                      "destination": {"type": "csv", "path": "out"}})
    assert model_query(sync, "ame") == ("SELECT customer_id, email FROM ame.marts_sales_lead_scores"
                                        " WHERE lead_tier = 'High'")


def test_schedule_due() -> None:
    assert is_due("0 * * * *", None)
    hour = 1_700_002_800.0  # a whole hour (UTC)
    assert not is_due("0 * * * *", hour + 60, now=hour + 1800)
    assert is_due("0 * * * *", hour + 60, now=hour + 3600)
