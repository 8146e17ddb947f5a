"""The decision API's routes in-process (FastAPI TestClient, no Ray): auth, validation, size limit, every route,
decisions logged with propensity and policy version, flushed on close, hot swap through the slot pointer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from agents.journey import JourneyAgent
from agents.journey_decision import JourneyRules
from agents.runtime import AgentShard, ShardConfig
from data.log import open_log
from data.log.base import LogUnavailable
from data.postgres_db import PostgresUnavailable
from data.projections.base import Projector
from data.projections.profile import ProfileProjection
from data.projections.store import open_state_store
from data.settings import get_settings
from policies.creative.models import Verdict, make_variant
from policies.slots import BUILTINS, RegistrySource, SlotPointers, SlotTarget
from serve.auth import generate_key
from serve.decide import PacingCache
from serve.engine import Engine, ServeArgs, Tunables, api_keys
from serve.nba import NextBestAction
from serve.routes import build_api

TOKENS: dict[str, str] = {}


class FixedMultiplier:
    def __init__(self, m: float) -> None:
        self.m = m

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False) -> Any:
        return np.full((np.atleast_2d(observation).shape[0], 1), self.m, dtype=np.float32), state


@pytest.fixture
def setup(tmp_path: Path, log_url: str, state_url: str) -> Iterator[tuple[TestClient, Engine, Path]]:
    keys = []
    for name, scopes in (("crm", ["ingest"]), ("site", ["decide"]), ("ops", ["admin"])):
        token, key = generate_key(name, scopes)
        TOKENS[name] = token
        keys.append(key)
    policies = tmp_path / "policies"

    source = RegistrySource(policies, BUILTINS, loader=lambda name, version: FixedMultiplier(float(version.split("-")[1])))
    args = ServeArgs(event_log=log_url, state_store=state_url, api_keys=keys, pacing_from_agents=False,
                     creative_store=f"sqlite:///{tmp_path / 'creatives.db'}", max_body_bytes=4096,
                     agent_state_dir=str(tmp_path / "agents"), agent_shards=1)
    engine = Engine(args, Tunables(poll_interval_s=0.05), source=source, pacing=PacingCache(lambda c: {}))
    client = TestClient(build_api(engine))
    yield client, engine, policies
    engine.close()


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


BID = {"id": "req-1", "imp": [{"id": "1", "bidfloor": 0.1}], "user": {"id": "cust-1"}, "device": {"ua": "x"}, "tmax": 80}


def event(i: int, **extra: Any) -> dict[str, Any]:
    at = (datetime(2026, 5, 1, 12, tzinfo=UTC) + timedelta(minutes=i)).isoformat()
    return {"event_id": f"evt-{i}", "event_type": "page_view", "customer_id": "cust-1", "occurred_at": at,
            "properties": {"url": "https://example.com/p"}, **extra}


def test_auth_401_and_403(setup: tuple[TestClient, Engine, Path]) -> None:
    client, _, _ = setup
    assert client.post("/v1/bid", json=BID).status_code == 401
    assert client.post("/v1/bid", json=BID, headers={"X-API-Key": "ame_wrong"}).status_code == 401
    r = client.post("/v1/bid", json=BID, headers=auth("crm"))
    assert r.status_code == 403 and "decide" in r.json()["detail"]
    assert client.post("/v1/bid", json=BID, headers=auth("ops")).status_code == 200  # admin holds every scope
    assert client.get("/healthz").status_code == 200


def test_validation_names_the_field_and_size_limit(setup: tuple[TestClient, Engine, Path]) -> None:
    client, _, _ = setup
    bad = {**BID, "imp": [{"id": "1", "bidfloor": -1}]}
    r = client.post("/v1/bid", json=bad, headers=auth("site"))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "imp.0.bidfloor"
    r = client.post("/v1/next-best-action", json={"customer_id": "bad id!"}, headers=auth("site"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "customer_id"
    big = {"events": [event(i) for i in range(40)]}
    assert client.post("/v1/events", json=big, headers=auth("crm")).status_code == 413


def test_events_accepted_rejected_dead_lettered(setup: tuple[TestClient, Engine, Path], log_url: str) -> None:
    client, _, _ = setup
    bad = event(2)
    bad["properties"] = {"url": 5, "nope": 1}
    r = client.post("/v1/events", json={"events": [event(1), bad, event(1)]}, headers=auth("crm"))
    assert r.status_code == 202
    body = r.json()
    assert (body["accepted"], body["appended"], body["duplicates"], body["rejected"]) == (2, 1, 1, 1)
    assert body["errors"][0]["index"] == 1 and body["errors"][0]["event_id"] == "evt-2"
    assert "properties" in body["errors"][0]["error"]
    log = open_log(log_url)
    letters = log.dead_letters()
    assert len(letters) == 1 and letters[0].source.startswith("api:crm")
    log.close()


def test_bid_price_no_bid_and_decisions_logged_on_close(setup: tuple[TestClient, Engine, Path], log_url: str) -> None:
    client, engine, _ = setup
    r = client.post("/v1/bid", json=BID, headers=auth("site"))
    assert r.status_code == 200
    bid = r.json()["seatbid"][0]["bid"][0]
    assert bid["impid"] == "1" and bid["price"] == pytest.approx(2.0 * 0.4)  # default value x builtin multiplier
    assert r.json()["ext"]["policy_version"] == "builtin"
    high_floor = {**BID, "imp": [{"id": "1", "bidfloor": 5.0}]}
    assert client.post("/v1/bid", json=high_floor, headers=auth("site")).status_code == 204
    assert client.post("/v1/bid", json={**BID, "tmax": 2}, headers=auth("site")).status_code == 204
    engine.close()  # graceful shutdown: nothing queued may be lost
    log = open_log(log_url)
    decisions = [e.properties for e in log.read(0, 100, ["decision_made"]).events]
    log.close()
    assert [d["action"] for d in decisions] == ["bid", "no_bid", "no_bid"]
    assert all(d["propensity"] == 1.0 and d["policy_version"] == "builtin" for d in decisions)


def test_next_best_action_and_customer(setup: tuple[TestClient, Engine, Path], log_url: str, state_url: str) -> None:
    client, engine, _ = setup
    assert client.get("/v1/customers/cust-1", headers=auth("site")).status_code == 404
    client.post("/v1/events", json={"events": [event(i) for i in range(3)]}, headers=auth("crm"))

    log = open_log(log_url)
    Projector(log, open_state_store(state_url), ProfileProjection()).catch_up()
    r = client.get("/v1/customers/cust-1", headers=auth("site"))
    assert r.status_code == 200 and r.json()["profile"]["events_total"] == 3
    assert isinstance(r.json()["scores"], list)

    consent = {**event(9), "event_id": "consent-1", "event_type": "consent_changed", "properties": {"channel": "email", "granted": True}}
    client.post("/v1/events", json={"events": [consent]}, headers=auth("crm"))
    shard = AgentShard(JourneyAgent(), ShardConfig(log_url=log_url, state_dir=engine.journey_state.state_dir), start=False)
    shard.catch_up()  # the journey agent folds the customer's events: the state the route reads
    shard.close()
    # no quiet hours: the route decides at the wall clock's time, and the offer would be held back at night
    engine.nba = NextBestAction(engine.journey_state.record, JourneyRules.of(quiet_hours=(0, 0)))
    r = client.post("/v1/next-best-action", json={"customer_id": "cust-1"}, headers=auth("site"))
    assert r.status_code == 200
    body = r.json()
    assert (body["policy_name"], body["policy_version"]) == ("offer_every_k", "builtin")
    assert (body["action"], body["channel"], body["propensity"]) == ("offer", "email", 1.0)  # consent read from the agent's state
    assert engine.decisions.flush(10)
    logged = [e for e in log.read(0, 100, ["decision_made"]).events if e.event_id == body["decision_id"]]
    assert logged and logged[0].properties["agent"] == "serve:nba"
    assert logged[0].properties["context"]["allowed"] and logged[0].properties["context"]["obs"]
    log.close()


def test_metrics_have_route_latency_and_decisions(setup: tuple[TestClient, Engine, Path]) -> None:
    client, _, _ = setup
    client.post("/v1/bid", json=BID, headers=auth("site"))
    text = client.get("/metrics").text
    assert 'ame_serve_request_seconds_bucket{le="0.001",replica=' in text or "ame_serve_request_seconds_bucket" in text
    assert 'route="/v1/bid"' in text
    assert 'ame_serve_decisions_total{kind="bid",policy="profile_pacing",replica=' in text
    assert "ame_serve_event_lag_events" in text


def test_hot_swap_follows_the_slot_pointer(setup: tuple[TestClient, Engine, Path]) -> None:
    client, engine, policies = setup
    SlotPointers(policies).point("bidding", SlotTarget("fixed", "v-0.5"))
    deadline = time.monotonic() + 5
    while engine.slots["bidding"].current.version != "v-0.5" and time.monotonic() < deadline:
        time.sleep(0.02)
    r = client.post("/v1/bid", json=BID, headers=auth("site"))
    assert r.json()["ext"]["policy_version"] == "v-0.5"
    assert r.json()["seatbid"][0]["bid"][0]["price"] == pytest.approx(1.0)
    engine.apply(Tunables(policies={"bidding": "fixed@v-0.25"}))  # reconfigure pins a version
    assert client.post("/v1/bid", json=BID, headers=auth("site")).json()["ext"]["policy_version"] == "v-0.25"


def test_creative_select_over_the_bandit_store(setup: tuple[TestClient, Engine, Path]) -> None:
    client, engine, _ = setup

    store = engine.creative_store()
    store.add([(make_variant("email_subject", "vip", f"Subject {i}"), Verdict(passed=True), True) for i in range(2)])
    r = client.post("/v1/creatives/select", json={"customer_id": "cust-1", "segment": "vip"}, headers=auth("site"))
    assert r.status_code == 200, r.text
    assert r.json()["variant_id"].startswith("cv-") and 0 < r.json()["propensity"] <= 1
    r = client.post("/v1/creatives/select", json={"customer_id": "cust-1", "segment": "nobody"}, headers=auth("site"))
    assert r.status_code == 404 and "approve" in r.json()["detail"]


def test_keys_come_from_the_key_file_and_the_inline_list(tmp_path: Path, log_url: str, state_url: str) -> None:
    file_token, file_key = generate_key("from-file", ["decide"])
    inline_token, inline_key = generate_key("inline", ["ingest"])
    path = tmp_path / "keys.json"
    path.write_text(orjson.dumps({"keys": [file_key.model_dump(mode="json")]}).decode())
    keys = api_keys(ServeArgs(api_keys=[inline_key], api_keys_file=str(path)), get_settings())
    assert len(keys) == 2 and {k.name for k in keys} == {"from-file", "inline"}
    assert keys.authenticate(file_token, "decide").name == "from-file"
    assert keys.authenticate(inline_token, "ingest").name == "inline"


def test_an_unavailable_log_is_a_503_with_the_reason(setup: tuple[TestClient, Engine, Path],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    client, engine, _ = setup

    def down(events: Any) -> Any:
        raise LogUnavailable("cannot publish to projects/p/topics/t: 404 Topic not found")

    monkeypatch.setattr(engine.log, "append", down)
    r = client.post("/v1/events", json={"events": [event(1)]}, headers=auth("crm"))
    assert r.status_code == 503
    assert r.json()["detail"] == "the event log is unavailable: cannot publish to projects/p/topics/t: 404 Topic not found"


def test_an_unreachable_state_server_is_a_503_with_the_reason(setup: tuple[TestClient, Engine, Path]) -> None:
    client, engine, _ = setup

    def down(customer_id: str) -> Any:
        raise PostgresUnavailable("cannot connect to postgresql://ame@10.0.0.5:5432/ame: connection refused")

    engine.nba = NextBestAction(down, JourneyRules.of(quiet_hours=(0, 0)))
    r = client.post("/v1/next-best-action", json={"customer_id": "cust-1"}, headers=auth("site"))
    assert r.status_code == 503
    assert r.json()["detail"].startswith("the state store is unavailable: cannot connect to postgresql://")
