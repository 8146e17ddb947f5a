"""customer_360's profile columns (per-type counts, exact times, last inbound channel, consent per channel,
the lead model's tier) and marts_sales_lead_scores' tier: the BigQuery SQL (SQLGlot-rendered, run on the
emulator) equals the DuckDB build of the same log. Needs AME_BQ_EMULATOR, like the other emulator test."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from data.log import open_log
from data.synthetic import synthetic_dicts
from data.warehouse.bigquery_backend import BigQueryWarehouse
from data.warehouse.bigquery_sql import render_for_bigquery
from data.warehouse.build import WarehouseProject
from data.warehouse.duckdb_backend import DuckDBWarehouse
from data.warehouse.loader import load_events
from tests.integration.warehouse.test_warehouse_bigquery_emulator import (  # noqa: F401
    PROJECT,
    TIMEOUT,
    client,
)

pytestmark = [pytest.mark.emulator, pytest.mark.filterwarnings("ignore:.*json_encoders.*")]
START = datetime(2026, 3, 1, tzinfo=UTC)


def _event(event_id: str, kind: str, customer: str, at: datetime, **props: Any) -> dict[str, Any]:
    return {"event_id": event_id, "event_type": kind, "customer_id": customer,
            "occurred_at": at.isoformat().replace("+00:00", "Z"), "source": "test", "properties": props}


def _events() -> list[dict[str, Any]]:
    t = START + timedelta(hours=3)
    edge = [
        _event("tie-1", "email_open", "edge-a", t, campaign_id="cmp-001"),
        _event("tie-2", "sms_click", "edge-a", t, campaign_id="cmp-001"),
        _event("tie-3", "consent_changed", "edge-a", t, channel="email", granted=True),
        _event("tie-4", "unsubscribe", "edge-a", t, channel="email"),
        _event("lead-a", "lead_created", "edge-a", t, acquisition_source="organic"),
        _event("score-1", "score_updated", "edge-a", t + timedelta(hours=1), model="lead", score=91.0,
               model_version="v1", tier="High", probability=0.31),
        _event("score-2", "score_updated", "edge-a", t, model="lead", score=10.0, model_version="v1", tier="Low",
               probability=0.9),
        _event("ooo-1", "ad_click", "edge-b", t + timedelta(hours=1), campaign_id="cmp-002", cost=0.5),
        _event("ooo-2", "page_view", "edge-b", t - timedelta(hours=1), url="https://shop.example.com/p/1"),
        _event("offer-1", "offer_sent", "edge-b", t, discount_pct=10.0),
    ]
    return list(synthetic_dicts(600, customers=60, seed=5, start=START)) + edge


def _normal(row: tuple) -> tuple:
    return tuple(v.astimezone(UTC).replace(tzinfo=None) if isinstance(v, datetime) and v.tzinfo else v for v in row)


def test_profile_columns_and_lead_tier_match_duckdb(client, tmp_path):  # noqa: F811
    log = open_log(f"sqlite:///{tmp_path / 'events.db'}")
    log.append(_events())
    dataset = f"ame_it_{uuid.uuid4().hex[:8]}"
    bq = BigQueryWarehouse(f"bigquery://{PROJECT}/{dataset}", client=client, timeout=TIMEOUT)
    try:
        bq.ensure_raw()
        load_events(log, bq, batch_size=500)
        for model in render_for_bigquery(PROJECT, dataset, "2026-03-01", "2026-03-02", "2026-03-03"):
            if model.create_if_missing:
                client.query(model.create_if_missing, timeout=TIMEOUT).result(timeout=TIMEOUT)
            client.query(f"CREATE OR REPLACE TABLE `{PROJECT}.{dataset}.{model.name}` AS {model.sql}",
                         timeout=TIMEOUT).result(timeout=TIMEOUT)
        duck_url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
        duck = DuckDBWarehouse(duck_url)
        load_events(log, duck)
        duck.close()
        project = WarehouseProject(duck_url)
        project.build()
        sql = ("SELECT customer_id, events_total, page_views, content_downloads, email_opens, email_clicks, sms_clicks,"
               " push_opens, ad_clicks, offers_received, support_tickets, first_seen_at, last_seen_at, last_purchase_at,"
               " last_channel, consent_email, consent_sms, consent_push, consent_ad, lead_model_tier"
               " FROM ame.marts_marketing_customer_360")
        lead_sql = ("SELECT customer_id, lead_tier, ROUND(lead_probability, 9), score_source, lead_score"
                    " FROM ame.marts_sales_lead_scores")
        for query in (sql, lead_sql):
            on_bq = sorted(_normal(r) for r in bq.query(query.replace("ame.", f"`{PROJECT}.{dataset}`.")).rows)
            on_duck = sorted(_normal(tuple(r)) for r in project.context.engine_adapter.fetchall(query))
            assert on_bq == on_duck, query
            assert len(on_bq) >= 3
        edge = {r[0]: r for r in on_duck}["edge-a"]
        assert edge[1:] == ("High", 0.31, "mixed", 31.0)  # the latest score event's tier, probability and 0-100 score
        project.close()
    finally:
        client.delete_dataset(f"{PROJECT}.{dataset}", delete_contents=True, not_found_ok=True, timeout=TIMEOUT)
        log.close()
