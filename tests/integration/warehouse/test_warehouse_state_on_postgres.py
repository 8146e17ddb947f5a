"""SQLMesh's state (snapshots, intervals) in PostgreSQL (``AME_WAREHOUSE_STATE``): a build on another node, with a
home and a model cache of its own, knows what the first one built and builds nothing again."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import psycopg
import pytest

from data.settings import get_settings
from data.warehouse.build import WarehouseProject
from data.warehouse.project import postgres_state_connection, sqlmesh_config
from tests.integration.stores.conftest import postgres_server, postgres_url  # noqa: F401 - fixtures
from tests.integration.warehouse.test_warehouse_duckdb import _append, _load
from tests.integration.warehouse.warehouse_events import day_events

pytestmark = pytest.mark.filterwarnings("ignore:.*json_encoders.*")


def _build_on_node(home: Path, warehouse: str, monkeypatch: pytest.MonkeyPatch):  # -> BuildReport
    monkeypatch.setenv("AME_HOME", str(home))
    get_settings.cache_clear()
    project = WarehouseProject(warehouse)
    try:
        return project.build()
    finally:
        project.close()


def test_a_second_node_finds_the_first_ones_build_in_postgresql(postgres_url: str, tmp_path: Path,  # noqa: F811
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    paths = {"log": f"sqlite:///{tmp_path / 'events.db'}", "warehouse": f"duckdb:///{tmp_path / 'wh.duckdb'}"}
    _append(paths, day_events("2026-03-02", 60, "a") + day_events("2026-03-03", 60, "b"))
    _load(paths)
    monkeypatch.setenv("AME_WAREHOUSE_STATE", postgres_url)
    first = _build_on_node(tmp_path / "node-a", paths["warehouse"], monkeypatch)
    assert first.models, "the first build ran the models"

    _, schema = postgres_state_connection(postgres_url)
    with psycopg.connect(postgres_url) as conn:
        tables = {r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = %s", (schema,))}
    assert {"_snapshots", "_intervals"} <= tables, tables
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as wh:
        schemas = {r[0] for r in wh.execute("select schema_name from information_schema.schemata").fetchall()}
    assert "sqlmesh" not in schemas, "the state is in PostgreSQL only, so the second node can only have it from there"

    second = _build_on_node(tmp_path / "node-b", paths["warehouse"], monkeypatch)
    assert not any(run.intervals for run in second.models.values()), second.models


def test_a_bigquery_warehouse_keeps_its_state_in_the_state_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AME_STATE_STORE", "postgresql://ame:secret@10.0.0.5:6432/engine?options=-csearch_path%3Dprod")
    get_settings.cache_clear()
    gateway = sqlmesh_config("bigquery://my-project/ame").gateways["bigquery"]
    state = gateway.state_connection
    assert (state.host, state.port, state.user, state.password, state.database) == (
        "10.0.0.5", 6432, "ame", "secret", "engine")
    assert gateway.state_schema == "prod"
    monkeypatch.setenv("AME_STATE_STORE", "")
    get_settings.cache_clear()
    assert sqlmesh_config("bigquery://my-project/ame").gateways["bigquery"].state_connection.database.endswith(
        "sqlmesh_state.duckdb")
    monkeypatch.setenv("AME_WAREHOUSE_STATE", "sqlite:///state.db")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match=re.escape("AME_WAREHOUSE_STATE='sqlite:///state.db' is not a postgresql:// URL")):
        sqlmesh_config("bigquery://my-project/ame")
