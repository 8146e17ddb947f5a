"""The agents on real Ray actors: the design's scenario end to end, and shard kills during a run."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agents.scoring import ScoringAgent
from agents.supervisor import AgentSupervisor
from data.events import ContentDownload, EmailClick, LeadCreated, PageView
from data.log import open_log

T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


def warm_lead(cid: str) -> list:
    events = [LeadCreated(event_id=f"{cid}-lead", customer_id=cid, occurred_at=T0)]
    events += [PageView(event_id=f"{cid}-pv{i}", customer_id=cid, occurred_at=T0 + timedelta(minutes=i), properties={"url": "/p"}) for i in range(10)]
    events += [EmailClick(event_id=f"{cid}-clk{i}", customer_id=cid, occurred_at=T0 + timedelta(minutes=12 + i)) for i in range(2)]
    return events


def test_content_download_of_a_warm_lead_creates_a_sales_task_within_2_s(ray_cluster, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    log = open_log(url)
    log.append([e for i in range(20) for e in warm_lead(f"lead-{i}")])
    sup = AgentSupervisor(url, tmp_path / "state", [ScoringAgent()], shards=2, namespace="test-scenario")
    sup.up()
    try:
        assert sup.wait_caught_up(30)
        before = log.read(0, 100_000).events
        assert not [e for e in before if e.event_type == "task_created"], "the warm leads are not hot yet"
        download = ContentDownload(event_id="dl-1", customer_id="lead-7", occurred_at=T0 + timedelta(hours=1), properties={"content_id": "wp-42", "content_type": "whitepaper"})
        start = time.monotonic()
        position = log.append([download]).last_position
        task = score = None
        while time.monotonic() - start < 5 and task is None:
            for e in log.read(position, 100).events:
                if e.causation_id == "dl-1" and e.event_type == "task_created":
                    task = e
                elif e.causation_id == "dl-1" and e.event_type == "score_updated" and e.properties["model"] == "lead":
                    score = e
            time.sleep(0.005)
        elapsed = time.monotonic() - start
        assert task is not None and score is not None, "no task_created for the download"
        assert score.properties["score"] >= 80 and score.position < task.position
        assert task.properties["queue"] == "sales" and task.customer_id == "lead-7"
        assert elapsed < 2.0, f"download -> task took {elapsed:.3f}s"
        statuses = sup.status()
        assert {s["shard"] for s in statuses} == {0, 1} and all(s["running"] for s in statuses)
    finally:
        sup.down()
