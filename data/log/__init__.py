"""The event log, behind one interface, with the backend chosen by URL."""

from __future__ import annotations

from data.log.base import (
    AppendResult,
    DeadLetter,
    DeadLetters,
    EventLog,
    EventSink,
    LogError,
    LogStats,
    LogUnavailable,
    PositionalLog,
    PositionalReader,
    PositionsUnsupported,
    ReadBatch,
    RejectedInput,
    StoredEvent,
    UnsupportedBackend,
    capabilities,
    positional,
)
from data.log.postgres import PostgresEventLog
from data.log.sqlite import SqliteEventLog
from data.privacy.encrypting_log import EncryptingLog
from data.settings import get_settings

__all__ = [
    "AppendResult",
    "DeadLetter",
    "DeadLetters",
    "EventLog",
    "EventSink",
    "LogError",
    "LogStats",
    "LogUnavailable",
    "PositionalLog",
    "PositionalReader",
    "PositionsUnsupported",
    "ReadBatch",
    "RejectedInput",
    "StoredEvent",
    "UnsupportedBackend",
    "capabilities",
    "open_log",
    "positional",
]


def open_log(url: str | None = None) -> EventLog:
    """Open the event log at ``url`` (default: ``AME_EVENT_LOG``, else ``sqlite:///.ame/events.db``), its personal
    data encrypted on append and decrypted on read (:class:`~data.privacy.encrypting_log.EncryptingLog`).

    ``sqlite:///relative/path`` and ``sqlite:////absolute/path`` open the embedded backend,
    ``postgresql://user@host/database`` the PostgreSQL one, ``pubsub://project/topic`` the Pub/Sub one. The
    result claims its backend's capabilities: a :class:`PositionalLog` on SQLite and PostgreSQL, an
    :class:`EventLog` (a sink with dead letters, no positions) on Pub/Sub; check with :func:`positional`.
    """
    settings = get_settings()
    url = url or settings.event_log_url()
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "sqlite":
        return EncryptingLog(SqliteEventLog(url, busy_timeout_ms=settings.sqlite_busy_timeout_ms))
    if scheme in ("postgresql", "postgres"):
        return EncryptingLog(PostgresEventLog(url))
    if scheme == "pubsub":
        from data.log.pubsub import PubSubEventLog  # lazy: the Google Pub/Sub client takes ~0.4 s to import

        return EncryptingLog(PubSubEventLog(url))
    raise UnsupportedBackend(f"unknown event log URL {url!r}: expected sqlite:///path, "
                             "postgresql://user@host/database or pubsub://project/topic")
