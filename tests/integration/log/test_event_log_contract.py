"""The event log contract, run against every backend: the embedded SQLite log, PostgreSQL and Pub/Sub (on the
emulator). Each test names the capabilities it needs (:func:`claiming`) and runs on every backend whose class
claims them all, so a backend is tested on exactly what it says it does."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from google.cloud import pubsub_v1

from data.events import EventValidationError, validate_event
from data.log import (
    DeadLetters,
    EventLog,
    EventSink,
    PositionalReader,
    PositionsUnsupported,
    UnsupportedBackend,
    capabilities,
    open_log,
    positional,
)
from data.log.base import RejectedInput
from data.log.ingest import ingest_lines, redrive
from data.log.postgres import PostgresEventLog
from data.log.pubsub import PubSubEventLog
from data.log.pubsub_admin import ensure_topic, parse_pubsub_url
from data.log.sqlite import EventRow, SqliteEventLog, event_row, event_rows, sqlite_path
from data.sharding import BROADCAST_CUSTOMER, Shard, customer_hash, shard_of
from data.synthetic import synthetic_dicts, synthetic_events

BACKENDS: dict[str, type] = {"sqlite": SqliteEventLog, "postgresql": PostgresEventLog, "pubsub": PubSubEventLog}
_MARKS = {"pubsub": [pytest.mark.emulator]}


def claiming(*needed: type) -> pytest.MarkDecorator:
    """Run the test's ``log`` on every backend that claims all of ``needed``."""
    names = [name for name, cls in BACKENDS.items() if all(issubclass(cls, c) for c in needed)]
    return pytest.mark.parametrize("log", [pytest.param(n, id=n, marks=_MARKS.get(n, ())) for n in names], indirect=True)


def _url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh log of ``backend``: a file, a schema of its own, or a new topic."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    if backend == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    request.getfixturevalue("pubsub_emulator")
    url = f"pubsub://ame-test/log-contract-{uuid.uuid4().hex[:10]}"
    publisher = pubsub_v1.PublisherClient()
    ensure_topic(publisher, parse_pubsub_url(url).path)
    publisher.stop()
    return url


@pytest.fixture
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventLog]:
    opened = open_log(_url(request.param, request, tmp_path))
    yield opened
    opened.close()


@pytest.mark.parametrize("log", [pytest.param(n, id=n, marks=_MARKS.get(n, ())) for n in BACKENDS], indirect=True)
def test_open_log_claims_what_its_backend_claims(log: EventLog) -> None:
    backend = BACKENDS[log.url.split("://")[0]]
    assert capabilities(log) == capabilities(backend) and capabilities(log)[0] == "EventSink"
    if isinstance(log, PositionalReader):
        assert positional(log, "a test") is log
    else:
        with pytest.raises(PositionsUnsupported, match=rf"ame events tail reads .* {log.url} is not a positional"):
            positional(log, "ame events tail")


@claiming(EventSink)
def test_append_takes_the_whole_batch(log: EventLog) -> None:
    result = log.append(synthetic_events(120, 10, seed=21))
    assert (result.appended, result.duplicates) == (120, 0)
    assert log.append([]).appended == 0
    with pytest.raises(EventValidationError, match="properties"):
        log.append([dict(next(iter(synthetic_dicts(1, 1, seed=22))), properties={"nope": 1})])


@claiming(EventSink, PositionalReader)
def test_append_is_idempotent_on_event_id(log: EventLog) -> None:
    events = synthetic_events(300, 20, seed=1)
    first = log.append(events)
    assert (first.appended, first.duplicates, first.last_position) == (300, 0, 300)
    again = log.append(events[100:] + synthetic_events(5, 20, seed=2))
    assert (again.appended, again.duplicates) == (5, 200)
    assert log.head() == 305


@claiming(EventSink, PositionalReader)
def test_reads_by_position_in_order(log: EventLog) -> None:
    events = synthetic_events(250, 20, seed=3)
    log.append(events)
    batch = log.read(after=100, limit=50)
    assert [e.position for e in batch.events] == list(range(101, 151))
    assert batch.next_after == 150
    assert [e.event_id for e in batch.events] == [e.event_id for e in events[100:150]]
    assert batch.events[0].to_event() == events[100].model_copy(update={"recorded_at": batch.events[0].to_event().recorded_at})
    assert log.read(after=250).events == [] and log.read(after=250).next_after == 250


