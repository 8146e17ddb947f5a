"""The engine's own jobs run by the scheduler on an injected clock: the warehouse load-and-build, then an activation
sync of the activation file on its own cron string. Slow (a SQLMesh build of every model, ~45 s on 2 cores)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agents.scheduler import Scheduler
from agents.scheduler_jobs import default_jobs
from data.log import open_log
from data.settings import get_settings
from tests.integration.crm.history import past_leads

SYNCS = """
syncs:
  - name: leads_csv
    model: marts_sales_lead_scores
    mapping: {customer_id: customer_id, lead_score: lead_score}
    schedule: "30 6 * * *"
    destination: {type: csv, path: %s}
"""


@dataclass
class FakeClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.slow
def test_the_warehouse_build_and_an_activation_sync_run_on_their_slots(
    log_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "syncs.yaml").write_text(SYNCS % (tmp_path / "exports"))
    monkeypatch.setenv("AME_ACTIVATION_CONFIG", str(tmp_path / "syncs.yaml"))
    monkeypatch.setenv("AME_WAREHOUSE", f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    get_settings.cache_clear()
    log = open_log(log_url)
    log.append(past_leads(20)[0])
    clock = FakeClock(datetime(2027, 1, 4, 6, 0, tzinfo=UTC))
    jobs = [j for j in default_jobs(log_url=log_url, clock=clock) if j.name in ("warehouse_build", "activation:leads_csv")]
    assert [j.cron for j in jobs] == ["20 * * * *", "30 6 * * *"]
    scheduler = Scheduler(jobs, log_url, clock)
    clock.now = datetime(2027, 1, 4, 6, 21, tzinfo=UTC)
    (build,) = scheduler.tick()
    assert build.outcome == "ok" and build.summary.startswith("loaded "), build
    clock.now = datetime(2027, 1, 4, 6, 31, tzinfo=UTC)
    (sync,) = scheduler.tick()
    assert sync.job == "activation:leads_csv" and sync.outcome == "ok" and sync.summary.startswith("ok: "), sync
    assert list((tmp_path / "exports").rglob("*.csv")), "the sync wrote its file"
    scheduler.close()
    log.close()
