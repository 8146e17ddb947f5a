"""Serve benchmark: closed-loop HTTP clients at concurrency 1, 8, 32 against ``/v1/bid`` and
``/v1/next-best-action``, and an open-loop steady 200 req/s on ``/v1/bid``; p50, p99 and req/s for each Ray Serve
configuration, beside the same FastAPI app (``serve.routes.build_api``) on plain uvicorn, all in one run.

The ``ame serve run`` rows deploy serve/config.yaml as that command does (its deployment options, its logging
configuration, the ingress :func:`serve.ingress.choose_ingress` picks on this machine), once as chosen and once with
HAProxy off (``RAY_SERVE_ENABLE_HA_PROXY=0``: what a machine without an haproxy binary gets).

Each server runs in its own process tree (``python -m benchmarks.bench_serve --server NAME --port P``); Serve
configurations get their environment variables before ``ray.init`` so every Ray process sees them. The load
generator is a raw HTTP/1.1 keep-alive client on uvloop in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import yaml

from agents.journey import JourneyAgent
from agents.runtime import AgentShard, ShardConfig
from benchmarks.__main__ import print_results
from benchmarks.common import BenchResult, free_port
from data.log import open_log
from data.projections.base import Projector
from data.projections.profile import ProfileProjection
from data.projections.store import open_state_store
from serve.auth import hash_key
from serve.engine import Engine, ServeArgs
from serve.ingress import choose_ingress, find_haproxy

log = logging.getLogger(__name__)
AREA = "serve"
ROOT = Path(__file__).resolve().parents[1]
TOKEN_ENV = "AME_BENCH_SERVE_TOKEN"
STATE_ENV = "AME_BENCH_SERVE_STATE"  # the state store URL the server reads profiles and the journey state from

BID = orjson.dumps({"id": "bench", "imp": [{"id": "1", "bidfloor": 0.05}], "user": {"id": "cust-1"},
                    "device": {"ua": "bench"}, "tmax": 100, "ext": {"campaign_id": "c1"}})
NBA = orjson.dumps({"customer_id": "cust-1"})


@dataclass(frozen=True)
class Config:
    name: str
    kind: str  # uvicorn | serve | serve-run (serve/config.yaml as `ame serve run` deploys it)
    env: dict[str, str] = field(default_factory=dict)
    replicas: int = 1
    needs: str | None = None  # a binary that must be on PATH
    options: dict[str, Any] = field(default_factory=dict)  # more Serve deployment options (build_app's **options)
    state: str = "sqlite"  # sqlite | postgresql: where profiles and the agents' state live
    baseline: str = "plain uvicorn (baseline)"  # the configuration its rows are a ratio to
    targets: tuple[str, ...] = ()  # which targets its rows are judged against (see TARGETS)


HAPROXY = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}
# HAProxy's per-request metrics line is parsed by the HAProxyManager actor (~70 us of CPU a request here); off,
# the replicas record Serve's HTTP request metrics themselves.
HAPROXY_LEAN = {**HAPROXY, "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0"}
NO_ACCESS_LOG = {"logging_config": {"enable_access_log": False}}  # as serve/config.yaml
SERVE_RUN = "ame serve run (serve/config.yaml, the ingress it chooses)"
CONFIGS = [
    Config("plain uvicorn (baseline)", "uvicorn"),
    Config(SERVE_RUN, "serve-run", targets=("serve-run",)),
    Config("plain uvicorn, state on PostgreSQL", "uvicorn", state="postgresql", targets=("postgresql",)),
    Config("ame serve run, state on PostgreSQL", "serve-run", state="postgresql", baseline=SERVE_RUN,
           targets=("postgresql",)),
    Config("ame serve run (serve/config.yaml) without HAProxy", "serve-run", {"RAY_SERVE_ENABLE_HA_PROXY": "0"}),
    Config("serve default", "serve"),
    Config("serve THROUGHPUT_OPTIMIZED", "serve", {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}),
    Config("serve HAProxy + THROUGHPUT_OPTIMIZED", "serve", HAPROXY, needs="haproxy"),
    Config("serve HAProxy + THROUGHPUT_OPTIMIZED, 2 replicas", "serve", HAPROXY, replicas=2, needs="haproxy"),
    Config("serve HAProxy + THROUGHPUT_OPTIMIZED, 2 replicas, no access log (serve/config.yaml)", "serve", HAPROXY,
           replicas=2, needs="haproxy", options=NO_ACCESS_LOG),
    Config("serve HAProxy (1 thread) + THROUGHPUT_OPTIMIZED, 2 replicas, no access log", "serve",
           {**HAPROXY, "RAY_SERVE_HAPROXY_NBTHREAD": "1"}, replicas=2, needs="haproxy", options=NO_ACCESS_LOG),
    Config("serve HAProxy (metrics off) + THROUGHPUT_OPTIMIZED, 2 replicas, no access log", "serve", HAPROXY_LEAN,
           replicas=2, needs="haproxy", options=NO_ACCESS_LOG),
    Config("serve HAProxy (metrics off) + THROUGHPUT_OPTIMIZED, 3 replicas, no access log", "serve", HAPROXY_LEAN,
           replicas=3, needs="haproxy", options=NO_ACCESS_LOG),
    Config("serve HAProxy (metrics off, 1 thread) + THROUGHPUT_OPTIMIZED, 2 replicas, no access log", "serve",
           {**HAPROXY_LEAN, "RAY_SERVE_HAPROXY_NBTHREAD": "1"}, replicas=2, needs="haproxy", options=NO_ACCESS_LOG),
]


# ---- the servers (run in a child process) -------------------------------------------------------------------


def _args(folder: Path) -> dict[str, Any]:
    key = {"name": "bench", "sha256": hash_key(os.environ[TOKEN_ENV]), "scopes": ["admin"]}
    state = os.environ.get(STATE_ENV) or f"sqlite:///{folder / 'state.db'}"
    return {"event_log": f"sqlite:///{folder / 'events.db'}", "state_store": state,
            "policies_dir": str(folder / "policies"), "creative_store": f"sqlite:///{folder / 'creatives.db'}",
            "api_keys": [key], "pacing_from_agents": False, "agent_state_dir": str(folder / "agents"), "agent_shards": 1}


def _seed_customer(folder: Path, state: str) -> None:
    """cust-1 as the agents know it: arrived, consented to e-mail, folded by the journey agent and the profile
    projection, so both routes read a real record (not a miss). With ``state`` on PostgreSQL, ``AME_STATE_STORE``
    names it too (the journey shard's store)."""
    at = datetime(2026, 1, 5, 8, tzinfo=UTC).isoformat()
    url = f"sqlite:///{folder / 'events.db'}"
    log_ = open_log(url)
    log_.append([{"event_id": "seed-lead", "event_type": "lead_created", "customer_id": "cust-1", "occurred_at": at},
                 {"event_id": "seed-consent", "event_type": "consent_changed", "customer_id": "cust-1", "occurred_at": at,
                  "properties": {"channel": "email", "granted": True}},
                 {"event_id": "seed-visit", "event_type": "page_view", "customer_id": "cust-1", "occurred_at": at,
                  "properties": {"url": "https://shop.example/"}}])
    shard = AgentShard(JourneyAgent(), ShardConfig(log_url=url, state_dir=folder / "agents"), start=False)
    shard.catch_up()
    shard.close()
    Projector(log_, open_state_store(state), ProfileProjection()).catch_up()
    log_.close()


def _run_uvicorn(port: int, folder: Path) -> None:
    import uvicorn  # lazy: uvicorn is heavy

    from serve.routes import build_api  # lazy: loads FastAPI

    app = build_api(Engine(ServeArgs.model_validate(_args(folder))))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop", http="httptools")


def _run_serve(port: int, folder: Path, replicas: int, options: dict[str, Any]) -> None:
    from serve.app import build_app  # lazy: loads FastAPI

    _serve_forever(port, lambda: build_app(_args(folder), num_replicas=replicas, **options))


def _run_serve_config(port: int, folder: Path) -> None:
    """serve/config.yaml deployed as ``ame serve run`` deploys it, on this benchmark's port, log and keys."""
    from ray.serve.schema import ServeDeploySchema  # lazy: Ray is heavy

    from serve.app import build_app  # lazy: loads FastAPI
    from serve.cli import deployment_options  # lazy: imports the CLI's Typer app

    spec = ServeDeploySchema.model_validate(yaml.safe_load((ROOT / "serve" / "config.yaml").read_text()))
    args = {**spec.applications[0].args, **_args(folder)}
    _serve_forever(port, lambda: build_app(args, **deployment_options(spec)))


def _serve_forever(port: int, application: Any) -> None:
    """Start a local Ray (2 CPUs) and Serve on ``port``, run ``application()`` until SIGTERM."""
    import ray  # lazy: Ray is heavy
    from ray import serve  # lazy: Ray is heavy

    def stop(*_: Any) -> None:
        serve.shutdown()
        ray.shutdown()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)  # never a cluster started by ray start
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(application(), name="bench", route_prefix="/")
    while True:
        time.sleep(3600)