@claiming(PositionalReader)
def test_filtered_read_skips_other_types_and_moves_on(log: EventLog) -> None:
    log.append(synthetic_events(2_000, 50, seed=4))
    purchases, after = [], 0
    while True:
        batch = log.read(after, 7, ["purchase", "unsubscribe"])
        if batch.next_after == after:
            break
        assert all(e.event_type in ("purchase", "unsubscribe") for e in batch.events)
        purchases += batch.events
        after = batch.next_after
    everything = log.read(0, 10_000).events
    assert [e.position for e in purchases] == [e.position for e in everything if e.event_type in ("purchase", "unsubscribe")]
    assert after == 2_000


@claiming(PositionalReader)
def test_replay_returns_only_the_columns_a_fold_needs(log: EventLog) -> None:
    log.append(synthetic_events(400, 20, seed=5))
    full = log.read(0, 400).events
    lean = log.replay(0, 400, properties_of=["purchase"]).events
    assert [(e.position, e.event_type, e.customer_id, e.occurred_at_us) for e in full] == [tuple(e[:4]) for e in lean]
    for f, r in zip(full, lean, strict=True):
        assert r.properties_json == (f.properties_json if f.event_type == "purchase" else None)


@claiming(EventSink, PositionalReader)
def test_append_of_an_invalid_dict_writes_nothing(log: EventLog) -> None:
    good = list(synthetic_dicts(3, 5, seed=6))
    bad = dict(good[1], properties={"nope": 1})
    with pytest.raises(EventValidationError, match="properties"):
        log.append([good[0], bad, good[2]])
    assert log.head() == 0


@claiming(DeadLetters)
def test_dead_letters_are_kept_once_and_counted(log: EventLog) -> None:
    rejected = [RejectedInput(raw=b"{oops", reason="line 3: not valid JSON", source="f.jsonl", line=3)]
    assert log.dead_letter(rejected) == 1
    assert log.dead_letter(rejected) == 0
    [letter] = log.dead_letters()
    assert (letter.line, letter.raw, letter.times_seen, letter.status) == (3, b"{oops", 2, "pending")
    assert log.dead_letter_counts() == (1, 0)
    log.mark_redriven(letter.id, None)
    assert log.dead_letter_counts() == (0, 1) and log.dead_letters() == []


@claiming(DeadLetters, PositionalReader)
def test_redrive_after_a_fix(log: EventLog) -> None:
    good = next(iter(synthetic_dicts(1, 1, seed=7)))
    bad = orjson.dumps(dict(good, properties={**good["properties"], "unexpected": True}))
    report = ingest_lines(log, [bad], source="upstream.jsonl")
    assert report.appended == 0 and len(report.rejected) == 1
    [letter] = log.dead_letters()
    [still_bad] = redrive(log)
    assert not still_bad.ok and log.dead_letters()[0].status == "pending"
    [fixed] = redrive(log, [letter.id], replacement=orjson.dumps(good))
    assert fixed.ok and log.head() == 1
    assert log.dead_letters() == []
    [done] = log.dead_letters(status="redriven")
    assert done.position == 1


@claiming(PositionalReader)
def test_stats(log: EventLog) -> None:
    log.append(synthetic_events(500, 20, seed=8))
    stats = log.stats()
    assert stats.events == 500 and stats.last_position == 500 and sum(stats.by_type.values()) == 500


def test_urls() -> None:
    assert sqlite_path("sqlite:///.ame/events.db") == Path(".ame/events.db")
    assert sqlite_path("sqlite:////tmp/x.db") == Path("/tmp/x.db")
    with pytest.raises(UnsupportedBackend, match="expected sqlite:///path, postgresql://user@host/database or pubsub"):
        open_log("kafka://broker/topic")


def _append_many(url: str, seed: int, n: int, start: mp.synchronize.Barrier) -> None:
    log = open_log(url)
    events = synthetic_events(n, 1_000, seed=seed, source=f"writer-{seed}")
    start.wait()
    for i in range(0, n, 1_000):
        log.append(events[i : i + 1_000])
    log.close()


