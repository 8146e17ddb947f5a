"""The BigQuery path with the real google-cloud-bigquery client against the local emulator (bqemulator).

Start it with ``scripts/start_bqemulator.sh`` and export ``AME_BQ_EMULATOR=127.0.0.1:9050``; CI does both.
Covers: creating the dataset and the partitioned, clustered raw table; loading raw (twice: the second adds
nothing); running every model's SQL in the BigQuery dialect; reading the marts back and finding the same
figures as the DuckDB build of the same log.
"""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from data.log import open_log
from data.warehouse.bigquery_backend import BigQueryWarehouse
from data.warehouse.bigquery_sql import render_for_bigquery
from data.warehouse.build import WarehouseProject
from data.warehouse.duckdb_backend import DuckDBWarehouse
from data.warehouse.loader import load_events
from tests.integration.warehouse.warehouse_events import day_events

# SQLMesh's models still use pydantic's json_encoders
pytestmark = [pytest.mark.emulator, pytest.mark.filterwarnings("ignore:.*json_encoders.*")]
PROJECT = "test-proj"
TIMEOUT = 30.0


def _endpoint() -> str:
    endpoint = os.environ.get("AME_BQ_EMULATOR", "")
    if not endpoint:
        pytest.skip("AME_BQ_EMULATOR is not set: run scripts/start_bqemulator.sh and export AME_BQ_EMULATOR=127.0.0.1:9050")
    host, _, port = endpoint.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        pytest.skip(f"no BigQuery emulator answers at {endpoint}: start it with scripts/start_bqemulator.sh")
    return endpoint


@pytest.fixture
def client():
    from google.api_core.client_options import ClientOptions  # lazy: a Google client is heavy
    from google.auth.credentials import AnonymousCredentials  # lazy: a Google client is heavy
    from google.cloud import bigquery  # lazy: a Google client is heavy

    endpoint = _endpoint()
    c = bigquery.Client(project=PROJECT, credentials=AnonymousCredentials(),
                        client_options=ClientOptions(api_endpoint=f"http://{endpoint}"))
    yield c
    c.close()


def _identity_events() -> list[dict]:
    """A visitor browses anonymously (anon-7), then fills in a form as lead-7 from the same browser."""
    return [
        {"event_id": "id-1", "event_type": "page_view", "customer_id": "anon-7", "occurred_at": "2026-03-01T09:00:00Z",
         "properties": {"url": "https://shop.example.com/pricing", "anonymous_id": "anon-7"}},
        {"event_id": "id-2", "event_type": "page_view", "customer_id": "anon-7", "occurred_at": "2026-03-01T09:05:00Z",
         "properties": {"url": "https://shop.example.com/demo", "anonymous_id": "anon-7"}},
        {"event_id": "id-3", "event_type": "lead_created", "customer_id": "lead-7", "occurred_at": "2026-03-02T10:00:00Z",
         "properties": {"email": "ann@example.com", "first_name": "Ann", "anonymous_id": "anon-7"}},
    ]


def test_bigquery_raw_load_and_marts_match_duckdb(client, tmp_path):
    log = open_log(f"sqlite:///{tmp_path / 'events.db'}")
    log.append(day_events("2026-03-01", 120, "d1", customers=8) + day_events("2026-03-02", 80, "d2", customers=8)
               + _identity_events())
    dataset = f"ame_it_{uuid.uuid4().hex[:8]}"
    bq = BigQueryWarehouse(f"bigquery://{PROJECT}/{dataset}", client=client, timeout=TIMEOUT)
    try:
        # dataset and tables
        bq.ensure_raw()
        raw = client.get_table(f"{PROJECT}.{dataset}.raw_events", timeout=TIMEOUT)
        assert raw.time_partitioning.field == "occurred_at"
        assert raw.clustering_fields == ["event_type", "customer_id"]
        # raw load, idempotent
        assert load_events(log, bq, batch_size=100).rows == 203
        assert load_events(log, bq, batch_size=100).rows == 0
        assert bq.query(f"SELECT COUNT(*) FROM `{PROJECT}.{dataset}.raw_events`").rows[0][0] == 203
        assert bq.query(f"SELECT position FROM `{PROJECT}.{dataset}.raw_load_state`").rows[0][0] == log.head()
        # the models' SQL in BigQuery's dialect, in dependency order
        for model in render_for_bigquery(PROJECT, dataset, "2026-03-01", "2026-03-02", "2026-03-03"):
            if model.create_if_missing:
                client.query(model.create_if_missing, timeout=TIMEOUT).result(timeout=TIMEOUT)
            client.query(f"CREATE OR REPLACE TABLE `{PROJECT}.{dataset}.{model.name}` AS {model.sql}",
                         timeout=TIMEOUT).result(timeout=TIMEOUT)

        def bq_rows(sql: str) -> list[tuple]:
            return sorted(bq.query(sql.replace("ame.", f"`{PROJECT}.{dataset}`.")).rows)

        # the same log built by SQLMesh on DuckDB
        duck_url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
        duck = DuckDBWarehouse(duck_url)
        load_events(log, duck)
        duck.close()
        project = WarehouseProject(duck_url)
        project.build()

        def duck_rows(sql: str) -> list[tuple]:
            return sorted(tuple(r) for r in project.context.engine_adapter.fetchall(sql))

        checks = [
            "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM ame.staging_events_all",
            "SELECT customer_id, canonical_customer_id FROM ame.intermediate_identity WHERE is_merged",
            ("SELECT customer_id, email, total_purchases, ROUND(total_revenue, 2), page_views, lifecycle_stage,"
             " customer_segment, preferred_channel, ROUND(lead_score, 6) FROM ame.marts_marketing_customer_360"),
            ("SELECT CAST(event_date AS STRING), campaign_id, impressions, clicks, ROUND(spend, 4), conversions,"
             " ROUND(revenue, 2), ROUND(linear_conversions, 4) FROM ame.marts_marketing_campaign_performance"),
            "SELECT COUNT(*), SUM(page_views) FROM ame.intermediate_web_sessions",
            "SELECT customer_id, lead_tier FROM ame.marts_sales_lead_scores",
        ]
        for sql in checks:
            assert bq_rows(sql) == duck_rows(sql.replace("AS STRING", "AS VARCHAR")), sql
        # the anonymous visitor's page views joined the lead's profile
        lead = bq_rows("SELECT customer_id, page_views, email FROM ame.marts_marketing_customer_360"
                       " WHERE customer_id = 'lead-7'")
        assert lead == [("lead-7", 2, "ann@example.com")]
        project.close()
    finally:
        client.delete_dataset(f"{PROJECT}.{dataset}", delete_contents=True, not_found_ok=True, timeout=TIMEOUT)
        log.close()
