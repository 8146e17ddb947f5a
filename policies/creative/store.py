"""The creative store (``AME_CREATIVE_STORE``: a SQLite file beside the state store, or PostgreSQL, which every
node of a cluster shares): variants, guardrail verdicts, approvals, the bandit's counts per variant, and promotions.

Counts are written as absolute numbers (``set_counts``), so the CreativeAgent can replay a batch after a crash
and write the same values again; ``add_counts`` is for direct use (simulations, tests).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import orjson

from data.log.sqlite import connect, sqlite_path, write_transaction
from data.postgres_db import is_postgres_url
from data.projections.postgres_store import PostgresStateStore
from data.settings import get_settings
from policies.creative.models import CalendarEntry, ImageAsset, Status, Variant, VariantNotFound, Verdict

# SQLite's tables; on PostgreSQL the migrations made them (data/postgres_migrations.py).
_SCHEMA = """
create table if not exists creative_variants (
    variant_id     text primary key,
    kind           text not null,
    segment        text not null,
    product        text not null,
    tone           text not null,
    text           text not null,
    generator      text not null,
    critical       integer not null,
    status         text not null,
    passed         integer not null,
    reasons        text not null,
    score          real not null,
    in_test        integer not null,
    created_at_us  integer not null,
    decided_by     text,
    decided_at_us  integer,
    note           text
);
create index if not exists creative_variants_arms on creative_variants (segment, kind, status, in_test);
create table if not exists creative_counts (
    variant_id   text primary key,
    impressions  integer not null,
    clicks       integer not null,
    conversions  integer not null
);
create table if not exists creative_promotions (
    segment        text not null,
    kind           text not null,
    variant_id     text not null,
    p_best         real not null,
    impressions    integer not null,
    promoted_at_us integer not null,
    primary key (segment, kind)
);
create table if not exists creative_images (
    variant_id     text primary key,
    prompt         text not null,
    media_type     text not null,
    content        blob not null,
    sha256         text not null,
    width          integer not null,
    height         integer not null,
    disclosed      integer not null
);
create table if not exists creative_calendar (
    week           text not null,
    segment        text not null,
    day            text not null,
    channel        text not null,
    post_time      text not null,
    variant_id     text not null,
    primary key (week, segment, day, channel)
)
"""

_COLUMNS = "variant_id, kind, segment, product, tone, text, generator, critical, status, passed, reasons, score, in_test, decided_by, note"


@dataclass(frozen=True, slots=True)
class StoredVariant:
    """A variant as stored: the copy, its verdict, its status and whether it is in the segment's test."""

    variant: Variant
    status: Status
    verdict: Verdict
    in_test: bool
    decided_by: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Counts:
    impressions: int = 0
    clicks: int = 0
    conversions: int = 0


@dataclass(frozen=True, slots=True)
class Promotion:
    segment: str
    kind: str
    variant_id: str
    p_best: float
    impressions: int


def _now_us() -> int:
    return time.time_ns() // 1000


