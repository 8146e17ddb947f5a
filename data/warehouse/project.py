"""The SQLMesh project: its configuration (two gateways, DuckDB and BigQuery) built from a warehouse URL.

The SQL models live in ``data/warehouse/sqlmesh/models``; they are written once in the DuckDB dialect and
SQLGlot transpiles them for BigQuery. Model names use ``@{dataset}``, a gateway variable, so the same
files build ``ame.*`` in the DuckDB file and ``<dataset>.*`` in the BigQuery project.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from data.postgres_db import is_postgres_url, redacted
from data.settings import get_settings
from data.warehouse.base import UnsupportedWarehouse
from data.warehouse.duckdb_backend import duckdb_path
from data.warehouse.variables import project_variables

PROJECT_DIR = Path(__file__).resolve().parent / "sqlmesh"
DEFAULT_DATASET = "ame"
DEFAULT_START = "2020-01-01"
# DuckDB settings of the build's connection when dictionary compression is off (AME_WAREHOUSE_DICTIONARY_COMPRESSION,
# default off): its analysis is the costliest part of writing staging_events_all's string columns, so without it
# the write costs about a quarter less time; strings are still FSST-compressed, the file is bigger (staging's
# columns of 10M events: 336 MiB instead of 166 MiB).
_NO_DICTIONARY = {"disabled_compression_methods": "dictionary"}
MODEL_NAMES: tuple[str, ...] = (
    # staging: one source each (raw_events), typed and deduplicated
    "staging_events_all",
    "staging_events_payload",
    "staging_customers_profiles",
    "staging_build_as_of",
    "staging_campaigns",
    # intermediate: joins, sessions, identity, per-id and per-customer aggregates
    "intermediate_ids_activity",
    "intermediate_ids_anonymous_ids",
    "intermediate_identity",
    "intermediate_web_sessions",
    "intermediate_customers_scope",
    "intermediate_customers_activity",
    "intermediate_customers_profiles",
    "intermediate_customers_consents",
    "intermediate_customers_scores",
    "intermediate_customers_summary",
    # marts: what people and the activation syncs read
    "marts_marketing_customer_360",
    "marts_marketing_campaign_performance",
    "marts_sales_lead_scores",
    "marts_sales_transaction_history",
)


@dataclass(frozen=True, slots=True)
class WarehouseTarget:
    """Where a warehouse URL points: the engine, the DuckDB file or the BigQuery project, and the dataset."""

    engine: str  # "duckdb" | "bigquery"
    dataset: str
    path: str | None = None
    project: str | None = None


def parse_warehouse_url(url: str) -> WarehouseTarget:
    """``duckdb:///path`` or ``bigquery://project/dataset`` → a :class:`WarehouseTarget`."""
    if url.startswith("duckdb://"):
        return WarehouseTarget("duckdb", DEFAULT_DATASET, path=str(duckdb_path(url)))
    if url.startswith("bigquery://"):
        parts = url.removeprefix("bigquery://").strip("/").split("/")
        if len(parts) != 2 or not all(parts):
            raise UnsupportedWarehouse(f"a BigQuery warehouse URL is bigquery://PROJECT/DATASET, got {url!r}")
        return WarehouseTarget("bigquery", parts[1], project=parts[0])
    raise UnsupportedWarehouse(
        f"unknown warehouse URL {url!r}: use duckdb:///path.duckdb (embedded) or bigquery://project/dataset"
    )


def _cache_key(target: WarehouseTarget) -> str:
    """A folder name per warehouse: its engine, its file or dataset name, and a hash of where it is."""
    where = str(Path(target.path).resolve()) if target.engine == "duckdb" and target.path != ":memory:" else repr(target)
    name = Path(target.path).stem if target.engine == "duckdb" else target.dataset
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return f"{target.engine}-{name}-{hashlib.sha256(where.encode()).hexdigest()[:12]}"


