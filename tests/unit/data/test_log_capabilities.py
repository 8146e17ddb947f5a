"""The event log's capabilities: what each backend class claims, what the encrypting wrapper claims around it, and
the error a caller that needs positions gets from a backend without them (no server needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from data.log import (
    DeadLetters,
    EventLog,
    EventSink,
    LogStats,
    PositionalLog,
    PositionalReader,
    PositionsUnsupported,
    capabilities,
    open_log,
    positional,
)
from data.log.base import AppendResult, DeadLetter, RejectedInput
from data.log.postgres import PostgresEventLog
from data.log.pubsub import PubSubEventLog
from data.log.sqlite import SqliteEventLog
from data.privacy.encrypting_log import EncryptingLog, EncryptingPositionalLog


class SinkOnly:
    """A backend that takes events and keeps dead letters, with no positions (as Pub/Sub)."""

    url = "memory://sink"

    def append(self, events: object) -> AppendResult:
        return AppendResult(0, 0, 0)

    def stats(self) -> LogStats:
        return LogStats(0, 0, 0)

    def close(self) -> None: ...

    def dead_letter(self, rejected: Sequence[RejectedInput]) -> int:
        return 0

    def dead_letters(self, status: str | None = "pending", limit: int = 1000) -> list[DeadLetter]:
        return []

    def mark_redriven(self, letter_id: int, position: int | None) -> None: ...

    def update_dead_letter(self, letter_id: int, raw: bytes, reason: str) -> None: ...

    def dead_letter_counts(self) -> tuple[int, int]:
        return 0, 0


def test_each_backend_class_claims_its_capabilities() -> None:
    full = ["EventSink", "PositionalReader", "DeadLetters"]
    assert capabilities(SqliteEventLog) == capabilities(PostgresEventLog) == full
    assert capabilities(PubSubEventLog) == capabilities(SinkOnly) == ["EventSink", "DeadLetters"]
    assert not hasattr(PubSubEventLog, "read") and not hasattr(PubSubEventLog, "head")  # no method that only raises


def test_the_wrapper_claims_what_its_backend_claims(tmp_path: Path) -> None:
    sink = EncryptingLog(SinkOnly())  # type: ignore[arg-type]
    assert type(sink) is EncryptingLog and isinstance(sink, EventLog) and isinstance(sink, DeadLetters)
    assert not isinstance(sink, PositionalReader)
    log = open_log(f"sqlite:///{tmp_path / 'events.db'}")
    assert type(log) is EncryptingPositionalLog and isinstance(log, PositionalLog) and isinstance(log, EventSink)
    assert positional(log, "a test") is log
    log.close()


def test_a_caller_that_needs_positions_names_the_backend_and_what_it_lacks() -> None:
    sink = EncryptingLog(SinkOnly())  # type: ignore[arg-type]
    with pytest.raises(PositionsUnsupported) as raised:
        positional(sink, "the warehouse loader")
    assert str(raised.value).startswith(
        "the warehouse loader reads the log by position, but the memory log memory://sink is not a positional "
        "reader: it keeps no positions (it offers: EventSink, DeadLetters).")
