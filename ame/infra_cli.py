"""``ame infra init``: create what the engine needs on its backends (see :mod:`ame.infra`), and show a table of it."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ame.infra import DEFAULT_AGENTS, Row, initialise, plan
from data.settings import get_settings

console = Console()

infra_app = typer.Typer(help="The engine's infrastructure: topics, subscriptions, tables, schema, registries.",
                        no_args_is_help=True)

_STYLE = {"created": "green", "exists": "dim", "would create": "yellow", "embedded": "dim", "failed": "red"}


def rows_table(rows: list[Row], dry_run: bool) -> Table:
    """One line per resource: what it is, where, and what became of it."""
    table = Table(title="ame infra init" + (" (dry run: nothing created)" if dry_run else ""))
    for column in ("where", "resource", "name", "status", "detail"):
        table.add_column(column, overflow="fold")
    where = None
    for row in rows:
        if row.where != where and where is not None:
            table.add_section()
        style = _STYLE[row.status]
        table.add_row(row.where if row.where != where else "", row.kind, row.name, f"[{style}]{row.status}[/]", row.detail)
        where = row.where
    return table


@infra_app.command("init")
def init(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be created.")] = False,
    agents: Annotated[
        list[str], typer.Option("--agent", "-a", help="Agents whose subscriptions to create (repeat; as `ame agents up`).")
    ] = list(DEFAULT_AGENTS),  # noqa: B006 - Typer reads the default, never mutates it
    shards: Annotated[int | None, typer.Option(min=1, help="Shards per agent (default: AME_AGENT_SHARDS).")] = None,
    log: Annotated[str | None, typer.Option("--log", help="Event log URL (default: AME_EVENT_LOG).")] = None,
    warehouse: Annotated[str | None, typer.Option("--warehouse", help="Warehouse URL (default: AME_WAREHOUSE).")] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds each backend may take to answer.")] = 30.0,
) -> None:
    """Create, idempotently, the Pub/Sub topics and subscriptions, the BigQuery dataset and raw tables, the PostgreSQL
    schema and the registries' folders that the settings name. A second run creates nothing."""
    settings = get_settings()
    try:
        provisioners = plan(settings, log, warehouse, agents, shards, timeout)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    rows = initialise(provisioners, dry_run)
    console.print(rows_table(rows, dry_run))
    counts = Counter(row.status for row in rows)
    console.print(", ".join(f"{counts[status]} {status}" for status in _STYLE if counts[status]))
    if counts["failed"]:
        for row in rows:
            if row.status == "failed":
                console.print(f"[red]error:[/] {row.detail}")
        raise typer.Exit(1)
