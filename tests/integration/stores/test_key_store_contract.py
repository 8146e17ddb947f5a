"""The PII key store's contract, run over every backend (``sqlite`` and ``postgresql``): one key per customer
whoever asks first, erasure that no reader outlives, and the tombstones training reads."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from data.events import LeadCreated, LeadCreatedProperties
from data.log import open_log
from data.privacy.codec import FieldCodec
from data.privacy.keystore import KeyStore, open_key_store
from data.privacy.postgres_keystore import PostgresKeyStore
from data.privacy.training import erased_customers
from data.settings import get_settings


@pytest.fixture
def key_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh key store URL on each backend, also set as ``AME_KEY_STORE`` for the logs the test opens."""
    url = f"sqlite:///{tmp_path / 'keys.db'}" if backend == "sqlite" else str(request.getfixturevalue("postgres_url"))
    monkeypatch.setenv("AME_KEY_STORE", url)
    get_settings.cache_clear()
    return url


def _lead(cid: str, email: str, i: int = 0) -> LeadCreated:
    return LeadCreated(event_id=f"l-{cid}-{i}", customer_id=cid, occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
                       properties=LeadCreatedProperties(email=email, first_name="Ann", phone="+4412345678"))


def test_the_url_picks_the_backend(key_url: str, backend: str) -> None:
    store = open_key_store("sqlite:///unused.db", key_url)
    assert isinstance(store, {"sqlite": KeyStore, "postgresql": PostgresKeyStore}[backend])
    store.close()


def test_writers_racing_keep_one_key(key_url: str) -> None:
    stores = [open_key_store("", key_url) for _ in range(4)]
    found: list[bytes | None] = []
    threads = [threading.Thread(target=lambda s=s: found.extend(s.keys(["c", "d"], create=True).values()))
               for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(found) == 8 and len(set(found)) == 2 and all(len(k or b"") == 32 for k in found)
    again = stores[0].keys(["c", "d", "nobody"], create=False)
    assert {again["c"], again["d"]} == set(found) and again["nobody"] is None
    codec = FieldCodec(stores[1])
    assert codec.reveal("lead_created", "c", {"email": "plain@example.com"})["email"] == "plain@example.com"
    for store in stores:
        store.close()


def test_erasure_deletes_the_key_and_leaves_a_tombstone(key_url: str) -> None:
    store, other = open_key_store("", key_url), open_key_store("", key_url)
    key = store.keys(["c1", "c2"], create=True)["c1"]
    assert key is not None and store.erased_generation() == 0 and not store.is_erased("c1")
    before = store.data_version()  # what a reader sees before another writer erases
    assert other.erase("c1", "evt-1", "test") is True and other.erase("never-seen", "evt-2", "test") is False
    assert store.data_version() != before and store.erased_generation() == 2
    assert store.is_erased("c1") and store.erased_customers() == {"c1", "never-seen"}
    assert store.keys(["c1"], create=True) == {"c1": None}  # an erased customer never gets a new key
    assert store.keys(["c2"], create=False)["c2"] is not None
    assert erased_customers("sqlite:///unused.db") == {"c1", "never-seen"}  # what training excludes
    store.close()
    other.close()


def test_erasure_shreds_in_every_open_process(key_url: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    writer, reader = open_log(url), open_log(url)
    writer.append([_lead("c1", "a@example.com"), _lead("c2", "b@example.com")])
    assert reader.read().events[0].properties["email"] == "a@example.com"  # the reader's key cache is warm
    eraser = open_key_store(url, key_url)
    eraser.erase("c1", "evt", "test")
    eraser.close()
    props = {e.customer_id: e.properties for e in reader.read().events}
    assert props["c1"]["email"] is None and props["c1"]["first_name"] is None and props["c2"]["email"] == "b@example.com"
    writer.append([_lead("c1", "again@example.com", 1)])  # new PII of an erased customer is not stored
    with sqlite3.connect(tmp_path / "events.db") as conn:
        raw = conn.execute("select properties from events where event_id = 'l-c1-1'").fetchone()[0]
    assert "again@example.com" not in raw and '"email":null' in raw
    writer.close()
    reader.close()
