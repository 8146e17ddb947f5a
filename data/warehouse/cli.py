"""``ame warehouse``: load events into raw, build staging, intermediate and marts, query, and print the docs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from data.log import LogError
from data.log.base import from_micros
from data.settings import get_settings
from data.warehouse import open_warehouse
from data.warehouse.base import LoadResult, WarehouseError
from data.warehouse.build import WarehouseProject
from data.warehouse.docs import warehouse_docs_markdown
from data.warehouse.loader import load_log

console = Console()
err = Console(stderr=True)

warehouse_app = typer.Typer(help="The warehouse: raw events, staging, intermediate and marts (SQLMesh).",
                            no_args_is_help=True)

WarehouseOption = Annotated[
    str | None, typer.Option("--warehouse", help="Warehouse URL (default: AME_WAREHOUSE, else the DuckDB file).")
]
LogOption = Annotated[str | None, typer.Option("--log", help="Event log URL (default: AME_EVENT_LOG).")]


def _url(url: str | None) -> str:
    return url or get_settings().warehouse_url()


def _fail(error: Exception) -> typer.Exit:
    err.print(f"[red]error:[/] {error}")
    return typer.Exit(1)


@warehouse_app.command("load")
def load_command(log: LogOption = None, warehouse: WarehouseOption = None,
                 batch_size: Annotated[int, typer.Option(min=1, help="Events per transaction.")] = 20_000) -> None:
    """Copy new events from the log into raw_events (loading twice adds nothing); a Pub/Sub log's events come
    from the table its BigQuery subscription fills."""
    log_url = log or get_settings().event_log_url()
    started = time.perf_counter()
    try:
        store = open_warehouse(_url(warehouse))
        try:
            result = load_log(log_url, store, batch_size=batch_size)
        finally:
            store.close()
    except (LogError, WarehouseError, ValueError) as error:
        raise _fail(error) from None
    console.print(f"loaded [bold]{result.rows:,}[/] events ({_span(log_url, result)}) in "
                  f"{time.perf_counter() - started:.2f} s")


def _span(log_url: str, result: LoadResult) -> str:
    """What a load covered: log positions, or a Pub/Sub log's publish times."""
    if not log_url.startswith("pubsub://"):
        return f"log positions {result.from_position:,} → {result.to_position:,}"

    def at(us: int) -> str:
        return from_micros(us).isoformat(timespec="seconds") if us else "the start"

    return f"published {at(result.from_position)} → {at(result.to_position)}"


@warehouse_app.command("build")
def build_command(warehouse: WarehouseOption = None) -> None:
    """Apply model changes and compute the missing days of every model, with audits."""
    started = time.perf_counter()
    try:
        project = WarehouseProject(_url(warehouse))
        report = project.build()
    except WarehouseError as error:
        raise _fail(error) from None
    table = Table(title=f"built through {report.execution_time[:10]} (exclusive)")
    table.add_column("model", no_wrap=True)
    table.add_column("kind")
    table.add_column("days computed", overflow="fold")
    table.add_column("rows", justify="right")
    table.add_column("audits", justify="right")
    for run in report.models.values():
        kind = "incremental" if "INCREMENTAL" in run.kind.upper() else run.kind.lower()
        days = ", ".join(f"{a}..{b}" if a != b else a for a, b in run.intervals) if kind == "incremental" else "all"
        audits = f"{run.audits_passed} ok" + (f", {run.audits_failed} FAILED" if run.audits_failed else "")
        table.add_row(run.model, kind, days, f"{run.rows or 0:,}", audits)
    console.print(table)
    if report.restated:
        console.print(f"restated (late events): {', '.join(report.restated)}")
    if not report.models:
        console.print("nothing to do: every model is up to date")
    console.print(f"built in {time.perf_counter() - started:.2f} s")


@warehouse_app.command("query")
def query_command(sql: Annotated[str, typer.Argument(
                      help="SQL in the warehouse's dialect, e.g. SELECT * FROM ame.marts_sales_lead_scores LIMIT 10")],
                  warehouse: WarehouseOption = None,
                  limit: Annotated[int, typer.Option(min=1, help="Most rows to print.")] = 50) -> None:
    """Run SQL against the warehouse and print the result as a table."""
    try:
        store = open_warehouse(_url(warehouse))
        result = store.query(sql)
    except WarehouseError as error:
        raise _fail(error) from None
    except Exception as error:  # noqa: BLE001 - the engine's message says what is wrong with the SQL
        raise _fail(RuntimeError(f"the query failed: {error}")) from None
    table = Table(show_lines=False)
    for column in result.columns:
        table.add_column(column)
    for row in result.rows[:limit]:
        table.add_row(*("∅" if v is None else str(v) for v in row))
    console.print(table)
    if len(result.rows) > limit:
        console.print(f"{len(result.rows) - limit:,} more rows not shown (--limit)")


@warehouse_app.command("docs")
def docs_command(warehouse: WarehouseOption = None,
                 output: Annotated[Path | None, typer.Option("--output", "-o", help="Write Markdown here.")] = None) -> None:
    """Print the lineage (raw → staging → intermediate → marts) and every model's columns with their meaning."""
    try:
        text = warehouse_docs_markdown(WarehouseProject(_url(warehouse)).context)
    except WarehouseError as error:
        raise _fail(error) from None
    if output is not None:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")
    else:
        console.print(Markdown(text))
