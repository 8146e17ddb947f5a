"""Fast checks of the warehouse's pieces: URLs, raw rows, the audit lists, the SQLMesh project's own tests."""

from __future__ import annotations

import io
import re
from pathlib import Path

import orjson
import pytest
import yaml

from data.events import EVENT_TYPES
from data.log.base import StoredEvent
from data.warehouse.base import RAW_COLUMN_NAMES, UnsupportedWarehouse
from data.warehouse.bigquery_sql import render_for_bigquery
from data.warehouse.build import WarehouseProject
from data.warehouse.project import MODEL_NAMES, PROJECT_DIR, parse_warehouse_url, sqlmesh_config
from data.warehouse.rows import raw_row

# SQLMesh's models still use pydantic's json_encoders
pytestmark = pytest.mark.filterwarnings("ignore:.*json_encoders.*")


def test_urls_choose_the_backend():
    assert parse_warehouse_url("duckdb:///.ame/warehouse.duckdb").path == ".ame/warehouse.duckdb"
    assert parse_warehouse_url("duckdb:////tmp/w.duckdb").path == "/tmp/w.duckdb"
    bq = parse_warehouse_url("bigquery://my-project/marketing")
    assert (bq.engine, bq.project, bq.dataset) == ("bigquery", "my-project", "marketing")
    for bad in ("postgres://x/y", "bigquery://only-project", "duckdb:///"):
        with pytest.raises(UnsupportedWarehouse):
            parse_warehouse_url(bad)


def _stored(event_type: str, props: dict) -> StoredEvent:
    return StoredEvent(7, "e-7", event_type, "c-1", 1_772_323_200_000_000, 1_772_323_200_000_001, "api", 1, None,
                       orjson.dumps(props).decode())


def test_raw_rows_carry_the_hot_properties_typed():
    row = raw_row(_stored("purchase", {"order_id": "o1", "amount": 12.5, "campaign_id": "cmp-1"}), 5)
    assert tuple(row) == RAW_COLUMN_NAMES
    assert (row["amount"], row["campaign_id"], row["cost"], row["log_position"]) == (12.5, "cmp-1", None, 7)
    auction = raw_row(_stored("auction_result", {"campaign_id": "c", "auction_id": "a", "bid": 1, "won": True,
                                                 "price_paid": 0.7}), 5)
    assert auction["cost"] == 0.7 and auction["amount"] is None
    click = raw_row(_stored("email_click", {"campaign_id": "c"}), 5)
    assert click["channel"] == "email"
    score = raw_row(_stored("score_updated", {"model": "lead", "score": 80.0, "model_version": "1"}), 5)
    assert (score["score_model"], score["score"]) == ("lead", 0.8)


def test_the_accepted_event_types_audit_lists_every_event_type():
    sql = (PROJECT_DIR / "audits" / "accepted_event_types.sql").read_text()
    listed = set(re.findall(r"'([a-z_]+)'", sql.split("NOT IN", 1)[1]))
    assert listed == set(EVENT_TYPES)


def test_every_model_of_the_design_exists_and_is_documented_column_by_column():
    project = WarehouseProject("duckdb:///:memory:")
    models = {name.split(".")[-1].strip('"'): model for name, model in project.context.models.items()}
    assert set(MODEL_NAMES) <= set(models)
    for name in MODEL_NAMES:
        model = models[name]
        assert model.description, name
        missing = set(model.columns_to_types or {}) - set(model.column_descriptions)
        assert not missing, f"{name}: undocumented columns {missing}"
    c360 = models["marts_marketing_customer_360"].columns_to_types
    for field in ("customer_id", "email", "first_name", "last_name", "acquisition_date", "acquisition_source",
                  "total_purchases", "total_revenue", "last_purchase_date", "predicted_clv", "churn_risk_score",
                  "lead_score", "preferred_channel", "lifecycle_stage", "customer_segment"):
        assert field in c360, field
    project.close()


def test_sqlmesh_unit_tests_pass():
    project = WarehouseProject("duckdb:///:memory:")
    result = project.context.test(stream=io.StringIO())
    assert result.testsRun >= len(MODEL_NAMES)
    assert result.wasSuccessful(), [f[1] for f in result.failures + result.errors]
    project.close()


def test_every_model_has_a_sqlmesh_unit_test():
    tested = {test["model"].split(".")[-1] for path in (PROJECT_DIR / "tests").glob("*.yaml")
              for test in yaml.safe_load(path.read_text()).values()}
    assert not set(MODEL_NAMES) - tested, "models without a unit test in data/warehouse/sqlmesh/tests"


def test_the_models_render_in_bigquery_sql():
    rendered = {m.name: m.sql for m in render_for_bigquery("p", "marketing", "2026-03-01", "2026-03-01", "2026-03-02")}
    assert "JSON_VALUE_ARRAY" in rendered["intermediate_identity"]  # the one engine-specific macro
    assert "`p`.`marketing`.`raw_events`" in rendered["staging_events_all"]
    assert "DATE_DIFF(" in rendered["intermediate_web_sessions"]
    # the embedded per-customer models are no tables: the summary carries their queries
    assert "intermediate_customers_activity" not in rendered
    summary = rendered["intermediate_customers_summary"]
    assert "`marketing`.`intermediate_ids_activity`" in summary
    assert "`marketing`.`intermediate_customers_activity`" not in summary


def test_dictionary_compression_setting_reaches_the_duckdb_build_connection(tmp_path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    fast = sqlmesh_config(url, cache_dir=tmp_path / "cache")
    compact = sqlmesh_config(url, cache_dir=tmp_path / "cache", dictionary_compression=True)
    assert fast.gateways["duckdb"].connection.connector_config == {"disabled_compression_methods": "dictionary"}
    assert compact.gateways["duckdb"].connection.connector_config == {}


def test_each_warehouse_gets_its_own_model_cache(tmp_path) -> None:
    """SQLMesh's cached models name the DuckDB catalog after the file, so two warehouses must not share a cache."""
    def cache(url: str) -> Path:
        return Path(sqlmesh_config(url).cache_dir)

    a, b = cache(f"duckdb:///{tmp_path / 'a.duckdb'}"), cache(f"duckdb:///{tmp_path / 'sub' / 'a.duckdb'}")
    assert a != b and a.parent == b.parent and a.name.startswith("duckdb-a-")
    assert cache(f"duckdb:///{tmp_path / 'a.duckdb'}") == a  # stable
    assert cache("bigquery://proj/marketing").name.startswith("bigquery-marketing-")
    assert cache("duckdb:///:memory:").name.startswith("duckdb-_memory_-")


def test_raw_rows_carry_the_visits_device_and_traffic_tags_from_the_context():
    view = raw_row(_stored("page_view", {"url": "https://x/p", "context": {
        "device_type": "mobile", "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring",
        "source": "ignored: the UTM name wins", "session_id": "ignored: the payload has its own"},
        "session_id": "s-1"}), 5)
    assert (view["device_type"], view["traffic_source"], view["traffic_medium"], view["traffic_campaign"]) == (
        "mobile", "google", "cpc", "spring")
    assert view["session_id"] == "s-1"
    plain = raw_row(_stored("purchase", {"order_id": "o", "amount": 1.0, "context": {
        "source": "newsletter", "medium": "email", "session_id": "s-9"}}), 5)
    assert (plain["traffic_source"], plain["traffic_medium"], plain["traffic_campaign"]) == ("newsletter", "email", None)
    assert plain["session_id"] == "s-9" and plain["device_type"] is None
    assert raw_row(_stored("page_view", {"url": "u", "context": None}), 5)["traffic_source"] is None
