"""The log's history read back from raw_events on BigQuery (the emulator): the logged rows, in (occurred_at,
event_id) order, paged, with the properties as JSON text."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from data.log import open_log
from data.warehouse.bigquery_backend import BigQueryWarehouse
from data.warehouse.loader import load_events
from data.warehouse.replay import raw_events
from tests.integration.warehouse.test_warehouse_bigquery_emulator import PROJECT, TIMEOUT, client  # noqa: F401 - fixture
from tests.integration.warehouse.warehouse_events import day_events

pytestmark = [pytest.mark.emulator, pytest.mark.filterwarnings("ignore:.*json_encoders.*")]


def test_raw_events_on_bigquery_gives_back_the_logged_rows(client, tmp_path: Path) -> None:  # noqa: F811 - fixture
    log = open_log(f"sqlite:///{tmp_path / 'events.db'}")
    log.append(day_events("2026-03-01", 60, "d1", customers=5))
    bq = BigQueryWarehouse(f"bigquery://{PROJECT}/ame_it_{uuid.uuid4().hex[:8]}", client=client, timeout=TIMEOUT)
    try:
        load_events(log, bq)
        read = list(raw_events(bq, page=17))
        expected = sorted(log.read(0, 1_000).events, key=lambda e: (e.occurred_at_us, e.event_id))
        assert [e[1:9] for e in read] == [e[1:9] for e in expected]
        assert [e.properties for e in read] == [e.properties for e in expected]
        kinds = sorted({e.event_type for e in expected})[:2]
        assert [e.event_id for e in raw_events(bq, kinds, page=7)] == [e.event_id for e in expected if e.event_type in kinds]
    finally:
        bq.close()
        log.close()