def sqlmesh_config(
    url: str, start: str = DEFAULT_START, bigquery_location: str | None = None, cache_dir: Path | None = None,
    dictionary_compression: bool = False,
):  # -> Config
    """The SQLMesh configuration for a warehouse URL: both gateways, the URL's one as default.

    :param url: the warehouse URL.
    :param start: the first day the incremental models cover.
    :param bigquery_location: BigQuery location (for example ``EU``) for the production gateway.
    :param cache_dir: where SQLMesh caches parsed models (default: ``<AME_HOME>/sqlmesh_cache/<target>``, one
        folder per warehouse, because the cached models name the DuckDB catalog after the file; never the
        package folder, which may be read-only once installed).
    :param dictionary_compression: DuckDB dictionary compression on build (``AME_WAREHOUSE_DICTIONARY_COMPRESSION``).
    """
    target = parse_warehouse_url(url)
    if cache_dir is None:
        cache_dir = get_settings().home / "sqlmesh_cache" / _cache_key(target)
    from sqlmesh.core.config import (  # lazy: SQLMesh is heavy
        BigQueryConnectionConfig,
        Config,
        DuckDBConnectionConfig,
        GatewayConfig,
        ModelDefaultsConfig,
    )

    duck_path = target.path if target.engine == "duckdb" else str(Path(".ame") / "warehouse.duckdb")
    # an in-memory DuckDB (SQL rendering only) keeps no state worth sharing: it opens no state database
    state = sqlmesh_state(target.engine) if duck_path != ":memory:" else None
    state_connection, state_schema = state or (None, "sqlmesh")
    gateways = {
        "duckdb": GatewayConfig(
            connection=DuckDBConnectionConfig(database=None if duck_path == ":memory:" else duck_path,
                                              connector_config={} if dictionary_compression else dict(_NO_DICTIONARY)),
            variables={"dataset": DEFAULT_DATASET, "engine": "duckdb"},
            state_connection=state_connection, state_schema=state_schema,
        ),
        "bigquery": GatewayConfig(
            connection=BigQueryConnectionConfig(
                project=target.project if target.engine == "bigquery" else None,
                location=bigquery_location,
                job_execution_timeout_seconds=3600,
            ),
            state_connection=state_connection, state_schema=state_schema,
            variables={
                "dataset": target.dataset if target.engine == "bigquery" else DEFAULT_DATASET,
                "engine": "bigquery",
            },
        ),
    }
    # Only the URL's gateway is handed to SQLMesh: it opens every gateway it is given, and the BigQuery
    # one needs Google credentials even when the build targets DuckDB.
    return Config(
        gateways={target.engine: gateways[target.engine]},
        default_gateway=target.engine,
        model_defaults=ModelDefaultsConfig(dialect="duckdb", start=start, cron="@daily"),
        variables=project_variables(),
        disable_anonymized_analytics=True,
        cache_dir=str(Path(cache_dir).resolve()),
    )


def sqlmesh_state(engine: str):  # -> tuple[ConnectionConfig, str] | None
    """Where SQLMesh keeps its state (snapshots, intervals) and in which schema; None: in the warehouse itself.

    It belongs in a transactional database that every node reaches: ``AME_WAREHOUSE_STATE``, else ``AME_STATE_STORE``
    when the warehouse is BigQuery and the state store PostgreSQL. A BigQuery warehouse without either keeps it in a
    DuckDB file of ``AME_HOME`` (one machine); a DuckDB warehouse keeps it in its own file."""
    from sqlmesh.core.config import DuckDBConnectionConfig  # lazy: SQLMesh is heavy

    settings = get_settings()
    url = settings.warehouse_state
    if not url and engine == "bigquery" and is_postgres_url(settings.state_store):
        url = settings.state_store
    if url:
        return postgres_state_connection(url)
    if engine == "bigquery":
        return DuckDBConnectionConfig(database=str(settings.home / "sqlmesh_state.duckdb")), "sqlmesh"
    return None


def postgres_state_connection(url: str):  # -> tuple[PostgresConnectionConfig, str]
    """SQLMesh's PostgreSQL connection for ``url`` and its state schema: the schema of the URL's ``search_path``
    (``options=-csearch_path=...``), else ``sqlmesh``. An empty password leaves it to libpq (``PGPASSWORD``)."""
    from sqlmesh.core.config import PostgresConnectionConfig  # lazy: SQLMesh is heavy

    if not is_postgres_url(url):
        raise ValueError(f"AME_WAREHOUSE_STATE={redacted(url)!r} is not a postgresql:// URL")
    parts = conninfo_to_dict(url)
    path = re.search(r"search_path=([A-Za-z_][A-Za-z0-9_]*)", str(parts.get("options", "")))
    config = PostgresConnectionConfig(
        host=str(parts.get("host") or "127.0.0.1"), port=int(parts.get("port") or 5432),
        user=str(parts.get("user") or os.environ.get("PGUSER", "postgres")), password=str(parts.get("password") or ""),
        database=str(parts.get("dbname") or "postgres"),
    )
    return config, path.group(1) if path else "sqlmesh"


def config_from_environment():  # -> Config
    """The configuration the plain ``sqlmesh`` CLI uses inside the project folder (reads ``AME_WAREHOUSE``)."""
    os.environ.setdefault("SQLMESH__DISABLE_ANONYMIZED_ANALYTICS", "1")

    settings = get_settings()
    return sqlmesh_config(settings.warehouse_url(), start=settings.warehouse_start,
                          bigquery_location=settings.warehouse_bigquery_location or None)
