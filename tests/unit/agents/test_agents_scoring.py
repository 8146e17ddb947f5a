"""The scoring agent's decide() and the runtime's exactly-once loop, without Ray."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agents.runtime import AgentShard, ShardConfig, StateView, in_holdout
from agents.scoring import ScoringAgent, ScoringRules
from data.events import ContentDownload, EmailClick, LeadCreated, PageView, SupportTicket, derive_event_id, validate_event
from data.log import open_log
from data.log.base import StoredEvent
from data.sharding import shard_of, stable_hash
from data.synthetic import synthetic_events

T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


def stored(event, position: int) -> StoredEvent:
    return StoredEvent.of(event, position, 0)


def warm_lead(cid: str = "c-1") -> list:
    events = [LeadCreated(event_id=f"{cid}-lead", customer_id=cid, occurred_at=T0)]
    events += [
        PageView(event_id=f"{cid}-pv{i}", customer_id=cid, occurred_at=T0 + timedelta(minutes=i), properties={"url": "/p"})
        for i in range(10)
    ]
    events += [EmailClick(event_id=f"{cid}-clk{i}", customer_id=cid, occurred_at=T0 + timedelta(minutes=12 + i)) for i in range(2)]
    events.append(ContentDownload(event_id=f"{cid}-dl1", customer_id=cid, occurred_at=T0 + timedelta(minutes=20),
                                  properties={"content_id": "wp1"}))
    return events


def test_stable_hash_is_stable_and_spreads() -> None:
    assert stable_hash("cust-1") == stable_hash("cust-1")
    shards = [shard_of(f"c{i}", 4) for i in range(4000)]
    assert all(900 < shards.count(s) < 1100 for s in range(4))
    share = sum(in_holdout(f"c{i}", 0.05) for i in range(20000)) / 20000
    assert 0.04 < share < 0.06


def test_warm_lead_download_crosses_80_and_creates_one_task() -> None:
    agent = ScoringAgent()
    cache: dict = {}
    view = StateView(cache, lambda keys: {}, list)
    events = [stored(e, i + 1) for i, e in enumerate(warm_lead())]
    out = agent.decide(events[:-1], view)
    assert not [e for e in out if e.event_type == "task_created"]
    out = agent.decide(events[-1:], view)
    types = [e.event_type for e in out]
    assert "task_created" in types
    lead = [e for e in out if e.event_type == "score_updated" and e.properties.model == "lead"]
    assert lead and lead[-1].properties.score >= 80
    task = next(e for e in out if e.event_type == "task_created")
    assert task.event_id == derive_event_id(events[-1].event_id, "scoring", "task", at=events[-1].occurred_at)
    assert task.causation_id == events[-1].event_id and task.properties.queue == "sales"


def test_threshold_is_configurable() -> None:
    agent = ScoringAgent(ScoringRules(lead_task_threshold=99))
    view = StateView({}, lambda keys: {}, list)
    out = agent.decide([stored(e, i + 1) for i, e in enumerate(warm_lead())], view)
    assert not [e for e in out if e.event_type == "task_created"]


def test_angry_tickets_start_the_retention_journey() -> None:
    agent = ScoringAgent()
    view = StateView({}, lambda keys: {}, list)
    tickets = [
        SupportTicket(event_id=f"t{i}", customer_id="c-9", occurred_at=T0 + timedelta(hours=i),
                      properties={"ticket_id": f"k{i}", "sentiment": -0.9})
        for i in range(3)
    ]
    out = agent.decide([stored(e, i + 1) for i, e in enumerate(tickets)], view)
    starts = [e for e in out if e.event_type == "decision_made"]
    assert len(starts) == 1 and starts[0].properties.action == "start_journey:retention"


def test_crash_before_commit_re_derives_the_same_ids(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    log = open_log(url)
    log.append(warm_lead("a") + warm_lead("b"))
    config = ShardConfig(log_url=url, state_dir=tmp_path / "state", batch_size=5)

    class Boom(RuntimeError):
        pass

    shard = AgentShard(ScoringAgent(), config, start=False)
    store = shard.state.store
    original = store.commit_position

    def failing(conn, consumer, position):  # the outputs are appended, the commit fails
        raise Boom()

    store.commit_position = failing  # type: ignore[method-assign]
    with contextlib.suppress(Boom):
        shard.step()
    store.commit_position = original  # type: ignore[method-assign]
    assert shard.state.position() == 0 and shard.records() == {}  # the records rolled back with the position
    shard.close()
    again = AgentShard(ScoringAgent(), config, start=False)
    again.catch_up()
    assert again.duplicates > 0
    events = log.read(0, 10_000).events
    ids = [e.event_id for e in events]
    assert len(ids) == len(set(ids))
    assert sum(e.event_type == "task_created" for e in events) == 2
    again.close()


def test_every_output_validates_against_its_schema() -> None:
    """Outputs are built without re-validation on the hot path, so check them here, over a mixed stream."""
    agent = ScoringAgent()
    view = StateView({}, lambda keys: {}, list)
    events = [stored(e, i + 1) for i, e in enumerate([*warm_lead(), *synthetic_events(3_000, 50, seed=3)])]
    out = agent.decide(events, view)
    assert {e.event_type for e in out} >= {"score_updated", "task_created"}
    for e in out:
        assert validate_event(e.model_dump(mode="json")) == e
