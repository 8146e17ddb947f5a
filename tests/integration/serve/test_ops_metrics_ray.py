"""The agents' figures on /metrics come from the running shard actors: lag while they are stopped, 0 and up once
they have caught up, and a killed shard reads as down."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from agents.scoring import ScoringAgent
from agents.supervisor import AgentSupervisor
from data.events import PageView
from data.log import open_log
from serve.metrics import ServeMetrics
from serve.ops_metrics import OpsSources, agent_statuses_over_ray


def agent_samples(metrics: ServeMetrics) -> dict[tuple[str, str], float]:
    """(metric, shard) -> value for the scoring agent's shards."""
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            if s.labels.get("agent") == "scoring":
                out[(s.name, s.labels["shard"])] = s.value
    return out


def test_agent_metrics_from_the_shard_actors(ray_cluster, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    log = open_log(url)
    log.append([PageView(event_id=f"pv-{i}", customer_id=f"c{i}", occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
                         properties={"url": "/p"}) for i in range(40)])
    log.close()
    sup = AgentSupervisor(url, tmp_path / "state", [ScoringAgent()], shards=2, namespace="test-ops-metrics")
    metrics = ServeMetrics("r1", OpsSources(agent_statuses=lambda: agent_statuses_over_ray("test-ops-metrics", 10.0)))
    sup.up(start=False)
    try:
        before = agent_samples(metrics)
        assert before[("ame_agent_lag_events", "0")] == before[("ame_agent_lag_events", "1")] == 40
        assert before[("ame_agent_up", "0")] == 0
        sup.start()
        assert sup.wait_caught_up(30)
        after = agent_samples(metrics)
        assert after[("ame_agent_lag_events", "0")] == after[("ame_agent_lag_events", "1")] == 0
        assert after[("ame_agent_up", "0")] == after[("ame_agent_up", "1")] == 1
        import ray  # lazy like the code under test: Ray is heavy

        ray.kill(sup.actor("scoring", 1), no_restart=True)
        down = agent_samples(metrics)
        assert down[("ame_agent_up", "1")] == 0 and ("ame_agent_lag_events", "1") not in down
        assert down[("ame_agent_up", "0")] == 1
    finally:
        sup.down()