# ---- the load generator -------------------------------------------------------------------------------------


def _request(path: str, body: bytes, port: int, token: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    return await asyncio.wait_for(_exchange(reader, writer, raw), 10.0)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _closed_loop(port: int, raw: bytes, concurrency: int, seconds: float, warmup: float) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                break
            try:
                status = await _one(reader, writer, raw)
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            t1 = time.perf_counter()
            if t0 >= measure_from:
                latencies.append(t1 - t0)
                errors += status not in (200, 204)
        writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, seconds


async def _open_loop(port: int, raw: bytes, rate: float, seconds: float) -> tuple[list[float], int]:
    """Requests sent on a fixed schedule (a pool of connections), latency measured from the scheduled time."""
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(32):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter() + 0.2

    async def fire(at: float) -> None:
        nonlocal errors
        reader, writer = await pool.get()
        try:
            status = await _one(reader, writer, raw)
            latencies.append(time.perf_counter() - at)
            errors += status not in (200, 204)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            errors += 1
        finally:
            pool.put_nowait((reader, writer))

    tasks = []
    for i in range(int(rate * seconds)):
        at = start + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(at)))
    await asyncio.gather(*tasks)
    return latencies, errors


def _stats(latencies: list[float], seconds: float) -> tuple[float, float, float]:
    if not latencies:
        return float("nan"), float("nan"), 0.0
    arr = np.asarray(latencies) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99)), len(arr) / seconds


