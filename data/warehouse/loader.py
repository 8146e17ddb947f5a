"""The loader: new events from the event log into ``raw_events``, tracked by log position.

The position lives in the warehouse (``raw_load_state``) and moves in the same transaction as the rows,
so loading twice adds nothing and a crash mid-load re-reads exactly the batch it lost. A Pub/Sub log has no
positions: its events are loaded from the table its BigQuery subscription fills (:mod:`data.warehouse.pubsub_raw`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from data.log import open_log
from data.log.base import EventLog, positional
from data.warehouse.base import LoadResult, Warehouse
from data.warehouse.pubsub_raw import load_subscription
from data.warehouse.rows import raw_row

log = logging.getLogger(__name__)


def stream_name(log_url: str) -> str:
    """The tracking key of a log: its URL, so two logs loaded into one warehouse keep separate positions."""
    return log_url


def load_events(
    event_log: EventLog,
    warehouse: Warehouse,
    batch_size: int = 20_000,
    max_events: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Copy every event after the warehouse's tracked position into ``raw_events``.

    :param event_log: the log to read.
    :param warehouse: where ``raw_events`` lives.
    :param batch_size: events per read and per warehouse transaction.
    :param max_events: stop after about this many events (None: up to the log's head).
    :param progress: called with the number of rows loaded after each batch.
    """
    event_log = positional(event_log, "the warehouse loader")
    warehouse.ensure_raw()
    stream = stream_name(event_log.url)
    start = position = warehouse.loaded_position(stream)
    rows_total = batches = 0
    while max_events is None or rows_total < max_events:
        batch = event_log.read(after=position, limit=batch_size)
        if batch.next_after <= position:
            break
        now_us = time.time_ns() // 1000
        rows = [raw_row(event, now_us) for event in batch.events]
        rows_total += warehouse.append_raw(stream, rows, batch.next_after)
        position = batch.next_after
        batches += 1
        if progress is not None:
            progress(rows_total)
    log.info("loaded %d events (positions %d..%d) into %s", rows_total, start, position, warehouse.url)
    return LoadResult(rows=rows_total, from_position=start, to_position=position, batches=batches)


def load_log(log_url: str, warehouse: Warehouse, batch_size: int = 20_000,
             progress: Callable[[int], None] | None = None) -> LoadResult:
    """Load the log at ``log_url``: by position (SQLite, PostgreSQL), or for ``pubsub://`` from the table its
    BigQuery subscription fills (the positions are then publish times, µs since the epoch)."""
    if log_url.startswith("pubsub://"):
        return load_subscription(log_url, warehouse, batch_size=batch_size, progress=progress)
    event_log = open_log(log_url)
    try:
        return load_events(event_log, warehouse, batch_size=batch_size, progress=progress)
    finally:
        event_log.close()
