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
    """Open the event log at ``url`` (default: ``AME_EVENT_LOG``, else ``sqlite:///.ame/events.db``).

    ``sqlite:///relative/path`` and ``sqlite:////absolute/path`` open the embedded backend.
    """
    from data.settings import get_settings

    settings = get_settings()
    url = url or settings.event_log_url()
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "sqlite":
        from data.log.sqlite import SqliteEventLog

        return SqliteEventLog(url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    if scheme == "pubsub":
        try:
            from data.log.pubsub import PubSubEventLog  # type: ignore[import-not-found]
        except ImportError:
            raise UnsupportedBackend(
                f"the Pub/Sub backend is not part of this build yet; use sqlite:///path (got {url!r})"
            ) from None
        return PubSubEventLog(url)  # pragma: no cover
    raise UnsupportedBackend(f"unknown event log URL {url!r}: expected sqlite:///path or pubsub://project/topic")
