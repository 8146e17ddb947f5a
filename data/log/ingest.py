"""Ingestion of raw input (JSON lines) into the log: validate, append in batches, dead-letter the rest."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson

from data.events import EventBase, EventError, derive_event_id, validate_event
from data.log.base import EventLog, RejectedInput


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int | None
    reason: str


@dataclass(slots=True)
class IngestReport:
    """What an ingestion did, line by line where it went wrong."""

    source: str
    lines: int = 0
    blank: int = 0
    appended: int = 0
    duplicates: int = 0
    dead_lettered_new: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.appended + self.duplicates

    @property
    def ok(self) -> bool:
        return not self.rejected


def parse_line(raw: bytes, max_bytes: int) -> EventBase:
    """One JSON line to a validated event. A line without ``event_id`` gets one derived from its bytes, so
    that appending the same file twice is still idempotent."""
    if len(raw) > max_bytes:
        raise EventError(f"the event is {len(raw):,} bytes; the limit is {max_bytes:,} (AME_MAX_EVENT_BYTES)")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise EventError(f"not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise EventError(f"an event must be a JSON object, got {type(data).__name__}")
    if "event_id" not in data:
        data["event_id"] = derive_event_id("content", hashlib.sha256(raw).hexdigest())
    return validate_event(data)


def ingest_lines(
    log: EventLog,
    lines: Iterable[bytes],
    source: str,
    batch_size: int = 1_000,
    max_event_bytes: int = 64 * 1024,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Validate each line, append the valid ones in batches and send the rest, with line numbers and
    reasons, to the dead-letter store. Nothing valid is held back by an invalid neighbour."""
    report = IngestReport(source=source)
    pending: list[EventBase] = []
    rejects: list[RejectedInput] = []

    def flush() -> None:
        if pending:
            result = log.append(pending)
            report.appended += result.appended
            report.duplicates += result.duplicates
            pending.clear()
        if rejects:
            report.dead_lettered_new += log.dead_letter(rejects)
            rejects.clear()

    for number, line in enumerate(lines, start=1):
        report.lines += 1
        raw = line.rstrip(b"\r\n")
        if not raw.strip():
            report.blank += 1
        else:
            try:
                pending.append(parse_line(raw, max_event_bytes))
            except EventError as error:
                reason = f"line {number}: {error}"
                report.rejected.append(Rejection(number, reason))
                rejects.append(RejectedInput(raw=raw, reason=reason, source=source, line=number))
        if len(pending) >= batch_size:
            flush()
        if progress is not None:
            progress(len(line))
    flush()
    return report


@dataclass(frozen=True, slots=True)
class RedriveOutcome:
    letter_id: int
    ok: bool
    detail: str


def redrive(
    log: EventLog, letter_ids: Iterable[int] | None = None, replacement: bytes | None = None,
    max_event_bytes: int = 64 * 1024,
) -> list[RedriveOutcome]:
    """Validate dead letters again (after a fix of the schema, or with corrected ``replacement`` bytes for a
    single letter) and append the ones that now pass; the others stay pending with their new reason."""
    wanted = set(letter_ids) if letter_ids is not None else None
    letters = [d for d in log.dead_letters(status="pending", limit=1_000_000) if wanted is None or d.id in wanted]
    if wanted is not None:
        missing = wanted - {d.id for d in letters}
        if missing:
            raise KeyError(f"no pending dead letter with id {', '.join(map(str, sorted(missing)))}")
    if replacement is not None and len(letters) != 1:
        raise ValueError("a replacement applies to exactly one dead letter: name its id")
    outcomes: list[RedriveOutcome] = []
    for letter in letters:
        raw = replacement if replacement is not None else letter.raw
        try:
            event = parse_line(raw, max_event_bytes)
        except EventError as error:
            reason = f"line {letter.line}: {error}" if letter.line else str(error)
            log.update_dead_letter(letter.id, raw, reason)
            outcomes.append(RedriveOutcome(letter.id, False, reason))
            continue
        result = log.append([event])
        log.mark_redriven(letter.id, result.last_position if result.appended else None)
        detail = "appended" if result.appended else "already in the log (duplicate event_id)"
        outcomes.append(RedriveOutcome(letter.id, True, f"{event.event_id}: {detail}"))
    return outcomes
