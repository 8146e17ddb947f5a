"""The design's scenario, end to end in one test, with the real agents and the scheduler on an injected clock:

1. a whitepaper download arrives for a warm lead;  2. the scoring agent's lead score goes above 80;
3. the CRM task agent puts a Task at the Salesforce stub;  4. sales marks the lead's opportunity won at the stub;
5. the scheduled pull logs ``opportunity_won``;  6. the scheduled retrain runs;  7. the challenger is promoted or
kept, and ``model_challenge`` carries both AUCs, the difference and its CI.

One download is worth 25 rule points (``ScoringRules.lead_weights``), so the lead's history comes first: a lead
created, four e-mail clicks and five page views (65 points, no task yet); the download takes it to 90. The retrain
needs outcomes to learn from, so the org also holds 400 past leads' closed opportunities, and the log their events.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agents.crm_tasks import CrmTaskAgent
from agents.runtime import replay_serially
from agents.scheduler import Scheduler
from agents.scheduler_jobs import default_jobs
from agents.scoring import ScoringAgent
from data.activation.config import RateLimit
from data.crm.salesforce import SalesforceConfig
from data.crm.tasks import CUSTOMER_FIELD, TASK_EXTERNAL_ID
from data.events import validate_event
from data.log import open_log
from data.settings import get_settings
from policies.scoring.registry import ModelRegistry
from tests.integration.crm.history import past_leads
from tests.integration.crm.salesforce_stub import SalesforceStub

LEAD = "lead-42"


@dataclass
class FakeClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def _event(n: int, kind: str, at: datetime, **properties: object) -> object:
    return validate_event({"event_id": f"{LEAD}-{n}", "event_type": kind, "customer_id": LEAD, "occurred_at": at.isoformat(),
                           "source": "test", "properties": properties})


def _warm_history(start: datetime) -> list:
    kinds = ["lead_created"] + ["email_click"] * 4 + ["page_view"] * 5
    return [_event(i, k, start + timedelta(minutes=i), **({"url": "/pricing"} if k == "page_view" else {}))
            for i, k in enumerate(kinds)]


def _run_agents(log_url: str, state: Path) -> None:
    replay_serially(ScoringAgent(), log_url, state)
    # the past leads' tasks go out too: a stub takes more than the default 10 requests/s
    config = replace(SalesforceConfig.from_settings(), rate_limit=RateLimit(requests_per_second=1_000, burst=100))
    replay_serially(CrmTaskAgent(config), log_url, state)


def test_a_download_becomes_a_task_and_the_won_deal_retrains_the_model(
    salesforce: SalesforceStub, log_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AME_MODELS_DIR", str(tmp_path / "models"))
    get_settings.cache_clear()
    log, state = open_log(log_url), tmp_path / "agents"
    history, leads = past_leads(400)
    log.append(history)
    for lead in leads:  # the org's closed deals, stamped when they closed
        salesforce.add("Opportunity", stamp=lead.closed_at, StageName="Closed Won" if lead.won else "Closed Lost",
                       IsClosed=True, IsWon=lead.won, Amount=1000.0, **{CUSTOMER_FIELD: lead.customer_id})
    opportunity = salesforce.add("Opportunity", StageName="Qualification", IsClosed=False, IsWon=False, Amount=5000.0,
                                 **{CUSTOMER_FIELD: LEAD})
    now = datetime.now(UTC).replace(microsecond=0)
    log.append(_warm_history(now - timedelta(hours=1)))
    _run_agents(log_url, state)
    assert not salesforce.find("Task", CUSTOMER_FIELD, LEAD), "the warm lead is not hot yet"

    # 1-3: the download arrives; the score passes 80; the Task is at the stub
    started = time.perf_counter()
    log.append([_event(99, "content_download", now, content_id="wp-ai-marketing", content_type="whitepaper")])
    _run_agents(log_url, state)
    seconds = time.perf_counter() - started
    caused = [e for e in log.read(0, 100_000).events if e.causation_id == f"{LEAD}-99"]
    score = next(e.properties for e in caused if e.event_type == "score_updated" and e.properties["model"] == "lead")
    task = next(e for e in caused if e.event_type == "task_created")
    assert score["score"] > 80, score
    (sf_task,) = salesforce.find("Task", TASK_EXTERNAL_ID, task.event_id)
    assert sf_task[CUSTOMER_FIELD] == LEAD and sf_task["Priority"] == "High" and seconds < 5, seconds
    synced = [e for e in log.read(0, 100_000, ["crm_task_synced"]).events if e.causation_id == task.event_id]
    assert synced and synced[0].properties["record_id"] == sf_task["Id"]

    # 4: sales wins the deal at the stub
    salesforce.close_opportunity(opportunity, won=True)

    # 5-7: the scheduler, on an injected clock, pulls the outcome and then retrains at their slots
    clock = FakeClock(datetime(2027, 1, 4, 2, 45, tzinfo=UTC))
    jobs = [j for j in default_jobs(log_url=log_url, clock=clock) if j.name in ("crm_outcomes", "retrain_lead")]
    scheduler = Scheduler(jobs, log_url, clock)
    clock.now = datetime(2027, 1, 4, 2, 51, tzinfo=UTC)
    (pull,) = scheduler.tick()
    assert pull.job == "crm_outcomes" and pull.outcome == "ok", pull
    won = [e for e in log.read(0, 100_000, ["opportunity_won"]).events if e.customer_id == LEAD]
    assert len(won) == 1 and won[0].properties["record_id"] == opportunity
    clock.now = datetime(2027, 1, 4, 3, 0, 30, tzinfo=UTC)
    runs = {r.job: r for r in scheduler.tick()}
    assert runs["retrain_lead"].outcome == "ok", runs["retrain_lead"]
    (challenge,) = [e.properties for e in log.read(0, 100_000, ["model_challenge"]).events]
    assert challenge["ci_low"] <= challenge["auc_difference"] <= challenge["ci_high"]
    assert challenge["holdout_rows"] > 0 and challenge["train_rows"] > challenge["holdout_rows"]
    registry = ModelRegistry(tmp_path / "models")
    if challenge["ci_low"] > 0:
        assert challenge["outcome"] == "promoted" and registry.versions("lead") == [challenge["challenger_version"]]
    else:
        assert challenge["outcome"] == "kept" and registry.versions("lead") == [] and challenge["champion_version"] == "rules-1"
    logged = {e.properties["job"]: e.properties for e in log.read(0, 100_000, ["schedule_run"]).events}
    assert logged["retrain_lead"]["summary"].startswith(("promoted", "kept"))
    print(f"\nscenario: score {score['score']:.0f}, task in {seconds:.2f} s; {logged['retrain_lead']['summary']}")
    scheduler.close()
    log.close()
