"""The event log, behind one interface, with the backend chosen by URL."""

from __future__ import annotations

from data.log.base import (
    AppendResult,
    DeadLetter,
    EventLog,
    LogError,
    LogStats,
    LogUnavailable,
    ReadBatch,
    RejectedInput,
    StoredEvent,
    UnsupportedBackend,
)
from data.log.sqlite import SqliteEventLog
from data.privacy.encrypting_log import EncryptingLog
from data.settings import get_settings

__all__ = [
    "AppendResult",
    "DeadLetter",
    "EventLog",
    "LogError",
    "LogStats",
    "LogUnavailable",
    "ReadBatch",
    "RejectedInput",
    "StoredEvent",
    "UnsupportedBackend",
    "open_log",
]


def open_log(url: str | None = None) -> EventLog:
    """Open the event log at ``url`` (default: ``AME_EVENT_LOG``, else ``sqlite:///.ame/events.db``), its personal
    data encrypted on append and decrypted on read (:class:`~data.privacy.encrypting_log.EncryptingLog`).

    ``sqlite:///relative/path`` and ``sqlite:////absolute/path`` open the embedded backend,
    ``pubsub://project/topic`` the Pub/Sub one.
    """
    settings = get_settings()
    url = url or settings.event_log_url()
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "sqlite":
        return EncryptingLog(SqliteEventLog(url, busy_timeout_ms=settings.sqlite_busy_timeout_ms))
    if scheme == "pubsub":
        from data.log.pubsub import PubSubEventLog  # lazy: the Google Pub/Sub client takes ~0.4 s to import

        return EncryptingLog(PubSubEventLog(url))
    raise UnsupportedBackend(f"unknown event log URL {url!r}: expected sqlite:///path or pubsub://project/topic")
