"""The engine on a three-node Ray cluster on this machine, with no shared disk: run by test_multinode_cluster.py in a
process of its own (``python -m tests.integration.cluster.multinode --out figures.json``), since a Ray driver joins
one cluster per process and the test session already has its own.

Nodes (``ray.cluster_utils.Cluster``): a head with no CPUs (Serve's controller and HTTP proxy), a ``serve`` node
(the decision API's replicas, pinned by the custom resource ``serve``) and an ``agents`` node (the agent shards and
the projector, pinned by ``agents``). Each node has its own ``AME_HOME``; the only folder they share stands in for
the bucket (``AME_POLICIES_DIR``, ``AME_MODELS_DIR``). The log is a topic on the Pub/Sub emulator; state, PII keys
and dead letters are on PostgreSQL. The script prints the figures as JSON and writes them to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from agents.runtime import replay_serially
from agents.scoring import ScoringAgent
from agents.supervisor import AgentSupervisor, tick_event
from data.events import validate_event
from data.log import open_log
from data.log.pubsub_admin import ensure_consumer_resources
from data.postgres_db import scratch_schema
from data.privacy.codec import codec_for_log
from data.settings import get_settings
from serve.app import build_app
from serve.auth import generate_key

CUSTOMERS = [f"cl-{i:02d}" for i in range(16)]
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
TICK_DAY = date(2026, 3, 3)
PROMOTED = "email_every_k"
ERASED = CUSTOMERS[3]
NAMESPACE = "ame-cluster"
WAIT_S = 90.0
RECOVERY_WAIT_S = 90.0
AME = str(Path(sys.executable).with_name("ame"))  # the console script beside this interpreter


class ClusterCheckFailed(RuntimeError):
    """A property the cluster must show did not hold."""


def note(what: str, since: float) -> None:
    """A progress line on stderr (the test shows it when the run fails)."""
    print(f"[{time.monotonic() - since:6.1f} s] {what}", file=sys.stderr, flush=True)


def wait_for(condition: Callable[[], bool], what: str | Callable[[], str], timeout_s: float = WAIT_S,
             every_s: float = 0.05) -> float:
    """Seconds until ``condition`` held; raises naming ``what`` (or what it returns then) after ``timeout_s``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise ClusterCheckFailed(f"timed out after {timeout_s:.0f} s waiting for {what() if callable(what) else what}")
        time.sleep(every_s)
    return time.monotonic() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def node_env(base: dict[str, str], work: Path, node: str) -> dict[str, str]:
    """A node's environment: the shared settings and a home folder of its own."""
    return {**base, "AME_HOME": str(work / node)}


def page_view(cid: str, n: int) -> dict[str, Any]:
    at = T0 + timedelta(minutes=n)
    return {"event_id": f"{cid}-pv{n}", "event_type": "page_view", "customer_id": cid, "occurred_at": at.isoformat(),
            "properties": {"url": f"https://shop.example/p/{n}"}}


def lead(cid: str) -> dict[str, Any]:
    return {"event_id": f"{cid}-lead", "event_type": "lead_created", "customer_id": cid, "occurred_at": T0.isoformat(),
            "properties": {"email": f"{cid}@cluster.example", "first_name": f"Name{cid[-2:]}"}}


class Api:
    """The decision API through Serve's HTTP proxy on the head, answered by the replicas on the serve node."""

    def __init__(self, port: int, token: str) -> None:
        import requests  # lazy: only this script talks HTTP

        self.base = f"http://127.0.0.1:{port}"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def post_events(self, events: list[dict[str, Any]]) -> None:
        r = self.http.post(f"{self.base}/v1/events", json={"events": events}, timeout=30)
        if r.status_code != 202 or r.json()["rejected"]:
            raise ClusterCheckFailed(f"POST /v1/events answered {r.status_code}: {r.text[:500]}")

    def page_views(self, cid: str) -> int:
        r = self.http.get(f"{self.base}/v1/customers/{cid}", timeout=30)
        if r.status_code == 404:
            return 0
        r.raise_for_status()
        return int(r.json()["profile"]["event_counts"].get("page_view", 0))

    def next_best_action(self, cid: str) -> dict[str, Any]:
        r = self.http.post(f"{self.base}/v1/next-best-action", json={"customer_id": cid}, timeout=30)
        r.raise_for_status()
        return dict(r.json())

    def replica_ids(self) -> set[str]:
        text = self.http.get(f"{self.base}/metrics", timeout=30).text
        return {line.split('replica="', 1)[1].split('"', 1)[0] for line in text.splitlines() if 'replica="' in line}


