"""Fuzzing soak (issue 10): every HTTP route of the decision API, generated from its OpenAPI schema by
schemathesis plus hostile payloads (arbitrary JSON, oversized and malformed bodies), and event append and
ingestion with malformed input. Counted: cases, 5xx responses, crashes, and whether every event accepted
before the run is still in the log, unchanged.

``python -m benchmarks.bench_fuzz [--cases N]`` (default 10,000 per route; ``--quick``: 500).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from benchmarks.common import BenchResult
from data.log.ingest import ingest_lines
from data.log.sqlite import SqliteEventLog
from data.projections.base import Projector
from data.projections.profile import ProfileProjection
from serve.auth import generate_key
from serve.decide import PacingCache
from serve.engine import Engine, ServeArgs, Tunables

log = logging.getLogger(__name__)

HOSTILE_TEXT = st.one_of(
    st.text(max_size=64),
    st.sampled_from(["' OR 1=1 --", "<script>alert(1)</script>", "../../etc/passwd", "\x00", "\ud7ff" * 3, "%s%n",
                     "${jndi:ldap://x}", "NaN", "-Infinity", "1e999", "\u202e"]),
    st.integers(60_000, 80_000).map(lambda n: "A" * n),  # oversized
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False) | HOSTILE_TEXT,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(HOSTILE_TEXT, children, max_size=5),
    max_leaves=20,
)


def _dumps(value: Any) -> bytes:
    """JSON bytes of anything JSON can hold (integers beyond 64 bits and lone surrogates included)."""
    return json.dumps(value).encode()


@dataclass
class RouteFigures:
    cases: int = 0
    server_errors: int = 0
    crashes: int = 0
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def send(self, request: Any, what: str) -> None:
        """Count one case: ``request()`` returns the response; an exception is a crash, a 5xx other than 503
        (overload, allowed) a server error."""
        self.cases += 1
        try:
            response = request()
        except Exception:  # a crash is what we count
            self.crashes += 1
            log.exception("crash on %s", what)
            return
        self.statuses[response.status_code // 100 * 100] += 1
        if response.status_code >= 500 and response.status_code != 503:
            self.server_errors += 1


def _seed_events(n: int = 50) -> list[dict[str, Any]]:
    t = datetime(2026, 5, 1, 9, tzinfo=UTC)
    out = []
    for i in range(n):
        cid = f"seed-{i % 7}"
        kind = ("page_view", "consent_changed", "purchase", "lead_created")[i % 4]
        props = {"page_view": {"url": "/p"}, "consent_changed": {"channel": "email", "granted": i % 8 == 1},
                 "purchase": {"order_id": f"o{i}", "amount": 9.5}, "lead_created": {"email": f"p{i}@example.com"}}[kind]
        out.append({"event_id": f"seed-{i}", "event_type": kind, "customer_id": cid,
                    "occurred_at": (t + timedelta(minutes=i)).isoformat(), "properties": props})
    return out


class FuzzTarget:
    """A decision API on fresh files, seeded with events whose stored form is kept to compare against."""

    def __init__(self, folder: Path) -> None:
        from fastapi.testclient import TestClient  # lazy: FastAPI is heavy

        from serve.routes import build_api  # lazy: loads FastAPI

        self.tokens, keys = {}, []
        for name, scopes in (("fuzz", ["admin"]),):
            token, key = generate_key(name, scopes)
            self.tokens[name] = token
            keys.append(key)
        args = ServeArgs(event_log=f"sqlite:///{folder / 'events.db'}", state_store=f"sqlite:///{folder / 'state.db'}",
                         api_keys=keys, pacing_from_agents=False, policies_dir=str(folder / "policies"),
                         creative_store=f"sqlite:///{folder / 'cr.db'}", max_body_bytes=65_536)
        self.engine = Engine(args, Tunables(poll_interval_s=60), pacing=PacingCache(lambda c: {}))
        self.app = build_api(self.engine)
        self.client = TestClient(self.app, raise_server_exceptions=False)
        self.engine.log.append(_seed_events())
        Projector(self.engine.log, self.engine.state, ProfileProjection()).catch_up()
        self.before = self.snapshot()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['fuzz']}"}

    def snapshot(self) -> dict[str, tuple]:
        return {e.event_id: (e.position, e.event_type, e.customer_id, e.occurred_at_us, e.properties_json)
                for e in self.engine.log.read(limit=1_000_000).events}

    def intact(self) -> bool:
        """Every event stored before the run is still there, unchanged."""
        self.engine.decisions.flush()
        now = self.snapshot()
        return all(now.get(k) == v for k, v in self.before.items())

    def close(self) -> None:
        self.engine.close()


def _settings(n: int) -> Any:
    return settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck), derandomize=True)


def fuzz_schema_routes(target: FuzzTarget, cases: int, only: str = "") -> dict[str, RouteFigures]:
    """Every operation of /openapi.json, with schemathesis' generated (valid and invalid) requests."""
    import schemathesis  # lazy: schemathesis is heavy

    schema = schemathesis.openapi.from_asgi("/openapi.json", target.app)
    out: dict[str, RouteFigures] = {}
    for result in schema.get_all_operations():
        op = result.ok()
        if only not in f"{op.method.upper()} {op.path}":
            continue
        figures = out.setdefault(f"{op.method.upper()} {op.path}", RouteFigures())
        _time(_schema_runner(target, figures, op.as_strategy(), cases), figures)
    return out


