"""Must show (issue 10): after ``ame privacy erase``, no byte of the customer's email or name is left in the
log, the state and snapshot files, or the warehouse file, while the aggregates still reconcile and a replay
still works, showing the PII as erased."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from data.log import open_log
from data.log.base import RejectedInput
from data.projections.base import Projector
from data.projections.profile import ProfileProjection
from data.projections.store import open_state_store
from data.synthetic import synthetic_dicts
from data.warehouse import open_warehouse
from data.warehouse.build import WarehouseProject
from data.warehouse.loader import load_events

pytestmark = pytest.mark.filterwarnings("ignore:.*json_encoders.*")
os.environ.setdefault("SQLMESH__DISABLE_ANONYMIZED_ANALYTICS", "1")

TARGET, KEEP = "cust-erase-0001", "cust-keep-0001"
SECRETS = {"email": "Zelda.Quintonworth@privacy-test.example", "first_name": "Zeldabeth", "last_name": "Quintonworth",
           "phone": "+15550001234"}
KEEP_EMAIL = "keep.marlowe@privacy-test.example"


def _events() -> list[dict]:
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    events = list(synthetic_dicts(1500, customers=100, seed=3, start=start))
    t = start + timedelta(hours=1)
    for cid, props in ((TARGET, SECRETS), (KEEP, {"email": KEEP_EMAIL, "first_name": "Keepwell"})):
        events.append({"event_id": f"lead-{cid}", "event_type": "lead_created", "customer_id": cid,
                       "occurred_at": t.isoformat(), "properties": {**props, "company": "Quinton Ltd"}})
        for i in range(3):
            events.append({"event_id": f"buy-{cid}-{i}", "event_type": "purchase", "customer_id": cid,
                           "occurred_at": (t + timedelta(hours=i + 1)).isoformat(),
                           "properties": {"order_id": f"o-{cid}-{i}", "amount": 10.0 * (i + 1)}})
    events.sort(key=lambda e: e["occurred_at"])
    return events


def _files(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def _needles() -> list[bytes]:
    values = [*SECRETS.values(), SECRETS["email"].lower()]
    return [v.encode() for v in values] + [v.encode("utf-16-le") for v in values]


def _aggregates(wh_url: str, log_url: str) -> dict:
    con = duckdb.connect(wh_url[len("duckdb:///"):], read_only=True)
    try:
        raw = con.execute("select count(*), sum(amount) from ame.raw_events where event_type not in"
                          " ('customer_erased', 'data_accessed')").fetchone()
        marts = con.execute("select count(*), round(sum(total_revenue), 6), sum(total_purchases)"
                            " from ame.marts_marketing_customer_360").fetchone()
    finally:
        con.close()
    log = open_log(log_url)
    try:
        by_type = {k: v for k, v in log.stats().by_type.items() if k not in ("customer_erased", "data_accessed")}
    finally:
        log.close()
    return {"raw": raw, "marts": marts, "log": by_type}


def test_erasure_leaves_no_plaintext_and_aggregates_reconcile(tmp_path: Path) -> None:
    from ame.cli import app  # lazy: loads torch and stable-baselines3

    folder = tmp_path / "ame"
    log_url, state_url = f"sqlite:///{folder / 'events.db'}", f"sqlite:///{folder / 'state.db'}"
    wh_url = f"duckdb:///{folder / 'warehouse.duckdb'}"
    log = open_log(log_url)
    log.append(_events())
    log.dead_letter([RejectedInput(raw=json.dumps({"event_type": "lead_created", "customer_id": TARGET,
                                                   "properties": {"email": SECRETS["email"], "bogus": 1}}).encode(),
                                   reason="test: unknown field", source="test")])
    store = open_state_store(state_url)
    Projector(log, store, ProfileProjection(), snapshot_every=500).catch_up()
    store.close()
    wh = open_warehouse(wh_url)
    load_events(log, wh)
    wh.close()
    log.close()
    project = WarehouseProject(wh_url)
    project.build()
    project.close()

    # encrypted at rest: the log never held the plaintext, but the dead letter and the warehouse did
    with sqlite3.connect(folder / "events.db") as conn:
        assert conn.execute("select count(*) from events where instr(properties, 'Quintonworth') > 0"
                            " or instr(properties, 'keep.marlowe') > 0").fetchone()[0] == 0
    con = duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True)
    assert con.execute("select email, first_name from ame.marts_marketing_customer_360 where customer_id = ?",
                       [TARGET]).fetchone() == (SECRETS["email"].lower(), SECRETS["first_name"])
    con.close()
    assert any(n in _files(folder) for n in _needles()), "control: the plaintext must be findable before erasure"
    before = _aggregates(wh_url, log_url)

    result = CliRunner().invoke(app, ["privacy", "erase", TARGET, "--log", log_url, "--state", state_url,
                                      "--warehouse", wh_url, "--yes", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["key_deleted"] and report["log"]["rows_redacted"] == 1

    raw = _files(folder)
    for needle in _needles():
        assert needle not in raw, f"{needle!r} is still readable in {folder}"

    after = _aggregates(wh_url, log_url)
    assert after == before
    con = duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True)
    assert con.execute("select email, first_name, total_revenue from ame.marts_marketing_customer_360 where customer_id = ?",
                       [TARGET]).fetchone() == (None, None, 60.0)
    assert con.execute("select email from ame.marts_marketing_customer_360 where customer_id = ?",
                       [KEEP]).fetchone() == (KEEP_EMAIL,)
    con.close()

    # a replay still works: the lead reads as erased, the other customer's PII still decrypts
    log = open_log(log_url)
    leads = {e.customer_id: e.to_event() for e in log.read(limit=100_000, event_types=["lead_created"]).events
             if e.customer_id in (TARGET, KEEP)}
    erased_count = log.stats().by_type.get("customer_erased")
    log.close()
    assert leads[TARGET].properties.email is None and leads[TARGET].properties.first_name is None
    assert leads[KEEP].properties.email == KEEP_EMAIL
    assert erased_count == 1
    store = open_state_store(state_url)
    rebuilt = Projector(open_log(log_url), store, ProfileProjection()).rebuild()
    assert rebuilt > 0
    assert ProfileProjection().get(store.read(), TARGET).revenue == 60.0
    store.close()

    exported = CliRunner().invoke(app, ["privacy", "export", TARGET, "--log", log_url, "--state", state_url])
    assert exported.exit_code == 0, exported.output
    data = json.loads(exported.output)
    assert data["erased"] is True
    lead = next(e for e in data["events"] if e["event_type"] == "lead_created")
    assert lead["properties"]["email"] == "[erased]" and lead["properties"]["first_name"] == "[erased]"
    assert sum(e["properties"].get("amount", 0) for e in data["events"] if e["event_type"] == "purchase") == 60.0
    for needle in _needles():
        assert needle not in _files(folder)
    with sqlite3.connect(folder / "events.keys.db") as keys:
        assert keys.execute("select count(*) from customer_keys where customer_id = ?", (TARGET,)).fetchone()[0] == 0


def test_export_gives_the_customers_data_as_json(tmp_path: Path) -> None:
    from ame.cli import app  # lazy: loads torch and stable-baselines3

    log_url = f"sqlite:///{tmp_path / 'events.db'}"
    log = open_log(log_url)
    log.append([e for e in _events() if e["customer_id"] == KEEP])
    log.close()
    result = CliRunner().invoke(app, ["privacy", "export", KEEP, "--log", log_url])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["erased"] is False and data["customer_id"] == KEEP
    assert next(e for e in data["events"] if e["event_type"] == "lead_created")["properties"]["email"] == KEEP_EMAIL
    log = open_log(log_url)
    assert log.stats().by_type.get("data_accessed") == 1  # the export is audited
    log.close()
