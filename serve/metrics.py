"""Prometheus metrics of one API process: latency per route, decisions by policy, event lag, and the engine-wide
figures the alerting rules read (:mod:`serve.ops_metrics`: agents, dead letters, campaigns, drift).

Each replica keeps its own registry and answers ``GET /metrics`` with it (the ``replica`` label tells them
apart); Ray's own Serve metrics (``ray_serve_*``) are exported by the Ray metrics agent beside them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from serve.ops_metrics import OpsCollector, OpsSources

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServeMetrics:
    """The API's metrics in a registry of their own (so tests and several apps never collide).

    :param replica: the ``replica`` label (default: this process's id).
    :param ops: where the engine-wide figures are read at each scrape (None: not exported).
    """

    def __init__(self, replica: str | None = None, ops: OpsSources | None = None) -> None:
        self.replica = replica or f"pid-{os.getpid()}"
        self.registry = CollectorRegistry(auto_describe=True)
        if ops is not None:
            self.registry.register(OpsCollector(ops, self.replica))
        self.latency = Histogram(
            "ame_serve_request_seconds", "Time in the API handler, by route and status class.",
            ["route", "status", "replica"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.decisions = Counter(
            "ame_serve_decisions_total", "Decisions served, by kind and policy version.",
            ["kind", "policy", "version", "replica"], registry=self.registry,
        )
        self.event_lag = Gauge(
            "ame_serve_event_lag_events", "Events in the log not yet in the profile projection.",
            ["replica"], registry=self.registry,
        )
        self.decision_log_pending = Gauge(
            "ame_serve_decision_log_pending", "Decisions queued for the log, not yet appended.",
            ["replica"], registry=self.registry,
        )
        self.policy_swaps = Counter(
            "ame_serve_policy_swaps_total", "Hot swaps of a served policy.", ["policy", "replica"], registry=self.registry,
        )
        self._latency_children: dict[tuple[str, str], Any] = {}
        self._decision_children: dict[tuple[str, str, str], Any] = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        key = (route, f"{status // 100}xx")
        child = self._latency_children.get(key)
        if child is None:
            child = self._latency_children[key] = self.latency.labels(route, key[1], self.replica)
        child.observe(seconds)

    def decided(self, kind: str, policy: str, version: str) -> None:
        key = (kind, policy, version)
        child = self._decision_children.get(key)
        if child is None:  # labels() takes a lock and builds a key per call; a child per policy version is kept
            child = self._decision_children[key] = self.decisions.labels(kind, policy, version, self.replica)
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class EdgeMiddleware:
    """Pure ASGI middleware: refuses bodies over ``max_body_bytes`` (413) and times every request by route.

    (Pure ASGI rather than ``BaseHTTPMiddleware``: it adds no task per request.)
    """

    def __init__(self, app: Any, metrics: Callable[[], ServeMetrics | None], max_body_bytes: Callable[[], int]) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        limit = self.max_body_bytes()
        status = 500
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await _too_large(send, limit)
                self._observe(scope, 413, start)
                return
        seen = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge()
            return message

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_status)
        except _BodyTooLarge:
            status = 413
            await _too_large(send, limit)
        self._observe(scope, status, start)

    def _observe(self, scope: dict[str, Any], status: int, start: float) -> None:
        metrics = self.metrics()
        if metrics is not None:
            route = scope.get("route")
            path = getattr(route, "path", None) or ("unmatched" if status == 404 else scope.get("path", "?"))
            metrics.observe(path, status, time.perf_counter() - start)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = b'{"detail":"request body over the limit of %d bytes (AME_SERVE_MAX_BODY_BYTES); send smaller batches"}' % limit
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
