"""``ame infra init`` against the Pub/Sub emulator, bqemulator and the local PostgreSQL: a dry run creates nothing,
the first run creates everything, the second nothing, and a resource removed in between is created again."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from google.api_core import exceptions as gexc
from typer.testing import CliRunner

from ame.cli import app
from ame.infra import RAW_TABLES, REGISTRY_MARKER, bigquery_client, initialise, plan
from data.settings import get_settings

pytestmark = pytest.mark.emulator
ARGS = ["infra", "init", "--shards", "1", "--timeout", "20"]


@pytest.fixture
def engine(pubsub_url: str, postgres_url: str, bigquery_emulator: str, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The settings of a production engine on the local stand-ins (the bucket is a local folder)."""
    urls = {"AME_EVENT_LOG": pubsub_url, "AME_STATE_STORE": postgres_url,
            "AME_WAREHOUSE": f"bigquery://test-proj/ame_infra_{uuid.uuid4().hex[:8]}",
            "AME_POLICIES_DIR": str(tmp_path / "bucket" / "policies"), "AME_MODELS_DIR": str(tmp_path / "bucket" / "models")}
    for name, value in urls.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return urls


def _ame(*args: str) -> str:
    result = CliRunner().invoke(app, [*ARGS, *args], terminal_width=250)
    assert result.exit_code == 0, result.output
    return result.output


def _created(rows) -> set[tuple[str, str]]:
    return {(r.kind, r.name) for r in rows if r.status == "created"}


def test_init_creates_everything_once_and_again_what_was_removed(engine: dict[str, str]) -> None:
    from google.cloud import pubsub_v1  # lazy: a Google client is heavy

    topic = engine["AME_EVENT_LOG"].rsplit("/", 1)[1]
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    bq = bigquery_client("test-proj")
    dataset = engine["AME_WAREHOUSE"].removeprefix("bigquery://").replace("/", ".")
    try:
        out = _ame("--dry-run")  # looks only
        assert "would create" in out and "19 would create" in out
        with pytest.raises(gexc.NotFound):
            publisher.get_topic(topic=f"projects/ame-test/topics/{topic}")
        assert not Path(engine["AME_POLICIES_DIR"]).exists()

        assert "19 created" in _ame()  # everything
        journey = f"projects/ame-test/subscriptions/{topic}-agent-journey-0of1"
        sub = subscriber.get_subscription(subscription=journey)
        assert 'attributes.event_type = "decision_made"' in sub.filter and sub.enable_message_ordering
        assert sub.dead_letter_policy.dead_letter_topic == f"projects/ame-test/topics/{topic}-dead-letter"
        assert sub.dead_letter_policy.max_delivery_attempts == get_settings().pubsub_max_delivery_attempts
        assert {t.table_id for t in bq.list_tables(dataset)} == {*RAW_TABLES, "raw_pubsub_messages"}
        to_bigquery = subscriber.get_subscription(subscription=f"projects/ame-test/subscriptions/{topic}-warehouse")
        assert to_bigquery.bigquery_config.table == f"{dataset}.raw_pubsub_messages"
        assert to_bigquery.bigquery_config.write_metadata
        assert (Path(engine["AME_POLICIES_DIR"]) / "slots").is_dir()

        rows = initialise(plan(get_settings(), shards=1))  # the second run creates nothing
        assert _created(rows) == set() and {r.status for r in rows} == {"exists"}

        subscriber.delete_subscription(subscription=journey)  # removed in between ...
        subscriber.delete_subscription(subscription=f"projects/ame-test/subscriptions/{topic}-warehouse")
        bq.delete_table(f"{dataset}.raw_loads")
        (Path(engine["AME_POLICIES_DIR"]) / REGISTRY_MARKER).unlink()
        with psycopg.connect(engine["AME_STATE_STORE"], autocommit=True) as conn:
            conn.execute("drop table schema_version, tracking")
        rows = initialise(plan(get_settings(), shards=1))  # ... and created again, nothing else
        assert _created(rows) == {
            ("Pub/Sub subscription", f"{topic}-agent-journey-0of1"), ("Pub/Sub subscription", f"{topic}-warehouse"),
            ("BigQuery table", f"{dataset}.raw_loads"),
            ("registry marker", str(Path(engine["AME_POLICIES_DIR"]) / REGISTRY_MARKER)),
            ("PostgreSQL schema", rows[[r.kind for r in rows].index("PostgreSQL schema")].name),
        }
        with psycopg.connect(engine["AME_STATE_STORE"], autocommit=True) as conn:
            assert conn.execute("select count(*) from tracking").fetchone()[0] == 0
        out = _ame()
        assert "19 exists" in out and "created" not in out
    finally:
        subscriber.close()
        publisher.stop()
        bq.delete_dataset(dataset, delete_contents=True, not_found_ok=True)
        bq.close()
