"""The PostgreSQL log holds the same events with the same meaning as the SQLite log: the same batches written to
both give equal rows in every column (envelope, properties JSON, UTC timestamps, shard hash), equal dead letters,
and equal events read back through :func:`data.log.open_log`; and the command line works on it end to end."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC
from pathlib import Path

import orjson
import psycopg
import pytest
from typer.testing import CliRunner

from ame.cli import app
from data.events import validate_event
from data.log import open_log, positional
from data.log.base import RejectedInput
from data.log.postgres import PostgresEventLog
from data.log.sqlite import SqliteEventLog
from data.sharding import BROADCAST_CUSTOMER
from data.synthetic import synthetic_dicts, synthetic_events

FROZEN_NS = 1_780_000_000_123_456_000


def _batches() -> list[list[object]]:
    """Three appends: new events, a batch holding stored and repeated ids, and a broadcast with a causation id."""
    events = synthetic_events(600, 40, seed=41)
    tick = validate_event({"event_id": "tick-9", "event_type": "decision_made", "customer_id": BROADCAST_CUSTOMER,
                           "occurred_at": "2026-03-01T12:00:00.000001+02:00", "causation_id": events[0].event_id,
                           "properties": {"agent": "scheduler", "action": "tick", "propensity": 1,
                                          "policy_name": "clock", "policy_version": "1"}})
    return [events[:400], [*events[350:], events[450], *events[390:410]], [tick]]


def _rows(conn: sqlite3.Connection | psycopg.Connection, table: str) -> tuple[list[str], list[tuple[object, ...]]]:
    cursor = conn.execute(f"select * from {table} order by 1")  # type: ignore[union-attr]
    return [d[0] for d in cursor.description], [tuple(r) for r in cursor.fetchall()]


def test_the_same_appends_give_the_same_rows(tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: FROZEN_NS)  # recorded_at and received_at: one instant for both
    lite, pg = SqliteEventLog(f"sqlite:///{tmp_path / 'events.db'}"), PostgresEventLog(postgres_url)
    for batch in _batches():
        assert lite.append(batch) == pg.append(batch)  # type: ignore[arg-type]
    rejected = [RejectedInput(raw=b"{oops", reason="line 3: not valid JSON", source="f.jsonl", line=3),
                RejectedInput(raw=b'{"a": 1}', reason="no event_type", source="api", event_id="e-1")]
    for letters in (rejected, rejected[:1]):
        assert lite.dead_letter(letters) == pg.dead_letter(letters)
    lite.mark_redriven(2, 601), pg.mark_redriven(2, 601)
    lite.close(), pg.close()
    with sqlite3.connect(tmp_path / "events.db") as a, psycopg.connect(postgres_url) as b:
        for table in ("events", "dead_letters"):
            assert _rows(a, table) == _rows(b, table), table
        assert len(_rows(b, "events")[1]) == 601


def test_events_read_back_the_same_and_in_utc(tmp_path: Path, postgres_url: str) -> None:
    lite, pg = open_log(f"sqlite:///{tmp_path / 'events.db'}"), open_log(postgres_url)
    for batch in _batches():
        lite.append(batch), pg.append(batch)  # type: ignore[arg-type]
    a, b = positional(lite, "test").read(0, 1_000).events, positional(pg, "test").read(0, 1_000).events
    assert [e._replace(recorded_at_us=0) for e in a] == [e._replace(recorded_at_us=0) for e in b]
    assert [e.to_event().model_copy(update={"recorded_at": None}) for e in a] == \
           [e.to_event().model_copy(update={"recorded_at": None}) for e in b]
    tick = b[-1].to_event()
    assert tick.occurred_at.tzinfo == UTC and tick.occurred_at.isoformat() == "2026-03-01T10:00:00.000001+00:00"
    lite.close(), pg.close()


def test_the_command_line_on_a_postgresql_log(tmp_path: Path, postgres_url: str) -> None:
    runner = CliRunner()
    lines = [orjson.dumps(e) for e in synthetic_dicts(50, 10, seed=42)] + [b"{not json"]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    appended = runner.invoke(app, ["events", "append", str(path), "--log", postgres_url])
    assert appended.exit_code == 1 and "1 of 51 lines were rejected" in appended.output, appended.output
    tail = runner.invoke(app, ["events", "tail", "-n", "5", "--json", "--log", postgres_url])
    assert tail.exit_code == 0, tail.output
    assert [orjson.loads(line)["event_id"] for line in tail.output.splitlines()] == [orjson.loads(line)["event_id"]
                                                                                     for line in lines[45:50]]
    letters = runner.invoke(app, ["events", "dlq", "list", "--log", postgres_url])
    assert letters.exit_code == 0 and "{not json" in letters.output and "line 51" in letters.output, letters.output
    again = runner.invoke(app, ["events", "append", str(path), "--log", postgres_url])
    assert again.exit_code == 1
    with open_log(postgres_url) as log:
        assert positional(log, "test").head() == 50 and log.dead_letters()[0].times_seen == 2
