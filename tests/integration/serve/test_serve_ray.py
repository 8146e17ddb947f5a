"""The decision API on real Ray Serve (session cluster): routes over HTTP on 127.0.0.1, a promotion into the journey
slot under load with 0 failed requests (the registry's real TorchScript artifacts), and no decision lost on
shutdown."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import torch  # the test writes real TorchScript exports, as training does

from data.log import open_log
from policies.registry import PolicyMetadata
from policies.slots import SlotPointers, SlotTarget
from serve.auth import generate_key

APP = "ame-serve-test"
BID = {"id": "r", "imp": [{"id": "1", "bidfloor": 0.01}], "user": {"id": "cust-1"}, "tmax": 100}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AlwaysProposes(torch.nn.Module):
    """A journey policy's TorchScript export that always proposes one action (scripted at module scope: TorchScript
    cannot compile a class defined inside a function once the module is imported twice)."""

    def __init__(self, action: int) -> None:
        super().__init__()
        self.action = action

    def forward(self, obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = torch.zeros((obs.shape[0], 6))
        out[:, self.action] = 1.0
        return out


def register_journey(root: Path, version: str, action: int) -> None:
    """A journey registry version whose export always proposes one action (what training would write)."""
    folder = root / "journey-test" / version
    folder.mkdir(parents=True)
    torch.jit.save(torch.jit.script(AlwaysProposes(action)), str(folder / "policy.pt"))
    meta = PolicyMetadata(name="journey-test", version=version, task="journey", algo="test", export_kind="discrete",
                          n_actions=6, observation_dim=24, env_config_hash="test", seed=0, timesteps=0, code_version="test",
                          created_at=datetime.now(UTC).isoformat(), env_options={"act": "argmax"})
    (folder / "metadata.json").write_text(meta.model_dump_json())


class Client:
    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        self.conn.request(method, path, body=None if body is None else json.dumps(body), headers=self.headers)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data and r.getheader("content-type", "").startswith("application/json") else data)


@pytest.fixture(scope="module")
def served(ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from ray import serve  # lazy: Ray is heavy

    from serve.app import build_app  # lazy: loads FastAPI

    tmp = tmp_path_factory.mktemp("serve")
    root = tmp / "policies"
    register_journey(root, "v0001", 0)  # always wait
    register_journey(root, "v0002", 4)  # always an ad (no consent needed)
    SlotPointers(root).point("journey", SlotTarget("journey-test", "v0001"))
    token, key = generate_key("test", ["admin"])
    log_url = f"sqlite:///{tmp / 'events.db'}"
    args = {"event_log": log_url, "state_store": f"sqlite:///{tmp / 'state.db'}", "policies_dir": str(root),
            "creative_store": f"sqlite:///{tmp / 'creatives.db'}", "api_keys": [key.model_dump(mode="json")],
            "pacing_from_agents": False}
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    user_config = {"poll_interval_s": 0.2, "decision_flush_interval_s": 5.0}
    serve.run(build_app(args, num_replicas=2, user_config=user_config), name=APP, route_prefix="/")
    try:
        yield {"port": port, "token": token, "root": root, "log_url": log_url}
    finally:
        serve.delete(APP)
        serve.shutdown()


def test_routes_over_http(served: dict[str, Any]) -> None:
    client = Client(served["port"], served["token"])
    status, body = client.call("GET", "/healthz")
    assert status == 200 and body["policies"] == {"journey": "v0001", "bidding": "builtin"}
    status, body = client.call("POST", "/v1/bid", BID)
    assert status in (200, 204)
    status, body = client.call("POST", "/v1/next-best-action", {"customer_id": "cust-1"})
    assert status == 200 and (body["policy_name"], body["policy_version"], body["action"]) == ("journey-test", "v0001", "wait")
    status, _ = client.call("POST", "/v1/bid", {"id": "r", "imp": []})
    assert status == 422
    status, body = client.call("GET", "/metrics")
    assert status == 200 and b"ame_serve_request_seconds" in body


def test_promote_under_load_fails_no_request(served: dict[str, Any]) -> None:
    results: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def load() -> None:
        client = Client(served["port"], served["token"])
        while not stop.is_set():
            try:
                status, body = client.call("POST", "/v1/next-best-action", {"customer_id": "cust-1"})
                version = body["policy_version"] if status == 200 else None
            except Exception:  # noqa: BLE001 - a transport error is a failed request too
                status, version = -1, None
                client = Client(served["port"], served["token"])
            results.append((status, version))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    # what `ame policies promote journey-test v0002` writes once its gate passes
    SlotPointers(served["root"]).point("journey", SlotTarget("journey-test", "v0002"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (results and results[-1][1] == "v0002" and
                                                sum(v == "v0002" for _, v in results[-50:]) == 50):
        time.sleep(0.2)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(15)
    failed = [r for r in results if r[0] != 200]
    versions = [v for _, v in results]
    assert not failed, f"{len(failed)} of {len(results)} requests failed during the promote: {failed[:5]}"
    assert "v0001" in versions and versions[-1] == "v0002"
    assert len(results) > 50


def test_no_decision_lost_on_shutdown(served: dict[str, Any]) -> None:
    """The flush interval is 5 s, so only the shutdown path can have appended these."""
    from ray import serve  # lazy: Ray is heavy


    client = Client(served["port"], served["token"])
    ids = []
    for i in range(40):
        status, _ = client.call("POST", "/v1/bid", {**BID, "id": f"shutdown-{i}"})
        assert status == 200
        ids.append(f"shutdown-{i}")
    serve.delete(APP)  # graceful: Serve runs the app's lifespan shutdown, which closes the engine and drains the queue
    log = open_log(served["log_url"])
    seen = set()
    after = 0
    while True:
        batch = log.read(after, 10_000, ["decision_made"])
        if not batch.events:
            break
        after = batch.next_after
        seen |= {(e.properties.get("context") or {}).get("request_id") for e in batch.events}
    log.close()
    missing = [i for i in ids if i not in seen]
    assert not missing, f"{len(missing)} decisions lost on shutdown: {missing[:5]}"
