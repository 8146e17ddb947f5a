"""The retrain's history read back from the warehouse's raw_events: the same rows as the log, in (occurred_at,
event_id) order, paged, with a duplicate delivery dropped; the training table built from it equals the one built
from the SQLite log, every column."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from agents.history import WarehouseHistory, history_of
from agents.retrain import training_table
from data.log import open_log
from data.warehouse import open_warehouse
from data.warehouse.loader import load_events
from data.warehouse.replay import dialect_of, page_sql, raw_events
from data.warehouse.rows import raw_row
from tests.integration.crm.history import past_leads
from tests.integration.crm.test_retrain import _outcomes


@pytest.fixture
def loaded(log_url: str, tmp_path: Path):
    """A SQLite log with 60 leads' events and outcomes, and a DuckDB warehouse loaded from it."""
    events, leads = past_leads(60)
    log = open_log(log_url)
    log.append(events + _outcomes(leads))
    warehouse = open_warehouse(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    load_events(log, warehouse)
    yield log, warehouse
    warehouse.close()
    log.close()


def test_raw_events_gives_back_the_logged_rows_in_time_order(loaded) -> None:
    log, warehouse = loaded
    logged = log.read(0, 100_000).events
    read = list(raw_events(warehouse, page=37))  # a page size that splits ties of occurred_at across pages
    assert len(read) == len(logged)
    expected = sorted(logged, key=lambda e: (e.occurred_at_us, e.event_id))
    assert [e[1:9] for e in read] == [e[1:9] for e in expected], "every envelope column, in (occurred_at, event_id) order"
    assert [e.properties for e in read] == [e.properties for e in expected]
    assert [e.position for e in read] == list(range(1, len(read) + 1))
    assert {e.event_type for e in raw_events(warehouse, ["opportunity_won"])} == {"opportunity_won"}
    assert list(raw_events(warehouse, [])) == []


def test_a_duplicate_delivery_is_read_once(loaded) -> None:
    log, warehouse = loaded
    first = log.read(0, 1).events[0]
    warehouse.append_raw("again", [raw_row(first, time.time_ns() // 1000)], 1)  # at-least-once delivery
    held = warehouse.query(f"SELECT count(*) FROM {warehouse.dataset}.raw_events WHERE event_id = '{first.event_id}'")
    assert held.rows == [(2,)]
    assert sum(e.event_id == first.event_id for e in raw_events(warehouse, page=5)) == 1


def test_the_training_table_from_raw_events_equals_the_one_from_the_log(loaded) -> None:
    log, warehouse = loaded
    from_log = training_table(history_of(log))
    from_warehouse = training_table(WarehouseHistory(warehouse, page=101))
    assert len(from_log) == 60
    pd.testing.assert_frame_equal(from_warehouse, from_log, check_exact=True)


def test_the_page_query_quotes_its_literals_for_each_engine() -> None:
    class BigQueryLike:
        url, dataset = "bigquery://proj/ame", "ame"

    sql = page_sql(dialect_of(BigQueryLike()), ["a'b"], (5, "x'y"), 10)  # type: ignore[arg-type]
    assert "`proj.ame.raw_events`" in sql and r"'a\'b'" in sql and "TIMESTAMP_MICROS(5)" in sql and r"'x\'y'" in sql
    with pytest.raises(ValueError, match="page must be at least 1"):
        next(raw_events(BigQueryLike(), page=0))  # type: ignore[arg-type]