@claiming(PositionalReader)
def test_two_processes_append_at_once(log: EventLog) -> None:
    n = 10_000
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    writers = [ctx.Process(target=_append_many, args=(log.url, seed, n, barrier)) for seed in (1, 2)]
    for w in writers:
        w.start()
    reader, seen, after = positional(log, "the test"), [], 0
    while any(w.is_alive() for w in writers) or after < reader.head():  # a consumer following the writers
        batch = reader.read(after, 5_000)
        seen += [e.position for e in batch.events]
        after = batch.next_after
        if not batch.events:
            reader.wait(after, 0.1)
    for w in writers:
        w.join(timeout=240)
    assert [w.exitcode for w in writers] == [0, 0]
    assert log.stats().events == 2 * n
    events = reader.read(0, 3 * n).events
    assert len({e.event_id for e in events}) == 2 * n
    assert [e.position for e in events] == list(range(1, 2 * n + 1))  # no gaps, no reuse
    assert seen == list(range(1, 2 * n + 1))  # positions became visible in order: the follower missed none


@claiming(PositionalReader)
def test_a_waiting_reader_wakes_on_an_append(log: EventLog) -> None:
    reader = positional(log, "the test")
    reader.append(synthetic_events(10, 5, seed=31))
    assert reader.wait(5, timeout_s=5.0) == 10  # already past: no wait
    started = time.monotonic()
    assert reader.wait(10, timeout_s=0.2) == 10 and time.monotonic() - started >= 0.2  # nothing new: the timeout
    later = threading.Timer(0.3, reader.append, [synthetic_events(3, 5, seed=32)])
    later.start()
    started = time.monotonic()
    assert reader.wait(10, timeout_s=10.0) == 13
    assert time.monotonic() - started < 2.0
    later.join()


@claiming(PositionalReader)
def test_a_shard_reads_only_its_customers_and_broadcasts(log: EventLog) -> None:
    events = synthetic_events(3_000, 200, seed=13)
    tick = validate_event({"event_id": "tick-1", "event_type": "decision_made", "customer_id": BROADCAST_CUSTOMER,
                           "occurred_at": "2026-01-02T00:00:00Z", "properties": {"agent": "scheduler", "action": "tick",
                           "propensity": 1, "policy_name": "clock", "policy_version": "1"}})
    log.append([*events[:1_500], tick, *events[1_500:]])
    seen: list[int] = []
    for index in range(3):
        shard, after = Shard(index, 3), 0
        while True:
            batch = log.read(after, 50, shard=shard)
            if batch.next_after == after:
                break
            assert all(e.customer_id == BROADCAST_CUSTOMER or shard_of(e.customer_id, 3) == index for e in batch.events)
            seen += [e.position for e in batch.events if e.customer_id != BROADCAST_CUSTOMER]
            after = batch.next_after
        ticks = [e for e in log.read(0, 10_000, shard=shard).events if e.customer_id == BROADCAST_CUSTOMER]
        assert len(ticks) == 1
    assert sorted(seen) == [p for p in range(1, 3_002) if p != 1_501]
    typed = log.read(0, 10_000, ["purchase"], shard=Shard(1, 3)).events
    assert typed and all(e.event_type == "purchase" and shard_of(e.customer_id, 3) == 1 for e in typed)
    with pytest.raises(ValueError, match=r"outside 0\.\.2"):
        log.read(0, 10, shard=Shard(3, 3))


def test_an_older_log_gains_the_customer_hash(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("create table events (position integer primary key, event_id text not null, event_type text not null,"
                 " customer_id text not null, occurred_at_us integer not null, recorded_at_us integer not null,"
                 " source text not null, schema_version integer not null, causation_id text, properties text not null)")
    conn.execute("insert into events values (1, 'e1', 'page_view', 'cust-9', 0, 0, 'x', 1, null, '{\"url\": \"/\"}')")
    conn.commit()
    conn.close()
    log = open_log(f"sqlite:///{path}")
    assert sqlite3.connect(path).execute("select customer_hash from events").fetchone()[0] == customer_hash("cust-9")
    log.append(synthetic_events(10, 5, seed=14))
    assert log.head() == 11


def test_the_batch_row_builder_equals_the_single_one() -> None:
    events = synthetic_events(500, 50, seed=15)
    rows = event_rows(events, 7)
    assert rows == [event_row(e, 7) for e in events] and all(type(r) is EventRow for r in rows)
    assert rows[3].event_id == events[3].event_id and rows[3].recorded_at_us == 7
