"""The design's scenario on the production backend: a Ray actor runs the scoring agent on a Pub/Sub
subscription (the emulator); a warm lead's content download becomes score_updated >= 80, then task_created."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.cloud import pubsub_v1

from agents.pubsub_shard import PubSubAgentShard, pubsub_shard_actor_class
from agents.scoring import ScoringAgent
from data.events import ContentDownload, EmailClick, LeadCreated, PageView
from data.log.pubsub import PubSubEventLog, decode_message
from data.log.pubsub_admin import ensure_consumer_resources

pytestmark = pytest.mark.emulator
T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


def warm_lead(cid: str) -> list:
    events = [LeadCreated(event_id=f"{cid}-lead", customer_id=cid, occurred_at=T0)]
    events += [PageView(event_id=f"{cid}-pv{i}", customer_id=cid, occurred_at=T0 + timedelta(minutes=i),
                        properties={"url": "/p"}) for i in range(10)]
    events += [EmailClick(event_id=f"{cid}-clk{i}", customer_id=cid, occurred_at=T0 + timedelta(minutes=12 + i))
               for i in range(2)]
    return events


def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.02)


def test_scenario_on_pubsub_with_a_ray_actor(ray_cluster, pubsub_emulator: str, pubsub_url: str, tmp_path: Path) -> None:
    ray = ray_cluster
    env = {"PUBSUB_EMULATOR_HOST": pubsub_emulator, "AME_HOME": str(tmp_path / "actor-home")}
    actor = pubsub_shard_actor_class().options(runtime_env={"env_vars": env}).remote(
        ScoringAgent(), pubsub_url, tmp_path / "state"
    )
    assert ray.get(actor.status.remote(), timeout=60)["agent"] == "scoring"
    watcher = ensure_consumer_resources(pubsub_url, "watcher", ["score_updated", "task_created"], ack_deadline_s=10,
                                        retry_backoff_s=None)
    log = PubSubEventLog(pubsub_url, dead_letter_store=f"sqlite:///{tmp_path / 'dl.db'}", publish_timeout_s=30)
    log.append([e for cid in ("lead-1", "lead-7") for e in warm_lead(cid)])
    wait_until(lambda: ray.get(actor.status.remote())["applied"] >= 26, 30, "the actor to apply the warm leads")

    client = pubsub_v1.SubscriberClient()
    seen: list = []

    def drain() -> None:
        response = client.pull(subscription=watcher, max_messages=100, timeout=5, return_immediately=True)
        if response.received_messages:
            seen.extend(decode_message(r.message.data) for r in response.received_messages)
            client.acknowledge(subscription=watcher, ack_ids=[r.ack_id for r in response.received_messages])

    drain()
    assert not [e for e in seen if e.event_type == "task_created"], "the warm leads are not hot yet"
    download = ContentDownload(event_id="dl-1", customer_id="lead-7", occurred_at=T0 + timedelta(hours=1),
                               properties={"content_id": "wp-42", "content_type": "whitepaper"})
    start = time.monotonic()
    log.append([download])

    def task_seen() -> bool:
        drain()
        return any(e.event_type == "task_created" and e.causation_id == "dl-1" for e in seen)

    wait_until(task_seen, 10, "task_created for the download")
    elapsed = time.monotonic() - start
    caused = [e for e in seen if e.causation_id == "dl-1"]
    score = next(e for e in caused if e.event_type == "score_updated" and e.properties.model == "lead")
    task = next(e for e in caused if e.event_type == "task_created")
    assert score.properties.score >= 80 and task.customer_id == "lead-7" and task.properties.queue == "sales"
    assert elapsed < 2.0, f"download -> task took {elapsed:.3f} s on Pub/Sub"

    # a redelivered download (published again) is applied once: no second task
    log.append([download])
    time.sleep(1.0)
    drain()
    assert len([e for e in seen if e.event_type == "task_created" and e.causation_id == "dl-1"]) == 1
    status = ray.get(actor.status.remote())
    assert status["duplicates"] >= 1 and status["error"] is None
    ray.kill(actor)
    client.close()
    log.close()


def test_the_plain_shard_runs_without_ray(pubsub_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AME_HOME", str(tmp_path / "home"))
    shard = PubSubAgentShard(ScoringAgent(), pubsub_url, tmp_path / "state")
    log = PubSubEventLog(pubsub_url, dead_letter_store=f"sqlite:///{tmp_path / 'dl.db'}", publish_timeout_s=30)
    try:
        log.append(warm_lead("lead-3"))
        wait_until(lambda: shard.status()["applied"] >= 13, 30, "the shard to apply 13 events")
        record = shard.records()["lead-3"]
        assert record["counts"]["page_view"] == 10
    finally:
        shard.stop()
        log.close()
