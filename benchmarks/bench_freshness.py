"""Freshness benchmark: the p99 time from a ``consent_changed`` append to Serve answering with the new consent,
while 1,000 events/s of other events arrive; beside the bare log's append-to-readable latency in the same run.

What runs is what ``ame agents up`` and the decision API run: the projector actor (started by ``AgentSupervisor`` on
a local 2-CPU Ray) keeps the profile projection current and the journey agent folds every customer's facts; the
decision API (``serve.routes.build_api`` on uvicorn, bench_serve's baseline server, in its own process) reads ad
consent from the projection for ``/v1/bid`` and the journey agent's state for ``/v1/next-best-action``. A thread appends page views of other
customers at a steady rate. Each probe takes a customer the route serves (a bid for ``/v1/bid``), appends the
withdrawal of consent on the route's channel and asks the route, as fast as it answers, until the answer reflects
it. Baseline probes, interleaved with them, append an event and read it back from a second connection to the log.

``python -m benchmarks freshness`` measures ``/v1/bid`` (ad consent) and ``/v1/next-best-action`` (e-mail consent);
``python -m benchmarks.bench_freshness --route bid`` measures one.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import numpy as np
import orjson

from agents.cli import build_agents
from agents.projector import ProjectorConfig
from agents.supervisor import AgentSupervisor
from benchmarks.__main__ import print_results
from benchmarks.bench_serve import ROOT, TOKEN_ENV, _wait_ready
from benchmarks.common import BenchResult, free_port
from data.events import ConsentChanged, EventBase, LeadCreated, PageView
from data.log import EventLog, open_log
from data.settings import get_settings

log = logging.getLogger(__name__)
AREA = "freshness"
TARGET_MS = 1_000.0
RATE = 1_000.0
"""Events per second of other traffic while probing (the issue's load)."""
TICK_S = 0.01
"""The background appender appends RATE * TICK_S events every TICK_S seconds."""
PROBE_TIMEOUT_S = 5.0
"""A probe that sees no change within this long counts as a miss (its latency is reported as this)."""
T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


# ---- what a probe asks, and when its answer reflects a withdrawal --------------------------------------------


@dataclass(frozen=True)
class Route:
    """One route whose answers depend on consent on one channel.

    :param path: the HTTP route.
    :param channel: the channel whose consent the probe withdraws.
    :param body: the request body for a customer.
    :param setup: events that make the route serve the customer on that channel (appended before the probe).
    :param serves: whether an answer (status, body) uses the channel: true before the withdrawal, false after.
    :param agents: the agents whose state the route reads (names of ``ame agents up --agent``), run beside the
        projector while it is probed.
    """

    key: str
    path: str
    channel: str
    body: Callable[[str], bytes]
    setup: Callable[[str], list[EventBase]]
    serves: Callable[[int, bytes], bool]
    agents: tuple[str, ...] = ()


def _bid_body(cid: str) -> bytes:
    return orjson.dumps({"id": f"fresh-{cid}", "imp": [{"id": "1", "bidfloor": 0.05, "ext": {"value": 2.0}}],
                         "user": {"id": cid}, "tmax": 100, "ext": {"campaign_id": "fresh"}})


def _granted(cid: str, channel: str) -> list[EventBase]:
    return [LeadCreated(event_id=f"{cid}-lead", customer_id=cid, occurred_at=T0),
            ConsentChanged(event_id=f"{cid}-{channel}-yes", customer_id=cid, occurred_at=T0 + timedelta(seconds=1),
                           properties={"channel": channel, "granted": True})]


def _emails(status: int, body: bytes) -> bool:
    return status == 200 and orjson.loads(body).get("channel") == "email"


ROUTES = {
    "bid": Route("bid", "/v1/bid", "ad", _bid_body, lambda cid: _granted(cid, "ad"), lambda s, b: s == 200),
    "nba": Route("nba", "/v1/next-best-action", "email", lambda cid: orjson.dumps({"customer_id": cid}),
                 lambda cid: _granted(cid, "email"), _emails, agents=("journey",)),
}
DEFAULT_ROUTES = ("bid", "nba")


def withdrawal(cid: str, channel: str) -> ConsentChanged:
    return ConsentChanged(event_id=f"{cid}-{channel}-no", customer_id=cid, occurred_at=T0 + timedelta(seconds=2),
                          properties={"channel": channel, "granted": False})


# ---- the load: other customers' events at a steady rate ------------------------------------------------------


class SteadyAppender:
    """Appends page views of other customers at ``rate`` events/s, ``rate * tick_s`` every ``tick_s`` on a fixed
    schedule (a late tick appends at once; the schedule does not drift)."""

    def __init__(self, log_url: str, rate: float = RATE, tick_s: float = TICK_S) -> None:
        self.log_url, self.rate, self.tick_s = log_url, rate, tick_s
        self.per_tick = max(1, round(rate * tick_s))
        self.appended = 0
        self.started = self.stopped = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-appender", daemon=True)

    def _run(self) -> None:
        log_ = open_log(self.log_url)
        try:
            tick = 0
            self.started = time.perf_counter()
            while not self._stop.is_set():
                base = tick * self.per_tick
                log_.append([PageView(event_id=f"bg-{base + j}", customer_id=f"bg-{(base + j) % 5_000}",
                                      occurred_at=T0 + timedelta(milliseconds=base + j), properties={"url": "/p"})
                             for j in range(self.per_tick)])
                self.appended += self.per_tick
                tick += 1
                self._stop.wait(max(0.0, self.started + tick * self.tick_s - time.perf_counter()))
            self.stopped = time.perf_counter()
        finally:
            log_.close()

    def achieved(self) -> float:
        """Events per second actually appended."""
        end = self.stopped or time.perf_counter()
        return self.appended / (end - self.started) if end > self.started else 0.0

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


# ---- the decision API (a child process) and its client -------------------------------------------------------


class Client:
    """A keep-alive HTTP/1.1 client of the decision API."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.conn.request("POST", path, body=body, headers=self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.conn.close()


def start_api(folder: Path, port: int, token: str) -> subprocess.Popen[bytes]:
    """bench_serve's plain-uvicorn server on ``folder``'s log and state store."""
    env = {**os.environ, TOKEN_ENV: token, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "benchmarks.bench_serve", "--server", "uvicorn", "--port", str(port), "--folder", str(folder)]
    with open(folder / "api.log", "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    _wait_ready(port, token, 120)
    return proc


def stop_api(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, 15)
        proc.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, 9)


# ---- the probes ----------------------------------------------------------------------------------------------


def _poll(check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if check():
            return True
    return False


def probe_route(route: Route, client: Client, writer: EventLog, cid: str) -> float | None:
    """Seconds from the withdrawal's append to the first answer that reflects it; None where the route did not
    serve the customer on the channel before (nothing to measure)."""
    writer.append(route.setup(cid))
    body = route.body(cid)
    if not _poll(lambda: route.serves(*client.post(route.path, body)), PROBE_TIMEOUT_S):
        return None
    start = time.perf_counter()
    writer.append([withdrawal(cid, route.channel)])
    _poll(lambda: not route.serves(*client.post(route.path, body)), PROBE_TIMEOUT_S)
    return time.perf_counter() - start


def probe_log(writer: EventLog, reader: EventLog, cid: str) -> float:
    """Seconds from an append to the event being readable from another connection (the bare log)."""
    start = time.perf_counter()
    position = writer.append([withdrawal(cid, "sms")]).last_position
    _poll(lambda: bool(reader.read(position - 1, 1).events), PROBE_TIMEOUT_S)
    return time.perf_counter() - start


@dataclass
class Samples:
    seconds: list[float]
    skipped: int = 0

    def add(self, seconds: float | None) -> None:
        """One probe's latency; None where there was nothing to measure."""
        if seconds is None:
            self.skipped += 1
        else:
            self.seconds.append(seconds)

    def p(self, q: float) -> float:
        return float(np.percentile(np.asarray(self.seconds) * 1000, q)) if self.seconds else float("nan")

    def misses(self) -> int:
        return sum(s >= PROBE_TIMEOUT_S for s in self.seconds)


def measure(routes: list[Route], probes: int, poll_interval_s: float, seed: int = 0) -> dict[str, Any]:
    """Start the projector, the API and the load; interleave route and baseline probes; stop everything."""
    import ray  # lazy: Ray is heavy


    folder = Path(tempfile.mkdtemp(prefix="bench-freshness-"))
    log_url, state_url = f"sqlite:///{folder / 'events.db'}", f"sqlite:///{folder / 'state.db'}"
    token = "ame_" + secrets.token_urlsafe(24)
    config = ProjectorConfig.from_settings(log_url, state_url, get_settings()).model_copy(update={"poll_interval_s": poll_interval_s})
    owns_ray = not ray.is_initialized()
    if owns_ray:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    writer, reader = open_log(log_url), open_log(log_url)
    agents = build_agents(sorted({name for r in routes for name in r.agents}))
    sup = AgentSupervisor(log_url, folder / "agents", agents, shards=1, namespace="bench-freshness", projector=config)
    proc = None
    rng = random.Random(seed)
    out: dict[str, Any] = {"baseline": Samples([]), **{r.key: Samples([]) for r in routes}}
    try:
        sup.up()
        port = free_port()
        proc = start_api(folder, port, token)
        client = Client(port, token)
        with SteadyAppender(log_url) as load:
            time.sleep(1.0)  # the load reaches its rate and the projector its steady state
            for i in range(probes):
                for route in routes:
                    time.sleep(rng.uniform(0, poll_interval_s))  # probes fall anywhere in the projector's cycle
                    out[route.key].add(probe_route(route, client, writer, f"probe-{route.key}-{i}"))
                out["baseline"].add(probe_log(writer, reader, f"probe-log-{i}"))
            out["rate"] = load.achieved()
        out["projector"] = next(s for s in sup.status() if s["agent"] == config.actor_name)
        out["load"] = os.getloadavg()[0]
        out["poll_interval_s"] = poll_interval_s
        client.close()
    finally:
        if proc is not None:
            stop_api(proc)
        sup.down()
        writer.close()
        reader.close()
        if owns_ray:
            ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
    return out


def rows(measured: dict[str, Any], routes: list[Route]) -> list[BenchResult]:
    base: Samples = measured["baseline"]
    bp99 = base.p(99)
    projector = measured["projector"]
    context = (f"background {measured['rate']:,.0f} events/s; projector poll {measured['poll_interval_s'] * 1000:.0f} ms, "
               f"lag at the end {projector.get('lag', '?')}, restarts {projector.get('restarts', '?')}; "
               f"load {measured['load']:.1f}")
    out = []
    for route in routes:
        s: Samples = measured[route.key]
        name = f"consent withdrawn ({route.channel}) -> {route.path} reflects it, p99 at {RATE:,.0f} events/s"
        if not s.seconds:
            out.append(BenchResult(AREA, name, float("nan"), "ms", "bare log append -> readable p99", bp99,
                                   f"<= {TARGET_MS:,.0f} ms", False,
                                   f"not measurable: the route never used {route.channel} for the probe customers "
                                   f"({s.skipped} probes; quiet hours?); {context}"))
            continue
        p99 = s.p(99)
        note = (f"p50 {s.p(50):.1f} ms, max {max(s.seconds) * 1000:.1f} ms, {len(s.seconds)} probes, "
                f"{s.misses()} not reflected within {PROBE_TIMEOUT_S:.0f} s, {s.skipped} skipped; "
                f"ratio to the bare log {p99 / bp99:,.0f}x (bare log p50 {base.p(50):.2f} ms); {context}")
        out.append(BenchResult(AREA, name, p99, "ms", "bare log append -> readable p99", bp99, f"<= {TARGET_MS:,.0f} ms",
                               p99 <= TARGET_MS and s.misses() == 0, note))
    return out


def run(quick: bool = False, route_keys: tuple[str, ...] = DEFAULT_ROUTES) -> list[BenchResult]:
    """The freshness rows of ``route_keys`` (keys of :data:`ROUTES`)."""
    routes = [ROUTES[k] for k in route_keys]
    measured = measure(routes, probes=40 if quick else 200, poll_interval_s=get_settings().projector_poll_interval_s)
    return rows(measured, routes)


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--route", nargs="+", choices=sorted(ROUTES), default=list(DEFAULT_ROUTES),
                        help="Routes to probe: bid (/v1/bid, ad consent), nba (/v1/next-best-action, email consent).")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    print_results(run(quick=args.quick, route_keys=tuple(args.route)))


if __name__ == "__main__":
    _main()
