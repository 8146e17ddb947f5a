"""The fast subset of the fuzzing soak (benchmarks/bench_fuzz.py runs >= 10,000 cases per route): every HTTP
route from the OpenAPI schema (schemathesis) and hostile bodies, and event ingestion; no 5xx, no crash, and
every event stored before the run is still there, unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.bench_fuzz import FuzzTarget, fuzz_all

pytest.importorskip("schemathesis", reason="pip install schemathesis (the fuzzing of the HTTP routes)")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_every_route_and_append_survive_hostile_input(tmp_path: Path) -> None:
    figures, intact = fuzz_all(25, tmp_path)
    assert {"POST /v1/events", "POST /v1/bid", "POST /v1/next-best-action", "GET /v1/customers/{customer_id}",
            "POST /v1/creatives/select", "event append (ingest)"} <= set(figures)
    bad = {name: (f.server_errors, f.crashes) for name, f in figures.items() if f.server_errors or f.crashes}
    assert bad == {}
    assert intact
    assert all(f.cases >= 1 for f in figures.values())


def test_an_integer_beyond_64_bits_is_refused_not_a_500(tmp_path: Path) -> None:
    target = FuzzTarget(tmp_path)
    try:
        body = json.dumps({"events": [{"event_type": "purchase", "customer_id": "c", "properties": {"items": 2**70}}]})
        r = target.client.post("/v1/events", content=body, headers={**target.headers, "Content-Type": "application/json"})
        assert r.status_code == 202 and r.json()["rejected"] == 1 and "64 bits" in r.json()["errors"][0]["error"]
        assert target.intact()
    finally:
        target.close()
