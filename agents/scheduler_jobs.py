"""The engine's scheduled jobs, built from the settings: what the scheduler actor runs.

- ``warehouse_build`` (``AME_SCHEDULE_WAREHOUSE_CRON``): load new events into the warehouse, then build its models.
- ``crm_outcomes`` (``AME_SCHEDULE_CRM_CRON``, when ``AME_SALESFORCE_URL`` is set): pull closed opportunities and
  converted leads back as events.
- ``retrain_lead`` (``AME_SCHEDULE_RETRAIN_CRON``): retrain the lead model on the outcomes and challenge the champion.
- ``drift_lead`` (``AME_SCHEDULE_DRIFT_CRON``): PSI of the lead model's scores and top features, today against training.
- ``activation:<sync>``: each sync of the activation file (``AME_ACTIVATION_CONFIG``) on its own cron string.

On a Pub/Sub log (no positions) the warehouse build loads from the table the log's BigQuery subscription fills,
the retrain and the drift check fold the history in the warehouse's raw_events, and the CRM pull keeps its
watermark in the state store.

Each job returns a one-line summary (the ``schedule_run`` event keeps it) or raises (the event keeps the error).
Heavy packages (the warehouse's SQLMesh, the models' XGBoost) are imported inside the jobs that use them, so the
scheduler starts without them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from agents.scheduler import SCHEDULER_ACTOR, Clock, Job, scheduler_actor_class, utc_now
from data.activation.config import SyncConfig, load_syncs
from data.activation.runner import WarehouseSource, run_sync
from data.activation.state import SyncState
from data.crm.outcomes import pull_outcomes
from data.crm.salesforce import SalesforceClient, SalesforceConfig
from data.log import open_log
from data.settings import Settings, get_settings

log = logging.getLogger(__name__)


def warehouse_build(log_url: str, warehouse_url: str) -> str:
    """Load the log's new events into raw, then build every model (with audits)."""
    from data.warehouse import open_warehouse  # lazy: the warehouse loads DuckDB and SQLMesh
    from data.warehouse.build import WarehouseProject
    from data.warehouse.loader import load_log

    store = open_warehouse(warehouse_url)
    try:
        loaded = load_log(log_url, store)
    finally:
        store.close()
    report = WarehouseProject(warehouse_url).build()
    return f"loaded {loaded.rows} events; built {len(report.models)} models"


def crm_outcomes(log_url: str) -> str:
    """Pull the CRM's outcomes modified since the log's watermark."""
    event_log = open_log(log_url)
    try:
        return pull_outcomes(SalesforceClient(SalesforceConfig.from_settings()), event_log).line()
    finally:
        event_log.close()


def retrain_lead(log_url: str, models_dir: Path, clock: Clock, warehouse_url: str | None = None) -> str:
    """Retrain the lead model on the CRM outcomes; promote the challenger only if it beats the champion."""
    from agents.retrain import retrain_lead as retrain  # lazy: loads XGBoost
    from policies.scoring.registry import ModelRegistry

    event_log = open_log(log_url)
    try:
        return retrain(event_log, ModelRegistry(models_dir), clock(), log_url=log_url, warehouse_url=warehouse_url).line()
    finally:
        event_log.close()


def drift_lead(log_url: str, models_dir: Path, warehouse_url: str | None = None) -> str:
    """PSI of the latest lead model on every customer's current scoring features (kept for the API's /metrics)."""
    from agents.history import history_of  # lazy: opens the warehouse (DuckDB)
    from agents.retrain import current_features  # lazy: loads XGBoost
    from policies.scoring.drift import drift_report
    from policies.scoring.drift_record import save_drift_check
    from policies.scoring.registry import ModelRegistry

    registry = ModelRegistry(models_dir)
    if not registry.versions("lead"):
        return "no lead model in the registry: nothing to check"
    model = registry.load_scoring("lead")
    event_log = open_log(log_url)
    history = history_of(event_log, warehouse_url)
    try:
        frame = current_features(history)
    finally:
        history.close()
        event_log.close()
    if frame.empty:
        return "no customers in the log: nothing to check"
    _, scores, _ = model.score_matrix(model.matrix(frame))
    rows = drift_report(registry.read_json("lead", model.version, "drift_reference.json"), frame, np.asarray(scores))
    save_drift_check(registry.root, "lead", model.version, rows)
    worst = max(rows, key=lambda r: r.psi)
    return f"{model.version}: largest PSI {worst.psi:.3f} ({worst.name}, {worst.status}) over {len(frame)} customers"


