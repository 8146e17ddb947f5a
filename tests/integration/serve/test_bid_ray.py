"""/v1/bid on real Ray Serve beside the bidding agent's actors (session cluster): the replica's cache reads the
agent's campaign record over Ray, and the price is the estimate times the multiplier the served controller reads
from that record, moved to now; a campaign whose day's budget is spent gets no bid."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agents.bidding import BiddingAgent, BiddingConfig
from agents.supervisor import AgentSupervisor
from data.events import AuctionResult
from data.log import open_log
from policies.bidder import ProfilePacing
from serve.auth import generate_key
from serve.decide import bid_multiplier

APP = "ame-bid-test"
BUDGETS = {"cmp-live": 50.0, "cmp-spent": 1.0}


def _auctions(campaign: str, paid: float, now: datetime) -> list[Any]:
    """40 auctions over the last 40 minutes (today), every other one won at ``paid``."""
    start = max(now - timedelta(minutes=40), now.replace(hour=0, minute=0, second=0, microsecond=0))
    step = (now - start) / 41
    return [AuctionResult(event_id=f"{campaign}-{i}", customer_id="anonymous", occurred_at=start + step * i,
                          properties={"campaign_id": campaign, "auction_id": f"{campaign}-{i}", "bid": 0.05, "won": i % 2 == 0,
                                      "price_paid": paid if i % 2 == 0 else 0.0, "estimate": 0.03, "price_to_beat": 0.02})
            for i in range(40)]


def _post(port: int, token: str, body: dict[str, Any]) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/v1/bid", body=json.dumps(body), headers={"Authorization": f"Bearer {token}",
                                                                          "Content-Type": "application/json"})
        answer = conn.getresponse()
        data = answer.read()
        return answer.status, json.loads(data) if data else None
    finally:
        conn.close()


@pytest.fixture(scope="module")
def stack(ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from ray import serve  # lazy: Ray is heavy

    from serve.app import build_app  # lazy: loads FastAPI

    tmp: Path = tmp_path_factory.mktemp("bid")
    log_url = f"sqlite:///{tmp / 'events.db'}"
    log = open_log(log_url)
    now = datetime.now(UTC)
    log.append(_auctions("cmp-live", 0.02, now) + _auctions("cmp-spent", 0.06, now))
    log.close()
    sup = AgentSupervisor(log_url, tmp / "state", [BiddingAgent(BiddingConfig(daily_budgets=BUDGETS))], shards=1, namespace="ame")
    sup.up()
    token, key = generate_key("test", ["admin"])
    args = {"event_log": log_url, "state_store": f"sqlite:///{tmp / 'state.db'}", "policies_dir": str(tmp / "policies"),
            "creative_store": f"sqlite:///{tmp / 'creatives.db'}", "api_keys": [key.model_dump(mode="json")],
            "pacing_from_agents": True}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    try:
        assert sup.wait_caught_up(60)
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(args, num_replicas=1), name=APP, route_prefix="/")
        yield {"port": port, "token": token, "sup": sup, "ray": ray_cluster}
    finally:
        serve.delete(APP)
        serve.shutdown()
        sup.down()


def _bid(stack: dict[str, Any], campaign: str, value: float) -> tuple[int, float | None]:
    body = {"id": "r", "imp": [{"id": "1", "bidfloor": 0.001, "ext": {"value": value}}], "user": {"id": "cust-1"}, "tmax": 100,
            "ext": {"campaign_id": campaign}}
    status, answer = _post(stack["port"], stack["token"], body)
    return status, (answer["seatbid"][0]["bid"][0]["price"] if status == 200 else None)


def test_the_price_is_the_estimate_times_the_controllers_multiplier_from_the_agents_record(stack: dict[str, Any]) -> None:
    record = stack["ray"].get(stack["sup"].bidding_state("cmp-live"))
    assert record["auctions_today"] == 40 and record["spend_today"] == pytest.approx(0.4)
    deadline, seen = time.monotonic() + 30, []
    while time.monotonic() < deadline:
        before = time.time_ns() // 1000
        status, price = _bid(stack, "cmp-live", 1.5)
        after = time.time_ns() // 1000
        expected = {round(1.5 * bid_multiplier(ProfilePacing(), record, t).multiplier, 4) for t in (before, after)}
        seen.append(price)
        if status == 200 and price in expected:
            break
        time.sleep(0.2)  # the replica's cache fetches the record within a second of the first ask
    else:
        pytest.fail(f"/v1/bid never priced from the agent's record: last prices {seen[-5:]}, expected {expected}")
    assert price != pytest.approx(1.5 * 0.4)  # not the fresh campaign's initial multiplier


def test_a_campaign_with_its_budget_spent_gets_no_bid(stack: dict[str, Any]) -> None:
    record = stack["ray"].get(stack["sup"].bidding_state("cmp-spent"))
    assert record["remaining_today"] == 0.0
    deadline, statuses = time.monotonic() + 30, []
    while time.monotonic() < deadline:
        statuses.append(_bid(stack, "cmp-spent", 1.5)[0])
        if statuses[-1] == 204:
            break
        time.sleep(0.2)
    assert statuses[-1] == 204, statuses[-5:]
