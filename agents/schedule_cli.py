"""``ame schedule list|run``: the scheduled jobs, their last run and next slot; run one now."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from agents.scheduler import JobStatus, ScheduleError, Scheduler
from agents.scheduler_jobs import default_jobs
from data.activation.errors import ActivationError
from data.log import LogError
from data.settings import get_settings

console = Console()
err = Console(stderr=True)

schedule_app = typer.Typer(help="The scheduler's jobs: warehouse builds, CRM outcomes, retraining, drift, activation syncs.",
                           no_args_is_help=True)

LogOption = Annotated[str | None, typer.Option("--log", help="Event log URL (default: AME_EVENT_LOG).")]


def _scheduler(log: str | None) -> Scheduler:
    url = log or get_settings().event_log_url()
    try:
        return Scheduler(default_jobs(log_url=url), url)
    except (ScheduleError, ActivationError, LogError, ValueError) as error:
        err.print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from None


def jobs_table(rows: list[JobStatus]) -> Table:
    table = Table(title="scheduled jobs (UTC)")
    for column in ("job", "cron", "last run", "outcome", "summary or error", "next due"):
        table.add_column(column, overflow="fold", no_wrap=column != "summary or error")
    for s in rows:
        last = s.last
        outcome = "-" if last is None else ("[green]ok[/]" if last.outcome == "ok" else "[red]failed[/]")
        when = "never" if last is None else f"{last.finished_at:%Y-%m-%d %H:%M} ({last.trigger})"
        detail = "" if last is None else (last.error or last.summary or "")
        table.add_row(s.name, s.cron, when, outcome, detail[:160], f"{s.next_due:%Y-%m-%d %H:%M}")
    return table


@schedule_app.command("list")
def list_command(log: LogOption = None) -> None:
    """Each job with its cron, its last run and outcome (from the scheduler's memory) and when it is next due."""
    scheduler = _scheduler(log)
    try:
        console.print(jobs_table(scheduler.status()))
    finally:
        scheduler.close()


@schedule_app.command("run")
def run_command(
    job: Annotated[str, typer.Argument(help="The job's name, as `ame schedule list` shows it.")], log: LogOption = None
) -> None:
    """Run one job now, in this process; the run is logged like a scheduled one (trigger: manual)."""
    scheduler = _scheduler(log)
    try:
        record = scheduler.run_now(job)
    except ScheduleError as error:
        err.print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from None
    finally:
        scheduler.close()
    if record.outcome != "ok":
        err.print(f"[red]{job} failed:[/] {record.error}")
        raise typer.Exit(1)
    console.print(f"{job}: {record.summary} ({(record.finished_at - record.started_at).total_seconds():.1f} s)")
