"""The warehouse load of a Pub/Sub log: from the table its BigQuery subscription fills, into ``raw_events``.

Pub/Sub has no positions to read by. In production a BigQuery subscription on the events topic writes every
message, as published, into ``raw_pubsub_messages`` (the ``data`` column) with its metadata (``write_metadata``:
``subscription_name``, ``message_id``, ``publish_time``, ``attributes``). ``ame warehouse load --log
pubsub://…`` then reads the rows published since its watermark (the latest ``publish_time`` it loaded, kept in
``raw_load_state``), decodes each message as the log's subscribers do (decrypting the PII fields while the
customer's key exists), and appends the events to ``raw_events``, skipping event ids already there: delivery is at
least once, and a publisher's retry is a second message with the same event.

Each load re-reads ``AME_WAREHOUSE_SUBSCRIPTION_OVERLAP_S`` before the watermark, for rows the subscription wrote
after later-published ones; the event-id check makes the re-read add nothing twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from data.events import EventError
from data.log.base import StoredEvent, to_micros
from data.privacy.codec import FieldCodec, codec_for_log
from data.settings import get_settings
from data.warehouse.base import LoadResult, UnsupportedWarehouse, Warehouse
from data.warehouse.bigquery_backend import BigQueryWarehouse
from data.warehouse.rows import raw_row

log = logging.getLogger(__name__)

RAW_SUBSCRIPTION_TABLE = "raw_pubsub_messages"


@dataclass(frozen=True, slots=True)
class SubscriptionColumn:
    name: str
    bigquery: str
    doc: str


SUBSCRIPTION_COLUMNS: tuple[SubscriptionColumn, ...] = (
    SubscriptionColumn("subscription_name", "STRING", "The BigQuery subscription that wrote the row."),
    SubscriptionColumn("message_id", "STRING", "Pub/Sub's id of the message (a redelivery repeats it)."),
    SubscriptionColumn("publish_time", "TIMESTAMP", "When Pub/Sub accepted the message: the loader's watermark."),
    SubscriptionColumn("data", "STRING", "The message body, verbatim: the event's envelope as JSON, PII encrypted."),
    SubscriptionColumn("attributes", "JSON", "The message's attributes (event_type, event_id, schema_version) and "
                                             "ordering key, as Pub/Sub writes them."),
)


def raw_subscription_table_schema():  # -> list[bigquery.SchemaField]
    """The schema of the table a BigQuery subscription with ``write_metadata`` fills (``data`` as STRING, so the
    message is kept byte for byte): what ``ame infra init`` creates, partitioned by day of ``publish_time``."""
    from google.cloud import bigquery  # lazy: a Google client is heavy

    return [bigquery.SchemaField(c.name, c.bigquery, mode="NULLABLE", description=c.doc) for c in SUBSCRIPTION_COLUMNS]


def ensure_subscription_table(wh: BigQueryWarehouse) -> None:
    """Create ``raw_pubsub_messages`` if it is missing (day partitions on ``publish_time``)."""
    from google.cloud import bigquery  # lazy: a Google client is heavy

    table = bigquery.Table(wh._table(RAW_SUBSCRIPTION_TABLE), schema=raw_subscription_table_schema())
    table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY, field="publish_time")
    table.description = "Every message of the events topic, written by its BigQuery subscription (write_metadata)."
    wh.client.create_table(table, exists_ok=True, timeout=wh.timeout)


def stored_event(data: str | bytes, codec: FieldCodec | None) -> StoredEvent:
    """A subscription row's message as the log would hold it (position 0: Pub/Sub has none); raises
    :class:`~data.events.EventError` for a message that is not a valid event."""
    from data.log.pubsub import decode_message  # lazy: it loads the Pub/Sub client, which a DuckDB user never needs

    body = data.encode() if isinstance(data, str) else data
    event = decode_message(body, codec)
    recorded = to_micros(event.recorded_at) if event.recorded_at is not None else 0
    return StoredEvent.of(event, 0, recorded)


@dataclass(slots=True)
class _Page:
    rows: list[tuple[str, int, str]]  # (message_id, publish_time µs, data)

    @property
    def last(self) -> tuple[int, str]:
        return self.rows[-1][1], self.rows[-1][0]


def _read_page(wh: BigQueryWarehouse, since_us: int, after: tuple[int, str] | None, limit: int) -> _Page:
    """Rows published at or after ``since_us`` and after the (publish_time, message_id) ``after``, in that order."""
    from google.cloud import bigquery  # lazy: a Google client is heavy

    t, m = after if after is not None else (since_us - 1, "")
    rows = wh._run(
        f"SELECT message_id, UNIX_MICROS(publish_time) AS published_us, data FROM `{wh._table(RAW_SUBSCRIPTION_TABLE)}`"
        " WHERE publish_time >= TIMESTAMP_MICROS(@since)"
        " AND (UNIX_MICROS(publish_time) > @t OR (UNIX_MICROS(publish_time) = @t AND message_id > @m))"
        " ORDER BY publish_time, message_id LIMIT @n",
        [bigquery.ScalarQueryParameter("since", "INT64", since_us), bigquery.ScalarQueryParameter("t", "INT64", t),
         bigquery.ScalarQueryParameter("m", "STRING", m), bigquery.ScalarQueryParameter("n", "INT64", limit)],
    )
    return _Page([(r[0], int(r[1]), r[2]) for r in rows])


def _already_loaded(wh: BigQueryWarehouse, rows: list[dict[str, Any]]) -> set[str]:
    """The event ids of ``rows`` that ``raw_events`` holds (searched only in the days the rows occurred)."""
    from google.cloud import bigquery  # lazy: a Google client is heavy

    if not rows:
        return set()
    found = wh._run(
        f"SELECT event_id FROM `{wh._table('raw_events')}` WHERE event_id IN UNNEST(@ids)"
        " AND occurred_at BETWEEN TIMESTAMP_MICROS(@lo) AND TIMESTAMP_MICROS(@hi)",
        [bigquery.ArrayQueryParameter("ids", "STRING", [r["event_id"] for r in rows]),
         bigquery.ScalarQueryParameter("lo", "INT64", min(r["occurred_at"] for r in rows)),
         bigquery.ScalarQueryParameter("hi", "INT64", max(r["occurred_at"] for r in rows))],
    )
    return {r[0] for r in found}


def _new_rows(page: _Page, codec: FieldCodec, seen: set[str]) -> tuple[list[dict[str, Any]], int]:
    """The page's events as raw rows, the first of each event id only, and how many messages were not events."""
    now_us = time.time_ns() // 1000
    rows: list[dict[str, Any]] = []
    rejected = 0
    for message_id, _, data in page.rows:
        try:
            event = stored_event(data, codec)
        except EventError as error:
            rejected += 1
            log.warning("message %s of %s is not a valid event, skipped: %s", message_id, RAW_SUBSCRIPTION_TABLE, error)
            continue
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        rows.append({**raw_row(event, now_us), "log_position": None})
    return rows, rejected


