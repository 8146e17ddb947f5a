"""The journey observation, defined once: a fold over the facts the engine has about a customer.

The facts are the customer's attributes (the ``customer_attributes`` event), their consent statements, and the
days on which contacts, opens, clicks, visits and purchases happened, as events show them. Two forms hold them:

- :class:`JourneyFacts`, numpy arrays for a batch of customers: the simulator keeps them for its customers
  (:func:`advance`, one day at a time) and the agents build them from their records (:func:`facts_of_records`);
- a record, a JSON-ready dict per customer that the journey agent folds event by event (:func:`fold_event`).

:func:`observe` turns either into the 24 columns every journey policy sees, so a policy trained in the simulator
reads the same numbers in the agents and in the decision API. Days are whole UTC days (the simulator's day
index, or days since the Unix epoch in the engine); only differences between days matter.

**Observation** (``Box(0, 1, (24,), float32)``):

| index | column | meaning |
|---|---|---|
| 0 | recency | months since the last purchase (attribute) / 12 |
| 1 | log_history | log(spend in the past 12 months) / 8.2, clipped to [0, 1] |
| 2-4 | mens, womens, newbie | attributes (0/1) |
| 5-6 | channel_web, channel_multichannel | the purchase channel (phone: both 0) |
| 7-8 | zip_suburban, zip_rural | the zip type (urban: both 0) |
| 9-11 | consent_email, consent_sms, consent_push | 1 only where the customer granted consent and has not withdrawn it |
| 12 | capped | 1 while the frequency cap forbids a contact: the last contact was fewer than ``min_days_between_contacts`` days ago |
| 13 | day | days since the customer's first event / horizon, at most 1 |
| 14-18 | since_contact .. since_purchase | (days since the last contact, open, click, visit, purchase day - 1) / 30, at most 1; never: 1 |
| 19-22 | recent_contacts .. recent_visits | days with a contact, open, click, visit, decayed by 0.8 a day (yesterday weighs 1), x 0.2 |
| 23 | purchases | purchases / 5, at most 1 |

Contacts are ``email_sent``, ``sms_sent``, ``push_sent``, ``offer_sent`` and ``ad_impression``; opens are
``email_open`` and ``push_open`` (an SMS open and a push tap beyond the open are not observable); clicks are
``email_click``, ``sms_click`` and ``ad_click``; visits are ``page_view`` and ``content_download``.

**Attributes never stated** read as the most common value in the calibrated market (:func:`attribute_defaults`),
a value that also occurs in training: 1 month since the last purchase, the median spend, men's merchandise only,
a newbie, the web channel, a suburban zip.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from environment.config import JourneyModel, ProfileModel
from environment.population import CHANNELS, ZIPS, Profiles

N_OBS = 24
N_PROFILE = 9
OBSERVATION_COLUMNS = (
    "recency", "log_history", "mens", "womens", "newbie", "channel_web", "channel_multichannel", "zip_suburban",
    "zip_rural", "consent_email", "consent_sms", "consent_push", "capped", "day", "since_contact", "since_open",
    "since_click", "since_visit", "since_purchase", "recent_contacts", "recent_opens", "recent_clicks",
    "recent_visits", "purchases",
)
TRACKED = ("contact", "open", "click", "visit", "purchase")
"""The engagement kinds whose last day is tracked (the ``since_*`` columns); the first four are also counted."""
NEVER = -1_000_000
"""The day of something that never happened (far enough back that every ``since`` is capped)."""
CONSENT_BITS = {"email": 1, "sms": 2, "push": 4}

CONTACT_EVENTS = frozenset({"email_sent", "sms_sent", "push_sent", "offer_sent", "ad_impression"})
KIND_OF_EVENT: dict[str, int] = {
    **dict.fromkeys(CONTACT_EVENTS, 0),
    "email_open": 1, "push_open": 1,
    "email_click": 2, "sms_click": 2, "ad_click": 2,
    "page_view": 3, "content_download": 3,
    "purchase": 4,
}
"""Event type -> index into :data:`TRACKED`."""
CONSENT_EVENTS = frozenset({"consent_changed", "unsubscribe"})
ATTRIBUTE_EVENT = "customer_attributes"
FACT_EVENTS = frozenset(KIND_OF_EVENT) | CONSENT_EVENTS | {ATTRIBUTE_EVENT, "lead_created"}
"""Every event type the journey facts are folded from."""
DAY_US = 86_400_000_000

ATTRIBUTES = ("recency_months", "history", "bought_mens", "bought_womens", "newbie", "purchase_channel", "zip_type")


@dataclass(frozen=True, slots=True)
class ObservationSpec:
    """The constants of the observation, taken from the market the policies are trained on."""

    horizon_days: int = 60
    min_days_between_contacts: int = 2
    decay: float = 0.8
    days_cap: int = 30
    purchases_cap: int = 5

    @staticmethod
    def of(journey: JourneyModel) -> ObservationSpec:
        return ObservationSpec(horizon_days=journey.horizon_days, min_days_between_contacts=journey.min_days_between_contacts)


@dataclass(frozen=True, slots=True)
class JourneyFacts:
    """The facts of N customers (arrays of length N)."""

    profile: np.ndarray  # (N, 9) float32: the profile columns
    consent: np.ndarray  # (N,) int: bits email 1, sms 2, push 4
    first_day: np.ndarray  # (N,) int: the day of the customer's first event
    last_day: np.ndarray  # (N, 5) int: the day each TRACKED kind last happened (NEVER if never)
    recent_value: np.ndarray  # (N, 4) float: days with a contact, open, click, visit, decayed to recent_day
    recent_day: np.ndarray  # (N, 4) int: the day recent_value is valued at
    purchases: np.ndarray  # (N,) int

    def __len__(self) -> int:
        return int(self.consent.shape[0])


# ---- attributes ----------------------------------------------------------------------------------------


def profile_columns(
    recency: np.ndarray, history: np.ndarray, mens: np.ndarray, womens: np.ndarray, newbie: np.ndarray,
    channel: np.ndarray, zip_type: np.ndarray,
) -> np.ndarray:
    """The (N, 9) profile columns from the attributes (channel and zip as indices into CHANNELS and ZIPS)."""
    channel, zip_type = np.asarray(channel), np.asarray(zip_type)
    out = np.empty((channel.shape[0], N_PROFILE), dtype=np.float32)
    out[:, 0] = np.asarray(recency, dtype=np.float64) / 12.0
    out[:, 1] = np.clip(np.log(np.maximum(np.asarray(history, dtype=np.float64), 1e-9)) / 8.2, 0.0, 1.0)
    out[:, 2], out[:, 3], out[:, 4] = mens, womens, newbie
    out[:, 5], out[:, 6] = channel == 1, channel == 2
    out[:, 7], out[:, 8] = zip_type == 1, zip_type == 2
    return out


def profiles_columns(profiles: Profiles) -> np.ndarray:
    """The simulator's profiles as profile columns."""
    return profile_columns(profiles.recency, profiles.history, profiles.mens, profiles.womens, profiles.newbie,
                           profiles.channel, profiles.zip_type)


