"""The journey filter as a day-fold over one customer's events: the belief the journey agent keeps in its state,
so a belief planner is served on the very belief the simulator computes.

The record (:func:`environment.observation.fold_event`'s facts) also notes what each day not yet closed showed
(``seen``: day -> [action, unsubscribed, clicked, opened, visited, purchased]). At a decision on day T the belief
is advanced through every day before T in order, from the prior at the customer's first day; a day without
events is a day on which nothing was seen. The belief is kept as ``belief`` (60 floats) valued at the start of
``belief_day``. An event for a day already closed changes nothing (the belief does not go back).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from environment.belief import BELIEF_SHAPE, N_BELIEF, initial_belief, update_belief
from environment.belief_planner import DayOutcome, VisibleState
from environment.config import MarketConfig
from environment.dynamics import Tables
from environment.observation import ATTRIBUTES, attribute_defaults, attribute_value, consent_bits
from environment.population import AD, EMAIL, OFFER, PUSH, SMS, Profiles, Responsiveness, responsiveness

Record = MutableMapping[str, Any]

CONTACT_ACTION = {"email_sent": EMAIL, "sms_sent": SMS, "push_sent": PUSH, "ad_impression": AD, "offer_sent": OFFER}
"""A contact event -> the action it carried out."""
SEEN_FLAG = {
    "unsubscribe": 1, "email_click": 2, "sms_click": 2, "ad_click": 2, "email_open": 3, "push_open": 3,
    "page_view": 4, "content_download": 4, "purchase": 5,
}
"""An engagement event -> its place in a day's ``seen`` row."""
BELIEF_EVENTS = frozenset(CONTACT_ACTION) | frozenset(SEEN_FLAG)
DAY_US = 86_400_000_000


def note_seen(record: Record, event_type: str, t_us: int, keep_days: int = 60) -> None:
    """Note in ``record`` (changed in place) what an event shows of its day; days more than ``keep_days`` back are
    dropped (a belief never starts further back, so they would never be read)."""
    day = t_us // DAY_US
    closed = record.get("belief_day")
    if (closed is not None and day < closed) or event_type not in BELIEF_EVENTS:
        return
    seen = dict(record.get("seen") or {})  # a copy: the record before the event is not changed
    if str(day) not in seen and len(seen) >= keep_days:
        seen = {d: row for d, row in seen.items() if int(d) >= day - keep_days}
    row = list(seen.get(str(day), (0, 0, 0, 0, 0, 0)))
    action = CONTACT_ACTION.get(event_type)
    if action is not None:
        row[0] = action
    else:
        row[SEEN_FLAG[event_type]] = 1
    seen[str(day)] = row
    record["seen"] = seen


@dataclass(frozen=True, slots=True)
class BeliefModel:
    """What the filter needs besides the records: the market's true model and the attributes' defaults."""

    config: MarketConfig
    tables: Tables
    defaults: Mapping[str, Any]

    @staticmethod
    def of(config: MarketConfig) -> BeliefModel:
        return BeliefModel(config, Tables.of(config.journey), attribute_defaults(config.profile))

    def responsiveness(self, records: Sequence[Mapping[str, Any]]) -> Responsiveness:
        """The customers' response multipliers, a function of their attributes (defaults where never stated)."""
        return responsiveness(self.config.profile, self.config.journey, self.profiles(records))

    def profiles(self, records: Sequence[Mapping[str, Any]]) -> Profiles:
        rows = np.array([[attribute_value(r, name, self.defaults) for name in ATTRIBUTES] for r in records],
                        dtype=np.float64).reshape(len(records), len(ATTRIBUTES))
        ints = rows.astype(np.int64)
        return Profiles(ints[:, 0], rows[:, 1], ints[:, 2], ints[:, 3], ints[:, 4], ints[:, 5], ints[:, 6])


def advance_beliefs(records: Sequence[Record], today: Sequence[int], model: BeliefModel,
                    resp: Responsiveness | None = None) -> np.ndarray:
    """(N, stage, intent, fatigue): each customer's belief at the start of ``today``, after closing every earlier
    day (the records are updated in place, so a day is closed once). A customer whose belief would start more than
    the journey horizon before ``today`` starts from the prior at the horizon's start: the catch-up is bounded."""
    n = len(records)
    resp = model.responsiveness(records) if resp is None else resp
    target = np.asarray(today, dtype=np.int64)
    start, belief = _starting_beliefs(records, target, model)
    days_seen = _days_seen(records, start, target)
    for day in days_to_close(start, target):
        moving = np.flatnonzero((start <= day) & (day < target))
        if len(moving) == 0:
            continue
        seen = np.zeros((len(moving), 6), dtype=np.int64)
        where = np.full(n, -1)
        where[moving] = np.arange(len(moving))
        for i, row in days_seen.get(day, ()):
            seen[where[i]] = row
        outcome = DayOutcome(seen[:, 0], *(seen[:, k].astype(bool) for k in range(1, 6)))
        zeros = np.zeros(len(moving), np.int64)
        state = VisibleState(np.full(len(moving), day), zeros, zeros, responsiveness_rows(resp, moving))
        belief[moving] = update_belief(belief[moving], model.tables, state, outcome)
    for i, rec in enumerate(records):
        _store(rec, belief[i], int(target[i]))
    return belief


