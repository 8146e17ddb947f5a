"""`ame schedule list|run` against a real log and the Salesforce stub, and the CRM task agent replayed: the Task is
upserted on the event id, so a replay from scratch creates no second Task."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from agents.crm_tasks import CrmTaskAgent
from agents.runtime import replay_serially
from ame.cli import app
from data.crm.tasks import CUSTOMER_FIELD
from data.events import TaskCreated
from data.log import open_log
from tests.integration.crm.salesforce_stub import SalesforceStub


def test_schedule_list_and_run_the_crm_pull(salesforce: SalesforceStub, log_url: str) -> None:
    salesforce.add("Opportunity", StageName="Closed Won", IsClosed=True, IsWon=True, **{CUSTOMER_FIELD: "c-1"})
    runner = CliRunner()
    listed = runner.invoke(app, ["schedule", "list", "--log", log_url], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "crm_outcomes" in listed.output and "*/10 * * * *" in listed.output and "never" in listed.output
    ran = runner.invoke(app, ["schedule", "run", "crm_outcomes", "--log", log_url], env={"COLUMNS": "200"})
    assert ran.exit_code == 0, ran.output
    assert "1 new outcome events" in ran.output
    again = runner.invoke(app, ["schedule", "list", "--log", log_url], env={"COLUMNS": "200"})
    assert "(manual)" in again.output and "ok" in again.output
    unknown = runner.invoke(app, ["schedule", "run", "nightly", "--log", log_url])
    assert unknown.exit_code == 2 and "no job named 'nightly'" in unknown.output


def test_a_failed_run_exits_1_with_its_error(salesforce: SalesforceStub, log_url: str, monkeypatch) -> None:
    monkeypatch.setattr(salesforce, "client_secret", "rotated")  # the org rotated the secret
    ran = CliRunner().invoke(app, ["schedule", "run", "crm_outcomes", "--log", log_url], env={"COLUMNS": "200"})
    assert ran.exit_code == 1 and "sign-in failed" in ran.output


def test_a_replayed_task_agent_creates_no_second_task(salesforce: SalesforceStub, log_url: str, tmp_path: Path) -> None:
    log = open_log(log_url)
    log.append([TaskCreated(event_id=f"task-{i}", customer_id=f"c-{i}", occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
                            properties={"task_type": "call_lead", "reason": "lead score 85"}) for i in range(3)])
    agent = CrmTaskAgent()  # reads AME_SALESFORCE_* where it runs
    _, appended, _ = replay_serially(agent, log_url, tmp_path / "first")
    _, again, duplicates = replay_serially(agent, log_url, tmp_path / "second")  # state lost: replay from scratch
    assert (appended, again, duplicates) == (3, 0, 3)
    assert len(salesforce.records["Task"]) == 3
    log.close()
