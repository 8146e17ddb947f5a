"""The dead-letter store's contract, run over every backend (``sqlite`` and ``postgresql``): rejected input is
kept once per raw bytes, listed by status, re-driven, corrected, counted, and redacted by an erasure."""

from __future__ import annotations

from pathlib import Path

import pytest

from data.log.base import RejectedInput
from data.log.postgres_dead_letters import PostgresDeadLetterStore, open_dead_letter_store
from data.log.sqlite import SqliteEventLog
from data.postgres_db import is_postgres_url
from data.privacy.postgres_scrub import scrub_postgres
from data.privacy.scrub import REDACTED_RAW, PiiValues, scrub_sqlite
from data.sqlite_files import sqlite_path


@pytest.fixture
def letters_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return f"sqlite:///{tmp_path / 'letters.db'}" if backend == "sqlite" else str(request.getfixturevalue("postgres_url"))


def _bad(raw: bytes, line: int = 1) -> RejectedInput:
    return RejectedInput(raw=raw, reason="unknown event type", source="test.jsonl", line=line)


def test_the_url_picks_the_backend(letters_url: str, backend: str) -> None:
    store = open_dead_letter_store(letters_url)
    assert isinstance(store, {"sqlite": SqliteEventLog, "postgresql": PostgresDeadLetterStore}[backend])
    store.close()


def test_letters_are_kept_once_listed_redriven_and_counted(letters_url: str) -> None:
    store = open_dead_letter_store(letters_url)
    assert store.dead_letter([]) == 0 and store.dead_letters() == [] and store.dead_letter_counts() == (0, 0)
    assert store.dead_letter([_bad(b'{"a": 1}'), _bad(b'{"b": 2}', 2)]) == 2
    assert store.dead_letter([_bad(b'{"a": 1}', 7)]) == 0  # the same bytes again: seen twice, not a new letter
    first, second = store.dead_letters()
    assert (first.raw, first.times_seen, first.line, first.status) == (b'{"a": 1}', 2, 7, "pending")
    assert (second.raw, second.times_seen) == (b'{"b": 2}', 1)
    store.mark_redriven(first.id, 41)
    store.update_dead_letter(second.id, b'{"b": 3}', "still invalid")
    assert store.dead_letter_counts() == (1, 1)
    assert [(d.id, d.position) for d in store.dead_letters("redriven")] == [(first.id, 41)]
    (pending,) = store.dead_letters("pending")
    assert (pending.raw, pending.reason) == (b'{"b": 3}', "still invalid")
    assert len(store.dead_letters(None)) == 2 and len(store.dead_letters(None, limit=1)) == 1
    stats = store.stats()
    assert (stats.dead_letters_pending, stats.dead_letters_redriven) == (1, 1)
    store.close()


def test_erasure_redacts_the_letters_that_name_the_customer(letters_url: str) -> None:
    store = open_dead_letter_store(letters_url)
    store.dead_letter([_bad(b'{"customer_id": "c1", "email": "ann@example.com"}'), _bad(b'{"customer_id": "c2"}', 2)])
    store.close()
    values = PiiValues.of([("email", "ann@example.com")])
    if is_postgres_url(letters_url):
        redacted = scrub_postgres(letters_url, "c1", values).rows_redacted
    else:
        redacted = scrub_sqlite(sqlite_path(letters_url), "c1", values).rows_redacted
    store = open_dead_letter_store(letters_url)
    assert redacted >= 1 and [d.raw for d in store.dead_letters()] == [REDACTED_RAW, b'{"customer_id": "c2"}']
    store.close()