def _time(fn: Any, figures: RouteFigures) -> None:
    started = time.perf_counter()
    fn()
    figures.seconds = time.perf_counter() - started


def _schema_runner(target: FuzzTarget, figures: RouteFigures, strategy: Any, cases: int) -> Any:
    @_settings(cases)
    @given(case=strategy)
    def run(case: Any) -> None:
        figures.send(lambda: case.call(headers=target.headers), repr(case))

    return run


def fuzz_hostile_bodies(target: FuzzTarget, cases: int, only: str = "") -> dict[str, RouteFigures]:
    """Arbitrary JSON, oversized bodies and bytes that are not JSON at every POST route."""
    out: dict[str, RouteFigures] = {}
    for path in ("/v1/events", "/v1/next-best-action", "/v1/bid", "/v1/creatives/select"):
        if only not in f"POST {path} (hostile)":
            continue
        figures = out.setdefault(f"POST {path} (hostile)", RouteFigures())
        body = st.one_of(JSON.map(_dumps), st.binary(max_size=256),
                         st.builds(lambda n: b'{"events": [' + b'{"a": 1},' * n + b'{}]}', st.integers(0, 20_000)),
                         st.builds(lambda d: b"[" * d + b"]" * d, st.integers(1, 5_000)),
                         st.lists(st.fixed_dictionaries({"event_type": st.sampled_from(["purchase", "lead_created", "x"]),
                                                         "customer_id": HOSTILE_TEXT, "event_id": HOSTILE_TEXT,
                                                         "occurred_at": HOSTILE_TEXT, "properties": JSON}),
                                  max_size=5).map(lambda evs: _dumps({"events": evs})))
        _time(_body_runner(target, figures, body, path, cases), figures)
    return out


def _body_runner(target: FuzzTarget, figures: RouteFigures, body: Any, path: str, cases: int) -> Any:
    @_settings(cases)
    @given(raw=body)
    def run(raw: bytes) -> None:
        headers = {**target.headers, "Content-Type": "application/json"}
        figures.send(lambda: target.client.post(path, content=raw, headers=headers), f"POST {path}")

    return run


def _header_bytes(text: str) -> bytes:
    """Hostile text as a header value HTTP can carry: latin-1 bytes, no control characters, at most 8 kB."""
    raw = text.encode("latin-1", "replace")[:8_000]
    return bytes(b for b in raw if b >= 0x20 and b != 0x7F)


HEADER_TEXT = HOSTILE_TEXT.map(_header_bytes)
URL_TEXT = HOSTILE_TEXT.map(lambda t: t[:2_000])  # longer URLs are refused by the HTTP server before the app (414)


def fuzz_hostile_requests(target: FuzzTarget, cases: int, only: str = "") -> dict[str, RouteFigures]:
    """Every GET route with hostile query strings, path parameters and headers (a forged, oversized or
    missing credential; odd content types): what schemathesis cannot vary on routes without parameters."""
    out: dict[str, RouteFigures] = {}
    query = st.dictionaries(URL_TEXT.map(lambda t: t[:64] or "q"), URL_TEXT, max_size=4)
    auth = st.one_of(st.just(None), st.just(target.headers["Authorization"].encode()), HEADER_TEXT.map(lambda t: b"Bearer " + t),
                     HEADER_TEXT)
    headers = st.fixed_dictionaries({"auth": auth, "accept": HEADER_TEXT, "content-type": HEADER_TEXT})
    for path in ("/healthz", "/metrics", "/v1/customers/{customer_id}"):
        name = f"GET {path} (hostile)"
        if only not in name:
            continue
        figures = out.setdefault(name, RouteFigures())
        _time(_request_runner(target, figures, path, query, headers, cases, quote), figures)
    return out


