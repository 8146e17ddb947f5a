"""PostgreSQL benchmarks, each beside its SQLite baseline measured in the same run:

- the agents' end-to-end events/s (scoring + journey on Ray, 2 CPUs) with their state in PostgreSQL
  (``AME_STATE_STORE=postgresql://…``), beside the same run on the embedded SQLite state;
- the event log on PostgreSQL (``AME_EVENT_LOG=postgresql://…``): append and positional-read events/s, beside the
  SQLite log given the same batches in turn.

The server is ``AME_TEST_POSTGRES`` when set, else one started with scripts/start_postgres.sh and stopped at the end.
Each measurement gets its own schema, dropped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from rich.progress import Progress

from benchmarks.bench_agents import _throughput
from benchmarks.bench_log import BATCH, typed_batches
from benchmarks.common import BenchResult
from data.log import PositionalLog, open_log, positional
from data.postgres_db import scratch_schema
from data.settings import get_settings

AREA = "postgres"
READ_PAGE = 10_000
ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def _server(folder: Path) -> Iterator[str]:
    url = os.environ.get("AME_TEST_POSTGRES", "")
    if url:
        yield url
        return
    env = {**os.environ, "AME_POSTGRES_DIR": str(folder / "postgres")}
    started = subprocess.run([str(ROOT / "scripts" / "start_postgres.sh")], capture_output=True, text=True, env=env,
                             timeout=300, check=False)
    line = next((w for w in started.stdout.split() if w.startswith("AME_TEST_POSTGRES=")), "")
    if started.returncode != 0 or not line:
        raise RuntimeError(f"PostgreSQL could not start: {started.stderr.strip()[-500:]}")
    try:
        yield line.split("=", 1)[1]
    finally:
        subprocess.run([str(ROOT / "scripts" / "stop_postgres.sh")], env=env, capture_output=True, timeout=60, check=False)


@contextmanager
def _schema(server: str) -> Iterator[str]:
    """A URL of ``server`` whose connections work in a fresh schema, dropped after the block."""
    with scratch_schema(server, "bench") as url:
        yield url


@contextmanager
def _state_store(server: str) -> Iterator[str]:
    """``AME_STATE_STORE`` set to a fresh schema of ``server`` for the block (the shards' configs read it)."""
    with _schema(server) as url:
        before = os.environ.get("AME_STATE_STORE")
        os.environ["AME_STATE_STORE"] = url
        get_settings.cache_clear()
        try:
            yield url
        finally:
            if before is None:
                os.environ.pop("AME_STATE_STORE", None)
            else:
                os.environ["AME_STATE_STORE"] = before
            get_settings.cache_clear()


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _read_all(log: PositionalLog, page: int) -> int:
    """Read the whole log by position, ``page`` events at a time; how many were read."""
    after = read = 0
    while batch := log.read(after, page):
        read += len(batch)
        after = batch.next_after
    return read


def _log_rates(server: str, folder: Path, n: int) -> list[BenchResult]:
    """Append ``n`` events to a PostgreSQL log and a SQLite log (the same batches of 1,000, the two taking turns and
    the first alternating), then read each whole by position; events/s of each, opened as the engine opens them."""
    with _schema(server) as url:
        pg = positional(open_log(url), "the benchmark")
        lite = positional(open_log(f"sqlite:///{folder / 'events.db'}"), "the benchmark")
        seconds = {"pg": 0.0, "lite": 0.0}
        with Progress(transient=True) as progress:
            task = progress.add_task(f"append {n:,} events to each log", total=n)
            for k, batch in enumerate(typed_batches(n, seed=1)):
                for name in (("pg", "lite") if k % 2 == 0 else ("lite", "pg")):
                    log = pg if name == "pg" else lite
                    seconds[name] += _timed(lambda log=log, batch=batch: log.append(batch))  # type: ignore[misc]
                progress.advance(task, len(batch))
        counts = {}
        for name, log in (("lite", lite), ("pg", pg)):
            start = time.perf_counter()
            counts[name] = _read_all(log, READ_PAGE)
            seconds[f"{name}-read"] = time.perf_counter() - start
        pg.close()
        lite.close()
    if counts["pg"] != n or counts["lite"] != n:
        raise RuntimeError(f"the logs hold {counts['pg']:,} (PostgreSQL) and {counts['lite']:,} (SQLite) events, not {n:,}")
    append, lite_append = n / seconds["pg"], n / seconds["lite"]
    read, lite_read = n / seconds["pg-read"], n / seconds["lite-read"]
    return [
        BenchResult(AREA, f"event log on PostgreSQL: append, batches of {BATCH:,} ({n:,} events)", append, "events/s",
                    "the SQLite log, same batches in turn", lite_append, "", None, f"ratio {append / lite_append:.0%}"),
        BenchResult(AREA, f"event log on PostgreSQL: read by position, pages of {READ_PAGE:,}", read, "events/s",
                    "the SQLite log, same events", lite_read, "", None, f"ratio {read / lite_read:.0%}"),
    ]


def _agent_records(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("select count(*) from agent_state").fetchone()[0])


def run(quick: bool = False, only: str | None = None) -> list[BenchResult]:
    """The event log's rates, then the agents' throughput on a backlog, once with SQLite state and once with
    PostgreSQL state, in one run. :param only: ``"log"`` or ``"agents"`` measures just that part."""
    n = 50_000 if quick else 200_000
    results: list[BenchResult] = []
    if only != "agents":
        with tempfile.TemporaryDirectory(prefix="ame-bench-pglog-") as tmp, _server(Path(tmp)) as server:
            results += _log_rates(server, Path(tmp), n)
    if only != "log":
        results += _agents(n)
    return results


def _agents(n: int) -> list[BenchResult]:
    """The agents' end-to-end events/s with PostgreSQL state, beside SQLite state, in one run."""
    import ray  # lazy: Ray is heavy

    shards = 2
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory(prefix="ame-bench-postgres-") as tmp:
            folder = Path(tmp)
            with _server(folder) as server:
                (folder / "sqlite").mkdir()
                (folder / "postgres-state").mkdir()
                sqlite_rate, _, sqlite_outputs = _throughput(folder / "sqlite", n, shards)
                with _state_store(server) as url:
                    pg_rate, _, pg_outputs = _throughput(folder / "postgres-state", n, shards)
                    pg_records = _agent_records(url)
                if pg_records == 0 or list((folder / "postgres-state" / "state-throughput").rglob("*.db")):
                    raise RuntimeError("the PostgreSQL run did not keep its agent state in PostgreSQL")
    finally:
        if started_here:
            ray.shutdown()
    if pg_outputs != sqlite_outputs:
        raise RuntimeError(f"the runs disagree: {pg_outputs:,} output events on PostgreSQL, {sqlite_outputs:,} on SQLite")
    ratio = pg_rate / sqlite_rate
    return [
        BenchResult(AREA, f"scoring + journey end to end, PostgreSQL state, {n:,} events, {shards} shards each, 2 CPUs",
                    pg_rate, "events/s", "the same on SQLite state (same run)", sqlite_rate, ">= 50% of SQLite",
                    ratio >= 0.5, f"ratio {ratio:.0%}; {pg_outputs:,} output events on each; "
                    f"{pg_records:,} agent records in PostgreSQL"),
    ]


if __name__ == "__main__":
    import argparse

    from benchmarks.__main__ import print_results

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="50,000 events instead of 200,000.")
    parser.add_argument("--only", choices=("log", "agents"), help="Measure only this part.")
    args = parser.parse_args()
    print_results(run(quick=args.quick, only=args.only))
