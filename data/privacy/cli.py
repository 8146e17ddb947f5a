"""``ame privacy``: erase a customer (right to erasure), export one (access and portability), list erasures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from data.events import validate_event
from data.privacy.erase import ErasureReport, erase_customer, export_customer
from data.privacy.errors import PrivacyError
from data.privacy.keystore import open_key_store
from data.settings import get_settings

privacy_app = typer.Typer(help="Personal data: erase or export one customer's data.", no_args_is_help=True)
console = Console()

LogOption = Annotated[str | None, typer.Option("--log", help="Event log URL (default: AME_EVENT_LOG).")]
StateOption = Annotated[str | None, typer.Option("--state", help="State store URL (default: AME_STATE_STORE).")]


def _urls(log: str | None, state: str | None) -> tuple[str, str]:
    settings = get_settings()
    return log or settings.event_log_url(), state or settings.state_store_url()


@privacy_app.command("erase")
def erase_command(
    customer_id: Annotated[str, typer.Argument(help="The customer to erase.")],
    log: LogOption = None,
    state: StateOption = None,
    warehouse: Annotated[str | None, typer.Option("--warehouse",
                                                  help="Warehouse URL, DuckDB or BigQuery (default: AME_WAREHOUSE); 'none': skip.")] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who requested the erasure (recorded on the event).")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Ticket or legal reference (no personal data).")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Delete the customer's key (crypto-shredding), sweep the copies, record a customer_erased event."""
    log_url, state_url = _urls(log, state)
    wh_url = None if warehouse == "none" else (warehouse or get_settings().warehouse_url())
    try:  # the id must be one the log could hold
        validate_event({"event_id": "x", "event_type": "customer_erased", "customer_id": customer_id,
                        "occurred_at": "2026-01-01T00:00:00Z", "properties": {"requested_by": "check"}})
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="CUSTOMER_ID") from None
    if not yes and not typer.confirm(f"Erase {customer_id}? Their personal data becomes unreadable for good."):
        raise typer.Exit(1)
    if wh_url and wh_url.startswith("duckdb:///") and not Path(wh_url[len("duckdb:///"):]).exists():
        wh_url = None
    try:
        report = erase_customer(customer_id, log_url, state_url, wh_url, requested_by=by, reason=reason)
    except PrivacyError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
        return
    console.print(_report_table(report))
    if report.log_note:
        console.print(f"log: {report.log_note}")
    console.print(f"key deleted: {'yes' if report.key_deleted else 'no (none was stored)'}")


def _report_table(report: ErasureReport) -> Table:
    """What the erasure changed, store by store (and table by table in a BigQuery warehouse)."""
    table = Table(title=f"erased {report.customer_id} (event {report.event_id})")
    for column in ("where", "cells anonymized", "rows redacted", "WAL truncated"):
        table.add_column(column)
    for name, scrub in (("log", report.log), ("dead letters", report.dead_letters), ("state", report.state),
                        ("warehouse", report.warehouse)):
        if scrub is not None:
            table.add_row(name, f"{scrub.cells:,}", f"{scrub.rows_redacted:,}", "yes" if scrub.wal_truncated else "no (busy)")
    for name, rows in (report.warehouse.tables.items() if report.warehouse else ()):
        table.add_row(f"  warehouse {name}", f"{rows:,}", "-", "-")
    return table


@privacy_app.command("export")
def export_command(
    customer_id: Annotated[str, typer.Argument(help="The customer to export.")],
    log: LogOption = None,
    state: StateOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the JSON to this file instead of stdout.")] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who reads the data (recorded as data_accessed).")] = None,
) -> None:
    """Everything held about the customer, as JSON (the read is audited)."""
    log_url, state_url = _urls(log, state)
    data = export_customer(customer_id, log_url, state_url, accessor=by)
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        console.print(f"wrote {len(data['events']):,} events of {customer_id} to {out}")


@privacy_app.command("erased")
def erased_command(log: LogOption = None) -> None:
    """The erased customers (what training code excludes)."""
    log_url, _ = _urls(log, None)
    store = open_key_store(log_url)
    try:
        for customer in sorted(store.erased_customers()):
            typer.echo(customer)
    finally:
        store.close()
