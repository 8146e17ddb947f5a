"""``/v1/bid``'s fast path (``serve.bid_fast_path.BidFastPath``) answers exactly what the FastAPI route answers: the same
status, body and content type for good bids, no-bids and every refused request (those it hands to the route),
and decisions that reach the log with ids that survive a retried append."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from data.log import open_log
from serve.auth import generate_key
from serve.bid_fast_path import BidFastPath
from serve.decide import PacingCache
from serve.decision_log import DecisionLogger, DecisionRecord
from serve.engine import Engine, ServeArgs, Tunables
from serve.routes import build_api

BID = {"id": "req-1", "imp": [{"id": "1", "bidfloor": 0.1}, {"id": "2", "bidfloor": 0.5, "ext": {"value": 3.0}}],
       "user": {"id": "cust-1"}, "device": {"ua": "x"}, "tmax": 80, "ext": {"campaign_id": "c1"}}


@pytest.fixture
def apps(tmp_path: Path, log_url: str, state_url: str) -> Iterator[tuple[TestClient, TestClient, dict[str, str], Engine]]:
    """The app as built (fast path in front) and the same app without the fast path (the FastAPI route only)."""
    tokens, keys = {}, []
    for name, scopes in (("crm", ["ingest"]), ("site", ["decide"])):
        tokens[name], key = generate_key(name, scopes)
        keys.append(key)
    args = ServeArgs(event_log=log_url, state_store=state_url, api_keys=keys, pacing_from_agents=False,
                     policies_dir=str(tmp_path / "policies"), max_body_bytes=4096)
    engine = Engine(args, Tunables(), pacing=PacingCache(lambda c: {}))
    fast = build_api(engine)
    route_only = build_api(engine)
    route_only.user_middleware = [m for m in route_only.user_middleware if m.cls is not BidFastPath]
    yield TestClient(fast), TestClient(route_only), tokens, engine
    engine.close()


def _cases(tokens: dict[str, str]) -> list[tuple[str, bytes, dict[str, str]]]:
    json_type = {"Content-Type": "application/json"}
    site = {"Authorization": f"Bearer {tokens['site']}", **json_type}
    good = orjson.dumps(BID)
    return [
        ("bid", good, site),
        ("bid by X-API-Key, charset", good, {"X-API-Key": tokens["site"], "Content-Type": "application/json; charset=utf-8"}),
        ("no bid: floor", orjson.dumps({**BID, "imp": [{"id": "1", "bidfloor": 40.0}]}), site),
        ("no bid: tmax", orjson.dumps({**BID, "tmax": 2}), site),
        ("anonymous user", orjson.dumps({**BID, "user": None}), site),
        ("no key", good, json_type),
        ("unknown key", good, {"Authorization": "Bearer ame_nope", **json_type}),
        ("wrong scope", good, {"Authorization": f"Bearer {tokens['crm']}", **json_type}),
        ("bad field and no key", orjson.dumps({**BID, "imp": [{"id": "1", "bidfloor": -1}]}), json_type),
        ("bad field", orjson.dumps({**BID, "imp": [{"id": "1", "bidfloor": -1}]}), site),
        ("no imp", orjson.dumps({"id": "r", "imp": []}), site),
        ("extra currency rule", orjson.dumps({**BID, "imp": [{"id": "1", "bidfloorcur": "usd"}]}), site),
        ("not JSON", b'{"id": "r", "imp": [', site),
        ("NaN floor", b'{"id": "r", "imp": [{"id": "1", "bidfloor": NaN}]}', site),
        ("empty body", b"", site),
        ("text/plain", good, {**site, "Content-Type": "text/plain"}),
        ("no content type", good, {"Authorization": f"Bearer {tokens['site']}"}),
        ("array body", b"[1, 2]", site),
        ("over the size limit", b'{"id": "' + b"x" * 5000 + b'"}', site),
    ]


def test_fast_path_answers_like_the_route(apps: tuple[TestClient, TestClient, dict[str, str], Engine]) -> None:
    fast, route_only, tokens, _ = apps
    for name, body, headers in _cases(tokens):
        a = fast.post("/v1/bid", content=body, headers=headers)
        b = route_only.post("/v1/bid", content=body, headers=headers)
        assert (a.status_code, a.headers.get("content-type"), a.headers.get("www-authenticate")) == (
            b.status_code, b.headers.get("content-type"), b.headers.get("www-authenticate")), name
        assert a.content == b.content, name
    statuses = {name: fast.post("/v1/bid", content=body, headers=headers).status_code
                for name, body, headers in _cases(tokens)}
    assert statuses["bid"] == 200 and statuses["no bid: floor"] == 204 and statuses["no bid: tmax"] == 204
    assert (statuses["no key"], statuses["unknown key"], statuses["wrong scope"]) == (401, 401, 403)
    assert statuses["bad field and no key"] == 401  # the key is checked before the fields, as on the route
    assert statuses["bad field"] == statuses["not JSON"] == statuses["empty body"] == 422
    assert statuses["over the size limit"] == 413


def test_fast_path_takes_the_plain_case_and_hands_on_the_rest(
        apps: tuple[TestClient, TestClient, dict[str, str], Engine]) -> None:
    """Without the route in the router, a good bid still answers (the fast path did) and a refused one is 404
    (it went on to the router)."""
    fast, _, tokens, _ = apps
    fast.app.router.routes[:] = [r for r in fast.app.router.routes if getattr(r, "path", None) != "/v1/bid"]
    site = {"Authorization": f"Bearer {tokens['site']}"}
    r = fast.post("/v1/bid", json=BID, headers=site)
    assert r.status_code == 200
    assert r.json()["seatbid"][0]["bid"] == [{"id": "req-1-1", "impid": "1", "price": 0.8},
                                             {"id": "req-1-2", "impid": "2", "price": 1.2}]
    assert fast.post("/v1/bid", json=BID).status_code == 404
    assert fast.post("/v1/bid", json={"id": "r", "imp": []}, headers=site).status_code == 404


def test_fast_path_bids_are_logged_and_timed(apps: tuple[TestClient, TestClient, dict[str, str], Engine],
                                              log_url: str) -> None:
    fast, _, tokens, engine = apps
    site = {"Authorization": f"Bearer {tokens['site']}"}
    assert fast.post("/v1/bid", json=BID, headers=site).status_code == 200
    assert fast.post("/v1/bid", json={**BID, "id": "req-2", "tmax": 1}, headers=site).status_code == 204
    text = fast.get("/metrics").text
    assert 'route="/v1/bid"' in text and 'ame_serve_decisions_total{kind="bid"' in text
    engine.close()
    log = open_log(log_url)
    events = log.read(0, 100, ["decision_made"]).events
    log.close()
    assert [(e.properties["action"], e.properties["context"]["request_id"]) for e in events] == [
        ("bid", "req-1"), ("no_bid", "req-2")]
    assert len({e.event_id for e in events}) == 2 and all(e.customer_id == "cust-1" for e in events)
    assert events[0].properties["context"]["price"] == 1.2 and events[0].properties["context"]["campaign_id"] == "c1"


class FlakyLog:
    """A log whose first append fails after it has seen the batch."""

    def __init__(self) -> None:
        self.attempts: list[list[str]] = []

    def append(self, events: list[Any]) -> None:
        self.attempts.append([e.event_id for e in events])
        if len(self.attempts) == 1:
            raise OSError("the log is restarting")

    def close(self) -> None:
        pass


def test_a_retried_batch_keeps_its_event_ids() -> None:
    """Decisions queued without an id get one when the writer builds them, once: a retry appends the same ids,
    so the log's idempotent append cannot store a decision twice."""
    log = FlakyLog()
    logger = DecisionLogger(lambda: log, batch_size=10, flush_interval_s=0.01)
    for i in range(3):
        logger.submit(DecisionRecord(event_id=None, customer_id="c", agent="serve:bid", action="bid", channel="ad",
                                     propensity=1.0, policy_name="p", policy_version="v", context={"i": i}))
    assert logger.flush(10)
    logger.close()
    assert len(log.attempts) == 2 and log.attempts[0] == log.attempts[1] and len(set(log.attempts[0])) == 3
