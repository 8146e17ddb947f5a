"""The API's privacy duties in-process: consent on /v1/bid and /v1/next-best-action, and the audit log of
reads of a customer's data (data_accessed events)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agents.journey import JourneyAgent
from agents.runtime import AgentShard, ShardConfig
from data.log import open_log
from data.projections.base import Projector
from data.projections.profile import ProfileProjection
from serve.auth import generate_key
from serve.decide import PacingCache
from serve.engine import Engine, ServeArgs, Tunables
from serve.routes import build_api

TOKENS: dict[str, str] = {}


@pytest.fixture
def api(tmp_path: Path, log_url: str, state_url: str) -> Iterator[tuple[TestClient, Engine]]:
    keys = []
    for name, scopes in (("site", ["decide"]), ("crm", ["ingest"])):
        token, key = generate_key(name, scopes)
        TOKENS[name] = token
        keys.append(key)
    args = ServeArgs(event_log=log_url, state_store=state_url, api_keys=keys, pacing_from_agents=False,
                     policies_dir=str(tmp_path / "policies"), creative_store=f"sqlite:///{tmp_path / 'cr.db'}",
                     agent_state_dir=str(tmp_path / "agents"), agent_shards=1)
    engine = Engine(args, Tunables(poll_interval_s=5), pacing=PacingCache(lambda c: {}))
    yield TestClient(build_api(engine)), engine
    engine.close()


def _h(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


def _project(engine: Engine) -> None:
    """Bring what Serve reads up to date: the profile projection and the journey agent's state."""
    Projector(engine.log, engine.state, ProfileProjection()).catch_up()
    shard = AgentShard(JourneyAgent(), ShardConfig(log_url=engine.log_url, state_dir=engine.journey_state.state_dir), start=False)
    shard.catch_up()
    shard.close()


def _consent(cid: str, channel: str, granted: bool, minutes: int) -> dict:
    at = datetime(2026, 5, 1, 9, tzinfo=UTC) + timedelta(minutes=minutes)
    return {"event_id": f"{cid}-{channel}-{minutes}", "event_type": "consent_changed", "customer_id": cid,
            "occurred_at": at.isoformat(), "properties": {"channel": channel, "granted": granted}}


BID = {"id": "r1", "imp": [{"id": "1", "bidfloor": 0.01}], "device": {"ua": "x"}, "tmax": 80}


def test_no_bid_for_a_customer_who_withdrew_ad_consent(api) -> None:
    client, engine = api
    r = client.post("/v1/events", json={"events": [_consent("c-out", "ad", True, 0), _consent("c-out", "ad", False, 5),
                                                   _consent("c-in", "ad", True, 0)]}, headers=_h("crm"))
    assert r.status_code == 202 and r.json()["appended"] == 3
    _project(engine)
    bids = {cid: client.post("/v1/bid", json={**BID, "user": {"id": cid}}, headers=_h("site")).status_code
            for cid in ("c-out", "c-in")}
    assert bids == {"c-out": 204, "c-in": 200}


def test_next_best_action_never_uses_a_withdrawn_channel(api) -> None:
    client, engine = api
    events = [_consent("c-x", ch, False, i) for i, ch in enumerate(("email", "sms", "push", "ad"))]
    client.post("/v1/events", json={"events": events}, headers=_h("crm"))
    _project(engine)
    for _ in range(5):
        r = client.post("/v1/next-best-action", json={"customer_id": "c-x"}, headers=_h("site"))
        assert r.status_code == 200 and r.json()["channel"] is None


def test_reading_a_customer_is_audited(api) -> None:
    client, engine = api
    client.post("/v1/events", json={"events": [_consent("c-read", "email", True, 0)]}, headers=_h("crm"))
    _project(engine)
    assert client.get("/v1/customers/c-read", headers=_h("site")).status_code == 200
    assert client.get("/v1/customers/nobody", headers=_h("site")).status_code == 404
    engine.decisions.flush()
    log = open_log(engine.log_url)
    audits = list(log.read(limit=1000, event_types=["data_accessed"]).events)
    log.close()
    assert [(e.customer_id, e.properties["accessor"], e.properties["resource"]) for e in audits] == [
        ("c-read", "api:site", "GET /v1/customers/{customer_id}")]
