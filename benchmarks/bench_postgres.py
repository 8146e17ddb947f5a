"""PostgreSQL state benchmark: the agents' end-to-end events/s (scoring + journey on Ray, 2 CPUs) with their state
in PostgreSQL (``AME_STATE_STORE=postgresql://…``), beside the same run on the embedded SQLite state as the baseline.

The server is ``AME_TEST_POSTGRES`` when set, else one started with scripts/start_postgres.sh and stopped at the end.
Each measurement gets its own schema, dropped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg

from benchmarks.bench_agents import _throughput
from benchmarks.common import BenchResult
from data.settings import get_settings

AREA = "postgres"
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
def _state_store(server: str) -> Iterator[str]:
    """``AME_STATE_STORE`` set to a fresh schema of ``server`` for the block (the shards' configs read it)."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"create schema {schema}")
    url = f"{server}{'&' if '?' in server else '?'}options={quote(f'-csearch_path={schema}')}"
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
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"drop schema {schema} cascade")


def _agent_records(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("select count(*) from agent_state").fetchone()[0])


def run(quick: bool = False) -> list[BenchResult]:
    """Agents' throughput on a backlog, once with SQLite state and once with PostgreSQL state, in one run."""
    import ray  # lazy: Ray is heavy

    n = 50_000 if quick else 200_000
    shards = 2
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
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
