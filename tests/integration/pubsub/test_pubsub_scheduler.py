"""The scheduler, the CRM pull and the lead retrain on a Pub/Sub log (the emulator), as the GKE deployment runs them:
the scheduler's memory and the CRM watermark in the shared PostgreSQL state store, every run still published as a
``schedule_run`` event; a scheduler restarted elsewhere reads its memory back and catches a missed run up once; the
retrain folds the history in the warehouse's raw_events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from agents.retrain import RetrainArgs, retrain_lead
from agents.scheduler import Job, Scheduler
from ame.cli import app
from data.crm.outcomes import StoreWatermark, pull_outcomes
from data.crm.salesforce import SalesforceClient, SalesforceConfig
from data.crm.tasks import CUSTOMER_FIELD
from data.log import open_log
from data.projections.store import open_state_store
from data.settings import get_settings
from data.warehouse import open_warehouse
from data.warehouse.loader import load_events
from policies.scoring.registry import ModelRegistry
from tests.integration.crm.conftest import salesforce  # noqa: F401 - fixture
from tests.integration.crm.history import past_leads
from tests.integration.crm.salesforce_stub import SalesforceStub
from tests.integration.crm.test_retrain import _outcomes
from tests.integration.pubsub.test_pubsub_contract import _published, topic  # noqa: F401 - fixture
from tests.integration.stores.conftest import postgres_server, postgres_url  # noqa: F401 - fixtures

pytestmark = pytest.mark.emulator
T0 = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _job(calls: list[str]) -> Job:
    def run() -> str:
        calls.append("hourly")
        return "done"
    return Job("hourly", "0 * * * *", run)


def test_runs_are_remembered_in_postgres_and_a_missed_run_is_caught_up_once_after_a_restart(
    topic: tuple[str, str], postgres_url: str  # noqa: F811 - fixtures
) -> None:
    url, subscription = topic
    clock, calls = FakeClock(), []
    first = Scheduler([_job(calls)], url, clock, state_url=postgres_url)
    assert first.tick() == [] and first.last == {}
    clock.now = T0 + timedelta(minutes=31)
    (run,) = first.tick()
    assert (run.trigger, run.due_at, calls) == ("cron", datetime(2026, 3, 2, 11, 0, tzinfo=UTC), ["hourly"])
    assert first.tick() == [], "a slot runs once"
    first.close()

    clock.now = T0 + timedelta(hours=4)  # down for three slots; a scheduler starts on another node
    second = Scheduler([_job(calls)], url, clock, state_url=postgres_url)
    assert second.last["hourly"].due_at == run.due_at, "the memory is read back from the shared store"
    (caught_up,) = second.tick()
    assert (caught_up.trigger, caught_up.due_at) == ("catch_up", datetime(2026, 3, 2, 14, 0, tzinfo=UTC))
    assert second.tick() == [] and calls == ["hourly", "hourly"], "caught up once, not once per missed slot"
    (status,) = second.status()
    assert status.last == caught_up and status.next_due == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    second.close()

    runs = [orjson.loads(m.data) for m in _published(subscription, wait_s=3)]
    published = sorted((e["properties"]["trigger"], e["properties"]["due_at"]) for e in runs if e["event_type"] == "schedule_run")
    assert published == [("catch_up", "2026-03-02T14:00:00+00:00"), ("cron", "2026-03-02T11:00:00+00:00")], "every run is an event"


def test_the_crm_watermark_is_kept_in_the_state_store(salesforce: SalesforceStub, topic: tuple[str, str],  # noqa: F811
                                                      tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    opp = salesforce.add("Opportunity", StageName="Prospecting", IsClosed=False, IsWon=False, **{CUSTOMER_FIELD: "c-1"})
    salesforce.close_opportunity(opp, won=True)
    log, client = open_log(topic[0]), SalesforceClient(SalesforceConfig.from_settings())
    first = pull_outcomes(client, log, state_url=state)
    assert first.since is None and first.appended == 1 and first.watermark is not None
    store = open_state_store(state)
    assert StoreWatermark(store).since() == first.watermark
    second = pull_outcomes(client, log, state_url=state)
    assert second.since == first.watermark, "the next pull starts at the stored watermark"
    store.close()
    log.close()


def test_the_retrain_on_pubsub_folds_the_warehouse_raw_events(topic: tuple[str, str], log_url: str, tmp_path: Path) -> None:  # noqa: F811
    events, leads = past_leads(200)
    source = open_log(log_url)  # raw_events as the BigQuery subscription would fill it
    source.append(events + _outcomes(leads))
    warehouse_url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    warehouse = open_warehouse(warehouse_url)
    load_events(source, warehouse)
    warehouse.close()
    source.close()

    log = open_log(topic[0])
    report = retrain_lead(log, ModelRegistry(tmp_path / "models"), T0, RetrainArgs(bootstrap=200, n_estimators=50),
                          warehouse_url=warehouse_url)
    log.close()
    assert report.rows == 200 and report.challenge is not None and report.positives == sum(lead.won for lead in leads)
    (challenge,) = [orjson.loads(m.data) for m in _published(topic[1], wait_s=3)]
    assert challenge["event_type"] == "model_challenge" and challenge["properties"]["holdout_rows"] == report.challenge.rows


def test_schedule_run_and_list_on_pubsub_show_the_run_from_the_state_store(
    salesforce: SalesforceStub, topic: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    salesforce.add("Opportunity", StageName="Closed Won", IsClosed=True, IsWon=True, **{CUSTOMER_FIELD: "c-1"})
    monkeypatch.setenv("AME_STATE_STORE", f"sqlite:///{tmp_path / 'state.db'}")
    get_settings.cache_clear()
    runner, url = CliRunner(), topic[0]
    ran = runner.invoke(app, ["schedule", "run", "crm_outcomes", "--log", url], env={"COLUMNS": "200"})
    assert ran.exit_code == 0 and "1 new outcome events" in ran.output, ran.output
    listed = runner.invoke(app, ["schedule", "list", "--log", url], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    (line,) = [row for row in listed.output.splitlines() if "crm_outcomes" in row]
    assert "(manual)" in line and "ok" in line, "the last run is read back from the state store"