def _wait_ready(port: int, token: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    raw = _request("/v1/bid", BID, port, token)
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(raw)
                if s.recv(64)[9:12] in (b"200", b"204"):
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server on port {port} did not answer /v1/bid within {timeout_s:.0f} s")


def _haproxy_pids() -> set[int]:
    """HAProxy processes on this machine (Serve's HAProxy ingress outlives the Ray session it came from)."""
    pids = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if b"haproxy" in (proc / "cmdline").read_bytes().split(b"\0")[0]:
                    pids.add(int(proc.name))
            except OSError:
                continue
    return pids


@contextlib.contextmanager
def _state(config: Config, folder: Path) -> Iterator[str]:
    """The state store URL of a configuration: a SQLite file in ``folder``, or a fresh schema of the PostgreSQL
    server (``AME_TEST_POSTGRES``, else one started for the run), named by ``AME_STATE_STORE`` meanwhile."""
    if config.state != "postgresql":
        yield f"sqlite:///{folder / 'state.db'}"
        return
    from benchmarks.bench_postgres import _server, _state_store  # lazy: psycopg, only for these rows

    with _server(folder) as server, _state_store(server) as url:
        yield url


def measure(config: Config, quick: bool) -> dict[str, Any]:
    """Start one server, load it, stop it; the figures by route and concurrency."""
    folder = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    try:
        with _state(config, folder) as state:
            _seed_customer(folder, state)
            return _measure_server(config, quick, folder, state)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _measure_server(config: Config, quick: bool, folder: Path, state: str) -> dict[str, Any]:
    token = "ame_" + secrets.token_urlsafe(24)
    port = free_port()
    env = {**os.environ, **config.env, TOKEN_ENV: token, STATE_ENV: state, "PYTHONPATH": str(ROOT)}
    if config.state == "postgresql":
        env["AME_STATE_STORE"] = state  # the replicas' journey-state reader follows it
    name = config.name
    if config.kind == "serve-run":  # the variables `ame serve run` would set on this machine
        choice = choose_ingress(env)
        env.update(choice.env)
        name = f"{name}: {choice.mode}"
    cmd = [sys.executable, "-m", "benchmarks.bench_serve", "--server", config.kind, "--port", str(port),
           "--folder", str(folder), "--replicas", str(config.replicas), "--options", orjson.dumps(config.options).decode()]
    haproxy_before = _haproxy_pids()
    with open(Path(tempfile.gettempdir()) / f"bench-serve-{config.kind}-{port}.log", "wb") as server_log:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True)
    seconds, warmup = (2.0, 0.5) if quick else (4.0, 1.0)
    out: dict[str, Any] = {"config": name, "name": config.name, "baseline": config.baseline, "targets": config.targets}
    try:
        _wait_ready(port, token, 120)
        for route, body in (("/v1/bid", BID), ("/v1/next-best-action", NBA)):
            raw = _request(route, body, port, token)
            for c in (1, 8, 32):
                lat, errors, secs = asyncio.run(_closed_loop(port, raw, c, seconds, warmup))
                out[(route, c)] = (*_stats(lat, secs), errors)
        steady = 5 * seconds  # p99 of 2,000-4,000 requests, not of 400 (their 4th-slowest)
        for route, body in (("/v1/bid", BID), ("/v1/next-best-action", NBA)):
            lat, errors = asyncio.run(_open_loop(port, _request(route, body, port, token), 200.0, steady))
            p50, p99, _ = _stats(lat, steady)
            out[(route, "200/s")] = (p50, p99, len(lat) / steady, errors)
        out["load"] = os.getloadavg()[0]  # the neighbours' share of the 2 cores, quoted with each configuration
    finally:
        try:
            os.killpg(proc.pid, 15)
            proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, 9)
        with contextlib.suppress(ProcessLookupError):  # whatever of the server's group is still there (raylet, workers)
            os.killpg(proc.pid, 9)
        for pid in _haproxy_pids() - haproxy_before:  # only the HAProxy this configuration started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
    return out


