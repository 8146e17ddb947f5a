"""Removing a customer's plaintext PII from a BigQuery warehouse with DML, as :func:`data.privacy.scrub.scrub_duckdb`
does for the DuckDB file: the PII fields of their ``raw_events`` properties set to null, the PII columns of every
row keyed by them set to null, their distinctive values (email, phone) replaced in every text cell and their names
in their own rows. Rows are anonymized, not deleted, so counts and revenue still reconcile.

It sweeps the warehouse dataset and SQLMesh's physical dataset (``sqlmesh__<dataset>``), where the staging,
intermediate and marts tables live behind the dataset's views. Each table takes at most four DML statements
(BigQuery bills and rate-limits DML per statement), and every statement matches only the cells that still hold
something to remove, so a second run changes nothing and reports zeros.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from data.privacy.registry import ERASED, PII_EVENT_TYPES, pii_fields
from data.privacy.scrub import CUSTOMER_COLUMNS, PII_COLUMNS, PiiValues, ScrubCount, anonymize_properties

if TYPE_CHECKING:
    from data.privacy.codec import FieldCodec
    from data.warehouse.bigquery_backend import BigQueryWarehouse

log = logging.getLogger(__name__)

TEXT_TYPES = frozenset({"STRING", "JSON"})


@dataclass(frozen=True, slots=True)
class BigQueryTable:
    """One table of the warehouse and the types of its columns (``STRING``, ``JSON``, ...)."""

    ref: str  # project.dataset.table
    columns: dict[str, str]

    @property
    def name(self) -> str:
        return self.ref.split(".", 1)[1]

    @property
    def keyed(self) -> str | None:
        """The column that names the customer a row belongs to (None: rows belong to no one)."""
        return next((c for c in CUSTOMER_COLUMNS if c in self.columns), None)


def warehouse_tables(wh: BigQueryWarehouse) -> list[BigQueryTable]:
    """The tables (not views) of the warehouse dataset and of SQLMesh's physical dataset, where they exist."""
    from google.api_core.exceptions import NotFound  # lazy: a Google client is heavy

    tables: list[BigQueryTable] = []
    for dataset in (wh.dataset, f"sqlmesh__{wh.dataset}"):
        try:
            items = list(wh.client.list_tables(f"{wh.project}.{dataset}", timeout=wh.timeout))
        except NotFound:
            continue
        for item in items:
            if item.table_type != "TABLE" or item.table_id.startswith("_raw_batch_"):
                continue
            table = wh.client.get_table(f"{wh.project}.{dataset}.{item.table_id}", timeout=wh.timeout)
            tables.append(BigQueryTable(f"{wh.project}.{dataset}.{item.table_id}",
                                        {f.name: f.field_type.upper() for f in table.schema}))
    return sorted(tables, key=lambda t: t.ref)


def _param(name: str, value: Any, kind: str = "STRING") -> Any:
    from google.cloud import bigquery  # lazy: a Google client is heavy

    return bigquery.ScalarQueryParameter(name, kind, value)


def _text(column: str, kind: str) -> str:
    """The column as text: JSON is serialized, so its values can be searched and replaced."""
    return f"TO_JSON_STRING(`{column}`)" if kind == "JSON" else f"`{column}`"


def _replaced(column: str, kind: str, params: list[str]) -> str:
    """``column`` with each ``@param`` replaced by ``@erased`` (a JSON column is parsed back)."""
    expression = _text(column, kind)
    for p in params:
        expression = f"REPLACE({expression}, @{p}, @erased)"
    return f"PARSE_JSON({expression})" if kind == "JSON" else expression


def replace_statement(table: BigQueryTable, values: list[str], customer_only: bool) -> str | None:
    """One UPDATE replacing ``values`` (as ``@v0``, ``@v1``...) in every text column but the customer ids; with
    ``customer_only``, only in the rows of ``@customer``. None when the table has no such column."""
    columns = {c: k for c, k in table.columns.items() if k in TEXT_TYPES and c not in CUSTOMER_COLUMNS}
    if not columns or not values or (customer_only and table.keyed is None):
        return None
    params = [f"v{i}" for i in range(len(values))]
    sets = ", ".join(f"`{c}` = {_replaced(c, k, params)}" for c, k in columns.items())
    holds = " OR ".join(f"STRPOS({_text(c, k)}, @{p}) > 0" for c, k in columns.items() for p in params)
    where = f"({holds})" + (f" AND `{table.keyed}` = @customer" if customer_only else "")
    return f"UPDATE `{table.ref}` SET {sets} WHERE {where}"


def null_pii_statement(table: BigQueryTable) -> str | None:
    """One UPDATE setting the PII columns (email, names, phone, company) of ``@customer``'s rows to null."""
    pii = [c for c, k in table.columns.items() if c in PII_COLUMNS and k == "STRING"]
    if table.keyed is None or not pii:
        return None
    sets = ", ".join(f"`{c}` = NULL" for c in pii)
    held = " OR ".join(f"`{c}` IS NOT NULL" for c in pii)
    return f"UPDATE `{table.ref}` SET {sets} WHERE `{table.keyed}` = @customer AND ({held})"


