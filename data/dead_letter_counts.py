"""How many dead letters a log holds, pending and redriven, without counting its events: what a metrics scrape
reads (``EventLog.stats`` counts every event, seconds on a large log).

A module of its own, outside :mod:`data.log`, so the log wrappers (:mod:`data.privacy.encrypting_log`) can use it
without importing the package that imports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from data.log.base import EventLog


@runtime_checkable
class CountsDeadLetters(Protocol):
    """A log that counts its dead letters from its dead-letter store alone (the SQLite and Pub/Sub logs)."""

    def dead_letter_counts(self) -> tuple[int, int]:
        """(pending, redriven) dead letters."""
        ...


def dead_letter_counts(log: EventLog) -> tuple[int, int]:
    """(pending, redriven) dead letters of ``log``: its own count where it keeps one, else from its statistics."""
    if isinstance(log, CountsDeadLetters):
        return log.dead_letter_counts()
    stats = log.stats()
    return stats.dead_letters_pending, stats.dead_letters_redriven
