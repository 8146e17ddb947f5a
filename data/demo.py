"""``ame log demo``: the event log end to end, on its own.

A synthetic stream (with one malformed line and one invalid event in it) is appended from JSON lines, the bad
lines go to the dead-letter store, the profile projection catches up, and a replay proves the state is a pure
fold. (``ame demo`` runs the whole engine.)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from data.cli import (
    LogOption,
    StateOption,
    _open,
    _progress,
    catch_up_with_progress,
    console,
    print_ingest_report,
    profile_projector,
)
from data.log.ingest import ingest_lines
from data.settings import get_settings
from data.synthetic import synthetic_dicts


def write_demo_stream(path: Path, events: int, customers: int, seed: int) -> None:
    """The synthetic stream as JSON lines, with one malformed line and one invalid event in it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for i, event in enumerate(synthetic_dicts(events, customers, seed, source="demo")):
            if i == events // 3:
                out.write(b'{"event_type": "page_view", "customer_id": \n')  # cut off mid-object
            if i == 2 * events // 3:
                bad = dict(event, event_id=f"{event['event_id']}-bad", event_type="purchase",
                           properties={"order_id": "o-neg", "amount": -10})
                out.write(orjson.dumps(bad) + b"\n")
            out.write(orjson.dumps(event) + b"\n")


def demo_command(
    log_url: LogOption = None,
    state_url: StateOption = None,
    events: Annotated[int, typer.Option(min=10, help="Events in the synthetic stream.")] = 50_000,
    customers: Annotated[int, typer.Option(min=1, help="Customers in the synthetic stream.")] = 5_000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic stream.")] = 7,
) -> None:
    """A short end-to-end run of the event log alone: append a stream with bad lines, project it, replay it."""
    settings = get_settings()
    stream = settings.home / "demo" / f"events-{events}-{customers}-{seed}.jsonl"
    if not stream.exists():
        console.rule("1. a synthetic stream of customer events")
        write_demo_stream(stream, events, customers, seed)
    console.print(f"stream: {stream} ({stream.stat().st_size / 1e6:.1f} MB)")

    console.rule("2. validate and append it; bad lines go to the dead-letter store")
    log = _open(log_url)
    start = time.perf_counter()
    with stream.open("rb") as handle, _progress() as progress:
        task = progress.add_task("append", total=stream.stat().st_size)
        report = ingest_lines(log, handle, stream.name, settings.append_batch_size, settings.max_event_bytes,
                              progress=lambda n: progress.advance(task, n))
    print_ingest_report(report, time.perf_counter() - start)

    console.rule("3. the customer profile projection catches up")
    projector = profile_projector(log, state_url)
    start = time.perf_counter()
    applied = catch_up_with_progress(projector)
    console.print(f"applied {applied:,} events in {time.perf_counter() - start:.2f} s; position {projector.position():,}")
    incremental = projector.state_hash()
    profiles = projector.state()
    top = sorted(profiles.values(), key=lambda p: -p.revenue)[:8]
    table = Table(title=f"top customers by revenue (of {len(profiles):,})")
    for column in ("customer", "events", "purchases", "revenue", "last channel", "email consent"):
        table.add_column(column, justify="right" if column in ("events", "purchases", "revenue") else "left")
    for p in top:
        consent = p.consent_for("email")
        table.add_row(p.customer_id, f"{p.events_total:,}", str(p.purchases), f"{p.revenue:,.2f}", p.last_channel or "-",
                      "unknown" if consent is None else ("granted" if consent else "withdrawn"))
    console.print(table)

    console.rule("4. a full replay gives the same state")
    start = time.perf_counter()
    replayed = projector.rebuild()
    seconds = time.perf_counter() - start
    same = projector.state_hash() == incremental
    console.print(f"replayed {replayed:,} events in {seconds:.2f} s ({replayed / max(seconds, 1e-9):,.0f} events/s);"
                  f" state hash {incremental[:16]}… {'[green]identical[/]' if same else '[red]DIFFERENT[/]'}")
    log.close()
    console.print("\nnext: `ame log stats`, `ame events dlq list`, `ame profile show <customer_id>`")
    if not same:
        raise typer.Exit(1)
