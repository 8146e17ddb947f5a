"""``ame events``, ``ame log`` and ``ame profile``: the command line of the event log and its projections."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from data.log import EventLog, LogError, open_log
from data.log.base import StoredEvent, positional
from data.log.ingest import IngestReport, ingest_lines, redrive
from data.projections.base import Projector
from data.projections.profile import CustomerProfile, ProfileProjection
from data.projections.store import open_state_store
from data.settings import get_settings

P = ParamSpec("P")
R = TypeVar("R")
console = Console()
err = Console(stderr=True)

events_app = typer.Typer(help="Append, read and repair events.", no_args_is_help=True)
dlq_app = typer.Typer(help="The dead-letter store: input that failed validation.", no_args_is_help=True)
events_app.add_typer(dlq_app, name="dlq")
log_app = typer.Typer(help="The event log itself.", no_args_is_help=True)
profile_app = typer.Typer(help="The customer profile projection.", no_args_is_help=True)

LogOption = Annotated[str | None, typer.Option("--log", help="Event log URL (default: AME_EVENT_LOG).")]
StateOption = Annotated[str | None, typer.Option("--state", help="State store URL (default: AME_STATE_STORE).")]


def _open(url: str | None) -> EventLog:
    try:
        return open_log(url)
    except (LogError, ValueError) as error:
        err.print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from None


def exits_on_log_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Print a log error (an unreachable backend, a backend without positions) as one clear line and exit 2,
    instead of a traceback."""

    @functools.wraps(command)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except LogError as error:
            err.print(f"[red]error:[/] {error}")
            raise typer.Exit(2) from None

    return wrapped


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err, transient=False, disable=not err.is_terminal,
    )


