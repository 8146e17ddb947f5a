"""The seam every destination implements: open a run, send batches of upserts, deletes or erasures, close the run.

``delete`` takes a row out of the destination's audience (it left the model, or its consent was withdrawn);
``erase`` deletes the person at the destination, through its own deletion API, because they were erased here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Operation = Literal["upsert", "delete", "erase"]


@dataclass(frozen=True, slots=True)
class Record:
    """One row for a destination: its identity key and its mapped fields (destination field -> value)."""

    key: str
    fields: dict[str, Any]


@dataclass(slots=True)
class BatchOutcome:
    """What a destination did with a batch: rows it refused, by key, with the reason. Others succeeded."""

    failed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What a destination may need to know about the run it serves."""

    sync: str
    run_id: str


@runtime_checkable
class Destination(Protocol):
    """A place rows go to.

    ``commit_per_batch`` says whether a batch is final when :meth:`send` returns (HTTP upserts) or only once
    :meth:`close` succeeds (a file written at the end, a Google Ads job that runs at the end).
    """

    kind: str
    commit_per_batch: bool

    def open(self, run: RunInfo) -> None:
        """Start a run (create a job, open a file)."""
        ...

    def send(self, operation: Operation, records: Sequence[Record]) -> BatchOutcome:
        """Send one batch; raise :class:`DestinationError` when the whole batch failed."""
        ...

    def close(self, ok: bool) -> None:
        """Finish the run (run the job, move the file into place); ``ok`` is False after a fatal error."""
        ...