def _request_runner(target: FuzzTarget, figures: RouteFigures, path: str, query: Any, headers: Any, cases: int,
                    quote: Any) -> Any:
    @_settings(cases)
    @given(params=query, head=headers, customer=st.one_of(st.sampled_from([f"seed-{i}" for i in range(7)]), URL_TEXT))
    def run(params: dict[str, str], head: dict[str, bytes | None], customer: str) -> None:
        url = path.replace("{customer_id}", quote(customer.encode("utf-8", "surrogatepass"), safe="") or "x")
        sent = {k: v for k, v in (("Authorization", head["auth"]), ("Accept", head["accept"]),
                                  ("Content-Type", head["content-type"])) if v is not None}
        figures.send(lambda: target.client.get(url, params=params, headers=sent), f"GET {url}")

    return run


def fuzz_event_append(folder: Path, cases: int) -> RouteFigures:
    """Malformed, oversized and hostile lines through ingestion (the log's edge): valid ones appended, the rest
    dead-lettered, never an exception; the seeded events stay unchanged."""
    figures = RouteFigures()
    event_log = SqliteEventLog(f"sqlite:///{folder / 'append.db'}")
    event_log.append(_seed_events())
    before = {e.event_id: e for e in event_log.read(limit=10_000).events}
    line = st.one_of(JSON.map(_dumps), st.binary(max_size=128),
                     st.fixed_dictionaries({"event_id": HOSTILE_TEXT,
                                            "event_type": st.sampled_from(["purchase", "lead_created", "page_view"]),
                                            "customer_id": HOSTILE_TEXT, "occurred_at": st.datetimes(timezones=st.just(UTC)).map(str),
                                            "properties": JSON}).map(_dumps),
                     st.sampled_from(_seed_events()).map(lambda e: _dumps({**e, "properties": {"url": "changed"}})))

    @_settings(cases)
    @given(lines=st.lists(line, min_size=1, max_size=5))
    def run(lines: list[bytes]) -> None:
        figures.cases += 1
        try:
            ingest_lines(event_log, lines, source="fuzz", max_event_bytes=4096)
        except Exception:
            figures.crashes += 1
            log.exception("append crash")

    started = time.perf_counter()
    run()
    figures.seconds = time.perf_counter() - started
    after = {e.event_id: e for e in event_log.read(limit=10_000).events}
    figures.server_errors = sum(1 for k, v in before.items() if after.get(k) != v)  # seeded events lost or changed
    event_log.close()
    return figures


def fuzz_all(cases: int, folder: Path | None = None, only: str = "") -> tuple[dict[str, RouteFigures], bool]:
    """Every route and event append, ``cases`` each; returns the figures and whether the seeded log is intact."""
    folder = folder or Path(tempfile.mkdtemp(prefix="ame-fuzz-"))
    target = FuzzTarget(folder)
    try:
        figures = fuzz_schema_routes(target, cases, only)
        figures.update(fuzz_hostile_bodies(target, cases, only))
        figures.update(fuzz_hostile_requests(target, cases, only))
        if only in "event append (ingest)":
            figures["event append (ingest)"] = fuzz_event_append(folder, cases)
        return figures, target.intact()
    finally:
        target.close()


def run(quick: bool = False, cases: int | None = None, only: str = "") -> list[BenchResult]:
    cases = cases or (500 if quick else 10_000)
    figures, intact = fuzz_all(cases, only=only)
    out = []
    for name, f in figures.items():
        out.append(BenchResult(
            "fuzz", f"{name}: cases", f.cases, "cases", "5xx + crashes", f.server_errors + f.crashes,
            f">= {cases:,} cases (fewer: input space exhausted), 0 5xx, 0 crashes", f.server_errors == 0 and f.crashes == 0,
            note=f"{f.cases / max(f.seconds, 1e-9):,.0f} cases/s; status classes {dict(sorted(f.statuses.items()))}"))
    out.append(BenchResult("fuzz", "seeded events intact after the run", float(intact), "bool", "", None, "1", intact))
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="", help="Only the routes whose name contains this text (e.g. 'POST /v1/bid').")
    ns = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for r in run(ns.quick, ns.cases, ns.only):
        print(f"{r.name:55s} {r.value:>10,.0f} {r.unit:6s} | {r.baseline_name}: {r.baseline_value} | met={r.met} | {r.note}")
