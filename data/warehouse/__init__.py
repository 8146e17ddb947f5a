"""The warehouse: raw events from the log, then staging, intermediate and marts built by SQLMesh (DuckDB or BigQuery)."""

from __future__ import annotations

from data.settings import get_settings
from data.warehouse.base import (
    BuildFailed,
    BuildReport,
    LoadResult,
    QueryResult,
    UnsupportedWarehouse,
    Warehouse,
    WarehouseError,
    WarehouseUnavailable,
)
from data.warehouse.bigquery_backend import BigQueryWarehouse
from data.warehouse.duckdb_backend import DuckDBWarehouse
from data.warehouse.project import parse_warehouse_url

__all__ = [
    "BuildFailed",
    "BuildReport",
    "LoadResult",
    "QueryResult",
    "UnsupportedWarehouse",
    "Warehouse",
    "WarehouseError",
    "WarehouseUnavailable",
    "open_warehouse",
]


def open_warehouse(url: str | None = None) -> Warehouse:
    """Open the warehouse at ``url`` (default: ``AME_WAREHOUSE``, else ``duckdb:///.ame/warehouse.duckdb``)."""
    settings = get_settings()
    url = url or settings.warehouse_url()
    target = parse_warehouse_url(url)
    if target.engine == "duckdb":
        return DuckDBWarehouse(url, dataset=target.dataset)
    return BigQueryWarehouse(url, location=settings.warehouse_bigquery_location or None)
