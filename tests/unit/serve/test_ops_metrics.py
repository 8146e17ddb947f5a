"""The engine-wide figures on /metrics, each with the value the code that knows it holds: the agent shards' lag and
liveness (from their status), the dead-letter store (from the log), each campaign's budget, spend today and plan
by now (from the bidding agent's record), and the PSI of the latest drift check."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from agents.bidding import BiddingAgent, BiddingConfig
from agents.runtime import AgentShard, ShardConfig
from agents.scoring import ScoringAgent
from data.dead_letter_counts import CountsDeadLetters, dead_letter_counts
from data.events import AuctionResult, EventBase, PageView
from data.log import open_log
from data.log.base import LogStats, RejectedInput
from policies.scoring.drift import DriftRow
from policies.scoring.drift_record import load_drift_checks, save_drift_check
from serve.decide import PacingCache
from serve.engine import Engine, ServeArgs, Tunables
from serve.metrics import ServeMetrics
from serve.ops_metrics import OpsSources, campaign_figures, with_missing_shards
from serve.routes import build_api

DAY_US = 86_400_000_000


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by name and labels (the replica label left out)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = frozenset((k, v) for k, v in s.labels.items() if k != "replica")
            out[(s.name, labels)] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, frozenset(labels.items()))]


def auction(i: int, at: datetime, campaign: str, paid: float) -> EventBase:
    props = {"campaign_id": campaign, "auction_id": f"au-{i}", "bid": 0.05, "won": paid > 0, "price_paid": paid,
             "estimate": 0.03, "price_to_beat": 0.02}
    return AuctionResult(event_id=f"au-{i}", customer_id="anonymous", occurred_at=at, properties=props)


def bidding_record(tmp_path: Path, events: list[EventBase], budget: float) -> dict[str, Any]:
    """The record the bidding agent folds from ``events`` (campaign cmp-a, daily budget ``budget``)."""
    url = f"sqlite:///{tmp_path / 'bids.db'}"
    log = open_log(url)
    log.append(events)
    log.close()
    shard = AgentShard(BiddingAgent(BiddingConfig(daily_budgets={"cmp-a": budget})),
                       ShardConfig(log_url=url, state_dir=tmp_path / "bid-state"), start=False)
    try:
        shard.catch_up()
        return shard.record("cmp-a")
    finally:
        shard.close()


# ---- the figures, from the code that knows them ----------------------------------------------------------------


def test_agent_lag_and_liveness_are_the_shards_status(tmp_path: Path, log_url: str) -> None:
    log = open_log(log_url)
    log.append([PageView(event_id=f"pv-{i}", customer_id=f"c{i}", occurred_at=datetime(2024, 1, 1, tzinfo=UTC),
                         properties={"url": "/x"}) for i in range(7)])
    log.close()
    shard = AgentShard(ScoringAgent(), ShardConfig(log_url=log_url, state_dir=tmp_path / "agents"), start=False)
    metrics = ServeMetrics("r1", OpsSources(agent_statuses=lambda: [shard.status()]))
    try:
        text = metrics.render().decode()
        assert value(text, "ame_agent_lag_events", agent="scoring", shard="0") == 7
        assert value(text, "ame_agent_up", agent="scoring", shard="0") == 0  # its loop is not running
        assert value(text, "ame_agent_restarts_total", agent="scoring", shard="0") == 0
        shard.catch_up()
        shard.start()
        text = metrics.render().decode()
        assert value(text, "ame_agent_lag_events", agent="scoring", shard="0") == 0
        assert value(text, "ame_agent_up", agent="scoring", shard="0") == 1
    finally:
        shard.close()


def test_a_shard_that_does_not_answer_reads_as_down() -> None:
    down = {"agent": "journey", "shard": 1, "shards": 2, "running": False, "last_error": "no answer"}
    text = ServeMetrics("r1", OpsSources(agent_statuses=lambda: [down])).render().decode()
    assert value(text, "ame_agent_up", agent="journey", shard="1") == 0
    assert ("ame_agent_lag_events", frozenset({("agent", "journey"), ("shard", "1")})) not in samples(text)


def test_campaign_spend_budget_and_plan_from_the_bidding_record(tmp_path: Path) -> None:
    day = datetime(2024, 10, 4, tzinfo=UTC)
    events = [auction(i, day + timedelta(minutes=10 * i), "cmp-a", 0.5 if i % 2 else 0.0) for i in range(12)]
    record = bidding_record(tmp_path, events, budget=20.0)
    curve = record["pacer"]["curve"]
    noon = int(day.timestamp() * 1e6) + DAY_US // 2
    text = ServeMetrics("r1", OpsSources(campaign_records=lambda: {"cmp-a": record}, now_us=lambda: noon)).render().decode()
    assert value(text, "ame_campaign_budget_daily", campaign="cmp-a") == 20.0
    assert value(text, "ame_campaign_spend_today", campaign="cmp-a") == pytest.approx(3.0)  # six auctions won at 0.5
    half = sum(curve[: len(curve) // 2]) / sum(curve)  # noon starts the day's middle slot
    assert value(text, "ame_campaign_planned_spend_today", campaign="cmp-a") == pytest.approx(20.0 * half)


def test_campaign_plan_follows_the_curve_and_a_new_day_starts_at_zero(tmp_path: Path) -> None:
    day = datetime(2024, 10, 4, tzinfo=UTC)
    record = bidding_record(tmp_path, [auction(0, day, "cmp-a", 0.5)], budget=10.0)
    record["pacer"]["curve"] = [1.0] * len(record["pacer"]["curve"])  # an even plan: the share is the time of day
    start = int(day.timestamp() * 1e6)
    quarter = campaign_figures(record, start + DAY_US // 4 + DAY_US // 192)  # half-way through a slot
    assert quarter is not None
    assert quarter.planned_spend_today == pytest.approx(10.0 * (0.25 + 1 / 192))
    assert quarter.spend_today == 0.5
    tomorrow = campaign_figures(record, start + DAY_US + 1)
    assert tomorrow is not None and tomorrow.spend_today == 0.0 and tomorrow.planned_spend_today == pytest.approx(0.0, abs=1e-3)
    assert campaign_figures(None, start) is None


def test_psi_of_the_latest_drift_check(tmp_path: Path) -> None:
    rows = [DriftRow("score", 0.31, "major", 500), DriftRow("recency_days", 0.04, "stable", 500)]
    save_drift_check(tmp_path, "lead", "20260101-000000-abcd", rows)
    save_drift_check(tmp_path, "lead", "20260101-000000-abcd", [DriftRow("score", 0.12, "moderate", 600)])
    checks = load_drift_checks(tmp_path)
    assert [(c.model, c.rows, c.psi) for c in checks] == [("lead", 600, {"score": 0.12})]  # the latest only
    save_drift_check(tmp_path, "churn", "v2", rows)
    text = ServeMetrics("r1", OpsSources(drift_checks=lambda: load_drift_checks(tmp_path))).render().decode()
    assert value(text, "ame_model_psi", model="churn", version="v2", input="score") == 0.31
    assert value(text, "ame_model_psi", model="churn", version="v2", input="recency_days") == 0.04
    assert value(text, "ame_model_psi", model="lead", version="20260101-000000-abcd", input="score") == 0.12


def test_a_failing_source_leaves_the_others() -> None:
    def broken() -> tuple[int, int]:
        raise RuntimeError("log unavailable")

    text = ServeMetrics("r1", OpsSources(dead_letters=broken, agent_statuses=lambda: [
        {"agent": "journey", "shard": 0, "running": True, "lag": 3, "restarts": 1, "errors": 2}])).render().decode()
    assert "ame_dead_letters_pending" not in text
    assert value(text, "ame_agent_lag_events", agent="journey", shard="0") == 3
    assert value(text, "ame_agent_errors_total", agent="journey", shard="0") == 2


def test_dead_letter_counts_agree_with_the_log_statistics(log_url: str) -> None:
    log = open_log(log_url)
    try:
        log.dead_letter([RejectedInput(b"{", "not JSON", "test"), RejectedInput(b"[]", "not an object", "test")])
        log.mark_redriven(log.dead_letters()[0].id, None)
        stats = log.stats()
        assert isinstance(log, CountsDeadLetters)  # the SQLite log counts them from its index, not via stats()
        assert dead_letter_counts(log) == (stats.dead_letters_pending, stats.dead_letters_redriven) == (1, 1)

        class StatsOnly:  # a log without its own count: read from its statistics
            def stats(self) -> LogStats:
                return stats

        assert dead_letter_counts(StatsOnly()) == (1, 1)  # type: ignore[arg-type]
    finally:
        log.close()


# ---- through the API's GET /metrics -----------------------------------------------------------------------------


@pytest.fixture
def api(tmp_path: Path, log_url: str, state_url: str) -> Iterator[tuple[TestClient, Path]]:
    now = datetime.now(UTC)
    record = bidding_record(tmp_path, [auction(i, now, "cmp-a", 0.25) for i in range(4)], 5.0)
    pacing = PacingCache(lambda campaigns: {"cmp-a": record}, interval_s=0.01)
    pacing.get("cmp-a")  # the campaign a bid asked for
    args = ServeArgs(event_log=log_url, state_store=state_url, pacing_from_agents=False, models_dir=str(tmp_path / "models"),
                     creative_store=f"sqlite:///{tmp_path / 'creatives.db'}", agent_state_dir=str(tmp_path / "agents"),
                     agent_shards=1)
    engine = Engine(args, Tunables(poll_interval_s=0.05), pacing=pacing)
    deadline = time.monotonic() + 5
    while not pacing.records() and time.monotonic() < deadline:
        time.sleep(0.01)
    yield TestClient(build_api(engine)), tmp_path
    engine.close()


def test_metrics_route_reports_dead_letters_campaigns_and_drift(api: tuple[TestClient, Path], log_url: str) -> None:
    client, tmp_path = api
    text = client.get("/metrics").text
    assert value(text, "ame_dead_letters_pending") == 0
    log = open_log(log_url)
    log.dead_letter([RejectedInput(b'{"bad": 1}', "no event_type", "test"), RejectedInput(b"{", "not JSON", "test")])
    log.close()
    save_drift_check(tmp_path / "models", "lead", "v1", [DriftRow("score", 0.27, "major", 100)])
    text = client.get("/metrics").text
    assert value(text, "ame_dead_letters_pending") == 2
    assert value(text, "ame_dead_letters_total") == 2
    assert value(text, "ame_campaign_spend_today", campaign="cmp-a") == pytest.approx(1.0)
    assert value(text, "ame_campaign_budget_daily", campaign="cmp-a") == 5.0
    assert 0 <= value(text, "ame_campaign_planned_spend_today", campaign="cmp-a") <= 5.0
    assert value(text, "ame_model_psi", model="lead", version="v1", input="score") == 0.27


def test_a_shard_missing_from_the_cluster_reads_as_down() -> None:
    statuses = [{"agent": "journey", "shard": 0, "shards": 3, "running": True, "lag": 0, "restarts": 0, "errors": 0}]
    text = ServeMetrics("r1", OpsSources(agent_statuses=lambda: with_missing_shards(statuses))).render().decode()
    assert value(text, "ame_agent_up", agent="journey", shard="0") == 1
    assert value(text, "ame_agent_up", agent="journey", shard="1") == value(text, "ame_agent_up", agent="journey", shard="2") == 0
