"""Field encryption and hashing helpers: round trip, binding to the customer (the key store's erasure and races
are its contract suite in tests/integration/stores, over every backend)."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given, settings
from hypothesis import strategies as st

from data.events import LeadCreated, LeadCreatedProperties
from data.log import open_log
from data.privacy.codec import decrypt_value, encrypt_value, is_token
from data.privacy.hashing import hashed_email, hashed_phone
from data.privacy.training import training_data_record, without_erased


def _lead(cid: str, email: str, i: int = 0) -> LeadCreated:
    return LeadCreated(event_id=f"l-{cid}-{i}", customer_id=cid, occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
                       properties=LeadCreatedProperties(email=email, first_name="Ann", phone="+4412345678"))


def _stored(path: Path, event_id: str) -> str:
    """The properties JSON as the log file holds it (read past the log, which would decrypt it)."""
    with sqlite3.connect(path) as conn:
        return conn.execute("select properties from events where event_id = ?", (event_id,)).fetchone()[0]


def test_tokens_are_bound_to_customer_and_field() -> None:
    key = b"k" * 32
    token = encrypt_value(key, "ann@example.com", b"c1\x1flead_created\x1femail")
    assert is_token(token) and decrypt_value(key, token, b"c1\x1flead_created\x1femail") == "ann@example.com"

    with pytest.raises(InvalidTag):
        decrypt_value(key, token, b"c2\x1flead_created\x1femail")


@settings(max_examples=40, deadline=None)
@given(local=st.from_regex(r"[a-z0-9._%+-]{1,20}", fullmatch=True), name=st.text(min_size=1, max_size=40))
def test_round_trip_through_the_log(tmp_path_factory, local: str, name: str) -> None:
    folder = tmp_path_factory.mktemp("log")
    log = open_log(f"sqlite:///{folder / 'events.db'}")
    event = LeadCreated(event_id="l1", customer_id="c1", occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
                        properties=LeadCreatedProperties(email=f"{local}@example.com", first_name=name))
    log.append([event])
    stored = _stored(folder / "events.db", "l1")
    assert f"{local}@example.com" not in stored and "enc:v1:" in stored
    back = log.read().events[0].to_event()
    assert back.properties.email == f"{local}@example.com" and back.properties.first_name == name
    log.close()


def test_activation_hashing_is_normalized_sha256() -> None:
    assert hashed_email("  Ann@Example.COM ") == hashlib.sha256(b"ann@example.com").hexdigest()
    assert hashed_phone("(555) 123-4567") == hashlib.sha256(b"+15551234567").hexdigest()
    assert hashed_email("not an email") is None and hashed_phone("") is None


def test_training_excludes_erased_customers() -> None:
    frame = pd.DataFrame({"customer_id": ["a", "b", "c"], "x": [1, 2, 3]})
    assert list(without_erased(frame, {"b"})["customer_id"]) == ["a", "c"]
    record = training_data_record(frame["customer_id"], {"b"})
    assert record["customers"] == 2 and record["erased_excluded"] == 1