def attribute_defaults(model: ProfileModel) -> dict[str, Any]:
    """The value of each attribute never stated: the most common one in the calibrated market."""
    gender = int(np.argmax(model.gender_probs))  # 0 mens only, 1 womens only, 2 both
    return {
        "recency_months": int(np.argmax(model.recency_probs)) + 1,
        "history": round(float(np.exp(model.log_history_mean)), 2),
        "bought_mens": gender != 1,
        "bought_womens": gender != 0,
        "newbie": model.newbie_prob >= 0.5,
        "purchase_channel": CHANNELS[int(np.argmax(model.channel_probs))],
        "zip_type": ZIPS[int(np.argmax(model.zip_probs))],
    }


def attributes_of_profiles(profiles: Profiles, index: int) -> dict[str, Any]:
    """One simulated customer's attributes, as the ``customer_attributes`` event states them."""
    return {
        "recency_months": int(profiles.recency[index]), "history": float(profiles.history[index]),
        "bought_mens": bool(profiles.mens[index]), "bought_womens": bool(profiles.womens[index]),
        "newbie": bool(profiles.newbie[index]), "purchase_channel": CHANNELS[int(profiles.channel[index])],
        "zip_type": ZIPS[int(profiles.zip_type[index])],
    }


def _attribute_rows(records: Sequence[Mapping[str, Any]], defaults: Mapping[str, Any]) -> np.ndarray:
    rows = np.array([[attribute_value(rec, name, defaults) for name in ATTRIBUTES] for rec in records],
                    dtype=np.float64).reshape(len(records), len(ATTRIBUTES))
    return profile_columns(*rows.T)