def _iso(micros: int | None) -> str:
    if micros is None:
        return "-"
    return datetime.fromtimestamp(micros / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%S")


# ---- ame events -----------------------------------------------------------------------------------------


def print_ingest_report(report: IngestReport, seconds: float) -> None:
    table = Table(title=f"append {report.source}", show_header=False)
    table.add_row("lines read", f"{report.lines:,}")
    table.add_row("appended", f"[green]{report.appended:,}[/]")
    table.add_row("already in the log", f"{report.duplicates:,}")
    table.add_row("rejected", f"[red]{len(report.rejected):,}[/]" if report.rejected else "0")
    table.add_row("new in the dead-letter store", f"{report.dead_lettered_new:,}")
    table.add_row("blank lines skipped", f"{report.blank:,}")
    table.add_row("throughput", f"{report.lines / max(seconds, 1e-9):,.0f} lines/s")
    console.print(table)
    for rejection in report.rejected[:20]:
        err.print(f"[red]rejected[/] {rejection.reason}")
    if len(report.rejected) > 20:
        err.print(f"... and {len(report.rejected) - 20:,} more: `ame events dlq list`")


@events_app.command("append")
@exits_on_log_errors
def append_command(
    file: Annotated[Path, typer.Argument(help="JSON lines, one event per line; '-' reads standard input.")],
    log_url: LogOption = None,
    source: Annotated[str | None, typer.Option(help="Where the input came from (default: the file name).")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Events per transaction.")] = None,
) -> None:
    """Validate and append events from a JSONL file. Invalid lines go to the dead-letter store with their line
    number and reason; the command then exits with status 1. Appending the same file again appends nothing."""
    settings = get_settings()
    if str(file) != "-" and not file.is_file():
        err.print(f"[red]error:[/] no such file: {file}")
        raise typer.Exit(2)
    log = _open(log_url)
    start = time.perf_counter()
    try:
        if str(file) == "-":
            report = ingest_lines(log, sys.stdin.buffer, source or "stdin", batch_size or settings.append_batch_size,
                                  settings.max_event_bytes)
        else:
            with file.open("rb") as handle, _progress() as progress:
                task = progress.add_task(f"append {file.name}", total=file.stat().st_size)
                report = ingest_lines(
                    log, handle, source or file.name, batch_size or settings.append_batch_size,
                    settings.max_event_bytes, progress=lambda n: progress.advance(task, n),
                )
    except LogError as error:
        err.print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from None
    finally:
        log.close()
    print_ingest_report(report, time.perf_counter() - start)
    if not report.ok:
        err.print(
            f"[red]{len(report.rejected):,} of {report.lines:,} lines were rejected[/] and kept in the dead-letter store;"
            " fix them and run `ame events dlq redrive`."
        )
        raise typer.Exit(1)


def _event_table(events: list[StoredEvent], title: str) -> Table:
    table = Table(title=title)
    for column in ("position", "occurred_at", "event_type", "customer_id", "event_id", "properties"):
        table.add_column(column, overflow="fold")
    for e in events:
        table.add_row(str(e.position), _iso(e.occurred_at_us), e.event_type, e.customer_id, e.event_id,
                      e.properties_json[:80])
    return table


@events_app.command("tail")
@exits_on_log_errors
def tail_command(
    log_url: LogOption = None,
    n: Annotated[int, typer.Option("-n", min=1, help="How many of the last events.")] = 20,
    event_type: Annotated[list[str] | None, typer.Option("--type", help="Only these event types (repeatable).")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line instead of a table.")] = False,
) -> None:
    """Print the last events of the log, optionally filtered by type, and follow new ones."""
    log = positional(_open(log_url), "ame events tail")
    head = log.head()
    after = max(0, head - n * (50 if event_type else 1))
    events: list[StoredEvent] = []
    while after < head:
        batch = log.read(after, 10_000, event_type)
        events.extend(batch.events)
        after = batch.next_after
    events = events[-n:]

    def show(batch: list[StoredEvent], title: str) -> None:
        if as_json:
            for e in batch:
                sys.stdout.write(orjson.dumps(e.to_dict()).decode() + "\n")
            sys.stdout.flush()
        elif batch:
            console.print(_event_table(batch, title))

    show(events, f"last {len(events)} events (head {head:,})")
    try:
        while follow:
            log.wait(after, 1.0)  # wakes as soon as an event is appended (at once on PostgreSQL, polled on SQLite)
            batch = log.read(after, 1_000, event_type)
            after = batch.next_after
            show(batch.events, "new events")
    except KeyboardInterrupt:
        pass
    finally:
        log.close()


@dlq_app.command("list")
@exits_on_log_errors
def dlq_list_command(
    log_url: LogOption = None,
    status: Annotated[str, typer.Option(help="pending, redriven or all.")] = "pending",
    limit: Annotated[int, typer.Option(min=1)] = 100,
) -> None:
    """List dead letters with their source line and reason."""
    if status not in ("pending", "redriven", "all"):
        err.print(f"[red]error:[/] --status must be pending, redriven or all, not {status!r}")
        raise typer.Exit(2)
    log = _open(log_url)
    letters = log.dead_letters(status=None if status == "all" else status, limit=limit)
    log.close()
    table = Table(title=f"dead letters ({status})")
    for column in ("id", "source", "line", "status", "seen", "reason", "raw"):
        table.add_column(column, overflow="fold")
    for d in letters:
        table.add_row(str(d.id), d.source, str(d.line or "-"), d.status, str(d.times_seen), d.reason,
                      d.raw[:60].decode("utf-8", "replace"))
    console.print(table)


@dlq_app.command("redrive")
@exits_on_log_errors
def dlq_redrive_command(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead-letter ids (default: every pending one).")] = None,
    log_url: LogOption = None,
    with_file: Annotated[Path | None, typer.Option("--with", help="Corrected JSON for the single id given.")] = None,
) -> None:
    """Validate dead letters again and append those that pass (after a schema fix, or with corrected input)."""
    log = _open(log_url)
    try:
        replacement = with_file.read_bytes().strip() if with_file else None
        outcomes = redrive(log, ids or None, replacement, get_settings().max_event_bytes)
    except (KeyError, ValueError) as error:
        err.print(f"[red]error:[/] {error.args[0]}")
        raise typer.Exit(2) from None
    finally:
        log.close()
    table = Table(title="re-drive")
    for column in ("id", "result", "detail"):
        table.add_column(column, overflow="fold")
    for o in outcomes:
        table.add_row(str(o.letter_id), "[green]appended[/]" if o.ok else "[red]still invalid[/]", o.detail)
    console.print(table)
    if any(not o.ok for o in outcomes):
        raise typer.Exit(1)


# ---- ame log --------------------------------------------------------------------------------------------


@log_app.command("stats")
@exits_on_log_errors
def stats_command(log_url: LogOption = None, state_url: StateOption = None) -> None:
    """Events by type, positions, dead letters, size, and every consumer's committed position and lag."""
    log = _open(log_url)
    stats = log.stats()
    log.close()
    summary = Table(title=f"event log {log.url}", show_header=False)
    summary.add_row("events", f"{stats.events:,}")
    summary.add_row("positions", f"{stats.first_position:,} .. {stats.last_position:,}")
    summary.add_row("dead letters pending", f"{stats.dead_letters_pending:,}")
    summary.add_row("dead letters re-driven", f"{stats.dead_letters_redriven:,}")
    if stats.size_bytes is not None:
        summary.add_row("size on disk", f"{stats.size_bytes / 1e6:,.1f} MB")
    console.print(summary)
    by_type = Table(title="events by type")
    by_type.add_column("event_type")
    by_type.add_column("count", justify="right")
    for kind, count in stats.by_type.items():
        by_type.add_row(kind, f"{count:,}")
    console.print(by_type)
    store = open_state_store(state_url)
    consumers = Table(title="consumer groups")
    for column in ("consumer", "position", "lag", "updated"):
        consumers.add_column(column, justify="right" if column in ("position", "lag") else "left")
    for c in store.positions():
        consumers.add_row(c.consumer, f"{c.position:,}", f"{max(0, stats.last_position - c.position):,}", _iso(c.updated_at_us))
    store.close()
    console.print(consumers)


# ---- ame profile ----------------------------------------------------------------------------------------


def profile_projector(log: EventLog, state_url: str | None) -> Projector[CustomerProfile]:
    settings = get_settings()
    return Projector(log, open_state_store(state_url), ProfileProjection(), settings.read_batch_size,
                     settings.snapshot_every)


def catch_up_with_progress(projector: Projector[CustomerProfile]) -> int:
    lag = projector.lag()
    if lag == 0:
        return 0
    with _progress() as progress:
        task = progress.add_task(f"project {projector.name}", total=lag)
        return projector.catch_up(progress=lambda n: progress.advance(task, n))


def profile_table(p: CustomerProfile, as_of: datetime) -> Table:
    table = Table(title=f"customer {p.customer_id}", show_header=False)
    table.add_row("first seen", _iso(p.first_seen_us))
    table.add_row("last seen", _iso(p.last_seen_us))
    table.add_row("recency", f"{p.recency_days(as_of):.1f} days")
    table.add_row("events", f"{p.events_total:,}")
    table.add_row("purchases", f"{p.purchases:,}")
    table.add_row("revenue", f"{p.revenue:,.2f}")
    table.add_row("last purchase", _iso(p.last_purchase_us))
    table.add_row("last channel", p.last_channel or "-")
    consent = ", ".join(f"{c}: {'granted' if s.granted else 'withdrawn'}" for c, s in sorted(p.consent.items()))
    table.add_row("consent", consent or "never stated")
    table.add_row("by type", ", ".join(f"{k} {v}" for k, v in sorted(p.event_counts.items(), key=lambda kv: -kv[1])))
    return table


@profile_app.command("show")
@exits_on_log_errors
def profile_show_command(
    customer_id: str,
    log_url: LogOption = None,
    state_url: StateOption = None,
    catch_up: Annotated[bool, typer.Option(help="Apply new events before showing.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the profile as JSON.")] = False,
) -> None:
    """Show one customer's profile (catching the projection up with the log first)."""
    log = _open(log_url)
    projector = profile_projector(log, state_url)
    if catch_up:
        catch_up_with_progress(projector)
    profile = ProfileProjection().get(projector.store.read(), customer_id)
    log.close()
    if profile is None:
        err.print(f"[red]error:[/] no customer {customer_id!r} in the profile projection")
        raise typer.Exit(1)
    if as_json:
        sys.stdout.write(orjson.dumps(profile.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        console.print(profile_table(profile, datetime.now(UTC)))


@profile_app.command("rebuild")
@exits_on_log_errors
def profile_rebuild_command(
    log_url: LogOption = None,
    state_url: StateOption = None,
    from_snapshot: Annotated[bool, typer.Option(help="Start from the latest snapshot instead of position 0.")] = False,
) -> None:
    """Replay the log into a fresh profile projection and print its state hash."""
    log = _open(log_url)
    projector = profile_projector(log, state_url)
    start = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task("replay", total=log.head())
        read = projector.rebuild(from_snapshot=from_snapshot, progress=lambda n: progress.advance(task, n))
    seconds = time.perf_counter() - start
    console.print(f"replayed {read:,} events in {seconds:.2f} s ({read / max(seconds, 1e-9):,.0f} events/s)")
    console.print(f"state hash {projector.state_hash()}")
    log.close()


@profile_app.command("hash")
@exits_on_log_errors
def profile_hash_command(log_url: LogOption = None, state_url: StateOption = None) -> None:
    """Catch up, then print the projection's position and state hash (equal to a clean replay's)."""
    log = _open(log_url)
    projector = profile_projector(log, state_url)
    catch_up_with_progress(projector)
    console.print(f"position {projector.position():,} state hash {projector.state_hash()}")
    log.close()


@profile_app.command("snapshot")
@exits_on_log_errors
def profile_snapshot_command(log_url: LogOption = None, state_url: StateOption = None) -> None:
    """Catch up, then write a snapshot of the whole projection (replays can start from it)."""
    log = _open(log_url)
    projector = profile_projector(log, state_url)
    catch_up_with_progress(projector)
    digest = projector.snapshot()
    console.print(f"snapshot at position {projector.position():,}: {digest}")
    log.close()

