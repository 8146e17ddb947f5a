"""The decision API on a Pub/Sub log whose topic nobody created (the emulator): ``POST /v1/events`` answers 503
with the reason, never 500."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serve.auth import generate_key
from serve.engine import Engine, ServeArgs
from serve.routes import build_api

pytestmark = pytest.mark.emulator


def test_posting_to_a_missing_topic_is_a_503_naming_it(pubsub_url: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AME_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AME_PUBSUB_PUBLISH_TIMEOUT_S", "5")
    token, key = generate_key("crm", ["ingest"])
    args = ServeArgs(event_log=pubsub_url, state_store=f"sqlite:///{tmp_path / 'state.db'}", api_keys=[key],
                     pacing_from_agents=False, agent_state_dir=str(tmp_path / "agents"), agent_shards=1)
    engine = Engine(args)
    try:
        client = TestClient(build_api(engine))
        event = {"event_id": "evt-1", "event_type": "page_view", "customer_id": "cust-1",
                 "occurred_at": datetime(2026, 5, 1, 12, tzinfo=UTC).isoformat(), "properties": {"url": "https://x.example/"}}
        r = client.post("/v1/events", json={"events": [event]}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 503
        topic = pubsub_url.removeprefix("pubsub://").replace("/", "/topics/")
        assert r.json()["detail"].startswith("the event log is unavailable") and topic in r.json()["detail"]
    finally:
        engine.close()
