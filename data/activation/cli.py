"""``ame activate``: run the syncs from the warehouse to the destinations, list them, show their runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from data.activation.config import load_syncs
from data.activation.errors import ActivationError
from data.activation.gate import EngineGate
from data.activation.runner import WarehouseSource, is_due, run_sync
from data.activation.state import SyncState
from data.privacy.errors import PrivacyError
from data.settings import get_settings

console = Console()
err = Console(stderr=True)

activate_app = typer.Typer(help="Activation (reverse ETL): sync marts to CRM, ads, email and files.",
                           no_args_is_help=True)

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Sync YAML (default: AME_ACTIVATION_CONFIG, else ./syncs.yaml).")]
SyncOption = Annotated[list[str] | None, typer.Option("--sync", "-s", help="Only this sync (repeatable).")]
StateOption = Annotated[str | None, typer.Option("--state", help="State store URL (default: AME_STATE_STORE).")]


def _load(config: Path | None, only: list[str] | None):
    syncs = load_syncs(config or get_settings().activation_config).syncs
    if only:
        unknown = sorted(set(only) - {s.name for s in syncs})
        if unknown:
            raise ActivationError(f"no sync named {', '.join(unknown)}; known: {', '.join(s.name for s in syncs)}")
        syncs = [s for s in syncs if s.name in only]
    return syncs


def _state(url: str | None):
    return SyncState.from_url(url or get_settings().state_store_url())


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _runs_table() -> Table:
    table = Table(title="activation runs (rows: in the model; held: not sent, erased or without consent; same:"
                        " unchanged; sent: upserts; del: deletes; erase: erased customers deleted)")
    table.add_column("sync", overflow="fold", min_width=18)
    table.add_column("status", no_wrap=True, min_width=7)
    for column in ("rows", "held", "same", "sent", "del", "erase", "ok", "fail"):
        table.add_column(column, justify="right", no_wrap=True, min_width=4)
    return table


def _print_failures(reports: list[dict[str, Any]], report_dir: Path, show_errors: int) -> None:
    """Each run's fatal error, and a table of its first row errors."""
    for r in reports:
        if r["fatal"]:
            err.print(f"[red]{r['sync']}:[/] {r['fatal']}")
        if r["errors"] and show_errors:
            errors = Table(title=f"{r['sync']}: row errors ({r['failed']:,}; report {report_dir / r['sync'] / (r['run_id'] + '.json')})")
            for column in ("key", "operation", "error"):
                errors.add_column(column)
            for e in r["errors"][:show_errors]:
                errors.add_row(e["key"], e["operation"], e["error"])
            console.print(errors)


@activate_app.command("run")
def run_command(
    config: ConfigOption = None, sync: SyncOption = None, state: StateOption = None,
    warehouse: Annotated[str | None, typer.Option("--warehouse", help="Warehouse URL (default: AME_WAREHOUSE).")] = None,
    log: Annotated[str | None, typer.Option("--log", help="Event log URL, whose key store lists the erased customers"
                                                          " (default: AME_EVENT_LOG).")] = None,
    due: Annotated[bool, typer.Option("--due", help="Only syncs whose cron schedule has ticked since their last success.")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="Also write the runs' JSON reports to this file.")] = None,
    show_errors: Annotated[int, typer.Option(help="Row errors to print per sync.")] = 10,
) -> None:
    """Run the syncs: send rows changed since the last run, with retries, rate limits and per-row errors."""
    try:
        syncs = _load(config, sync)
        store = _state(state)
        gate = EngineGate.from_urls(state or get_settings().state_store_url(), log or get_settings().event_log_url())
    except (ActivationError, PrivacyError, ValueError) as error:
        err.print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from None
    report_dir = get_settings().home / "activation" / "reports"
    source = WarehouseSource(warehouse)
    table = _runs_table()
    reports = []
    try:
        for s in syncs:
            if due and not is_due(s.schedule, store.last_success(s.name)):
                table.add_row(s.name, "[dim]not due[/]", *["-"] * 8)
                continue
            r = run_sync(s, source, store, report_dir=report_dir, gate=gate)
            reports.append(r.to_json())
            colour = {"ok": "green", "partial": "yellow"}.get(r.status, "red")
            table.add_row(f"{s.name} [dim]→ {r.destination}[/]", f"[{colour}]{r.status}[/]", f"{r.model_rows:,}",
                          f"{r.withheld:,}", f"{r.unchanged:,}", f"{r.upserts_sent:,}", f"{r.deletes_sent:,}",
                          f"{r.erasures_sent:,}", f"{r.succeeded:,}", f"{r.failed:,}")
    finally:
        store.close()
        gate.close()
    console.print(table)
    _print_failures(reports, report_dir, show_errors)
    if report:
        report.write_text(json.dumps(reports, indent=2, default=str), encoding="utf-8")
    if any(r["status"] != "ok" for r in reports):
        raise typer.Exit(1)


@activate_app.command("list")
def list_command(config: ConfigOption = None) -> None:
    """The configured syncs: model, destination, mode, schedule, batch size and rate limit."""
    try:
        syncs = _load(config, None)
    except ActivationError as error:
        err.print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from None
    table = Table(title="activation syncs")
    for column in ("sync", "model", "destination", "mode", "schedule", "batch", "req/s", "fields"):
        table.add_column(column)
    for s in syncs:
        table.add_row(s.name, s.model + (f" [dim]where {s.filter}[/]" if s.filter else ""), s.destination.type,
                      s.mode, s.schedule, str(s.effective_batch_size()), f"{s.rate_limit.requests_per_second:g}",
                      ", ".join(f"{d}←{c}" for d, c in s.mapping.items()))
    console.print(table)


@activate_app.command("status")
def status_command(sync: Annotated[str | None, typer.Argument(help="One sync (default: all).")] = None,
                   state: StateOption = None, limit: Annotated[int, typer.Option(min=1)] = 20,
                   as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False) -> None:
    """The latest runs with their counts, and how many rows each destination holds."""
    store = _state(state)
    try:
        runs = store.last_runs(sync, limit)
        held = {r.sync: store.held(r.sync) for r in runs}
    finally:
        store.close()
    if as_json:
        console.print_json(json.dumps([
                                       {**{f: getattr(r, f) for f in r.__slots__}, "held": held[r.sync]}
                                       for r in runs]))
        return
    if not runs:
        console.print("no activation runs yet: `ame activate run`")
        return
    table = Table(title="activation status")
    for column in ("sync", "run", "started (UTC)", "status", "upserts", "deletes", "ok", "failed", "unchanged", "held"):
        table.add_column(column)
    for r in runs:
        colour = {"ok": "green", "partial": "yellow", "running": "blue"}.get(r.status, "red")
        table.add_row(r.sync, r.run_id, _when(r.started_at), f"[{colour}]{r.status}[/]", f"{r.upserts_sent:,}",
                      f"{r.deletes_sent:,}", f"{r.succeeded:,}", f"{r.failed:,}", f"{r.unchanged:,}",
                      f"{held[r.sync]:,}")
    console.print(table)