def activation_sync(sync: SyncConfig, settings: Settings) -> str:
    """Run one activation sync; a failed run raises, so the schedule logs its error."""
    state = SyncState.from_url(settings.state_store_url())
    try:
        report = run_sync(sync, WarehouseSource(settings.warehouse_url()), state,
                          report_dir=settings.home / "activation" / "reports")
    finally:
        state.close()
    line = f"{report.status}: {report.upserts_sent} upserts, {report.deletes_sent} deletes, {report.failed} failed"
    if report.status == "failed":
        raise RuntimeError(f"{line}: {report.fatal or 'every row failed'}")
    return line


def activation_jobs(settings: Settings) -> list[Job]:
    """One job per sync of the activation file (none when the file does not exist)."""
    path = Path(settings.activation_config)
    if not path.exists():
        return []
    return [Job(f"activation:{s.name}", s.schedule, partial(activation_sync, s, settings), f"sync {s.model} to {s.destination.type}")
            for s in load_syncs(path).syncs]


def default_jobs(settings: Settings | None = None, log_url: str | None = None, clock: Clock = utc_now) -> list[Job]:
    """Every job the engine schedules, from the settings (see the module docstring)."""
    s = settings or get_settings()
    url = log_url or s.event_log_url()
    jobs = [
        Job("warehouse_build", s.schedule_warehouse_cron, partial(warehouse_build, url, s.warehouse_url()),
            "load new events into the warehouse and build its models"),
    ]
    if s.salesforce_url:  # before the retrain: when both are due, the outcomes are pulled first
        jobs.append(Job("crm_outcomes", s.schedule_crm_cron, partial(crm_outcomes, url),
                        "pull closed opportunities and converted leads from Salesforce"))
    jobs += [
        Job("retrain_lead", s.schedule_retrain_cron, partial(retrain_lead, url, s.models_dir, clock, s.warehouse_url()),
            "retrain the lead model on CRM outcomes; promote only a significantly better challenger"),
        Job("drift_lead", s.schedule_drift_cron, partial(drift_lead, url, s.models_dir, s.warehouse_url()),
            "PSI of the lead model's scores and features"),
    ]
    return jobs + activation_jobs(s)


def build_default_jobs(log_url: str) -> list[Job]:
    """:func:`default_jobs` on the process's own settings (what the scheduler actor calls where it runs)."""
    return default_jobs(log_url=log_url)


def start_scheduler(log_url: str, namespace: str = "ame", detached: bool = False, interval_s: float | None = None,
                    build_jobs: Callable[[], Sequence[Job]] | None = None, max_restarts: int = -1,
                    resources: Mapping[str, float] | None = None) -> Any:
    """Start the scheduler actor (or find the one running) in ``namespace``, named like a shard (``scheduler-0of1``)
    so that ``ame agents status`` lists it and ``ame agents down`` stops it. A restarted actor re-reads its memory
    from the log. Returns the actor handle.

    :param build_jobs: makes the jobs where the actor runs (default: :func:`default_jobs` on that process's settings).
    :param resources: Ray custom resources the actor asks for (pins it to the nodes that offer them).
    """
    options: dict[str, Any] = {"name": SCHEDULER_ACTOR, "namespace": namespace, "get_if_exists": True}
    if detached:
        options["lifetime"] = "detached"
    if resources:
        options["resources"] = dict(resources)
    interval = interval_s if interval_s is not None else get_settings().schedule_interval_s
    jobs = build_jobs or partial(build_default_jobs, log_url)
    return scheduler_actor_class(max_restarts).options(**options).remote(jobs, log_url, interval)