def attribute_value(record: Mapping[str, Any], name: str, defaults: Mapping[str, Any]) -> float:
    """One attribute as a number (channel and zip as their index), the default where never stated."""
    stated = (record.get("attrs") or {}).get(name)
    value = defaults[name] if stated is None else stated[0]
    if name == "purchase_channel":
        return float(CHANNELS.index(value))
    if name == "zip_type":
        return float(ZIPS.index(value))
    return float(value)


# ---- the batch form: the simulator's facts, and the observation ----------------------------------------


def initial_facts(profile: np.ndarray, consent: np.ndarray, day: int = 0) -> JourneyFacts:
    """Customers who arrive on ``day`` with these profile columns and consent bits, and nothing else yet."""
    n = len(consent)
    return JourneyFacts(
        profile=np.asarray(profile, dtype=np.float32), consent=np.asarray(consent, dtype=np.int64),
        first_day=np.full(n, day, dtype=np.int64), last_day=np.full((n, len(TRACKED)), NEVER, dtype=np.int64),
        recent_value=np.zeros((n, 4)), recent_day=np.full((n, 4), NEVER, dtype=np.int64),
        purchases=np.zeros(n, dtype=np.int64),
    )


def advance(facts: JourneyFacts, day: int | np.ndarray, happened: np.ndarray, consent: np.ndarray,
            spec: ObservationSpec) -> JourneyFacts:
    """The facts after one day on which ``happened`` (N, 5: contact, open, click, visit, purchase, as events
    show them) and after which the consent bits are ``consent``."""
    day = np.broadcast_to(np.asarray(day, dtype=np.int64), (len(facts),))
    h = np.asarray(happened, dtype=bool)
    counted = h[:, :4]
    decayed = facts.recent_value * spec.decay ** np.minimum(day[:, None] - facts.recent_day, 10_000)
    return replace(
        facts,
        consent=np.asarray(consent, dtype=np.int64),
        last_day=np.where(h, day[:, None], facts.last_day),
        recent_value=np.where(counted, decayed + 1.0, facts.recent_value),
        recent_day=np.where(counted, day[:, None], facts.recent_day),
        purchases=facts.purchases + h[:, 4],
    )


def observe(facts: JourneyFacts, today: int | np.ndarray, spec: ObservationSpec) -> np.ndarray:
    """The (N, 24) float32 observation of customers with these facts at a decision on ``today``."""
    n = len(facts)
    today = np.broadcast_to(np.asarray(today, dtype=np.int64), (n,))
    obs = np.empty((n, N_OBS), dtype=np.float32)
    obs[:, :N_PROFILE] = facts.profile
    obs[:, 9] = facts.consent & 1
    obs[:, 10] = (facts.consent >> 1) & 1
    obs[:, 11] = (facts.consent >> 2) & 1
    obs[:, 12] = capped(facts.last_day[:, 0], today, spec)
    obs[:, 13] = np.minimum((today - facts.first_day) / spec.horizon_days, 1.0)
    since = np.clip(today[:, None] - facts.last_day - 1, 0, spec.days_cap)
    obs[:, 14:19] = since / spec.days_cap
    elapsed = np.clip(today[:, None] - facts.recent_day - 1, 0, 10_000)
    obs[:, 19:23] = facts.recent_value * spec.decay**elapsed * (1.0 - spec.decay)
    obs[:, 23] = np.minimum(facts.purchases / spec.purchases_cap, 1.0)
    return obs


def capped(last_contact_day: np.ndarray, today: np.ndarray, spec: ObservationSpec) -> np.ndarray:
    """Whether the frequency cap forbids a contact today, the last one having been on ``last_contact_day``."""
    return (np.asarray(today) - np.asarray(last_contact_day)) < spec.min_days_between_contacts


# ---- the record form: one customer's facts, folded event by event --------------------------------------


def new_record() -> dict[str, Any]:
    """The facts of a customer the engine has seen nothing of."""
    return {"attrs": {}, "consent": {}, "first_day": None, "last": [None] * len(TRACKED),
            "recent": [[0.0, None] for _ in range(4)], "purchases": 0}


def day_of(t_us: int) -> int:
    """The UTC day (days since the epoch) of a time in microseconds."""
    return t_us // DAY_US