def _is_raw_events(table: BigQueryTable) -> bool:
    return table.ref.endswith(".raw_events") and {"properties", "event_type", "customer_id", "event_id"} <= table.columns.keys()


def _pii_event_rows(wh: BigQueryWarehouse, table: BigQueryTable, customer_id: str) -> list[tuple[str, str, str]]:
    """(event_id, event_type, properties JSON) of the customer's events that carry PII fields."""
    from google.cloud import bigquery  # lazy: a Google client is heavy

    sql = (f"SELECT event_id, event_type, {_text('properties', table.columns['properties'])} FROM `{table.ref}`"
           " WHERE customer_id = @customer AND event_type IN UNNEST(@types)")
    rows = wh._run(sql, [_param("customer", customer_id),
                         bigquery.ArrayQueryParameter("types", "STRING", sorted(PII_EVENT_TYPES))])
    return [(r[0], r[1], r[2]) for r in rows if r[2] is not None]


def _anonymize_raw(wh: BigQueryWarehouse, table: BigQueryTable, customer_id: str) -> int:
    """Set the PII fields of the customer's raw properties to null (only rows that still hold some)."""
    from google.cloud import bigquery  # lazy: a Google client is heavy

    changes = []
    for event_id, event_type, properties in _pii_event_rows(wh, table, customer_id):
        anonymized = anonymize_properties(event_type, properties)
        if orjson.loads(anonymized) != orjson.loads(properties):
            changes.append(bigquery.StructQueryParameter(
                None, _param("event_id", event_id), _param("properties", anonymized)))
    if not changes:
        return 0
    value = "PARSE_JSON(u.properties)" if table.columns["properties"] == "JSON" else "u.properties"
    job = wh._job(f"UPDATE `{table.ref}` AS t SET properties = {value} FROM UNNEST(@rows) AS u"
                  " WHERE t.event_id = u.event_id", [bigquery.ArrayQueryParameter("rows", "STRUCT", changes)])
    return int(job.num_dml_affected_rows or 0)


def _dml(wh: BigQueryWarehouse, sql: str | None, params: list[Any]) -> int:
    if sql is None:
        return 0
    return int(wh._job(sql, params).num_dml_affected_rows or 0)


def scrub_bigquery(wh: BigQueryWarehouse, customer_id: str, values: PiiValues) -> ScrubCount:
    """Anonymize the customer's rows in every table of the warehouse (see the module docstring).

    :param wh: the warehouse (its client, project and dataset).
    :param customer_id: the customer.
    :param values: their plaintext values, gathered before their key was deleted.
    :returns: rows changed, in all (``cells``) and per table (``tables``, ``dataset.table``).
    """
    count = ScrubCount()
    customer = _param("customer", customer_id)
    erased = _param("erased", ERASED)
    distinctive = sorted(values.distinctive, key=lambda v: (-len(v), v))  # a longer value first: it may hold a shorter
    names = sorted(values.names, key=lambda v: (-len(v), v))
    for table in warehouse_tables(wh):
        changed = _anonymize_raw(wh, table, customer_id) if _is_raw_events(table) else 0
        changed += _dml(wh, null_pii_statement(table), [customer])
        changed += _dml(wh, replace_statement(table, distinctive, customer_only=False),
                        [erased, *(_param(f"v{i}", v) for i, v in enumerate(distinctive))])
        changed += _dml(wh, replace_statement(table, names, customer_only=True),
                        [erased, customer, *(_param(f"v{i}", v) for i, v in enumerate(names))])
        count.tables[table.name] = changed
        count.cells += changed
    log.info("erasure: %d rows anonymized in %d tables of %s", count.cells, len(count.tables), wh.url)
    return count


def pii_in_bigquery(wh: BigQueryWarehouse, customer_id: str, codec: FieldCodec) -> list[tuple[str, Any]]:
    """(field, value) of the customer's PII found in the warehouse by customer id: the PII columns of their rows
    and the PII fields of their ``raw_events`` (decrypted while the key still exists). For a log that cannot be
    read back (Pub/Sub)."""
    fields: list[tuple[str, Any]] = []
    customer = _param("customer", customer_id)
    for table in warehouse_tables(wh):
        pii = [c for c, k in table.columns.items() if c in PII_COLUMNS and k == "STRING"]
        if table.keyed is not None and pii:
            rows = wh._run(f"SELECT {', '.join(f'`{c}`' for c in pii)} FROM `{table.ref}` WHERE `{table.keyed}` = @customer",
                           [customer])
            fields += [(c, v) for row in rows for c, v in zip(pii, row, strict=True)]
        if _is_raw_events(table):
            for _, event_type, properties in _pii_event_rows(wh, table, customer_id):
                props = codec.reveal(event_type, customer_id, orjson.loads(properties), erased=None)
                fields += [(name, props.get(name)) for name in pii_fields(event_type)]
    return fields
