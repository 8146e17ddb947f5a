"""``ame privacy erase`` on a cluster's PostgreSQL backends: the log, the key store and the state store in one
database. Afterwards no cell of any table holds the customer's email, name or phone (the dead letter that held
them in plaintext is redacted), a replay reads their lead as erased, and the other customer's PII still decrypts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from data.log import open_log
from data.log.base import RejectedInput
from data.projections.base import Projector
from data.projections.profile import ProfileProjection
from data.projections.store import open_state_store
from data.settings import get_settings

TARGET, KEEP = "cust-erase-pg-1", "cust-keep-pg-1"
SECRETS = {"email": "Ysolde.Parrimore@privacy-test.example", "first_name": "Ysolde", "last_name": "Parrimore",
           "phone": "+15550004321"}
KEEP_EMAIL = "keep.pg@privacy-test.example"


def _events() -> list[dict]:
    at = datetime(2026, 1, 5, 9, tzinfo=UTC)
    events = []
    for cid, props in ((TARGET, SECRETS), (KEEP, {"email": KEEP_EMAIL, "first_name": "Keeper"})):
        events.append({"event_id": f"lead-{cid}", "event_type": "lead_created", "customer_id": cid,
                       "occurred_at": at.isoformat(), "properties": props})
        events.append({"event_id": f"buy-{cid}", "event_type": "purchase", "customer_id": cid,
                       "occurred_at": (at + timedelta(hours=1)).isoformat(),
                       "properties": {"order_id": f"o-{cid}", "amount": 12.0}})
    return events


def _cells_holding(url: str, needle: str) -> list[str]:
    """table.column of every text cell of the schema that contains ``needle`` (case-insensitive)."""
    found = []
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "select table_name, column_name from information_schema.columns where table_schema = current_schema()"
            " and data_type in ('text', 'character varying', 'jsonb', 'json', 'bytea')").fetchall()
        for table, column in columns:
            text = f'convert_from("{column}", \'UTF8\')' if column in ("raw",) else f'"{column}"::text'
            try:
                hit = conn.execute(f'select count(*) from "{table}" where {text} ilike %s', (f"%{needle}%",)).fetchone()[0]
            except psycopg.Error:
                conn.rollback()
                hit = conn.execute(f'select count(*) from "{table}" where "{column}"::text ilike %s',
                                   (f"%{needle}%",)).fetchone()[0]
            if hit:
                found.append(f"{table}.{column}")
    return found


def test_erasure_on_a_postgresql_log_leaves_no_plaintext(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from ame.cli import app  # lazy: loads torch and stable-baselines3

    monkeypatch.setenv("AME_KEY_STORE", postgres_url)
    get_settings.cache_clear()
    log = open_log(postgres_url)
    log.append(_events())
    log.dead_letter([RejectedInput(raw=json.dumps({"event_type": "lead_created", "customer_id": TARGET,
                                                   "properties": {"email": SECRETS["email"], "bogus": 1}}).encode(),
                                   reason="test: unknown field", source="test")])
    store = open_state_store(postgres_url)
    Projector(log, store, ProfileProjection()).catch_up()
    store.close()
    log.close()
    assert _cells_holding(postgres_url, SECRETS["last_name"]), "control: the dead letter holds the plaintext"

    result = CliRunner().invoke(app, ["privacy", "erase", TARGET, "--log", postgres_url, "--state", postgres_url,
                                      "--warehouse", "none", "--yes", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["key_deleted"] and report["log"]["rows_redacted"] == 1

    for value in SECRETS.values():
        assert not _cells_holding(postgres_url, value), f"{value!r} is still readable"
    log = open_log(postgres_url)
    leads = {e.customer_id: e.to_event() for e in log.read(limit=1_000, event_types=["lead_created"]).events}
    assert leads[TARGET].properties.email is None and leads[TARGET].properties.first_name is None
    assert leads[KEEP].properties.email == KEEP_EMAIL
    assert log.stats().by_type.get("customer_erased") == 1
    log.close()
    get_settings.cache_clear()