def fold_event(record: Mapping[str, Any] | None, event_type: str, t_us: int, properties: Mapping[str, Any],
               spec: ObservationSpec) -> dict[str, Any]:
    """The facts after one more event (pure: ``record`` is not changed). ``properties`` is read only for
    consent and attribute events."""
    rec = dict(record) if record else new_record()
    day = day_of(t_us)
    if rec["first_day"] is None or day < rec["first_day"]:
        rec["first_day"] = day
    kind = KIND_OF_EVENT.get(event_type)
    if kind is not None:
        _count(rec, kind, day, spec)
    elif event_type in CONSENT_EVENTS:
        rec["consent"] = _stated(rec["consent"], str(properties["channel"]), bool(properties.get("granted", False)), t_us)
    elif event_type == ATTRIBUTE_EVENT:
        attrs = dict(rec["attrs"])
        for name in ATTRIBUTES:
            value = properties.get(name)
            if value is not None and (name not in attrs or t_us >= attrs[name][1]):
                attrs[name] = [value, t_us]
        rec["attrs"] = attrs
    return rec


def _count(rec: dict[str, Any], kind: int, day: int, spec: ObservationSpec) -> None:
    """Record one more event of ``kind`` on ``day``: its last day, and (once a day) its decayed count."""
    last = list(rec["last"])
    seen_today = last[kind] == day
    last[kind] = day if last[kind] is None else max(last[kind], day)
    rec["last"] = last
    if kind == 4:
        rec["purchases"] = rec["purchases"] + 1
        return
    if seen_today:
        return
    recent = [list(r) for r in rec["recent"]]
    value, at = recent[kind]
    if at is None or day >= at:
        recent[kind] = [(value * spec.decay ** (day - at) if at is not None else 0.0) + 1.0, day]
    else:  # a late event from before the valuation day
        recent[kind] = [value + spec.decay ** (at - day), at]
    rec["recent"] = recent


def _stated(consent: Mapping[str, Any], channel: str, granted: bool, t_us: int) -> dict[str, Any]:
    """Consent after a statement: the latest statement in event time wins."""
    out = dict(consent)
    previous = out.get(channel)
    if previous is None or t_us >= previous[1]:
        out[channel] = [granted, t_us]
    return out


def consent_bits(record: Mapping[str, Any]) -> int:
    """The consent bits (email 1, sms 2, push 4) of a record: granted and not withdrawn since."""
    bits = 0
    for channel, bit in CONSENT_BITS.items():
        said = record["consent"].get(channel)
        if said is not None and said[0]:
            bits |= bit
    return bits


def withdrawn(record: Mapping[str, Any], channel: str) -> bool:
    """Whether the customer's latest statement on ``channel`` withdrew consent."""
    said = record["consent"].get(channel)
    return said is not None and not said[0]


def facts_of_records(records: Sequence[Mapping[str, Any]], defaults: Mapping[str, Any]) -> JourneyFacts:
    """The batch form of several records (attributes never stated take ``defaults``)."""
    n = len(records)

    def day_or_never(d: int | None) -> int:
        return NEVER if d is None else d

    return JourneyFacts(
        profile=_attribute_rows(records, defaults),
        consent=np.fromiter((consent_bits(r) for r in records), dtype=np.int64, count=n),
        first_day=np.fromiter((day_or_never(r["first_day"]) for r in records), dtype=np.int64, count=n),
        last_day=np.array([[day_or_never(d) for d in r["last"]] for r in records], dtype=np.int64).reshape(n, len(TRACKED)),
        recent_value=np.array([[v for v, _ in r["recent"]] for r in records], dtype=np.float64).reshape(n, 4),
        recent_day=np.array([[day_or_never(d) for _, d in r["recent"]] for r in records], dtype=np.int64).reshape(n, 4),
        purchases=np.fromiter((r["purchases"] for r in records), dtype=np.int64, count=n),
    )


def observe_records(records: Sequence[Mapping[str, Any]], today: int | Sequence[int], spec: ObservationSpec,
                    defaults: Mapping[str, Any]) -> np.ndarray:
    """The observation of customers with these records at a decision on ``today`` (one day or one per record)."""
    return observe(facts_of_records(records, defaults), np.asarray(today, dtype=np.int64), spec)


def encode_observation(obs: np.ndarray) -> str:
    """An observation as the decision log keeps it: base64 of its float32 little-endian bytes (exact, 128 characters)."""
    return base64.b64encode(np.asarray(obs, dtype="<f4").tobytes()).decode("ascii")


def decode_observation(text: str) -> np.ndarray:
    """The inverse of :func:`encode_observation`."""
    raw = base64.b64decode(text)
    if len(raw) != 4 * N_OBS:
        raise ValueError(f"a logged journey observation has {N_OBS} values ({4 * N_OBS} bytes), this one {len(raw)} bytes")
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)