def load_subscription(
    log_url: str,
    warehouse: Warehouse,
    batch_size: int = 20_000,
    progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Append the events published since the watermark from ``raw_pubsub_messages`` to ``raw_events``.

    :param log_url: the ``pubsub://project/topic`` log (its URL keys the watermark; its key store decrypts).
    :param warehouse: the BigQuery warehouse whose dataset holds both tables.
    :param batch_size: messages per read and per append.
    :param progress: called with the number of rows loaded after each batch.
    :returns: rows appended, and the watermark before and after (publish time, µs since the epoch).
    """
    if not isinstance(warehouse, BigQueryWarehouse):
        raise UnsupportedWarehouse(
            f"a Pub/Sub log ({log_url}) reaches the warehouse through a BigQuery subscription, so load it into "
            f"bigquery://project/dataset, not {warehouse.url}; on one machine, use a SQLite log")
    warehouse.ensure_raw()
    ensure_subscription_table(warehouse)
    start = position = warehouse.loaded_position(log_url)
    since = max(0, start - int(get_settings().warehouse_subscription_overlap_s * 1e6)) if start else 0
    codec = codec_for_log(log_url)
    seen: set[str] = set()
    after: tuple[int, str] | None = None
    total = batches = rejected = 0
    try:
        while True:
            page = _read_page(warehouse, since, after, batch_size)
            if not page.rows:
                break
            rows, bad = _new_rows(page, codec, seen)
            rejected += bad
            loaded = _already_loaded(warehouse, rows)
            fresh = [r for r in rows if r["event_id"] not in loaded]
            after = page.last
            position = max(position, after[0]) if not fresh else max(after[0], position + 1)
            total += warehouse.append_raw(log_url, fresh, position)
            batches += 1
            if progress is not None:
                progress(total)
            if len(page.rows) < batch_size:
                break
    finally:
        codec.keys.close()
    log.info("loaded %d events from %s (%d messages not events) into %s", total, RAW_SUBSCRIPTION_TABLE, rejected,
             warehouse.url)
    return LoadResult(rows=total, from_position=start, to_position=position, batches=batches)
