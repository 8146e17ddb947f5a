"""``ame warehouse load`` on a Pub/Sub log reads the table its BigQuery subscription fills (bqemulator, real
google-cloud-bigquery client). The emulator runs no subscription, so the test writes that table as the
subscription would: each message as the Pub/Sub log publishes it (the envelope as JSON, PII encrypted) in ``data``,
with ``subscription_name``, ``message_id``, ``publish_time`` and ``attributes``, including a redelivery, a
publisher's retry, a message that is not an event and a row written late. The loads are incremental and add
nothing twice; raw_events and the staging models then hold the same rows, every column (but the load's own
``loaded_at`` and ``log_position``, which a Pub/Sub log does not have), as loading the same events from the SQLite
log. Needs AME_BQ_EMULATOR (scripts/start_bqemulator.sh)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from data.log import open_log
from data.log.base import StoredEvent, from_micros
from data.log.pubsub import encode_event
from data.privacy.codec import codec_for_log
from data.warehouse.bigquery_backend import BigQueryWarehouse
from data.warehouse.bigquery_sql import render_for_bigquery
from data.warehouse.loader import load_events
from data.warehouse.pubsub_raw import RAW_SUBSCRIPTION_TABLE, ensure_subscription_table, raw_subscription_table_schema
from tests.integration.privacy.test_privacy_bigquery_erasure import _rows
from tests.integration.warehouse.test_warehouse_bigquery_emulator import (  # noqa: F401
    PROJECT,
    TIMEOUT,
    _endpoint,
    client,
)
from tests.integration.warehouse.warehouse_events import day_events

pytestmark = [pytest.mark.emulator, pytest.mark.filterwarnings("ignore:.*json_encoders.*")]
TOPIC = f"pubsub://{PROJECT}/customer-events"
PUBLISHED = datetime(2026, 3, 3, 8, tzinfo=UTC)
NOT_COMPARED = {"loaded_at", "log_position"}


def _events() -> list[dict[str, Any]]:
    leads = [{"event_id": f"lead-{i}", "event_type": "lead_created", "customer_id": f"c-{i}",
              "occurred_at": "2026-03-01T10:00:00Z", "properties": {"email": f"person{i}@example.com",
                                                                    "first_name": f"P{i}"}} for i in range(3)]
    return day_events("2026-03-01", 60, "d1", customers=6) + day_events("2026-03-02", 40, "d2", customers=6) + leads


def _messages(stored: list[StoredEvent]) -> list[dict[str, Any]]:
    """What the Pub/Sub log publishes for each event (PII encrypted by the topic's key store), as subscription rows."""
    codec = codec_for_log(TOPIC)
    try:
        events = codec.protect_events([s.to_event() for s in stored])
    finally:
        codec.keys.close()
    return [{"subscription_name": f"projects/{PROJECT}/subscriptions/events-to-bq", "message_id": f"m-{i}",
             "publish_time": PUBLISHED + timedelta(seconds=i),
             "data": encode_event(e, s.recorded_at_us).decode(),
             "attributes": {"event_type": e.event_type, "event_id": e.event_id, "schema_version": str(e.schema_version)}}
            for i, (s, e) in enumerate(zip(stored, events, strict=True))]


def _write(client, dataset: str, rows: list[dict[str, Any]]) -> None:  # noqa: F811
    """Write rows into the subscription's table, as the subscription does."""
    from google.cloud import bigquery  # lazy: a Google client is heavy

    payload = [{**r, "publish_time": r["publish_time"].strftime("%Y-%m-%d %H:%M:%S.%f")} for r in rows]
    config = bigquery.LoadJobConfig(schema=raw_subscription_table_schema(),
                                    source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON)
    client.load_table_from_json(payload, f"{PROJECT}.{dataset}.{RAW_SUBSCRIPTION_TABLE}", job_config=config,
                                timeout=TIMEOUT).result(timeout=TIMEOUT)


def _table(wh: BigQueryWarehouse, table: str) -> list[str]:
    result = wh.query(f"SELECT * FROM `{PROJECT}.{wh.dataset}.{table}`")
    keep = [i for i, c in enumerate(result.columns) if c not in NOT_COMPARED]
    return _rows([result.columns[i] for i in keep], [tuple(row[i] for i in keep) for row in result.rows])


def _build_staging(client, datasets: list[str]) -> list[str]:  # noqa: F811
    """The staging models' BigQuery SQL, rendered once and run in each dataset; their names."""
    rendered = [m for m in render_for_bigquery(PROJECT, "ame_dataset", "2026-03-01", "2026-03-02", "2026-03-03")
                if m.name.startswith("staging_")]
    for dataset in datasets:
        for model in rendered:
            for sql in (model.create_if_missing, f"CREATE OR REPLACE TABLE `{PROJECT}.ame_dataset.{model.name}` AS {model.sql}"):
                if sql:
                    sql = sql.replace("`ame_dataset`", f"`{dataset}`").replace(".ame_dataset.", f".{dataset}.")
                    client.query(sql, timeout=TIMEOUT).result(timeout=TIMEOUT)
    return [m.name for m in rendered]


def _load(dataset: str) -> str:
    from ame.cli import app  # lazy: loads torch and stable-baselines3

    result = CliRunner().invoke(app, ["warehouse", "load", "--log", TOPIC, "--warehouse",
                                      f"bigquery://{PROJECT}/{dataset}"])
    assert result.exit_code == 0, result.output
    return result.output


def test_load_from_the_subscription_table_equals_the_sqlite_load(client, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", f"http://{_endpoint()}")
    log = open_log(f"sqlite:///{tmp_path / 'events.db'}")
    log.append(_events())
    stored = log.read(limit=10_000).events
    by_log, by_topic = f"ame_log_{uuid.uuid4().hex[:8]}", f"ame_topic_{uuid.uuid4().hex[:8]}"
    wh_log = BigQueryWarehouse(f"bigquery://{PROJECT}/{by_log}", client=client, timeout=TIMEOUT)
    wh_topic = BigQueryWarehouse(f"bigquery://{PROJECT}/{by_topic}", client=client, timeout=TIMEOUT)
    try:
        wh_log.ensure_raw()
        assert load_events(log, wh_log).rows == len(stored)
        log.close()

        messages = _messages(stored)
        wh_topic.ensure_raw()
        ensure_subscription_table(wh_topic)
        first, rest = messages[:70], messages[70:]
        redelivery = dict(first[5])  # the same message written twice
        retry = {**first[6], "message_id": "m-retry", "publish_time": first[6]["publish_time"] + timedelta(seconds=1)}
        poison = {**first[0], "message_id": "m-poison", "data": "{not json"}
        _write(client, by_topic, [*first, redelivery, retry, poison])
        assert "loaded 70 events" in _load(by_topic)
        watermark = wh_topic.loaded_position(TOPIC)
        assert from_micros(watermark) == first[-1]["publish_time"]

        late = {**rest[0], "publish_time": first[-1]["publish_time"] - timedelta(seconds=30)}  # written after
        _write(client, by_topic, [late, *rest[1:]])
        assert f"loaded {len(rest)} events" in _load(by_topic)
        assert "loaded 0 events" in _load(by_topic), "a third load adds nothing"

        assert wh_topic.query(f"SELECT COUNT(*), COUNT(DISTINCT event_id) FROM `{PROJECT}.{by_topic}.raw_events`"
                              ).rows[0] == (len(stored), len(stored))
        emails = wh_topic.query(f"SELECT JSON_VALUE(properties, '$.email') FROM `{PROJECT}.{by_topic}.raw_events`"
                                " WHERE event_type = 'lead_created'").rows
        assert sorted(r[0] for r in emails) == [f"person{i}@example.com" for i in range(3)], "PII decrypted"
        assert "enc:v1" not in orjson.dumps(_table(wh_topic, "raw_events")).decode()

        assert _table(wh_topic, "raw_events") == _table(wh_log, "raw_events")
        tables = _build_staging(client, [by_log, by_topic])
        assert "staging_events_all" in tables
        for name in tables:
            assert _table(wh_topic, name) == _table(wh_log, name), f"{name} differs"
    finally:
        for dataset in (by_log, by_topic):
            client.delete_dataset(f"{PROJECT}.{dataset}", delete_contents=True, not_found_ok=True, timeout=TIMEOUT)
