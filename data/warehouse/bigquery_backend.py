"""The production warehouse on BigQuery: raw_events partitioned by day and clustered, loaded idempotently.

Rows reach BigQuery by a load job into a batch table, then one DML statement copies the rows that are not
there yet, then the stream's position moves. Each step is idempotent, so a crash between them and a
re-run adds nothing twice. Every client call has a timeout.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from data.warehouse.base import RAW_COLUMNS, QueryResult, WarehouseUnavailable
from data.warehouse.project import parse_warehouse_url

log = logging.getLogger(__name__)

_TIMESTAMPS = {c.name for c in RAW_COLUMNS if c.bigquery == "TIMESTAMP"}


def _iso(micros: int | None) -> str | None:
    if micros is None:
        return None
    return datetime.fromtimestamp(micros / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def bigquery_json_row(row: dict[str, Any]) -> dict[str, Any]:
    """A raw row as BigQuery takes it in JSON: timestamps as UTC strings, properties as a JSON object (a JSON
    string would be stored as a JSON string, not an object). Load jobs and Pub/Sub messages use it alike."""
    return {k: (_iso(v) if k in _TIMESTAMPS else orjson.loads(v) if k == "properties" and v else v) for k, v in row.items()}


def raw_schema():  # -> list[bigquery.SchemaField]
    from google.cloud import bigquery  # lazy: a Google client is heavy

    return [
        bigquery.SchemaField(c.name, c.bigquery, mode="REQUIRED" if c.required else "NULLABLE", description=c.doc)
        for c in RAW_COLUMNS
    ]


class BigQueryWarehouse:
    """raw_events and the loader's tracking tables in a BigQuery dataset.

    :param url: ``bigquery://project/dataset``.
    :param client: a ``google.cloud.bigquery.Client`` (default: one built from Application Default Credentials).
    :param timeout: seconds for every API call and job wait.
    :param location: dataset location, for example ``EU``.
    """

    def __init__(self, url: str, client: Any = None, timeout: float = 60.0, location: str | None = None) -> None:
        target = parse_warehouse_url(url)
        self.url = url
        self.project = target.project or ""
        self.dataset = target.dataset
        self.timeout = timeout
        self.location = location
        if client is None:
            from google.cloud import bigquery  # lazy: a Google client is heavy

            # against a local emulator (BIGQUERY_EMULATOR_HOST, which the client honours) no credentials exist
            credentials = None
            if os.environ.get("BIGQUERY_EMULATOR_HOST"):
                from google.auth.credentials import AnonymousCredentials  # lazy: a Google client is heavy

                credentials = AnonymousCredentials()
            try:
                client = bigquery.Client(project=self.project, location=location, credentials=credentials)
            except Exception as error:  # noqa: BLE001 - credentials or project problems
                raise WarehouseUnavailable(
                    f"cannot create a BigQuery client for {url}: {error}. Run `gcloud auth application-default "
                    "login` or set GOOGLE_APPLICATION_CREDENTIALS to a service account key."
                ) from None
        self.client = client

    def _table(self, name: str) -> str:
        return f"{self.project}.{self.dataset}.{name}"

    def _job(self, sql: str, params: Sequence[Any] = ()) -> Any:
        from google.cloud import bigquery  # lazy: a Google client is heavy

        config = bigquery.QueryJobConfig(query_parameters=list(params))
        job = self.client.query(sql, job_config=config, timeout=self.timeout)
        job.result(timeout=self.timeout)
        return job

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self._job(sql, params).result(timeout=self.timeout))

    def ensure_raw(self) -> None:
        from google.cloud import bigquery  # lazy: a Google client is heavy

        dataset = bigquery.Dataset(f"{self.project}.{self.dataset}")
        if self.location:
            dataset.location = self.location
        self.client.create_dataset(dataset, exists_ok=True, timeout=self.timeout)
        raw = bigquery.Table(self._table("raw_events"), schema=raw_schema())
        raw.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY, field="occurred_at")
        raw.clustering_fields = ["event_type", "customer_id"]
        raw.description = "Every event of the log, one row per event (see the README, Warehouse)."
        raw = self.client.create_table(raw, exists_ok=True, timeout=self.timeout)
        self._add_missing_raw_columns(raw)
        state = bigquery.Table(self._table("raw_load_state"), schema=[
            bigquery.SchemaField("stream", "STRING", mode="REQUIRED"),
            bigquery.SchemaField("position", "INT64", mode="REQUIRED"),
            bigquery.SchemaField("rows_loaded", "INT64", mode="REQUIRED"),
            bigquery.SchemaField("updated_at", "TIMESTAMP", mode="REQUIRED"),
        ])
        self.client.create_table(state, exists_ok=True, timeout=self.timeout)
        loads = bigquery.Table(self._table("raw_loads"), schema=[
            bigquery.SchemaField("stream", "STRING", mode="REQUIRED"),
            bigquery.SchemaField("from_position", "INT64", mode="REQUIRED"),
            bigquery.SchemaField("to_position", "INT64", mode="REQUIRED"),
            bigquery.SchemaField("rows", "INT64", mode="REQUIRED"),
            bigquery.SchemaField("min_occurred_at", "TIMESTAMP"),
            bigquery.SchemaField("max_occurred_at", "TIMESTAMP"),
            bigquery.SchemaField("loaded_at", "TIMESTAMP", mode="REQUIRED"),
        ])
        self.client.create_table(loads, exists_ok=True, timeout=self.timeout)

    def _add_missing_raw_columns(self, raw: Any) -> None:
        """A raw_events made by an older version gains the (nullable) columns added since."""
        have = {field.name for field in raw.schema}
        missing = [field for field in raw_schema() if field.name not in have]
        if missing:
            raw.schema = [*raw.schema, *missing]
            self.client.update_table(raw, ["schema"], timeout=self.timeout)

    def loaded_position(self, stream: str) -> int:
        from google.cloud import bigquery  # lazy: a Google client is heavy

        rows = self._run(
            f"SELECT position FROM `{self._table('raw_load_state')}` WHERE stream = @stream",
            [bigquery.ScalarQueryParameter("stream", "STRING", stream)],
        )
        return int(rows[0][0]) if rows else 0

    def append_raw(self, stream: str, rows: Sequence[dict[str, Any]], to_position: int) -> int:
        """Load ``rows`` (idempotently: event ids already in raw are skipped) and move the position."""
        from google.cloud import bigquery  # lazy: a Google client is heavy

        from_position = self.loaded_position(stream)
        if to_position <= from_position:
            return 0
        batch = self._table(f"_raw_batch_{uuid.uuid4().hex[:12]}")
        payload = [bigquery_json_row(row) for row in rows]
        config = bigquery.LoadJobConfig(
            schema=raw_schema(), write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
        )
        columns = ", ".join(c.name for c in RAW_COLUMNS)
        stream_param = bigquery.ScalarQueryParameter("stream", "STRING", stream)
        inserted = 0
        try:
            if payload:
                self.client.load_table_from_json(payload, batch, job_config=config, timeout=self.timeout).result(
                    timeout=self.timeout
                )
                job = self._job(
                    f"INSERT INTO `{self._table('raw_events')}` ({columns}) SELECT {columns} FROM `{batch}` AS b "
                    f"WHERE b.event_id NOT IN (SELECT event_id FROM `{self._table('raw_events')}` "
                    "WHERE log_position > @from_position AND log_position <= @to_position)",
                    [bigquery.ScalarQueryParameter("from_position", "INT64", from_position),
                     bigquery.ScalarQueryParameter("to_position", "INT64", to_position)],
                )
                # Rows actually inserted: a re-run after a crash inserts (and records) none twice.
                affected = job.num_dml_affected_rows
                inserted = len(rows) if affected is None else int(affected)
            self._run(
                f"INSERT INTO `{self._table('raw_loads')}` VALUES (@stream, @from_position, @to_position, @rows, "
                "TIMESTAMP_MICROS(@min_us), TIMESTAMP_MICROS(@max_us), CURRENT_TIMESTAMP())",
                [stream_param, bigquery.ScalarQueryParameter("from_position", "INT64", from_position),
                 bigquery.ScalarQueryParameter("to_position", "INT64", to_position),
                 bigquery.ScalarQueryParameter("rows", "INT64", inserted),
                 bigquery.ScalarQueryParameter("min_us", "INT64", min((r["occurred_at"] for r in rows), default=None)),
                 bigquery.ScalarQueryParameter("max_us", "INT64", max((r["occurred_at"] for r in rows), default=None))],
            )
            self._run(
                f"MERGE `{self._table('raw_load_state')}` AS s USING (SELECT @stream AS stream) AS n ON s.stream = n.stream "
                "WHEN MATCHED THEN UPDATE SET position = @to_position, rows_loaded = s.rows_loaded + @rows, "
                "updated_at = CURRENT_TIMESTAMP() "
                "WHEN NOT MATCHED THEN INSERT (stream, position, rows_loaded, updated_at) "
                "VALUES (@stream, @to_position, @rows, CURRENT_TIMESTAMP())",
                [stream_param, bigquery.ScalarQueryParameter("to_position", "INT64", to_position),
                 bigquery.ScalarQueryParameter("rows", "INT64", inserted)],
            )
        finally:
            self.client.delete_table(batch, not_found_ok=True, timeout=self.timeout)
        return inserted

    def query(self, sql: str) -> QueryResult:
        job = self.client.query(sql, timeout=self.timeout)
        result = job.result(timeout=self.timeout)
        columns = [f.name for f in result.schema]
        return QueryResult(columns, [tuple(row.values()) for row in result])

    def close(self) -> None:
        self.client.close()