class Sink:
    """A subscription made before anything is published: every message of the topic, kept for the counts."""

    def __init__(self, log_url: str) -> None:
        from google.cloud import pubsub_v1  # lazy: the Google client is heavy

        self.path = ensure_consumer_resources(log_url, "cluster-sink", None, ack_deadline_s=60, retry_backoff_s=None,
                                              ordered=False)
        self.client = pubsub_v1.SubscriberClient()
        self.bodies: list[bytes] = []

    def drain(self, quiet_s: float = 2.0) -> list[dict[str, Any]]:
        """Pull until nothing has come for ``quiet_s``; every message body so far, decoded as JSON (PII as tokens)."""
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < quiet_s:
            response = self.client.pull(subscription=self.path, max_messages=1000, timeout=10, return_immediately=True)
            if response.received_messages:
                self.bodies.extend(m.message.data for m in response.received_messages)
                self.client.acknowledge(subscription=self.path, ack_ids=[m.ack_id for m in response.received_messages])
                quiet_since = time.monotonic()
        return [orjson.loads(b) for b in self.bodies]


def reveal_on_node(resource: str, body: bytes) -> Any:
    """A Ray task on the node offering ``resource`` that decrypts a message with that node's settings."""
    import ray  # lazy: Ray is heavy

    @ray.remote(num_cpus=0, resources={resource: 0.01})
    def reveal(raw: bytes) -> tuple[str, dict[str, Any]]:
        settings = get_settings()
        codec = codec_for_log(settings.event_log_url())
        try:
            return str(settings.home), codec.reveal_envelope(orjson.loads(raw))["properties"]
        finally:
            codec.keys.close()

    return ray.get(reveal.remote(body), timeout=60)


def reference_scoring(inputs: list[dict[str, Any]], work: Path) -> tuple[set[str], dict[str, Any]]:
    """What one serial scoring shard derives from the posted events on the embedded log: its outputs' ids and its
    records (the reference the cluster's outputs are compared with)."""
    url = f"sqlite:///{work / 'reference' / 'events.db'}"
    (work / "reference").mkdir(parents=True, exist_ok=True)
    log = open_log(url)
    try:
        log.append([validate_event(e) for e in inputs])
        records, _, _ = replay_serially(ScoringAgent(), url, work / "reference" / "state")
        outputs = {e.event_id for e in log.read(0, 1_000_000).events if e.source == "agent:scoring"}
    finally:
        log.close()
    return outputs, records


def decision_counts(messages: list[dict[str, Any]], expected: set[str], tick_id: str,
                    customers: list[str]) -> dict[str, int]:
    """Lost and duplicated decisions: the scoring agent's against the serial reference (by id, and by content for an
    id published twice), the journey agent's at the tick (one per known customer)."""
    by_id: dict[str, set[bytes]] = {}
    for m in messages:
        if str(m.get("source", "")).startswith("agent:"):
            body = {k: v for k, v in m.items() if k != "recorded_at"}
            by_id.setdefault(m["event_id"], set()).add(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
    scoring = {i for i, bodies in by_id.items() if any(b'"source":"agent:scoring"' in b for b in bodies)}
    journey_at_tick = Counter(m["customer_id"] for m in messages if m.get("source") == "agent:journey"
                              and m.get("causation_id") == tick_id)
    journey_ids = {m["event_id"] for m in messages if m.get("source") == "agent:journey" and m.get("causation_id") == tick_id}
    differing = sum(1 for bodies in by_id.values() if len(bodies) > 1)
    return {
        "scoring_expected": len(expected),
        "scoring_lost": len(expected - scoring),
        "scoring_extra": len(scoring - expected),
        "journey_tick_expected": len(customers),
        "journey_tick_lost": sum(1 for c in customers if journey_at_tick[c] == 0),
        "journey_tick_extra": len(journey_ids) - len({c for c in customers if journey_at_tick[c]}),
        "republished_with_other_content": differing,
        "redeliveries": sum(1 for m in messages if str(m.get("source", "")).startswith("agent:")) - len(by_id),
    }


def settled(sup: Any, quiet_s: float = 2.0) -> bool:
    """Nothing received by any agent for ``quiet_s``: every message in flight is acknowledged (the emulator keeps a
    customer's messages that were in flight on a stream that died from every later stream, past the ack deadline)."""
    before = [s.get("received", s.get("position")) for s in sup.status()]
    time.sleep(quiet_s)
    return before == [s.get("received", s.get("position")) for s in sup.status()]


def kill_node(cluster: Any, node: Any) -> None:
    """The node is gone: its raylet stopped and every process it started killed (as when a machine dies)."""
    import psutil  # lazy: only the node kill needs it (a Ray dependency)

    raylet = node.all_processes["raylet"][0].process.pid
    children = psutil.Process(raylet).children(recursive=True)
    cluster.remove_node(node, allow_graceful=False)
    for proc in children:
        with suppress(psutil.NoSuchProcess):
            proc.kill()


@contextmanager
def three_nodes(base: dict[str, str], work: Path) -> Iterator[tuple[Any, Any]]:
    """The cluster (head with no CPUs, serve node, agents node), this process connected to it; shut down after."""
    import ray  # lazy: Ray is heavy
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False, "env_vars": node_env(base, work, "head")})
    try:
        # "serve": 3 = one per replica and room for the test's own tasks on that node
        cluster.add_node(num_cpus=1, resources={"serve": 3}, env_vars=node_env(base, work, "serve"))
        agents = cluster.add_node(num_cpus=1, resources={"agents": 1}, env_vars=node_env(base, work, "agents-1"))
        ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False)
        yield cluster, agents
    finally:
        ray.shutdown()
        cluster.shutdown()


