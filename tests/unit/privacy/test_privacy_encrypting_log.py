"""The log's encryption is one wrapper around any backend: the backend stores what it is given (tokens), readers
through the wrapper see plaintext, and batches without personal data never open the key store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from data.events import LeadCreated, LeadCreatedProperties, Purchase, PurchaseProperties
from data.log import open_log
from data.log.sqlite import SqliteEventLog
from data.privacy.codec import FieldCodec
from data.privacy.encrypting_log import EncryptingLog
from data.privacy.keystore import KeyStore

AT = datetime(2026, 1, 1, tzinfo=UTC)
EMAIL = "wrapped.reader@privacy.example"


def _lead(cid: str) -> LeadCreated:
    return LeadCreated(event_id=f"lead-{cid}", customer_id=cid, occurred_at=AT,
                       properties=LeadCreatedProperties(email=EMAIL, first_name="Wren"))


def _purchase(cid: str, i: int) -> Purchase:
    return Purchase(event_id=f"buy-{cid}-{i}", customer_id=cid, occurred_at=AT,
                    properties=PurchaseProperties(order_id=f"o-{i}", amount=3.0))


def _never() -> FieldCodec:
    raise AssertionError("the key store was opened for a batch without personal data")


def test_the_backend_holds_tokens_and_the_wrapper_reads_plaintext(tmp_path: Path) -> None:
    inner = SqliteEventLog(f"sqlite:///{tmp_path / 'events.db'}")
    log = EncryptingLog(inner, codec=lambda: FieldCodec(KeyStore(tmp_path / "keys.db")))
    log.append([_purchase("c1", 0), _lead("c1")])
    stored = inner.read().events[1]
    assert EMAIL not in stored.properties_json and stored.properties["email"].startswith("enc:v1:")
    through = log.read().events
    assert through[1].properties["email"] == EMAIL and through[0] == inner.read().events[0]
    replayed = log.replay(properties_of=["lead_created"]).events[1]
    assert replayed.properties_json is not None and EMAIL in replayed.properties_json
    assert log.replay().events[1].properties_json is None  # no properties asked for: nothing to decrypt
    log.close()


def test_batches_without_personal_data_never_open_the_key_store(tmp_path: Path) -> None:
    log = EncryptingLog(SqliteEventLog(f"sqlite:///{tmp_path / 'events.db'}"), codec=_never)
    result = log.append([_purchase("c1", i) for i in range(5)])
    assert result.appended == 5 and len(log.read().events) == 5
    assert len(log.replay(properties_of=["purchase", "lead_created"]).events) == 5
    with pytest.raises(AssertionError, match="key store was opened"):
        log.append([_lead("c2")])
    log.close()


def test_open_log_wraps_the_embedded_backend(tmp_path: Path) -> None:
    log = open_log(f"sqlite:///{tmp_path / 'events.db'}")
    assert isinstance(log, EncryptingLog) and isinstance(log.inner, SqliteEventLog)
    log.append([{"event_id": "l1", "event_type": "lead_created", "customer_id": "c1", "occurred_at": AT.isoformat(),
                 "properties": {"email": EMAIL}}])  # a mapping is validated before it is encrypted
    assert log.read().events[0].properties["email"] == EMAIL
    assert EMAIL not in log.inner.read().events[0].properties_json
    log.close()
