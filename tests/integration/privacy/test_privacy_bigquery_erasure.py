"""Erasure on a BigQuery warehouse (the bqemulator, real google-cloud-bigquery client): ``ame privacy erase
--warehouse bigquery://…`` anonymizes the customer's rows in raw, staging, intermediate and marts with DML, reports
the rows per table, changes nothing on a second run, and leaves exactly the rows (every column) that the same
erasure leaves in a DuckDB warehouse built from the same log. Needs AME_BQ_EMULATOR (scripts/start_bqemulator.sh)."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from typer.testing import CliRunner

from data.log import open_log
from data.privacy.bigquery_scrub import pii_in_bigquery
from data.privacy.codec import codec_for_log
from data.privacy.erase import erase_customer
from data.privacy.scrub import PiiValues
from data.warehouse.bigquery_backend import BigQueryWarehouse
from data.warehouse.bigquery_sql import render_for_bigquery
from data.warehouse.build import WarehouseProject
from data.warehouse.duckdb_backend import DuckDBWarehouse
from data.warehouse.loader import load_events
from tests.integration.privacy.test_privacy_erasure import KEEP, KEEP_EMAIL, SECRETS, TARGET, _events
from tests.integration.warehouse.test_warehouse_bigquery_emulator import (  # noqa: F401
    PROJECT,
    TIMEOUT,
    _endpoint,
    client,
)

pytestmark = [pytest.mark.emulator, pytest.mark.filterwarnings("ignore:.*json_encoders.*")]
IGNORED = {"loaded_at"}  # when each warehouse loaded the row: two loads, two times


def _plain(value: Any) -> Any:
    """One cell in a form both engines agree on (UTC naive times, parsed JSON, rounded floats)."""
    if isinstance(value, datetime):
        return (value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | float):
        return round(float(value), 6)
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _rows(columns: list[str], rows: list[tuple]) -> list[str]:
    """Every row as sorted JSON over every column but the load time."""
    keep = [i for i, c in enumerate(columns) if c not in IGNORED]
    return sorted(orjson.dumps({columns[i]: _plain(row[i]) for i in keep}, option=orjson.OPT_SORT_KEYS).decode()
                  for row in rows)


def _duck(path: Path, table: str) -> list[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        cur = con.execute(f"SELECT * FROM ame.{table}")
        return _rows([d[0] for d in cur.description], cur.fetchall())
    finally:
        con.close()


def _bq(wh: BigQueryWarehouse, table: str) -> list[str]:
    result = wh.query(f"SELECT * FROM `{PROJECT}.{wh.dataset}.{table}`")
    return _rows(result.columns, result.rows)


def _copy_log(src: Path, dst: Path) -> str:
    """A copy of the log and its key store (each erasure deletes the key of its own copy)."""
    shutil.copytree(src, dst)
    return f"sqlite:///{dst / 'events.db'}"


def _free_text() -> list[dict[str, Any]]:
    """PII outside the PII fields: the customer's name in their own page view, their email in someone else's."""
    at = "2026-01-05T12:00:00Z"
    return [{"event_id": "pv-name", "event_type": "page_view", "customer_id": TARGET, "occurred_at": at,
             "properties": {"url": f"https://shop.example.com/hello?n={SECRETS['first_name']}"}},
            {"event_id": "pv-mail", "event_type": "page_view", "customer_id": KEEP, "occurred_at": at,
             "properties": {"url": f"https://shop.example.com/refer?by={SECRETS['email']}"}}]


def test_bigquery_erasure_matches_duckdb_and_is_idempotent(client, tmp_path, monkeypatch):  # noqa: F811
    from ame.cli import app  # lazy: loads torch and stable-baselines3

    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", f"http://{_endpoint()}")
    source = tmp_path / "log"
    log = open_log(f"sqlite:///{source / 'events.db'}")
    log.append(_events()[:200] + [e for e in _events() if e["customer_id"] in (TARGET, KEEP)] + _free_text())
    days = sorted({e.occurred_at.date() for e in log.read(limit=100_000).events})
    dataset = f"ame_erase_{uuid.uuid4().hex[:8]}"
    bq = BigQueryWarehouse(f"bigquery://{PROJECT}/{dataset}", client=client, timeout=TIMEOUT)
    duck_path = tmp_path / "wh.duckdb"
    try:
        duck = DuckDBWarehouse(f"duckdb:///{duck_path}")
        load_events(log, duck)
        duck.close()
        project = WarehouseProject(f"duckdb:///{duck_path}")
        project.build()
        project.close()
        bq.ensure_raw()
        load_events(log, bq)
        log.close()
        end = days[-1] + timedelta(days=1)
        models = render_for_bigquery(PROJECT, dataset, days[0].isoformat(), days[-1].isoformat(), end.isoformat())
        for model in models:
            if model.create_if_missing:
                client.query(model.create_if_missing, timeout=TIMEOUT).result(timeout=TIMEOUT)
            client.query(f"CREATE OR REPLACE TABLE `{PROJECT}.{dataset}.{model.name}` AS {model.sql}",
                         timeout=TIMEOUT).result(timeout=TIMEOUT)
        tables = ["raw_events", *(m.name for m in models)]
        mart = next(r for r in _bq(bq, "marts_marketing_customer_360") if TARGET in r)
        assert SECRETS["email"].lower() in mart, "control: the mart holds the email before erasure"

        codec = codec_for_log(f"sqlite:///{source / 'events.db'}")
        found = PiiValues.of(pii_in_bigquery(bq, TARGET, codec))  # what a Pub/Sub log's erasure sweeps with
        codec.keys.close()
        assert {SECRETS["email"], SECRETS["phone"]} <= found.distinctive and SECRETS["last_name"] in found.names

        duck_report = erase_customer(TARGET, _copy_log(source, tmp_path / "a"), warehouse_url=f"duckdb:///{duck_path}")
        bq_log = _copy_log(source, tmp_path / "b")
        args = ["privacy", "erase", TARGET, "--log", bq_log, "--warehouse", f"bigquery://{PROJECT}/{dataset}",
                "--state", f"sqlite:///{tmp_path / 'b' / 'state.db'}", "--yes", "--json"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)["warehouse"]
        assert duck_report.warehouse is not None and duck_report.warehouse.cells > 0
        assert report["tables"][f"{dataset}.raw_events"] > 0
        assert report["tables"][f"{dataset}.marts_marketing_customer_360"] == 1
        assert report["cells"] == sum(report["tables"].values())

        for table in tables:
            assert _bq(bq, table) == _duck(duck_path, table), f"{table} differs after the erasure"
        everything = "".join("".join(_bq(bq, t)) for t in tables)
        for value in SECRETS.values():
            assert value not in everything and value.lower() not in everything
        assert KEEP_EMAIL in everything, "the other customer's data is untouched"

        again = CliRunner().invoke(app, args)
        assert again.exit_code == 0, again.output
        assert json.loads(again.output)["warehouse"]["cells"] == 0, "a second erasure changes nothing"
    finally:
        client.delete_dataset(f"{PROJECT}.{dataset}", delete_contents=True, not_found_ok=True, timeout=TIMEOUT)
        bq.close()
