"""The lead retrain on CRM outcomes: the training table is the scoring agent's fold before each outcome, the gate
logs model_challenge with both AUCs and the CI, and only a promoted challenger reaches the registry."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from agents.retrain import RetrainArgs, retrain_lead, training_table
from agents.runtime import AgentShard, ShardConfig
from agents.scheduler_jobs import drift_lead
from agents.scoring import ScoringAgent, load_scorer
from data.events import OpportunityLost, OpportunityWon, PageView
from data.log import open_log
from policies.scoring.drift_record import load_drift_checks
from policies.scoring.registry import ModelRegistry
from tests.integration.crm.history import past_leads

NOW = datetime(2026, 1, 2, 3, 0, tzinfo=UTC)


def _outcomes(leads) -> list:
    out = []
    for lead in leads:
        cls = OpportunityWon if lead.won else OpportunityLost
        out.append(cls(event_id=f"o-{lead.customer_id}", customer_id=lead.customer_id, occurred_at=lead.closed_at, source="test",
                       properties={"record_id": f"OPP{lead.customer_id[-4:]}", "modified_at": lead.closed_at}))
    return out


def test_the_table_folds_only_the_events_before_the_outcome(log_url: str) -> None:
    events, leads = past_leads(30)
    log = open_log(log_url)
    log.append(events + _outcomes(leads))
    frame = training_table(log)
    assert len(frame) == 30 and set(frame["won"]) <= {0, 1}
    first = frame.set_index("customer_id").loc[leads[0].customer_id]
    assert first["n_lead_created"] == 1 and first["lead_points"] > 0
    log.close()


def test_a_retrain_challenges_the_champion_and_logs_the_figures(log_url: str, tmp_path: Path) -> None:
    events, leads = past_leads(400)
    log = open_log(log_url)
    log.append(events + _outcomes(leads))
    registry = ModelRegistry(tmp_path / "models")
    report = retrain_lead(log, registry, NOW, RetrainArgs(bootstrap=300), log_url=log_url)
    assert report.challenge is not None and report.champion_version == "rules-1"
    (event,) = [e for e in log.read(0, 10_000).events if e.event_type == "model_challenge"]
    p = event.properties
    assert p["champion_auc"] == report.challenge.champion_auc and p["ci_low"] <= p["auc_difference"] <= p["ci_high"]
    assert p["outcome"] == ("promoted" if report.challenge.ci_low > 0 else "kept")
    assert registry.versions("lead") == ([report.promoted_version] if p["outcome"] == "promoted" else [])
    log.close()


def test_too_few_outcomes_skip_the_retrain(log_url: str, tmp_path: Path) -> None:
    events, leads = past_leads(10)
    log = open_log(log_url)
    log.append(events + _outcomes(leads))
    report = retrain_lead(log, ModelRegistry(tmp_path / "models"), NOW, log_url=log_url)
    assert report.challenge is None and "needs 50" in report.line()
    log.close()


def test_a_better_challenger_is_promoted_and_then_defends_its_place(log_url: str, tmp_path: Path) -> None:
    events, leads = past_leads(400, views_decide=True)  # page views decide: the rule scorer weighs them least
    log = open_log(log_url)
    log.append(events + _outcomes(leads))
    registry = ModelRegistry(tmp_path / "models")
    first = retrain_lead(log, registry, NOW, RetrainArgs(bootstrap=300), log_url=log_url)
    assert first.promoted_version is not None and first.challenge.ci_low > 0, first.line()
    assert registry.versions("lead") == [first.promoted_version]
    assert registry.metadata("lead")["challenge"]["champion_version"] == "rules-1"

    scorer = load_scorer(tmp_path / "models")  # what the scoring agent loads on its next start
    viewer = scorer.score("lead", {"lead_points": 40.0, "n_page_view": 10.0, "n_lead_created": 1.0, "events_total": 11.0})
    clicker = scorer.score("lead", {"lead_points": 50.0, "n_email_click": 4.0, "n_lead_created": 1.0, "events_total": 5.0})
    assert viewer.probability > clicker.probability

    second = retrain_lead(log, registry, NOW.replace(day=3), RetrainArgs(bootstrap=300), log_url=log_url)
    assert second.champion_version == first.promoted_version and second.promoted_version is None, second.line()
    outcomes = [e.properties["outcome"] for e in log.read(0, 100_000, ["model_challenge"]).events]
    assert outcomes == ["promoted", "kept"] and registry.versions("lead") == [first.promoted_version]

    summary = drift_lead(log_url, tmp_path / "models")  # the scheduled drift check on the promoted model
    assert summary.startswith(f"{first.promoted_version}: largest PSI") and load_drift_checks(tmp_path / "models")
    log.close()


def test_a_promotion_reaches_the_running_scoring_agent_through_the_log(log_url: str, tmp_path: Path) -> None:
    events, leads = past_leads(400, views_decide=True)
    log = open_log(log_url)
    log.append(events + _outcomes(leads))
    models, config = tmp_path / "models", ShardConfig(log_url=log_url, state_dir=tmp_path / "agents")
    running = AgentShard(ScoringAgent(models_dir=models), config, start=False)  # as `ame agents up` builds it
    running.catch_up()
    assert running.agent.scorer.version == "rules-1"

    report = retrain_lead(log, ModelRegistry(models), NOW, RetrainArgs(bootstrap=300), log_url=log_url)
    assert report.promoted_version is not None, report.line()
    view = PageView(event_id="after-promotion", customer_id=leads[0].customer_id, occurred_at=NOW, source="test",
                    properties={"url": "https://example.com/pricing"})
    log.append([view])
    running.catch_up()  # folds the model_challenge, then the page view
    scored = {e.properties["model"]: e.properties["model_version"]
              for e in log.read(0, 100_000, ["score_updated"]).events if e.causation_id == view.event_id}
    assert scored.get("lead") == f"lead:{report.promoted_version}", scored
    running.close()

    restarted = AgentShard(ScoringAgent(models_dir=models), config, start=False)  # a shard restarted after it
    assert restarted.agent.scorer.version == f"lead:{report.promoted_version}"
    restarted.close()
    log.close()
