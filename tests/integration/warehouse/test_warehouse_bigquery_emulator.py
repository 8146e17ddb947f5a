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


def _campaign_and_visit_events() -> list[dict]:
    """Two campaigns stated (one restated with an end date), and visits tagged with a device and UTM tags."""
    def campaign(event_id: str, at: str, props: dict) -> dict:
        return {"event_id": event_id, "event_type": "campaign_updated", "customer_id": "system",
                "occurred_at": at, "source": "cli", "properties": props}

    def visit(event_id: str, at: str, context: dict) -> dict:
        return {"event_id": event_id, "event_type": "page_view", "customer_id": "c-1", "occurred_at": at,
                "properties": {"url": "https://shop.example.com/landing", "session_id": "s-77", "context": context}}

    return [
        campaign("k-1", "2026-03-01T00:00:00Z", {"campaign_id": "cmp-0", "name": "Spring", "channel": "email",
                                                 "start_date": "2026-03-01"}),
        campaign("k-2", "2026-03-01T06:00:00Z", {"campaign_id": "cmp-0", "name": "Spring sale", "channel": "email",
                                                 "start_date": "2026-03-01", "end_date": "2026-03-31"}),
        campaign("k-3", "2026-03-01T07:00:00Z", {"campaign_id": "cmp-1", "name": "Brand search", "channel": "ad",
                                                 "start_date": "2026-02-01", "daily_budget": 500.0}),
        visit("v-1", "2026-03-01T12:00:00Z", {"device_type": "mobile", "utm_source": "google", "utm_medium": "cpc",
                                              "utm_campaign": "spring-sale"}),
        visit("v-2", "2026-03-02T12:00:00Z", {"device_type": "desktop", "source": "newsletter", "medium": "email"}),
    ]


# The seed's columns and tables, on both engines: (BigQuery SQL, DuckDB SQL), each engine's JSON function.
SEED_CHECKS = [
    ("SELECT event_id, session_id, device_type, source, medium, campaign, event_source,"
     " JSON_VALUE(event_properties, '$.url') FROM ame.staging_events_all WHERE device_type IS NOT NULL",
     "SELECT event_id, session_id, device_type, source, medium, campaign, event_source,"
     " json_extract_string(event_properties, '$.url') FROM ame.staging_events_all WHERE device_type IS NOT NULL"),
    ("SELECT campaign_id, campaign_name, channel, CAST(start_date AS STRING), CAST(end_date AS STRING), daily_budget"
     " FROM ame.staging_campaigns", None),
    ("SELECT CAST(event_date AS STRING), campaign_id, campaign_name, channel, CAST(start_date AS STRING),"
     " CAST(end_date AS STRING) FROM ame.marts_marketing_campaign_performance", None),
    ("SELECT transaction_id, order_id, customer_id, ROUND(amount, 2), currency, items, purchase_number,"
     " is_first_purchase, days_since_previous_purchase, ROUND(revenue_to_date, 2)"
     " FROM ame.marts_sales_transaction_history", None),
    ("SELECT customer_id, ROUND(lead_probability, 9), lead_score FROM ame.marts_marketing_customer_360", None),
]


def test_bigquery_raw_load_and_marts_match_duckdb(client, tmp_path):
    log = open_log(f"sqlite:///{tmp_path / 'events.db'}")
    log.append(day_events("2026-03-01", 120, "d1", customers=8) + day_events("2026-03-02", 80, "d2", customers=8)
               + _identity_events() + _campaign_and_visit_events())
    dataset = f"ame_it_{uuid.uuid4().hex[:8]}"
    bq = BigQueryWarehouse(f"bigquery://{PROJECT}/{dataset}", client=client, timeout=TIMEOUT)
    try:
        # dataset and tables
        bq.ensure_raw()
        raw = client.get_table(f"{PROJECT}.{dataset}.raw_events", timeout=TIMEOUT)
        assert raw.time_partitioning.field == "occurred_at"
        assert raw.clustering_fields == ["event_type", "customer_id"]
        # raw load, idempotent
        assert load_events(log, bq, batch_size=100).rows == 208
        assert load_events(log, bq, batch_size=100).rows == 0
        assert bq.query(f"SELECT COUNT(*) FROM `{PROJECT}.{dataset}.raw_events`").rows[0][0] == 208
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
        for bq_sql, duck_sql in SEED_CHECKS:
            on_bq = bq_rows(bq_sql)
            assert on_bq and on_bq == duck_rows(duck_sql or bq_sql.replace("AS STRING", "AS VARCHAR")), bq_sql
        # the restated campaign reads as its latest event states it, in the mart too; 'system' is no customer
        assert ("cmp-0", "Spring sale", "email", "2026-03-01", "2026-03-31", None) in bq_rows(SEED_CHECKS[1][0])
        assert not bq_rows("SELECT customer_id FROM ame.marts_marketing_customer_360 WHERE customer_id = 'system'")
        visits = {r[0]: r[1:] for r in bq_rows(SEED_CHECKS[0][0])}
        assert visits == {"v-1": ("s-77", "mobile", "google", "cpc", "spring-sale", "api", "https://shop.example.com/landing"),
                          "v-2": ("s-77", "desktop", "newsletter", "email", None, "api", "https://shop.example.com/landing")}
        # the anonymous visitor's page views joined the lead's profile
        lead = bq_rows("SELECT customer_id, page_views, email FROM ame.marts_marketing_customer_360"
                       " WHERE customer_id = 'lead-7'")
        assert lead == [("lead-7", 2, "ann@example.com")]
        project.close()
    finally:
        client.delete_dataset(f"{PROJECT}.{dataset}", delete_contents=True, not_found_ok=True, timeout=TIMEOUT)
        log.close()
