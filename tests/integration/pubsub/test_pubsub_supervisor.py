"""``ame agents up``'s supervisor on a ``pubsub://`` log (the emulator): it starts subscription shards and the
Pub/Sub projector instead of the position readers, and they fold the events posted to the decision API."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from agents.projector import ProjectorConfig
from agents.scoring import ScoringAgent
from agents.supervisor import AgentSupervisor, SupervisorError, consumer_kind
from data.projections.profile import ProfileProjection
from data.projections.store import open_state_store
from data.settings import get_settings
from serve.auth import generate_key
from serve.engine import Engine, ServeArgs
from serve.routes import build_api
from tests.integration.pubsub.test_pubsub_agents import warm_lead

pytestmark = pytest.mark.emulator
WAIT_S = 60.0


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.1)


def test_events_posted_to_the_api_are_folded_by_the_agents_on_pubsub(
    ray_cluster, pubsub_emulator: str, pubsub_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = ray_cluster
    home = tmp_path / "home"  # the API and the actors share it: the PII key store the API encrypts with
    monkeypatch.setenv("AME_HOME", str(home))
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    projector = ProjectorConfig.from_settings(pubsub_url, state_url, get_settings())
    env = {"PUBSUB_EMULATOR_HOST": pubsub_emulator, "AME_HOME": str(home)}
    sup = AgentSupervisor(pubsub_url, tmp_path / "agents", [ScoringAgent()], shards=2,
                          namespace=f"test-{uuid.uuid4().hex[:8]}", projector=projector, env=env)
    assert sup.kind == "subscription"
    sup.up()  # the subscriptions exist from here on: what is published now reaches every consumer
    token, key = generate_key("crm", ["ingest"])
    engine = Engine(ServeArgs(event_log=pubsub_url, state_store=state_url, api_keys=[key], pacing_from_agents=False,
                              agent_state_dir=str(tmp_path / "agents"), agent_shards=2))
    try:
        leads = [f"lead-{i}" for i in range(6)]
        events = [e for cid in leads for e in warm_lead(cid)]
        body = {"events": [orjson.loads(e.model_dump_json()) for e in events]}
        posted = TestClient(build_api(engine)).post("/v1/events", json=body, headers={"Authorization": f"Bearer {token}"})
        assert posted.status_code == 202 and posted.json()["appended"] == len(events), posted.text

        def records() -> dict:
            return {k: v for s in range(2) for k, v in ray.get(sup.actor("scoring", s).records.remote()).items()}

        def folded() -> bool:  # every shard reads the whole topic and keeps its own customers
            return sorted(r["counts"].get("page_view", 0) for r in records().values()) == [10] * len(leads)

        wait_until(folded, "the scoring shards to fold every lead's page views")
        wait_until(lambda: [s["position"] for s in sup.status() if s["agent"] == "scoring"] == [len(events)] * 2,
                   "each shard to apply the whole topic once (it keeps its own customers, acks the others)")
        rows = sup.status()
        assert {(s["agent"], s["shard"]) for s in rows} == {("scoring", 0), ("scoring", 1), ("projector:profile", 0)}
        assert all(s["running"] and s["last_error"] is None for s in rows), rows
        scoring = [s for s in rows if s["agent"] == "scoring"]
        assert all(s["appended"] > 0 for s in scoring), "each shard scored its own customers and published"

        store = open_state_store(state_url)
        try:
            def profiles() -> dict:
                with store.reading() as conn:
                    return ProfileProjection().load(conn, leads)

            wait_until(lambda: len(profiles()) == len(leads), "the projector to fold every lead's profile")
        finally:
            store.close()
        assert set(records()) == set(leads)
    finally:
        assert sup.down() == 3
        engine.close()


def test_the_log_url_picks_the_consumer_kind(tmp_path: Path) -> None:
    assert consumer_kind("pubsub://ame-prod/customer-events") == "subscription"
    assert consumer_kind(f"sqlite:///{tmp_path / 'events.db'}") == "positions"
    sup = AgentSupervisor("pubsub://ame-prod/customer-events", tmp_path)
    with pytest.raises(SupervisorError, match="no head position"):
        sup.wait_caught_up(timeout_s=0.1)
