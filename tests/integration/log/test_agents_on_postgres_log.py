"""The agents on real Ray actors reading a PostgreSQL event log by position (``AME_EVENT_LOG=postgresql://…``),
their state in the same database: every shard catches up, no decision is written twice, and a serial replay of
the log finds every output already there (0 lost)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from agents.journey import JourneyAgent
from agents.runtime import replay_serially
from agents.scoring import ScoringAgent
from agents.supervisor import AgentSupervisor
from data.log import open_log, positional
from data.settings import get_settings
from data.synthetic import synthetic_dicts


def test_agents_consume_a_postgresql_log(ray_cluster: object, postgres_url: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    log = positional(open_log(postgres_url), "the test")
    agents, shards = [ScoringAgent(), JourneyAgent()], 2
    monkeypatch.setenv("AME_STATE_STORE", postgres_url)
    get_settings.cache_clear()
    sup = AgentSupervisor(postgres_url, tmp_path / "state", agents, shards=shards, namespace="test-postgres-log",
                          batch_size=300)
    sup.up()
    try:
        stream = list(synthetic_dicts(2_000, customers=200, seed=19))
        for i in range(0, len(stream), 400):
            log.append(stream[i : i + 400])
            time.sleep(0.05)
        assert sup.wait_caught_up(180), "the shards did not catch up with the PostgreSQL log"
    finally:
        sup.down()
    events = log.read(0, 1_000_000).events
    outputs = Counter((e.source, e.event_type, e.causation_id, e.customer_id, e.properties.get("model"))
                      for e in events if e.source.startswith("agent:") and e.source != "agent:scheduler")
    assert len(outputs) > 100 and max(outputs.values()) == 1  # decisions were made, none twice
    for agent in agents:  # 0 lost: a serial replay re-derives only outputs the log already holds
        _, appended, _ = replay_serially(type(agent)(), postgres_url, tmp_path / f"serial-{agent.name}")
        assert appended == 0, f"{agent.name}: {appended} outputs were missing from the log"
    log.close()