def days_to_close(start: np.ndarray, target: np.ndarray) -> range:
    """Every day some customer's belief is advanced through, in order."""
    return range(int(start.min()), int(target.max())) if len(start) else range(0)


def _starting_beliefs(records: Sequence[Mapping[str, Any]], today: np.ndarray,
                      model: BeliefModel) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's (day, belief) to advance from: the stored belief, else the prior at the first day; never
    earlier than the journey horizon before today (from the prior there)."""
    horizon = model.tables.horizon
    start = np.empty(len(records), dtype=np.int64)
    belief = np.empty((len(records), *BELIEF_SHAPE))
    for i, (rec, t) in enumerate(zip(records, today, strict=True)):
        at, stored = rec.get("belief_day"), rec.get("belief")
        if stored is not None and at is not None and at >= t - horizon:
            start[i], belief[i] = at, np.asarray(stored, dtype=np.float64).reshape(BELIEF_SHAPE)
            continue
        first = rec.get("first_day")
        start[i] = max(int(t) if first is None else min(first, int(t)), int(t) - horizon)
        recency = np.array([attribute_value(rec, "recency_months", model.defaults)], dtype=np.int64)
        belief[i] = initial_belief(model.config, recency)[0]
    return start, belief


def _days_seen(records: Sequence[Mapping[str, Any]], start: np.ndarray,
               target: np.ndarray) -> dict[int, list[tuple[int, list[int]]]]:
    """Day -> [(customer index, what the day showed)] for the days each customer is advanced through."""
    out: dict[int, list[tuple[int, list[int]]]] = {}
    for i, rec in enumerate(records):
        for key, row in (rec.get("seen") or {}).items():
            day = int(key)
            if start[i] <= day < target[i]:
                out.setdefault(day, []).append((i, row))
    return out


def visible_states(records: Sequence[Mapping[str, Any]], today: Sequence[int], last_contact: Sequence[int | None],
                   model: BeliefModel, resp: Responsiveness | None = None) -> VisibleState:
    """What the planner reads besides the belief: the journey day, consent, cooldown and response multipliers."""
    t = np.asarray(today, dtype=np.int64)
    first = np.array([t[i] if r.get("first_day") is None else r["first_day"] for i, r in enumerate(records)],
                     dtype=np.int64)
    gap = model.tables.gap
    last = np.array([-(10**6) if d is None else d for d in last_contact], dtype=np.int64)
    cooldown = np.clip(gap - (t - last), 0, gap - 1)
    consent = np.array([consent_bits(r) for r in records], dtype=np.int64)
    return VisibleState(np.maximum(t - first, 0), consent, cooldown,
                        model.responsiveness(records) if resp is None else resp)


def _store(record: Record, belief: np.ndarray, day: int) -> None:
    record["belief"] = [float(x) for x in belief.reshape(N_BELIEF)]
    record["belief_day"] = day
    seen = record.get("seen")
    if seen:
        record["seen"] = {d: row for d, row in seen.items() if int(d) >= day}


def responsiveness_rows(resp: Responsiveness, rows: np.ndarray) -> Responsiveness:
    return Responsiveness(resp.propensity[rows], resp.basket[rows], resp.click_mult[rows], resp.click_conv[rows],
                          resp.click_basket[rows])


def encode_belief(belief: np.ndarray) -> str:
    """A belief as the decision log keeps it: base64 of its 60 float64 little-endian values (exact)."""
    return base64.b64encode(np.asarray(belief, dtype="<f8").reshape(N_BELIEF).tobytes()).decode("ascii")


def decode_belief(text: str) -> np.ndarray:
    """The inverse of :func:`encode_belief`, as (stage, intent, fatigue)."""
    raw = base64.b64decode(text)
    if len(raw) != 8 * N_BELIEF:
        raise ValueError(f"a logged belief has {N_BELIEF} values ({8 * N_BELIEF} bytes), this one {len(raw)} bytes")
    return np.frombuffer(raw, dtype="<f8").reshape(BELIEF_SHAPE).astype(np.float64)


def visible_from_observation(obs: np.ndarray, model: BeliefModel) -> VisibleState:
    """What the planner reads besides the belief, rebuilt from logged observations: the journey day, consent and
    cooldown from their columns, the response multipliers from the profile columns (history from its log column,
    to float32 precision)."""
    o = np.atleast_2d(np.asarray(obs, dtype=np.float64))
    spec = model.tables.spec
    profiles = Profiles(
        recency=np.rint(o[:, 0] * 12.0).astype(np.int64), history=np.exp(o[:, 1] * 8.2),
        mens=np.rint(o[:, 2]).astype(np.int64), womens=np.rint(o[:, 3]).astype(np.int64),
        newbie=np.rint(o[:, 4]).astype(np.int64),
        channel=np.where(o[:, 5] > 0.5, 1, np.where(o[:, 6] > 0.5, 2, 0)),
        zip_type=np.where(o[:, 7] > 0.5, 1, np.where(o[:, 8] > 0.5, 2, 0)),
    )
    consent = (o[:, 9] > 0.5).astype(np.int64) + 2 * (o[:, 10] > 0.5) + 4 * (o[:, 11] > 0.5)
    cooldown = np.where(o[:, 12] > 0.5, model.tables.gap - 1, 0).astype(np.int64)
    day = np.rint(o[:, 13] * spec.horizon_days).astype(np.int64)
    return VisibleState(day, consent, cooldown, responsiveness(model.config.profile, model.config.journey, profiles))
