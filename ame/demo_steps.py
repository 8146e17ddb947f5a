"""The demo's data steps: the profile projection, the events by source, the warehouse build and the activation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from data.activation.config import parse_syncs
from data.activation.runner import WarehouseSource, run_sync
from data.activation.state import SyncState
from data.projections.base import Projector
from data.projections.profile import ProfileProjection
from data.projections.store import open_state_store
from data.settings import get_settings
from data.warehouse import open_warehouse
from data.warehouse.build import WarehouseProject
from data.warehouse.loader import load_events

console = Console()
err = Console(stderr=True)
AUDIENCE_SYNC = "demo_engaged_csv"


def progress_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=False, disable=not err.is_terminal)


def project_profiles(log: Any, state_url: str) -> int:
    settings = get_settings()
    projector = Projector(log, open_state_store(state_url), ProfileProjection(), settings.read_batch_size, 0)
    with progress_bar() as progress:
        task = progress.add_task("profile projection", total=max(projector.lag(), 1))
        return projector.catch_up(progress=lambda n: progress.advance(task, n))


def events_by_source(log: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    after = 0
    while True:
        batch = log.read(after=after, limit=50_000)
        for e in batch.events:
            counts[e.source] = counts.get(e.source, 0) + 1
        if not batch.events:
            break
        after = batch.next_after
    return counts


def build_warehouse(log: Any, warehouse_url: str) -> dict[str, int]:
    store = open_warehouse(warehouse_url)
    try:
        with progress_bar() as progress:
            task = progress.add_task("load raw_events", total=max(log.head(), 1))
            load_events(log, store, progress=lambda n: progress.advance(task, n))
    finally:
        store.close()
    console.print("building staging and marts (SQLMesh plan + run, with audits) …")
    project = WarehouseProject(warehouse_url)
    try:
        project.build()
    finally:
        project.close()
    store = open_warehouse(warehouse_url)
    try:
        return {name: int(store.query(f"SELECT COUNT(*) FROM {store.dataset}.{name}").rows[0][0])
                for name in ("raw_events", "marts_marketing_customer_360", "marts_marketing_campaign_performance",
                             "marts_sales_lead_scores")}
    finally:
        store.close()


def activate_audience(folder: Path, warehouse_url: str, state_url: str) -> tuple[Any, Path | None]:
    """The engaged audience (buyers and clickers), with segment and scores, to a CSV file (the file destination)."""
    out = folder / "exports" / "audiences"
    syncs = parse_syncs({"syncs": [{
        "name": AUDIENCE_SYNC, "model": "marts_marketing_customer_360", "identity_key": "customer_id",
        "filter": "total_purchases > 0 OR email_clicks > 0 OR sms_clicks > 0 OR ad_clicks > 0",
        "mapping": {"customer_id": "customer_id", "segment": "customer_segment", "revenue": "total_revenue",
                    "lead_score": "lead_score", "churn_risk": "churn_risk_score", "clv": "predicted_clv"},
        "mode": "mirror", "schedule": "0 6 * * *", "destination": {"type": "csv", "path": str(out)},
    }]}, source="ame demo")
    report = run_sync(syncs.syncs[0], WarehouseSource(warehouse_url), SyncState.from_url(state_url),
                      report_dir=folder / "activation" / "reports")
    files = sorted((out / AUDIENCE_SYNC).glob("*.csv"))
    return report, (files[-1] if files else None)