def run(quick: bool = False) -> list[BenchResult]:
    """Every configuration of CONFIGS (skipping those whose binary is missing), then the rows."""
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    measured = []
    for config in CONFIGS:
        if config.needs and _missing(config.needs):
            log.warning("skipping %s: %s is not installed (apt-get install %s)", config.name, config.needs, config.needs)
            continue
        log.info("measuring %s", config.name)
        try:
            m = measure(config, quick)
        except Exception as error:  # noqa: BLE001 - one broken configuration must not lose the others' figures
            log.warning("%s failed: %s", config.name, error)
            continue
        measured.append(m)
        for key, (p50, p99, rps, errors) in ((k, v) for k, v in m.items() if isinstance(k, tuple)):
            log.info("  %-22s %-6s p50 %7.2f ms  p99 %7.2f ms  %8.0f req/s  errors %d", key[0], key[1], p50, p99, rps, errors)
    return rows(measured)


def _missing(binary: str) -> bool:
    """Whether a configuration's binary is missing (haproxy counts where Ray Serve finds one, its wheel's included)."""
    return find_haproxy(os.environ) is None if binary == "haproxy" else shutil.which(binary) is None


# The targets, each a ratio to its configuration's baseline (measured in the same run): name -> (route, level) -> test
TARGETS: dict[str, dict[tuple[str, object], tuple[str, Callable[[float, float], bool]]]] = {
    "serve-run": {
        ("/v1/bid", 32): (">= 50% of uvicorn", lambda value, base: value >= 0.5 * base),
        ("/v1/next-best-action", 32): (">= 50% of uvicorn", lambda value, base: value >= 0.5 * base),
        ("/v1/bid", "200/s"): ("p99 <= 3x uvicorn's", lambda value, base: value <= 3 * base),
        ("/v1/next-best-action", "200/s"): ("p99 <= 3x uvicorn's", lambda value, base: value <= 3 * base),
    },
    "postgresql": {
        ("/v1/next-best-action", "200/s"): ("p99 <= 2x SQLite state's", lambda value, base: value <= 2 * base),
    },
}


def rows(measured: list[dict[str, Any]]) -> list[BenchResult]:
    """Each configuration's figures beside its baseline's (the same route and level, same run)."""
    by_name = {m["name"]: m for m in measured}
    results = []
    for m in measured[1:] if len(measured) > 1 else measured:
        base = by_name.get(m["baseline"], measured[0])
        load = f"{m['load']:.1f} (baseline's run {base['load']:.1f})"
        for key, value in m.items():
            if not isinstance(key, tuple):
                continue
            p50, p99, rps, errors = value
            route, level = key
            bp50, bp99, brps, _ = base[key]
            name = f"{m['config']}: {route} @ {'c=' + str(level) if isinstance(level, int) else level}"
            note = (f"p50 {p50:.2f} ms ({base['config']} {bp50:.2f}), p99 {p99:.2f} ms ({bp99:.2f}), errors {errors};"
                    f" load {load}")
            target, test = _target(m["targets"], key)
            if level == "200/s":
                results.append(BenchResult(AREA, name + " p99", p99, "ms", f"{base['config']} p99", bp99, target,
                                           test(p99, bp99) if test else None, note))
            else:
                results.append(BenchResult(AREA, name, rps, "req/s", base["config"], brps, target,
                                           test(rps, brps) if test else None, note))
    return results


def _target(names: tuple[str, ...], key: tuple[str, object]) -> tuple[str, Callable[[float, float], bool] | None]:
    for name in names:
        if key in TARGETS[name]:
            return TARGETS[name][key]
    return "", None


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", choices=("uvicorn", "serve", "serve-run"))
    parser.add_argument("--port", type=int)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--options", type=orjson.loads, default={}, help="Serve deployment options (JSON).")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", help="Only configurations whose name contains one of these.")
    args = parser.parse_args()
    if args.server == "uvicorn":
        _run_uvicorn(args.port, args.folder)
        return
    if args.server == "serve":
        _run_serve(args.port, args.folder, args.replicas, args.options)
        return
    if args.server == "serve-run":
        _run_serve_config(args.port, args.folder)
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.only:
        CONFIGS[:] = [CONFIGS[0]] + [c for c in CONFIGS[1:] if any(o in c.name for o in args.only)]

    print_results(run(quick=args.quick))


if __name__ == "__main__":
    _main()
