"""Running a projection over the log: incremental catch-up, full replay, snapshots.

A projection is a pure fold ``(state, events) -> changed records``; the :class:`Projector` does the I/O
around it and writes the changed records and the new position in one transaction (the tracking record).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Generic, Protocol, TypeVar

from data.hotpath import cyclic_gc_paused
from data.log.base import EventLog, ReplayEvent, positional
from data.projections.store import StateStore

log = logging.getLogger(__name__)
S = TypeVar("S")


class Folder(Protocol[S]):
    def apply(self, events: Sequence[ReplayEvent]) -> Folder[S]: ...

    def result(self) -> dict[str, S]:
        """The new records of every key touched since the folder was made."""
        ...

    def save(self, conn: sqlite3.Connection) -> None:
        """Write the new records of every key touched, as ``projection.save(conn, self.result())`` would."""
        ...


class KeyedProjection(Protocol[S]):
    """A projection whose state is one record per key (a customer, a campaign), folded purely from events."""

    name: str
    event_types: frozenset[str] | None
    properties_of: frozenset[str]
    """The event types whose properties the fold reads (the log sends no others)."""

    def create_tables(self, conn: sqlite3.Connection) -> None: ...

    def clear(self, conn: sqlite3.Connection) -> None: ...

    def load(self, conn: sqlite3.Connection, keys: Iterable[str]) -> dict[str, S]: ...

    def load_all(self, conn: sqlite3.Connection) -> dict[str, S]: ...

    def save(self, conn: sqlite3.Connection, records: Mapping[str, S]) -> None: ...

    def keys_of(self, events: Sequence[ReplayEvent]) -> set[str]: ...

    def fold(self, state: Mapping[str, S], events: Sequence[ReplayEvent]) -> dict[str, S]:
        """The new records of the keys these events change; ``state`` is left untouched."""
        ...

    def folder(self, state: Mapping[str, S]) -> Folder[S]:
        """A stateful fold over many batches, for full replays: ``fold(s, e) == folder(s).apply(e).result()``."""
        ...

    def encode(self, records: Mapping[str, S]) -> bytes:
        """Canonical bytes of the whole state (sorted keys), for snapshots and hashes."""
        ...

    def decode(self, data: bytes) -> dict[str, S]: ...


def state_hash(projection: KeyedProjection[S], records: Mapping[str, S]) -> str:
    return hashlib.sha256(projection.encode(records)).hexdigest()


Progress = Callable[[int], None]




class Projector(Generic[S]):
    """Keeps one projection up to date with the log, exactly once per event."""

    def __init__(
        self,
        log: EventLog,
        store: StateStore,
        projection: KeyedProjection[S],
        batch_size: int = 20_000,
        snapshot_every: int = 0,
        before_commit: Callable[[int], None] | None = None,
    ) -> None:
        """:param before_commit: called inside each batch's transaction, after the state is written and before
            the commit, with the batch's new position (a seam for fault-injection tests)."""
        self.log = positional(log, f"the {projection.name} projector")
        self.store = store
        self.projection = projection
        self.batch_size = batch_size
        self.snapshot_every = snapshot_every
        self.before_commit = before_commit
        with store.transaction() as conn:
            projection.create_tables(conn)

    @property
    def name(self) -> str:
        return self.projection.name

    def position(self) -> int:
        return self.store.position(self.name)

    def lag(self) -> int:
        return max(0, self.log.head() - self.position())

    def catch_up(self, progress: Progress | None = None, max_events: int | None = None) -> int:
        """Apply every event after the committed position, one transaction per batch. Returns events read."""
        with cyclic_gc_paused():
            return self._catch_up(progress, max_events)

    def _catch_up(self, progress: Progress | None, max_events: int | None) -> int:
        types = sorted(self.projection.event_types) if self.projection.event_types else None
        position = self.position()
        done = 0
        while max_events is None or done < max_events:
            batch = self.log.replay(position, self.batch_size, types, self.projection.properties_of)
            if batch.next_after == position:
                break
            with self.store.transaction() as conn:
                current = self.projection.load(conn, self.projection.keys_of(batch.events))
                self.projection.save(conn, self.projection.fold(current, batch.events))
                self.store.commit_position(conn, self.name, batch.next_after)
                if self.before_commit is not None:
                    self.before_commit(batch.next_after)
            self._maybe_snapshot(position, batch.next_after, None)
            done += batch.next_after - position
            if progress is not None:
                progress(batch.next_after - position)
            position = batch.next_after
        return done

    def rebuild(self, from_snapshot: bool = False, progress: Progress | None = None, commit_every: int = 5_000_000) -> int:
        """Replay the log from the start (or from the latest snapshot) into a fresh state.

        The fold runs in memory and commits every ``commit_every`` events with its position, so an interrupted
        rebuild resumes with :meth:`catch_up`. Returns the events read.
        """
        with cyclic_gc_paused():
            return self._rebuild(from_snapshot, progress, commit_every)

    def _rebuild(self, from_snapshot: bool, progress: Progress | None, commit_every: int) -> int:
        types = sorted(self.projection.event_types) if self.projection.event_types else None
        state: dict[str, S] = {}
        position = 0
        if from_snapshot:
            snap = self.store.latest_snapshot(self.name)
            if snap is not None:
                state, position = self.projection.decode(snap.state), snap.position
        with self.store.transaction() as conn:
            self.projection.clear(conn)
            self.projection.save(conn, state)
            self.store.commit_position(conn, self.name, position)
        start, since_commit = position, 0
        folder = self.projection.folder(state)
        while True:
            batch = self.log.replay(position, self.batch_size, types, self.projection.properties_of)
            if batch.next_after == position:
                break
            folder.apply(batch.events)
            since_commit += batch.next_after - position
            if progress is not None:
                progress(batch.next_after - position)
            position = batch.next_after
            if since_commit >= commit_every:
                self._commit(folder, position)
                since_commit = 0
        self._commit(folder, position)
        if self.snapshot_every:
            self._maybe_snapshot(start, position, {**state, **folder.result()})
        return position - start

    def _commit(self, folder: Folder[S], position: int) -> None:
        with self.store.transaction() as conn:
            folder.save(conn)
            self.store.commit_position(conn, self.name, position)

    def _maybe_snapshot(self, before: int, after: int, state: Mapping[str, S] | None) -> None:
        every = self.snapshot_every
        if every and after // every > before // every:
            self.snapshot(state)

    def snapshot(self, state: Mapping[str, S] | None = None) -> str:
        """Write the whole state at the committed position as a snapshot; returns its hash."""
        with self.store.transaction() as conn:
            records = state if state is not None else self.projection.load_all(conn)
            position = self.store.position(self.name)
            data = self.projection.encode(records)
            digest = hashlib.sha256(data).hexdigest()
            self.store.save_snapshot(conn, self.name, position, data, digest)
        log.info("snapshot of %s at position %d: %s", self.name, position, digest[:12])
        return digest

    def state(self) -> dict[str, S]:
        return self.projection.load_all(self.store.read())

    def state_hash(self) -> str:
        return state_hash(self.projection, self.state())