def agents_up(address: str, base: dict[str, str], work: Path, log_url: str) -> AgentSupervisor:
    """The agents started as the manifest's Job starts them: `ame agents up --address`, pinned by AME_AGENT_RESOURCES
    to the node that offers `agents`; returns their supervisor, attached to the running actors."""
    env = {**os.environ, **node_env(base, work, "driver"), "AME_AGENT_RESOURCES": '{"agents": 0.01}'}
    up = subprocess.run([AME, "agents", "up", "--address", address, "--namespace", NAMESPACE, "--agent", "scoring",
                         "--agent", "journey", "--no-scheduler"], env=env, capture_output=True, text=True,
                        timeout=180, check=False)
    if up.returncode != 0:
        raise ClusterCheckFailed(f"ame agents up failed: {up.stdout[-1000:]} {up.stderr[-2000:]}")
    sup = AgentSupervisor.attach(NAMESPACE)
    sup.log_url = log_url  # for tick(); attach() knows only the actors
    return sup


def run(work: Path, pubsub_host: str, postgres_url: str) -> dict[str, Any]:
    started = time.monotonic()
    log_url = f"pubsub://ame-test/cluster-{uuid.uuid4().hex[:10]}"
    bucket = work / "bucket"
    base = {"PUBSUB_EMULATOR_HOST": pubsub_host, "AME_EVENT_LOG": log_url, "AME_STATE_STORE": postgres_url,
            "AME_KEY_STORE": postgres_url, "AME_PUBSUB_DEAD_LETTER_STORE": postgres_url,
            "AME_CREATIVE_STORE": postgres_url, "AME_POLICIES_DIR": str(bucket / "policies"),
            "AME_MODELS_DIR": str(bucket / "models"), "AME_AGENT_SHARDS": "2",
            "AME_PUBSUB_ACK_DEADLINE_S": "10",  # what the killed node held unacked comes again after this
            "AME_PUBSUB_MAX_DELIVERY_ATTEMPTS": "100"}
    os.environ.update(node_env(base, work, "driver"))
    for folder in ("head", "serve", "agents-1", "agents-2", "driver", "bucket/policies", "bucket/models"):
        (work / folder).mkdir(parents=True, exist_ok=True)

    from ray import serve  # lazy: Ray is heavy

    figures: dict[str, Any] = {"log": log_url}
    sink = Sink(log_url)
    with three_nodes(base, work) as (cluster, agents_node):
        figures["cluster_up_s"] = round(time.monotonic() - started, 1)
        sup = agents_up(cluster.address, base, work, log_url)
        token, key = generate_key("cluster-test", ["ingest", "decide", "admin"])
        port = free_port()
        serve.start(proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": port})
        args = {"event_log": log_url, "state_store": postgres_url, "api_keys": [key.model_dump(mode="json")],
                "pacing_from_agents": False, "agent_shards": 2}
        serve.run(build_app(args, num_replicas=2, ray_actor_options={"num_cpus": 0, "resources": {"serve": 1}}),
                  name="ame", route_prefix="/")
        api = Api(port, token)
        try:
            phases(figures, work, base, cluster, agents_node, sup, api, sink, started)
        except ClusterCheckFailed as error:
            rows = [{k: s.get(k) for k in ("agent", "shard", "position", "lag", "restarts", "running", "last_error")}
                    for s in sup.status()]
            raise ClusterCheckFailed(f"{error}; the agents: {rows}") from None
        serve.shutdown()
        sup.down()
    figures["duration_s"] = round(time.monotonic() - started, 1)
    return figures


def phases(figures: dict[str, Any], work: Path, base: dict[str, str], cluster: Any, agents_node: Any, sup: Any,
           api: Api, sink: Sink, started: float) -> None:
        promote = subprocess.Popen(  # the CLI, from another machine's view: only the bucket in common
            [AME, "policies", "promote", PROMOTED, "--slot", "journey", "--force",
             "--gate-seeds", "2", "--gate-customers", "100", "--log", f"sqlite:///{work / 'driver' / 'gate.db'}"],
            env={**os.environ, **node_env(base, work, "driver")}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

        note("agents and replicas up", started)
        # 1. events posted to Serve are folded by the agents on the other node
        inputs = [e for cid in CUSTOMERS for e in (lead(cid), page_view(cid, 0), page_view(cid, 1))]
        api.post_events(inputs)
        views = dict.fromkeys(CUSTOMERS, 2)
        wait_for(lambda: all(api.page_views(c) == 2 for c in CUSTOMERS), "the profiles of the posted events", every_s=0.2)
        journey = lambda: {k for s in range(2) for k in ray_get(sup.actor("journey", s).records.remote())}  # noqa: E731
        wait_for(lambda: set(CUSTOMERS) <= journey(), "the journey shards to fold every customer", every_s=0.2)

        note("phase 1 done", started)
        # 2. freshness across nodes: post one event, poll the profile on the serve node until it shows it
        fresh_ms = []
        for n in range(50):
            cid = CUSTOMERS[n % len(CUSTOMERS)]
            views[cid] += 1
            event = page_view(cid, views[cid] - 1)
            inputs.append(event)
            t0 = time.monotonic()
            api.post_events([event])
            wait_for(lambda c=cid: api.page_views(c) >= views[c], f"{cid}'s profile to show the new event", 10, 0.005)
            fresh_ms.append((time.monotonic() - t0) * 1000)
        figures["freshness_p50_ms"] = round(float(np.percentile(fresh_ms, 50)), 1)
        figures["freshness_p99_ms"] = round(float(np.percentile(fresh_ms, 99)), 1)
        figures["freshness_max_ms"] = round(max(fresh_ms), 1)

        note("phase 2 done", started)
        # 3. the policy promoted from the CLI reaches every replica
        out, _ = promote.communicate(timeout=240)
        if promote.returncode != 0:
            raise ClusterCheckFailed(f"ame policies promote failed:\n{out.decode()[-2000:]}")
        t_promoted = time.monotonic()
        wait_for(lambda: all(api.next_best_action(c)["policy_name"] == PROMOTED for c in CUSTOMERS * 2),
                 "every replica to serve the promoted policy", 30, 0.2)
        figures["promotion_reached_replicas_s"] = round(time.monotonic() - t_promoted, 2)
        answers = [api.next_best_action(c) for c in CUSTOMERS * 3]
        figures["nba_policy"] = sorted({f"{a['policy_name']}@{a['policy_version']}" for a in answers})
        replicas: set[str] = set()

        def both_replicas_seen() -> bool:  # /metrics carries the answering replica's id
            replicas.update(api.replica_ids())
            return len(replicas) >= 2

        wait_for(both_replicas_seen, "both replicas to answer /metrics", 30, 0.05)
        figures["replicas"] = len(replicas)

        note("phase 3 done", started)
        # 4. the agents' node dies; events and the daily tick keep coming; a new node takes the agents over
        wait_for(lambda: settled(sup), "the agents to settle before the kill", 60, 0)
        t_kill = time.monotonic()
        kill_node(cluster, agents_node)
        during = [page_view(c, views[c] + i) for c in CUSTOMERS for i in range(2)]
        for c in CUSTOMERS:
            views[c] += 2
        inputs += during
        api.post_events(during)
        tick = tick_event(TICK_DAY)
        sup.tick(TICK_DAY)
        cluster.add_node(num_cpus=1, resources={"agents": 1}, env_vars=node_env(base, work, "agents-2"))
        reference, records = reference_scoring(inputs, work)
        behind: dict[str, Any] = {}

        def caught_up() -> bool:
            seen = {m["event_id"] for m in sink.drain(quiet_s=0.2)}
            ticked = {m["customer_id"] for m in sink.drain(quiet_s=0) if m.get("causation_id") == tick.event_id}
            behind["profiles"] = [c for c in CUSTOMERS if api.page_views(c) != views[c]]
            behind["scoring_outputs"] = len(reference - seen)
            behind["inputs_not_on_the_topic"] = len({e["event_id"] for e in inputs} - seen)
            behind["tick_decisions"] = len(set(CUSTOMERS) - ticked)
            return not any(behind.values())

        try:
            wait_for(caught_up, "the agents on the new node to catch up", RECOVERY_WAIT_S, 0.2)
            figures["recovery_s"] = round(time.monotonic() - t_kill, 2)
        except ClusterCheckFailed:
            figures["recovery_s"] = None  # the counts below say what was not caught up
        figures["behind_after_wait"] = behind
        figures["recovery_wait_s"] = RECOVERY_WAIT_S
        live = {k: v for s in range(2) for k, v in ray_get(sup.actor("scoring", s).records.remote()).items()}
        folded = {c: sum(live.get(c, {}).get("counts", {}).values()) - sum(records[c]["counts"].values()) for c in CUSTOMERS}
        figures["scoring_events_applied_twice"] = sum(d for d in folded.values() if d > 0)
        figures["scoring_events_not_applied"] = -sum(d for d in folded.values() if d < 0)
        figures["restarts"] = sum(int(s.get("restarts", 0)) for s in sup.status())

        note("phase 4 done", started)
        # 5. an erasure run from the serve node's environment: the PII is unreadable on every node
        lead_body = next(b for b in sink.bodies if orjson.loads(b)["event_id"] == f"{ERASED}-lead")
        before = {res: reveal_on_node(res, lead_body) for res in ("serve", "agents")}
        erase = subprocess.run([AME, "privacy", "erase", ERASED, "--yes", "--json",
                                "--warehouse", "none"], env={**os.environ, **node_env(base, work, "serve")},
                               capture_output=True, text=True, timeout=120, check=False)
        if erase.returncode != 0:
            raise ClusterCheckFailed(f"ame privacy erase failed: {erase.stdout[-1000:]} {erase.stderr[-2000:]}")
        after = {res: reveal_on_node(res, lead_body) for res in ("serve", "agents")}
        figures["node_homes"] = sorted(home for home, _ in before.values())
        figures["pii_before"] = sorted({props["email"] or "" for _, props in before.values()})
        figures["pii_after"] = sorted({str(props["email"]) for _, props in after.values()})

        note("phase 5 done", started)
        figures.update(decision_counts(sink.drain(), reference, tick.event_id, CUSTOMERS))
        figures["decisions_lost"] = figures["scoring_lost"] + figures["journey_tick_lost"]
        figures["decisions_duplicated"] = (figures["scoring_extra"] + figures["journey_tick_extra"]
                                           + figures["republished_with_other_content"] + figures["scoring_events_applied_twice"])


def ray_get(ref: Any) -> Any:
    import ray  # lazy: Ray is heavy

    return ray.get(ref, timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, required=True, help="scratch folder: the nodes' homes and the bucket")
    parser.add_argument("--out", type=Path, required=True, help="where to write the figures (JSON)")
    parser.add_argument("--pubsub", default=os.environ.get("PUBSUB_EMULATOR_HOST", ""), help="the emulator's host:port")
    parser.add_argument("--postgres", default=os.environ.get("AME_TEST_POSTGRES", ""),
                        help="a PostgreSQL server's URL (a schema of its own is made in it)")
    args = parser.parse_args()
    with scratch_schema(args.postgres, "cluster") as postgres_url:
        figures = run(args.work.resolve(), args.pubsub, postgres_url)
    args.out.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    main()
