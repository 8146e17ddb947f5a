"""End to end through ``ame activate run``, with consent from the profile projection and erasures from the log's
key store: a customer without e-mail consent is not sent to HubSpot or Braze, a withdrawal takes them out of the
audience there, and ``ame privacy erase`` makes the next run delete the customer at every destination that held
them, through each API's delete (HubSpot's GDPR delete, Braze's /users/delete, a webhook ``erase``), once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from ame.cli import app
from data.log import open_log
from data.projections.base import Projector
from data.projections.profile import ProfileProjection
from data.projections.store import open_state_store
from data.settings import get_settings
from tests.integration.activation.activation_stub import StubRequest, StubResponse, StubServer

runner = CliRunner()
T0 = datetime(2026, 2, 1, 9, tzinfo=UTC)
PEOPLE = {"ann": "ann@example.com", "bob": "bob@example.com", "cy": "cy@example.com"}


def _consent(event_id: str, customer: str, granted: bool, minutes: int) -> dict[str, Any]:
    return {"event_id": event_id, "event_type": "consent_changed", "customer_id": customer,
            "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat(),
            "properties": {"channel": "email", "granted": granted}}


def _answer(request: StubRequest) -> StubResponse:
    if request.path.endswith(("/users/track", "/users/delete")):
        return StubResponse(201, {"message": "success"})
    if request.path.endswith("/gdpr-delete"):
        return StubResponse(204)
    return StubResponse(200, {})


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stub: StubServer) -> dict[str, str]:
    urls = {"log": f"sqlite:///{tmp_path / 'events.db'}", "state": f"sqlite:///{tmp_path / 'state.db'}",
            "warehouse": f"duckdb:///{tmp_path / 'wh.duckdb'}"}
    monkeypatch.setenv("AME_EVENT_LOG", urls["log"])
    monkeypatch.setenv("AME_STATE_STORE", urls["state"])
    monkeypatch.setenv("AME_WAREHOUSE", urls["warehouse"])
    get_settings.cache_clear()
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    con.execute("CREATE SCHEMA ame")
    con.execute("CREATE TABLE ame.marts_marketing_customer_360 (customer_id VARCHAR, email VARCHAR, lead_tier VARCHAR)")
    con.executemany("INSERT INTO ame.marts_marketing_customer_360 VALUES (?, ?, 'High')", list(PEOPLE.items()))
    con.close()
    (tmp_path / "syncs.yaml").write_text(f"""
syncs:
  - name: crm
    model: marts_marketing_customer_360
    mapping: {{email: email, tier: lead_tier}}
    destination: {{type: hubspot, base_url: "{stub.url}"}}
  - name: email_tool
    model: marts_marketing_customer_360
    mapping: {{external_id: customer_id, email: email, tier: lead_tier}}
    destination: {{type: braze, rest_endpoint: "{stub.url}"}}
  - name: hook
    model: marts_marketing_customer_360
    mapping: {{id: customer_id, tier: lead_tier}}
    destination: {{type: webhook, url: "{stub.url}/hook"}}
""", encoding="utf-8")
    urls["config"] = str(tmp_path / "syncs.yaml")
    stub.responder = _answer
    return urls


def _log(urls: dict[str, str], events: list[dict[str, Any]]) -> None:
    """Append events and fold them into the profiles (what the projector agent does)."""
    log = open_log(urls["log"])
    log.append(events)
    store = open_state_store(urls["state"])
    Projector(log, store, ProfileProjection()).catch_up()
    store.close()
    log.close()


def _run(urls: dict[str, str], tmp_path: Path) -> dict[str, dict[str, Any]]:
    result = runner.invoke(app, ["activate", "run", "--config", urls["config"], "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    return {r["sync"]: r for r in json.loads((tmp_path / "r.json").read_text())}


def _upserted(stub: StubServer) -> set[tuple[str, str]]:
    sent: set[tuple[str, str]] = set()
    for r in stub.requests:
        if r.path.endswith("/batch/upsert"):
            sent |= {("hubspot", i["id"]) for i in r.json["inputs"] if any(i["properties"].values())}
        elif r.path.endswith("/users/track"):
            sent |= {("braze", a["external_id"]) for a in r.json["attributes"] if a.get("tier")}
        elif r.path.endswith("/hook") and r.json["operation"] == "upsert":
            sent |= {("webhook", x["key"]) for x in r.json["records"]}
    return sent


def test_consent_gates_sends_and_erasure_deletes_once(tmp_path: Path, stub: StubServer, engine: dict[str, str]) -> None:
    lead = {"event_id": "lead-ann", "event_type": "lead_created", "customer_id": "ann", "occurred_at": T0.isoformat(),
            "properties": {"email": PEOPLE["ann"], "first_name": "Ann"}}  # what erasure sweeps the stores for
    _log(engine, [lead, _consent("c1", "ann", True, 1), _consent("c2", "bob", True, 2), _consent("c3", "cy", False, 3)])
    first = _run(engine, tmp_path)
    assert _upserted(stub) == {("hubspot", "ann@example.com"), ("hubspot", "bob@example.com"), ("braze", "ann"),
                               ("braze", "bob"), ("webhook", "ann"), ("webhook", "bob"), ("webhook", "cy")}
    assert first["crm"]["withheld"] == 1 and first["hook"]["withheld"] == 0, "the webhook needs no consent"

    stub.requests.clear()
    _log(engine, [_consent("c4", "bob", False, 10)])  # bob withdraws e-mail consent
    second = _run(engine, tmp_path)
    assert sorted(stub.removals) == [("braze", "bob"), ("hubspot", "bob@example.com")]
    assert stub.deletes == [] and _upserted(stub) == set()
    assert second["crm"]["deletes_sent"] == 1 and second["crm"]["withheld"] == 2

    stub.requests.clear()
    stub.removals.clear()
    erased = runner.invoke(app, ["privacy", "erase", "ann", "--yes", "--warehouse", "none"])
    assert erased.exit_code == 0, erased.output
    third = _run(engine, tmp_path)
    assert sorted(stub.deletes) == [("braze", "ann"), ("hubspot", "ann@example.com"), ("webhook", "ann")]
    assert stub.removals == [] and _upserted(stub) == set()
    assert all(third[s]["erasures_sent"] == 1 and third[s]["status"] == "ok" for s in ("crm", "email_tool", "hook"))

    stub.requests.clear()
    stub.deletes.clear()
    fourth = _run(engine, tmp_path)
    assert stub.requests == [], "a rerun sends nothing: each erasure is deleted once"
    assert all(r["erasures_sent"] == 0 and r["deletes_sent"] == 0 for r in fourth.values())
