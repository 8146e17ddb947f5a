"""Event log benchmarks: append throughput (batches of 1,000) and full replay into the profile projection,
each beside the plain-sqlite3 figure of the same rows measured in the same run."""

from __future__ import annotations

import gc
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from rich.progress import Progress

from benchmarks.common import BenchResult
from data.events import EventBase, validate_event
from data.log import EventLog, open_log
from data.log.ingest import ingest_lines
from data.log.sqlite import SCHEMA, connect, event_row, insert_sql
from data.projections.base import Projector
from data.projections.profile import ProfileProjection
from data.projections.store import SqliteStateStore
from data.synthetic import synthetic_dicts

BATCH = 1_000
CUSTOMERS = 100_000
INSERT = insert_sql()


def typed_batches(n: int, seed: int) -> Iterator[list[EventBase]]:
    """``n`` synthetic events as typed batches of :data:`BATCH` (the PostgreSQL log's benchmark writes them too)."""
    stream = synthetic_dicts(n, CUSTOMERS, seed)
    while chunk := list(islice(stream, BATCH)):
        yield [validate_event(d) for d in chunk]


def _fresh(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _executemany(path: Path, rows: list[tuple], schema: str) -> float:
    """The baseline: plain sqlite3 executemany of prepared rows, one transaction per batch, nothing else."""
    _fresh(path)
    conn = connect(path, 60_000)
    for statement in filter(str.strip, schema.split(";")):
        conn.execute(statement)
    start = time.perf_counter()
    for i in range(0, len(rows), BATCH):
        conn.execute("begin immediate")
        conn.executemany(INSERT, rows[i : i + BATCH])
        conn.execute("commit")
    seconds = time.perf_counter() - start
    conn.close()
    return len(rows) / seconds


def _append(log: EventLog, work: Path, n: int) -> list[BenchResult]:
    """Append ``n`` typed events in batches beside the plain-sqlite3 baseline, then the extra baselines."""
    baseline = connect(work / "baseline.db", 60_000)
    for statement in filter(str.strip, SCHEMA.split(";")):
        baseline.execute(statement)
    append_seconds = baseline_seconds = 0.0
    with Progress(transient=True) as progress:
        task = progress.add_task(f"append {n:,} events", total=n)
        for k, batch in enumerate(typed_batches(n, seed=1)):
            # ours and the baseline take turns on each batch, with the same untimed work around them, and the
            # one that goes first alternates (whichever runs first finds colder caches)
            batch_rows = [event_row(e, 0) for e in batch]
            for ours_now in ((True, False) if k % 2 == 0 else (False, True)):
                start = time.perf_counter()
                if ours_now:
                    log.append(batch)
                    append_seconds += time.perf_counter() - start
                else:
                    baseline.execute("begin immediate")
                    baseline.executemany(INSERT, batch_rows)
                    baseline.execute("commit")
                    baseline_seconds += time.perf_counter() - start
            progress.advance(task, len(batch))
    baseline.close()
    append_rate, same_schema = n / append_seconds, n / baseline_seconds
    # built after the timed loop: millions of live tuples during it would make garbage-collector passes the cost
    rows = [event_row(e, 0) for batch in typed_batches(200_000, seed=1) for e in batch]

    bare = _executemany(work / "bare.db", rows, SCHEMA.split("create unique index")[0])
    random_ids = [(str(uuid.uuid4()), *r[1:]) for r in rows]
    random_rate = _executemany(work / "random.db", random_ids, SCHEMA)

    lines = [validate_event(d).model_dump_json().encode() for d in islice(synthetic_dicts(50_000, CUSTOMERS, 9), 50_000)]
    ingest_log = open_log(f"sqlite:///{work / 'ingest.db'}")
    start = time.perf_counter()
    ingest_lines(ingest_log, lines, "bench", BATCH)
    ingest_rate = len(lines) / (time.perf_counter() - start)
    ingest_log.close()
    del rows, random_ids, lines
    gc.collect()

    return [
        BenchResult("log", f"append, typed events, batches of {BATCH:,} ({n:,} events)", append_rate, "events/s",
                    "sqlite3 executemany of the same rows, same schema", same_schema,
                    ">= 100,000/s and >= 50% of baseline", append_rate >= 100_000 and append_rate >= 0.5 * same_schema,
                    f"{append_rate / same_schema:.0%} of baseline"),
        BenchResult("log", "executemany into a table without the event_id index (200k)", bare, "events/s",
                    "(the bare table: no idempotency)", None, "", None, f"ours = {append_rate / bare:.0%} of it"),
        BenchResult("log", "executemany with random UUIDv4 ids (200k)", random_rate, "events/s",
                    "time-ordered ids (ours)", same_schema, "", None, "why producers should send UUIDv7 ids"),
        BenchResult("log", "ingest JSON lines (parse + validate + append)", ingest_rate, "events/s",
                    "typed append", append_rate, "", None, "pydantic validation is the cost"),
    ]


def _fill(log: EventLog, n: int) -> None:
    """The same events the append benchmark writes, untimed (for a replay measured on its own)."""
    with Progress(transient=True) as progress:
        task = progress.add_task(f"write {n:,} events to replay", total=n)
        for batch in typed_batches(n, seed=1):
            log.append(batch)
            progress.advance(task, len(batch))
    gc.collect()


def _replay(log: EventLog, work: Path) -> BenchResult:
    """A full rebuild of the profile projection from the log, beside a bare sqlite3 read of the same columns."""
    store = SqliteStateStore(f"sqlite:///{work / 'state.db'}")
    projector = Projector(log, store, ProfileProjection(), batch_size=50_000)
    start = time.perf_counter()
    replayed = projector.rebuild()
    replay_rate = replayed / (time.perf_counter() - start)
    store.close()
    conn = sqlite3.connect(work / "events.db")
    start = time.perf_counter()
    read = sum(1 for _ in conn.execute("select position, event_type, customer_id, occurred_at_us, properties from events"))
    raw_read = read / (time.perf_counter() - start)
    conn.close()
    return BenchResult("log", f"full replay into the profile projection ({replayed:,} events)", replay_rate, "events/s",
                       "sqlite3 read of the same columns", raw_read, ">= 200,000/s", replay_rate >= 200_000)


def run(quick: bool = False, only: str | None = None) -> list[BenchResult]:
    """:param only: ``"append"`` or ``"replay"`` measures just that part (a replay alone writes its log untimed)."""
    n = 200_000 if quick else 1_000_000
    work = Path(tempfile.mkdtemp(prefix="ame-bench-log-"))
    log = open_log(f"sqlite:///{work / 'events.db'}")  # as the engine opens it: PII encrypted on append
    results: list[BenchResult] = []
    if only == "replay":
        _fill(log, n)
    else:
        results += _append(log, work, n)
    if only != "append":
        results.append(_replay(log, work))
    log.close()
    shutil.rmtree(work)
    return results


if __name__ == "__main__":
    import argparse

    from benchmarks.__main__ import print_results

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200,000 events instead of 1,000,000.")
    parser.add_argument("--only", choices=("append", "replay"), help="Measure only this part.")
    args = parser.parse_args()
    print_results(run(quick=args.quick, only=args.only))
