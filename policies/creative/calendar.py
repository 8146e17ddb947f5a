"""A weekly social calendar: for each day of a week and each channel, one ``social_post`` variant, written by the
same generator and checked by the same guardrails as any copy, and stored with the week's plan.

A week is planned once: asking again gives the stored plan (``replan=True`` plans it anew). Posts already on
another week's calendar are not used again. Critical posts stay ``pending`` until a human approves them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, fields
from datetime import date, timedelta

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from policies.creative.generators import Generator
from policies.creative.guardrails import Guardrails
from policies.creative.models import CalendarEntry, Status
from policies.creative.pipeline import generate_drafts
from policies.creative.store import CreativeStore, StoredVariant

USABLE = (Status.APPROVED, Status.PENDING)


class CalendarConfig(BaseModel):
    """The week's shape: the channels with their posting time (``HH:MM``), and how many days from Monday."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    channels: dict[str, str] = Field(default_factory=lambda: {"linkedin": "09:00", "instagram": "12:30"}, min_length=1)
    days: int = Field(7, ge=1, le=7)
    candidates_per_slot: int = Field(3, ge=1, le=10, description="Posts generated per slot, to leave the guardrails a choice.")

    @field_validator("channels")
    @classmethod
    def _times(cls, channels: dict[str, str]) -> dict[str, str]:
        for channel, at in channels.items():
            hours, _, minutes = at.partition(":")
            if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60 and len(minutes) == 2):
                raise ValueError(f"channel {channel!r}: posting time {at!r} is not HH:MM")
        return channels


def week_start(day: date) -> date:
    """The week a calendar plans must start on a Monday; raises with the Monday of ``day``'s week otherwise."""
    if day.weekday() != 0:
        monday = day - timedelta(days=day.weekday())
        raise ValueError(f"a calendar week starts on a Monday: {day.isoformat()} is a {day:%A}; use {monday.isoformat()}")
    return day


def plan_week(
    generator: Generator,
    store: CreativeStore,
    week: date,
    segment: str,
    config: CalendarConfig | None = None,
    product: str | None = None,
    guardrails: Guardrails | None = None,
    replan: bool = False,
) -> list[CalendarEntry]:
    """The calendar of the week starting ``week`` (a Monday) for ``segment``: the stored plan, or a new one.

    Slots are filled day by day, channel by channel, with the best-scored passing posts not yet on any calendar;
    slots left over (too few passing posts) stay empty.
    """
    week = week_start(week)
    config = config or CalendarConfig()
    if not replan and (planned := store.calendar(week, segment)):
        return planned
    slots = [(week + timedelta(days=d), channel, at) for d in range(config.days) for channel, at in config.channels.items()]
    drafts = generate_drafts(generator, store, "social_post", segment, len(slots) * config.candidates_per_slot, product,
                             guardrails)
    used = store.scheduled_variants(segment, exclude_week=week)
    fresh = [s for s in drafts if s.status in USABLE and s.verdict.passed and s.variant.variant_id not in used]
    fresh.sort(key=lambda s: (-s.verdict.score, s.variant.variant_id))
    entries = [CalendarEntry(week, day, at, channel, segment, post.variant.variant_id)
               for (day, channel, at), post in zip(slots, fresh, strict=False)]
    store.set_calendar(week, segment, entries)
    return entries


@dataclass(frozen=True, slots=True)
class CalendarRow:
    """One post of the calendar as a reader sees it: with its copy and its approval status."""

    day: str
    weekday: str
    time: str
    channel: str
    segment: str
    variant_id: str
    status: str
    text: str


def calendar_rows(entries: list[CalendarEntry], store: CreativeStore) -> list[CalendarRow]:
    rows = []
    for e in entries:
        post: StoredVariant = store.get(e.variant_id)
        rows.append(CalendarRow(e.day.isoformat(), f"{e.day:%A}", e.post_time, e.channel, e.segment, e.variant_id,
                                post.status.value, post.variant.text))
    return rows


FIELDS = tuple(f.name for f in fields(CalendarRow))


def to_json(rows: list[CalendarRow]) -> bytes:
    return orjson.dumps([{f: getattr(r, f) for f in FIELDS} for r in rows], option=orjson.OPT_INDENT_2)


def to_csv(rows: list[CalendarRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    writer.writerows([getattr(r, f) for f in FIELDS] for r in rows)
    return out.getvalue()
