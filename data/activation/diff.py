"""Which rows changed since the last successful sync: row hashes against the state of the sync.

Pure functions: the runner reads the model and the state, and these decide what to send.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

from data.activation.destinations.base import Record


def _plain(value: Any) -> Any:
    """A JSON-ready value: timestamps as ISO strings, decimals as floats."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def map_row(row: Mapping[str, Any], mapping: Mapping[str, str], identity_key: str) -> Record:
    """The destination record of a model row (mapping: destination field -> model column)."""
    return Record(key=str(row[identity_key]), fields={dest: _plain(row[col]) for dest, col in mapping.items()})


def row_hash(record: Record) -> str:
    """A stable hash of a record's fields (key order does not matter)."""
    return hashlib.sha256(orjson.dumps(record.fields, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What a run sends: new or changed rows, rows that left the model (mirror), and how many were unchanged."""

    upserts: list[tuple[Record, str]]
    deletes: list[Record]
    unchanged: int


def plan_sync(records: Iterable[Record], state: Mapping[str, tuple[str, dict[str, Any]]], mirror: bool) -> SyncPlan:
    """Diff the model's records against the state (key -> (hash, last synced fields)).

    :param records: the current rows of the model, mapped.
    :param state: what the destination holds, as of the last successful sends.
    :param mirror: also delete the keys that are in the state but no longer in the model.
    """
    upserts: list[tuple[Record, str]] = []
    seen: set[str] = set()
    unchanged = 0
    for record in records:
        if record.key in seen:
            continue  # a model keyed on identity_key has none; keep the first if it does
        seen.add(record.key)
        digest = row_hash(record)
        held = state.get(record.key)
        if held is not None and held[0] == digest:
            unchanged += 1
        else:
            upserts.append((record, digest))
    deletes: list[Record] = []
    if mirror:
        deletes = [Record(key, fields) for key, (_, fields) in state.items() if key not in seen]
    return SyncPlan(upserts, deletes, unchanged)


@dataclass(frozen=True, slots=True)
class Admission:
    """The model's rows that may be sent, and what the destination holds that must go."""

    records: list[Record]
    withheld: int
    """Rows of the model not sent: an erased customer, or one without the consent the destination needs."""
    held: dict[str, tuple[str, dict[str, Any]]]
    """What the destination holds, less the rows below (the state to diff the records against)."""
    removals: list[Record]
    """Held rows whose customer no longer consents: taken out of the audience (``delete``)."""
    erasures: list[Record]
    """Held rows whose customer was erased: deleted at the destination (``erase``)."""


def admit(records: Iterable[Record], held: Mapping[str, tuple[str, dict[str, Any]]], erased: set[str],
          no_consent: set[str]) -> Admission:
    """Split the model's records and the destination's rows by who may be sent.

    :param records: the current rows of the model, mapped.
    :param held: what the destination holds (key -> (hash, last synced fields)).
    :param erased: keys of erased customers (never sent; deleted where held).
    :param no_consent: keys of customers without the needed consent (not sent; removed where held).
    """
    records = list(records)
    allowed = [r for r in records if r.key not in erased and r.key not in no_consent]
    keep = {k: v for k, v in held.items() if k not in erased and k not in no_consent}
    return Admission(
        allowed, len(records) - len(allowed), keep,
        removals=[Record(k, fields) for k, (_, fields) in held.items() if k in no_consent and k not in erased],
        erasures=[Record(k, fields) for k, (_, fields) in held.items() if k in erased],
    )


def batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