class CreativeStore:
    """Variants, approvals, counts and promotions in one SQLite file (``sqlite:///path``) or in PostgreSQL
    (``postgresql://…``, its pool shared by the store's threads)."""

    def __init__(self, url: str, busy_timeout_ms: int = 60_000) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._pg = PostgresStateStore(url) if is_postgres_url(url) else None
        if self._pg is None:
            self._conn = connect(sqlite_path(url), busy_timeout_ms)
            with self.transaction() as conn:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(statement)

    def transaction(self) -> AbstractContextManager[Any]:
        if self._pg is not None:
            return self._pg.transaction()
        return write_transaction(self._conn, self._lock, f"the creative store {self.url}")

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        if self._pg is not None:
            with self._pg.reading() as conn:
                yield conn
            return
        with self._lock:
            yield self._conn

    def close(self) -> None:
        if self._pg is not None:
            self._pg.close()
        else:
            self._conn.close()

    # -- variants ---------------------------------------------------------------------------------------

    def add(self, items: Sequence[tuple[Variant, Verdict, bool]]) -> list[StoredVariant]:
        """Store variants with their verdicts and test flags. Status: ``failed`` when the guardrails failed it,
        ``pending`` when critical, else ``approved`` (by ``auto``). A variant already stored keeps its status."""
        out = []
        now = _now_us()
        with self.transaction() as conn:
            for variant, verdict, in_test in items:
                status = Status.FAILED if not verdict.passed else Status.PENDING if variant.critical else Status.APPROVED
                conn.execute(
                    "insert into creative_variants values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) on conflict (variant_id) do "
                    "update set in_test = case when excluded.in_test > creative_variants.in_test"
                    " then excluded.in_test else creative_variants.in_test end",
                    (
                        variant.variant_id, variant.kind, variant.segment, variant.product, variant.tone, variant.text,
                        variant.generator, int(variant.critical), status.value, int(verdict.passed),
                        orjson.dumps(list(verdict.reasons)).decode(), verdict.score, int(in_test), now,
                        None if status is not Status.APPROVED else "auto", None if status is not Status.APPROVED else now, None,
                    ),
                )
            out = [self._get(conn, v.variant_id) for v, _, _ in items]
        return out

    @staticmethod
    def _row(row: tuple) -> StoredVariant:
        vid, kind, segment, product, tone, text, generator, critical, status, passed, reasons, score, in_test, by, note = row
        variant = Variant(
            variant_id=vid, kind=kind, segment=segment, product=product, tone=tone, text=text,
            generator=generator, critical=bool(critical),
        )
        verdict = Verdict(passed=bool(passed), reasons=tuple(orjson.loads(reasons)), score=score)
        return StoredVariant(variant, Status(status), verdict, bool(in_test), by, note)

    def _get(self, conn: Any, variant_id: str) -> StoredVariant:
        row = conn.execute(f"select {_COLUMNS} from creative_variants where variant_id = ?", (variant_id,)).fetchone()
        if row is None:
            raise VariantNotFound(f"no creative variant {variant_id!r} (list them with `ame creatives list`)")
        return self._row(row)

    def get(self, variant_id: str) -> StoredVariant:
        with self._reading() as conn:
            return self._get(conn, variant_id)

    def list(self, status: Status | None = None, segment: str | None = None, kind: str | None = None) -> list[StoredVariant]:
        where, args = [], []
        for column, value in (("status", status.value if status else None), ("segment", segment), ("kind", kind)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = f"select {_COLUMNS} from creative_variants" + (" where " + " and ".join(where) if where else "")
        with self._reading() as conn:
            rows = conn.execute(sql + " order by segment, kind, score desc, variant_id", args).fetchall()
        return [self._row(r) for r in rows]

    def decide(self, variant_id: str, approve: bool, by: str, note: str | None = None) -> StoredVariant:
        """A human's approval or rejection. A variant the guardrails failed cannot be approved."""
        with self.transaction() as conn:
            current = self._get(conn, variant_id)
            if approve and current.status is Status.FAILED:
                raise ValueError(
                    f"variant {variant_id} failed the guardrails ({'; '.join(current.verdict.reasons)}): it cannot be "
                    "approved; generate new variants instead"
                )
            status = Status.APPROVED if approve else Status.REJECTED
            conn.execute(
                "update creative_variants set status = ?, decided_by = ?, decided_at_us = ?, note = ? where variant_id = ?",
                (status.value, by, _now_us(), note, variant_id),
            )
            return self._get(conn, variant_id)

    def arms(self, segment: str, kind: str) -> list[tuple[Variant, Counts]]:
        """The servable arms of one segment's test: approved, passed, in the test; with their counts."""
        with self._reading() as conn:
            rows = conn.execute(
                f"select {', '.join('v.' + c.strip() for c in _COLUMNS.split(','))}, "
                "coalesce(c.impressions, 0), coalesce(c.clicks, 0), coalesce(c.conversions, 0) "
                "from creative_variants v left join creative_counts c using (variant_id) "
                "where v.segment = ? and v.kind = ? and v.status = ? and v.passed = 1 and v.in_test = 1 order by v.variant_id",
                (segment, kind, Status.APPROVED.value),
            ).fetchall()
        return [(self._row(r[:15]).variant, Counts(*r[15:])) for r in rows]

    # -- images and calendars ---------------------------------------------------------------------------

    def add_images(self, assets: Iterable[ImageAsset]) -> None:
        """Store pictures beside their variants (a picture already stored for a variant stays as it is)."""
        with self.transaction() as conn:
            conn.executemany(
                "insert into creative_images values (?,?,?,?,?,?,?,?) on conflict (variant_id) do nothing",
                [(a.variant_id, a.prompt, a.media_type, a.content, a.sha256, a.width, a.height, int(a.disclosed))
                 for a in assets],
            )

    def image(self, variant_id: str) -> ImageAsset:
        """The picture of an ``image`` variant; :class:`VariantNotFound` when there is none."""
        with self._reading() as conn:
            row = conn.execute("select variant_id, prompt, media_type, content, sha256, width, height, disclosed"
                               " from creative_images where variant_id = ?", (variant_id,)).fetchone()
        if row is None:
            raise VariantNotFound(f"no picture stored for creative {variant_id!r} (is it an image variant?)")
        return ImageAsset(row[0], row[1], row[2], bytes(row[3]), row[4], row[5], row[6], bool(row[7]))

    def set_calendar(self, week: date, segment: str, entries: Sequence[CalendarEntry]) -> None:
        """Replace one segment's calendar of the week starting ``week``."""
        with self.transaction() as conn:
            conn.execute("delete from creative_calendar where week = ? and segment = ?", (week.isoformat(), segment))
            conn.executemany(
                "insert into creative_calendar values (?,?,?,?,?,?)",
                [(week.isoformat(), segment, e.day.isoformat(), e.channel, e.post_time, e.variant_id) for e in entries],
            )

    def calendar(self, week: date, segment: str) -> list[CalendarEntry]:
        """One segment's calendar of the week starting ``week``, by day, time and channel (empty when unplanned)."""
        with self._reading() as conn:
            rows = conn.execute(
                "select day, channel, post_time, variant_id from creative_calendar where week = ? and segment = ?"
                " order by day, post_time, channel", (week.isoformat(), segment)).fetchall()
        return [CalendarEntry(week, date.fromisoformat(d), t, c, segment, v) for d, c, t, v in rows]

    def scheduled_variants(self, segment: str, exclude_week: date | None = None) -> set[str]:
        """The variants on any of the segment's calendars (but the week ``exclude_week``)."""
        with self._reading() as conn:
            rows = conn.execute("select variant_id from creative_calendar where segment = ? and week <> ?",
                                (segment, exclude_week.isoformat() if exclude_week else "")).fetchall()
        return {r[0] for r in rows}

    # -- counts and promotions --------------------------------------------------------------------------

    def counts(self, variant_ids: Iterable[str]) -> dict[str, Counts]:
        ids = list(variant_ids)
        if not ids:
            return {}
        with self._reading() as conn:
            rows = conn.execute(
                "select variant_id, impressions, clicks, conversions from creative_counts"
                f" where variant_id in ({','.join('?' * len(ids))})",
                ids,
            ).fetchall()
        found = {r[0]: Counts(*r[1:]) for r in rows}
        return {i: found.get(i, Counts()) for i in ids}

    def set_counts(self, counts: dict[str, Counts]) -> None:
        """Write absolute counts (idempotent: a replay writes the same numbers)."""
        with self.transaction() as conn:
            conn.executemany(
                "insert into creative_counts values (?,?,?,?) on conflict (variant_id) do update set"
                " impressions = excluded.impressions, clicks = excluded.clicks, conversions = excluded.conversions",
                [(k, c.impressions, c.clicks, c.conversions) for k, c in counts.items()],
            )

    def add_counts(self, variant_id: str, impressions: int = 0, clicks: int = 0, conversions: int = 0) -> None:
        with self.transaction() as conn:
            conn.execute(
                "insert into creative_counts values (?,?,?,?) on conflict (variant_id) do update set "
                "impressions = creative_counts.impressions + excluded.impressions,"
                " clicks = creative_counts.clicks + excluded.clicks,"
                " conversions = creative_counts.conversions + excluded.conversions",
                (variant_id, impressions, clicks, conversions),
            )

    def promotion(self, segment: str, kind: str) -> Promotion | None:
        with self._reading() as conn:
            row = conn.execute(
                "select segment, kind, variant_id, p_best, impressions from creative_promotions where segment = ? and kind = ?",
                (segment, kind),
            ).fetchone()
        return Promotion(*row) if row else None

    def promote(self, promotion: Promotion) -> None:
        with self.transaction() as conn:
            conn.execute(
                "insert into creative_promotions values (?,?,?,?,?,?) on conflict (segment, kind) do update set"
                " variant_id = excluded.variant_id, p_best = excluded.p_best, impressions = excluded.impressions,"
                " promoted_at_us = excluded.promoted_at_us",
                (promotion.segment, promotion.kind, promotion.variant_id, promotion.p_best, promotion.impressions, _now_us()),
            )

    def tests(self) -> list[tuple[str, str]]:
        """Every (segment, kind) that has variants in a test."""
        with self._reading() as conn:
            rows = conn.execute("select distinct segment, kind from creative_variants where in_test = 1 order by 1, 2").fetchall()
        return [(r[0], r[1]) for r in rows]


@lru_cache(maxsize=8)
def _open_cached(url: str) -> CreativeStore:
    return CreativeStore(url)


def open_store(url: str | None = None) -> CreativeStore:
    """The process's store for ``url`` (default: ``AME_CREATIVE_STORE``, else ``<AME_HOME>/creatives.db``)."""
    if url is None:
        url = get_settings().creative_store_url()
    return _open_cached(url)
