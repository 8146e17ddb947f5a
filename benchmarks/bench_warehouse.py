"""Warehouse benchmark: raw → marts full build on DuckDB in events/s, then the incremental build after 1%
more data (one new day) as a fraction of the full build's time, both measured in the same run.

The raw rows are generated with SQL inside DuckDB (the loader is not what is measured here). Timings are
of ``WarehouseProject.build()`` with the SQLMesh project already loaded: plan (the first build; later builds skip
it when no model changed), run, every model, every audit.

A floor is measured on the same raw rows: a plain ``CREATE TABLE AS SELECT`` of staging_events_all's columns from
raw_events (no deduplication, no SQLMesh, no audits), what any materialized staging layer costs on this machine.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from benchmarks.common import BenchResult
from data.warehouse.build import WarehouseProject
from data.warehouse.duckdb_backend import DuckDBWarehouse

AREA = "warehouse"
DAYS = 100
CUSTOMERS_PER_MILLION = 20_000
FIRST_DAY = "2026-01-01"

# event type, cumulative share of the stream (mirrors data/synthetic.py's mix)
_MIX = (
    ("page_view", 0.34), ("email_sent", 0.52), ("email_open", 0.60), ("email_click", 0.63), ("sms_sent", 0.67),
    ("push_sent", 0.71), ("push_open", 0.72), ("ad_impression", 0.88), ("ad_click", 0.90),
    ("content_download", 0.92), ("purchase", 0.95), ("lead_created", 0.97), ("consent_changed", 0.98),
    ("decision_made", 0.99), ("score_updated", 1.0),
)


def _type_case(u: str) -> str:
    whens = " ".join(f"WHEN {u} < {share} THEN '{name}'" for name, share in _MIX[:-1])
    return f"CASE {whens} ELSE '{_MIX[-1][0]}' END"


def generate_raw(con: duckdb.DuckDBPyConnection, first: int, count: int, day0: int, days: int, customers: int) -> None:
    """Append ``count`` synthetic raw rows (ids ``first``..) spread over ``days`` days from day ``day0``."""
    con.execute(f"""
    INSERT INTO ame.raw_events
    WITH base AS (
      SELECT i, hash(i) AS h, {_type_case('(hash(i * 7 + 1) % 10000) / 10000.0')} AS event_type,
             (hash(i * 13 + 5) % {customers}) AS c
      FROM range({first}, {first + count}) AS t(i)
    )
    SELECT
      'e' || i AS event_id, event_type, 'cust-' || c AS customer_id,
      TIMESTAMP '{FIRST_DAY}' + INTERVAL ({day0} + (i - {first}) * {days} // {count}) DAY
        + to_microseconds(CAST(((i - {first}) * {days} % {count}) * 86400000000.0 / {count} AS BIGINT)) AS occurred_at,
      NULL::TIMESTAMP AS recorded_at, 'bench' AS source, 1 AS schema_version, NULL AS causation_id,
      CASE WHEN event_type = 'lead_created'
           THEN '{{"email":"user' || c || '@example.com","first_name":"F' || c || '","acquisition_source":"organic"}}'
           ELSE '{{}}' END::JSON AS properties,
      CASE WHEN event_type IN ('page_view', 'content_download', 'purchase', 'consent_changed', 'decision_made',
                               'score_updated', 'lead_created') THEN NULL ELSE 'cmp-' || (h % 12) END AS campaign_id,
      NULL AS creative_id,
      CASE WHEN event_type IN ('page_view', 'lead_created') THEN 'anon-' || c END AS anonymous_id,
      NULL AS session_id,
      CASE WHEN event_type = 'page_view' THEN '/p/' || (h % 500) END AS url,
      CASE WHEN event_type = 'purchase' THEN 5 + (h % 20000) / 100.0 END AS amount,
      CASE WHEN event_type = 'ad_impression' THEN 0.002 + (h % 100) / 10000.0
           WHEN event_type = 'ad_click' THEN 0.2 + (h % 100) / 100.0 END AS cost,
      CASE WHEN event_type LIKE 'email%' THEN 'email' WHEN event_type LIKE 'sms%' THEN 'sms'
           WHEN event_type LIKE 'push%' THEN 'push' WHEN event_type LIKE 'ad%' THEN 'ad' END AS channel,
      CASE WHEN event_type = 'score_updated' THEN 'lead' END AS score_model,
      CASE WHEN event_type = 'score_updated' THEN (h % 1000) / 1000.0 END AS score,
      i + 1 AS log_position, now()::TIMESTAMP AS loaded_at
    FROM base
    """)
    con.execute(
        "INSERT INTO ame.raw_loads SELECT 'bench', ?, ?, ?, MIN(occurred_at), MAX(occurred_at), now()::TIMESTAMP"
        " FROM ame.raw_events WHERE log_position > ?",
        [first, first + count, count, first],
    )


@dataclass(frozen=True, slots=True)
class Timings:
    full: float  # full build, s
    incremental: float  # incremental build after 1% more data, s
    incremental_rows: int  # rows staging_events_all processed in the incremental build
    full_models: float  # model and audit seconds of the full build
    incremental_models: float  # model and audit seconds of the incremental build
    floor: float  # plain CREATE TABLE AS SELECT of staging_events_all's columns from the same raw rows, s


def copy_staging_columns(project: WarehouseProject, table: str) -> float:
    """Seconds to ``CREATE TABLE table AS SELECT`` staging_events_all's columns from every raw row, on the build's
    connection (same DuckDB settings); the table is dropped afterwards."""
    model = project.context.get_model(f"{project.dataset}.staging_events_all")
    rendered = project.context.render(model, start=FIRST_DAY, end=FIRST_DAY, execution_time=FIRST_DAY)
    columns = ", ".join(e.sql(dialect="duckdb") for e in rendered.expressions)
    adapter = project.context.engine_adapter
    adapter.execute("CHECKPOINT")
    gc.collect()
    started = time.perf_counter()
    adapter.execute(f"CREATE TABLE {table} AS SELECT {columns} FROM {project.dataset}.raw_events")
    seconds = time.perf_counter() - started
    adapter.execute(f"DROP TABLE {table}")
    adapter.execute("CHECKPOINT")
    return seconds


def measure(events: int, workdir: Path) -> Timings:
    """The full build, the floor on the same raw rows, then the incremental build after 1% more data."""
    url = f"duckdb:///{workdir / 'bench.duckdb'}"
    customers = max(1_000, events * CUSTOMERS_PER_MILLION // 1_000_000)
    wh = DuckDBWarehouse(url)
    wh.ensure_raw()
    generate_raw(wh.con, 0, events, 0, DAYS, customers)
    wh.close()
    project = WarehouseProject(url, start=FIRST_DAY)
    gc.collect()
    started = time.perf_counter()
    first = project.build()
    full = time.perf_counter() - started
    full_models = sum(run.seconds for run in first.models.values())
    floor = copy_staging_columns(project, f"{project.dataset}.bench_floor_copy")
    extra = events // 100  # 1% more data: one new day
    project.context.engine_adapter.execute("CHECKPOINT")
    con = project.context.engine_adapter.connection
    generate_raw(con, events, extra, DAYS, 1, customers)
    gc.collect()
    started = time.perf_counter()
    report = project.build()
    incremental = time.perf_counter() - started
    incremental_models = sum(run.seconds for run in report.models.values())
    project.close()
    return Timings(full, incremental, report.models["staging_events_all"].rows or 0, full_models, incremental_models,
                   floor)


def run(quick: bool = False) -> list[BenchResult]:
    """Full build of 10,000,000 events (1,000,000 with ``quick``) and the incremental build after 1% more."""
    events = 1_000_000 if quick else 10_000_000
    with tempfile.TemporaryDirectory(prefix="ame-bench-wh-") as tmp:
        m = measure(events, Path(tmp))
    rate = events / m.full
    ratio = m.incremental / m.full
    return [
        BenchResult(AREA, f"full build raw → marts, {events:,} events", rate, "events/s",
                    "target", 1_000_000.0, ">= 1,000,000 events/s", rate >= 1_000_000,
                    f"{m.full:.2f} s on {os.cpu_count()} cores, of which models and audits {m.full_models:.2f} s"),
        BenchResult(AREA, f"incremental build, +1% ({events // 100:,} events, one day)", ratio * 100, "% of full",
                    "full build (s)", round(m.full, 2), "<= 5% of the full build", ratio <= 0.05,
                    f"{m.incremental:.2f} s (models and audits {m.incremental_models:.2f} s, the rest SQLMesh's state "
                    f"and scheduling); staging processed {m.incremental_rows:,} rows"),
        BenchResult(AREA, "floor: copy raw → one staging table", events / m.floor, "events/s",
                    "full build (events/s)", round(rate), "-", None,
                    f"{m.floor:.2f} s: CREATE TABLE AS SELECT of staging_events_all's columns from the same "
                    f"{events:,} raw rows, no dedup, no SQLMesh, no audits; what any materialized staging layer "
                    "costs on this machine"),
    ]


if __name__ == "__main__":
    import sys

    from rich.console import Console
    from rich.table import Table

    results = run(quick="--quick" in sys.argv)
    table = Table(title="warehouse")
    for column in ("name", "value", "unit", "baseline", "target", "met", "note"):
        table.add_column(column)
    for r in results:
        table.add_row(r.name, f"{r.value:,.1f}", r.unit, f"{r.baseline_name}: {r.baseline_value}", r.target,
                      str(r.met), r.note)
    Console().print(table)
