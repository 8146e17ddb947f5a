"""Load with faults (issue 10): the decision API on Ray Serve (2 replicas) and the scoring and journey agents
(2 shards each) under a steady request load, while Serve replicas and agent actors are killed.

Afterwards the run is checked against the log: the share of failed requests, every event the API accepted
(``202``, counted per event id) present in the log, the agents caught up with no decision written twice, and
Serve back at its replica count. ``python -m benchmarks.bench_faults [--duration S] [--rate R]``.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import logging
import random
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agents.journey import JourneyAgent
from agents.scoring import ScoringAgent
from agents.supervisor import AgentSupervisor
from benchmarks.common import BenchResult, free_port
from data.log import open_log
from serve.auth import generate_key

log = logging.getLogger(__name__)

APP = "ame-faults"
SERVE_NAMESPACE = "serve"
AGENT_NAMESPACE = "ame-faults"
EXPECTED = {"POST /v1/events": {202}, "POST /v1/bid": {200, 204}, "POST /v1/next-best-action": {200}}


@dataclass(frozen=True)
class FaultPlan:
    """How long and how hard to load, and how many replicas and agent actors to kill on the way."""

    duration_s: float = 60.0
    rate_per_s: float = 150.0
    clients: int = 6
    replica_kills: int = 2
    agent_kills: int = 2
    replicas: int = 2
    customers: int = 500
    events_per_request: int = 4
    seed: int = 0


@dataclass
class FaultReport:
    requests: int = 0
    failed: int = 0
    first_attempt_errors: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    events_accepted: int = 0
    events_missing: int = 0
    bids_answered: int = 0
    bid_decisions_logged: int = 0
    replica_kills: int = 0
    agent_kills: int = 0
    agent_restarts: int = 0
    agents_caught_up: bool = False
    duplicate_decisions: int = 0
    replicas_running_after: int = 0
    seconds: float = 0.0

    @property
    def error_rate(self) -> float:
        return self.failed / max(self.requests, 1)


class _Client:
    """One keep-alive HTTP/1.1 connection; reconnects after a transport error. ``post`` retries once, after
    ``retry_after_s``, on a transport error or a 500/502/503 (what the README asks of integrators: every route
    may be retried; ``/v1/events`` is idempotent by event id)."""

    RETRY_ON = frozenset({-1, 500, 502, 503})

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, path: str, body: dict[str, Any], retry_after_s: float = 0.05) -> tuple[int, bytes, int]:
        """Status and body of the last attempt, and the number of attempts that failed on the way."""
        status, data = self._post_once(path, body)
        if status not in self.RETRY_ON:
            return status, data, 0
        time.sleep(retry_after_s)
        status, data = self._post_once(path, body)
        return status, data, 1 + (status in self.RETRY_ON)

    def _post_once(self, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        try:
            self.conn.request("POST", path, body=json.dumps(body), headers=self.headers)
            response = self.conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as error:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            return -1, repr(error).encode()


class _Load:
    """``clients`` threads, each paced to its share of ``rate_per_s``, cycling events, bid and next-best-action."""

    def __init__(self, plan: FaultPlan, port: int, token: str) -> None:
        self.plan = plan
        self.port = port
        self.token = token
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.report = FaultReport()
        self.accepted: set[str] = set()
        self.bid_ids: set[str] = set()
        self.t0 = datetime(2026, 6, 1, 9, tzinfo=UTC)

    def _events(self, worker: int, n: int, rng: random.Random) -> list[dict[str, Any]]:
        out = []
        for k in range(self.plan.events_per_request):
            cid = f"fault-cust-{rng.randrange(self.plan.customers)}"
            event_id = f"fault-{worker}-{n}-{k}"
            at = (self.t0 + timedelta(seconds=n, milliseconds=k)).isoformat()
            kind = ("lead_created", "page_view", "email_click", "page_view")[k % 4]
            props = {"lead_created": {"email": f"{cid}@example.com", "first_name": "Ann"},
                     "page_view": {"url": "/pricing"}, "email_click": {"campaign_id": "spring"}}[kind]
            out.append({"event_id": event_id, "event_type": kind, "customer_id": cid, "occurred_at": at, "properties": props})
        return out

    def _call(self, client: _Client, worker: int, n: int, rng: random.Random) -> None:
        kind = n % 3
        if kind == 0:
            events = self._events(worker, n, rng)
            route, (status, body, errors) = "POST /v1/events", client.post("/v1/events", {"events": events, "source": "faults"})
        elif kind == 1:
            request_id = f"fault-bid-{worker}-{n}"
            bid = {"id": request_id, "imp": [{"id": "1", "bidfloor": 0.01}],
                   "user": {"id": f"fault-cust-{rng.randrange(self.plan.customers)}"},
                   "tmax": 100}
            route, (status, body, errors) = "POST /v1/bid", client.post("/v1/bid", bid)
        else:
            route, (status, body, errors) = "POST /v1/next-best-action", client.post(
                "/v1/next-best-action", {"customer_id": f"fault-cust-{rng.randrange(self.plan.customers)}"})
        ok = status in EXPECTED[route]
        with self.lock:
            self.report.requests += 1
            self.report.first_attempt_errors += errors > 0
            self.report.statuses[f"{route} {status}"] += 1
            if not ok:
                self.report.failed += 1
                if len(self.report.failures) < 20:
                    self.report.failures.append(f"{route} -> {status}: {body[:200]!r}")
            elif kind == 0:
                out = json.loads(body)
                if out["accepted"] == len(events) and not out["rejected"]:
                    self.accepted.update(e["event_id"] for e in events)
                else:  # valid events refused: that is a failure too
                    self.report.failed += 1
                    self.report.failures.append(f"{route} accepted {out['accepted']} of {len(events)}: {out['errors'][:2]}")
            elif kind == 1 and status == 200:
                self.bid_ids.add(request_id)

    def worker(self, worker: int) -> None:
        rng = random.Random(self.plan.seed * 1_000 + worker)
        client = _Client(self.port, self.token)
        interval = self.plan.clients / self.plan.rate_per_s
        next_at = time.monotonic() + rng.random() * interval
        for n in itertools.count():
            if self.stop.is_set():
                break
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
            self._call(client, worker, n, rng)


def serve_replicas(app: str = APP) -> list[str]:
    """Names of the Serve replica actors of ``app`` that are alive now."""
    import ray  # lazy: Ray is heavy

    # a named actor's name is released when it dies, so the names listed are the live (or restarting) replicas
    return sorted(e["name"] for e in ray.util.list_named_actors(all_namespaces=True)
                  if e["name"].startswith(f"SERVE_REPLICA::{app}#"))


def kill_replica(rng: random.Random) -> str:
    """SIGKILL-equivalent of one live replica (no restart: the Serve controller must replace it)."""
    import ray  # lazy: Ray is heavy

    name = rng.choice(serve_replicas())
    ray.kill(ray.get_actor(name, namespace=SERVE_NAMESPACE), no_restart=True)
    return name


def _wait_for_replicas(n: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = len(serve_replicas())
        if running >= n:
            return running
        time.sleep(0.5)
    return len(serve_replicas())


def _kill_schedule(plan: FaultPlan) -> list[tuple[float, str]]:
    """Kills spread over the middle of the run, alternating replica and agent: (seconds from start, what)."""
    kinds = [k for pair in itertools.zip_longest(["replica"] * plan.replica_kills, ["agent"] * plan.agent_kills) for k in pair if k]
    step = plan.duration_s * 0.7 / max(len(kinds), 1)
    return [(plan.duration_s * 0.15 + i * step, kind) for i, kind in enumerate(kinds)]


def run_faults(plan: FaultPlan, folder: Path) -> FaultReport:
    """One run: deploy, load, kill on schedule, stop, and check the log. Needs ``ray.init`` done."""
    import ray  # lazy: Ray is heavy
    from ray import serve  # lazy: Ray is heavy

    from serve.app import build_app  # lazy: loads FastAPI

    token, key = generate_key("faults", ["admin"])
    log_url = f"sqlite:///{folder / 'events.db'}"
    args = {"event_log": log_url, "state_store": f"sqlite:///{folder / 'state.db'}", "policies_dir": str(folder / "policies"),
            "creative_store": f"sqlite:///{folder / 'creatives.db'}", "api_keys": [key.model_dump(mode="json")],
            "pacing_from_agents": False}
    agents = [ScoringAgent(), JourneyAgent()]
    sup = AgentSupervisor(log_url, folder / "agent-state", agents, shards=2, namespace=AGENT_NAMESPACE, batch_size=500)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    load: _Load | None = None
    try:
        serve.run(build_app(args, num_replicas=plan.replicas), name=APP, route_prefix="/")
        sup.up()
        load = _Load(plan, port, token)
        report = load.report
        rng = random.Random(plan.seed)
        threads = [threading.Thread(target=load.worker, args=(w,), daemon=True) for w in range(plan.clients)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for at, kind in _kill_schedule(plan):
            time.sleep(max(0.0, start + at - time.monotonic()))
            if kind == "replica":
                log.info("killing replica %s at %.1fs", kill_replica(rng), time.monotonic() - start)
                report.replica_kills += 1
            else:
                victim = sup.actor(rng.choice(agents).name, rng.randrange(sup.shards))
                ray.kill(victim, no_restart=False)  # the actor restarts from its own checkpointed state
                report.agent_kills += 1
        time.sleep(max(0.0, start + plan.duration_s - time.monotonic()))
        load.stop.set()
        for t in threads:
            t.join(60)
        report.seconds = time.monotonic() - start
        report.replicas_running_after = _wait_for_replicas(plan.replicas, 60)
        serve.delete(APP)  # graceful: the surviving replicas flush their decision queues
        report.agents_caught_up = sup.wait_caught_up(180)
        report.agent_restarts = sum(s.get("restarts", 0) for s in sup.status())
    finally:
        sup.down()
        serve.shutdown()
    if load is not None:
        _check_log(log_url, load)
    return load.report if load else FaultReport()


def _check_log(log_url: str, load: _Load) -> None:
    """Accepted events present, bid decisions counted, agent decisions unique."""
    event_log = open_log(log_url)
    seen: set[str] = set()
    request_ids: set[str] = set()
    outputs: Counter = Counter()
    after = 0
    try:
        while True:
            batch = event_log.read(after, 20_000)
            if not batch.events:
                break
            after = batch.next_after
            for e in batch.events:
                seen.add(e.event_id)
                if e.event_type == "decision_made" and e.source.startswith("serve"):
                    request_ids.add((e.properties.get("context") or {}).get("request_id"))
                elif e.source.startswith("agent:") and e.source != "agent:scheduler":
                    outputs[(e.source, e.event_type, e.causation_id, e.customer_id, e.properties.get("model"))] += 1
    finally:
        event_log.close()
    report = load.report
    report.events_accepted = len(load.accepted)
    report.events_missing = len(load.accepted - seen)
    report.bids_answered = len(load.bid_ids)
    report.bid_decisions_logged = len(load.bid_ids & request_ids)
    report.duplicate_decisions = sum(c - 1 for c in outputs.values() if c > 1)


def run(quick: bool = False, duration_s: float | None = None, rate: float | None = None) -> list[BenchResult]:
    import ray  # lazy: Ray is heavy

    plan = FaultPlan(duration_s=duration_s or (25.0 if quick else 60.0), rate_per_s=rate or 150.0)
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory(prefix="ame-faults-") as tmp:
            r = run_faults(plan, Path(tmp))
    finally:
        if started:
            ray.shutdown()
    kills = f"{r.replica_kills} replica kills, {r.agent_kills} agent kills ({r.agent_restarts} restarts)"
    return [
        BenchResult("faults", f"failed requests (after one client retry) under load with {kills}", 100 * r.error_rate, "%", "requests",
                    r.requests,
                    "<= 0.1%", r.error_rate <= 0.001,
                    note=f"{r.failed} of {r.requests:,} in {r.seconds:.0f} s; first: {r.failures[:3]}"),
        BenchResult("faults", "requests whose first attempt failed (retried once)", 100 * r.first_attempt_errors / max(r.requests, 1),
                    "%", "requests", r.requests, "–", None, note=f"{r.first_attempt_errors} of {r.requests:,}"),
        BenchResult("faults", "accepted events missing from the log", r.events_missing, "events", "accepted", r.events_accepted,
                    "0", r.events_missing == 0),
        BenchResult("faults", "agents caught up, decisions written twice", r.duplicate_decisions, "decisions", "caught up",
                    float(r.agents_caught_up), "caught up, 0", r.agents_caught_up and r.duplicate_decisions == 0),
        BenchResult("faults", "bid decisions in the log (replica kills lose their unflushed queue)", r.bid_decisions_logged,
                    "decisions", "bids answered", r.bids_answered, "–", None),
        BenchResult("faults", "Serve replicas running after the kills", r.replicas_running_after, "replicas", "deployed",
                    plan.replicas, "all", r.replicas_running_after >= plan.replicas),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=None, help="seconds of load (default 60; --quick: 25)")
    parser.add_argument("--rate", type=float, default=None, help="requests per second (default 150)")
    parser.add_argument("--quick", action="store_true")
    ns = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    for row in run(ns.quick, ns.duration, ns.rate):
        print(f"{row.name:75s} {row.value:>10,.2f} {row.unit:9s} | {row.baseline_name}: {row.baseline_value} | met={row.met} | {row.note}")
