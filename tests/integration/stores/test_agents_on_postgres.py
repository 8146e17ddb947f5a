"""The agents on real Ray actors with their state in PostgreSQL (``AME_STATE_STORE=postgresql://…``): shards
killed during a run resume from the shared store and lose nothing, duplicate nothing, and end in the state of a
serial replay on the embedded SQLite store (record by record; floats to 1e-9)."""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from agents.journey import JourneyAgent
from agents.runtime import replay_serially
from agents.scoring import ScoringAgent
from agents.state_repository import read_records
from agents.supervisor import AgentSupervisor
from data.log import open_log
from data.settings import get_settings
from data.synthetic import synthetic_dicts


def test_shard_kills_with_postgres_state_lose_nothing(ray_cluster, postgres_url: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    log = open_log(url)
    agents, shards = [ScoringAgent(), JourneyAgent()], 2
    monkeypatch.setenv("AME_STATE_STORE", postgres_url)
    get_settings.cache_clear()
    sup = AgentSupervisor(url, tmp_path / "state", agents, shards=shards, namespace="test-postgres-state", batch_size=300)
    assert sup.base.state_store == postgres_url  # handed to the actors in their config
    sup.up()
    rng, kills = random.Random(5), 0
    try:
        stream = list(synthetic_dicts(6_000, customers=300, seed=9))
        for i in range(0, len(stream), 300):
            log.append(stream[i : i + 300])
            if i % 1_500 == 0:
                ray_cluster.kill(sup.actor(rng.choice(agents).name, rng.randrange(shards)), no_restart=False)
                kills += 1
            time.sleep(0.05)
        assert sup.wait_caught_up(240), "the shards did not catch up after the kills"
        assert sum(s["restarts"] for s in sup.status()) >= 1
    finally:
        sup.down()
    assert kills >= 3 and not list((tmp_path / "state").glob("*.db"))  # no state on the node's disk

    events = log.read(0, 10_000_000).events
    outputs = Counter((e.source, e.event_type, e.causation_id, e.customer_id, e.properties.get("model"))
                      for e in events if e.source.startswith("agent:") and e.source != "agent:scheduler")
    assert outputs and max(outputs.values()) == 1  # 0 decisions duplicated
    live = {agent.name: read_records(tmp_path / "state", agent.name, shards, postgres_url) for agent in agents}
    monkeypatch.delenv("AME_STATE_STORE")
    get_settings.cache_clear()
    for agent in agents:  # 0 lost: a serial replay on SQLite re-derives only outputs already in the log
        serial, appended, _ = replay_serially(type(agent)(), url, tmp_path / f"serial-{agent.name}")
        assert appended == 0, f"{agent.name}: {appended} outputs of the serial replay were missing from the log"
        assert set(live[agent.name]) == set(serial)
        differ = [k for k in serial if not _same(live[agent.name][k], serial[k])]
        assert not differ, f"{agent.name}: {len(differ)} records differ from a serial replay, first {differ[0]!r}"


def _same(a: object, b: object) -> bool:
    """Equal records, floats to 1e-9 relative: the journey belief's float sums differ in the last bits with the
    batch boundaries (a resumed shard cuts the stream elsewhere than a serial replay)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b
