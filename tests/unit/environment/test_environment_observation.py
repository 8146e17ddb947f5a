"""The journey observation, defined once: the simulator's batch facts and the agent's event fold give the same
columns, attributes never stated read as values that occur in training, and the logged form is exact."""

from __future__ import annotations

import numpy as np
import pytest

from environment.config import load_market_config
from environment.observation import (
    DAY_US,
    NEVER,
    OBSERVATION_COLUMNS,
    ObservationSpec,
    advance,
    attribute_defaults,
    decode_observation,
    encode_observation,
    fold_event,
    initial_facts,
    observe,
    observe_records,
    profile_columns,
)
from environment.population import CHANNELS, ZIPS, sample_profiles

SPEC = ObservationSpec()
EVENT_OF_KIND = ("email_sent", "email_open", "sms_click", "page_view", "purchase")
START_DAY = 19_000
DEFAULTS = attribute_defaults(load_market_config().profile)


def _random_days(rng: np.random.Generator, n: int, days: int) -> np.ndarray:
    """(days, n, 5) what happened each day: contacts often, the rest rarely, some days several kinds."""
    p = np.array([0.3, 0.15, 0.05, 0.1, 0.03])
    return rng.random((days, n, 5)) < p


def test_the_agents_fold_equals_the_simulators_facts_day_after_day() -> None:
    rng = np.random.default_rng(1)
    n, days = 60, 40
    happened = _random_days(rng, n, days)
    consent = rng.integers(0, 8, n)
    profile = rng.random((n, 9)).astype(np.float32)
    facts = initial_facts(profile, consent)
    records = [None] * n
    for i in range(n):  # arrival: the first event, and the consent statements
        t0 = START_DAY * DAY_US
        records[i] = fold_event(None, "lead_created", t0, {}, SPEC)
        for channel, bit in (("email", 1), ("sms", 2), ("push", 4)):
            if consent[i] & bit:
                records[i] = fold_event(records[i], "consent_changed", t0, {"channel": channel, "granted": True}, SPEC)
    for day in range(days):
        from_sim = observe(facts, day, SPEC)
        records_facts = observe_records(records, START_DAY + day, SPEC, DEFAULTS)[:, 9:]
        worst = 9 + np.argmax(np.abs(from_sim[:, 9:] - records_facts).max(axis=0))
        assert np.array_equal(from_sim[:, 9:], records_facts), OBSERVATION_COLUMNS[worst]
        facts = advance(facts, day, happened[day], consent, SPEC)
        for i in range(n):
            for kind in np.flatnonzero(happened[day, i]):
                for repeat in range(1 + (kind == 3)):  # two visits on a day count once in the decayed count
                    t = (START_DAY + day) * DAY_US + (9 + kind + repeat) * 3_600_000_000
                    records[i] = fold_event(records[i], EVENT_OF_KIND[kind], t, {}, SPEC)


def test_attributes_never_stated_read_as_common_values_seen_in_training() -> None:
    config = load_market_config()
    defaults = attribute_defaults(config.profile)
    assert defaults["bought_mens"] or defaults["bought_womens"]  # mens = womens = 0 never occurs in training
    profiles = sample_profiles(config.profile, 50_000, np.random.default_rng(0))
    train = {tuple(r) for r in np.round(profile_columns(profiles.recency, profiles.history, profiles.mens, profiles.womens,
                                                         profiles.newbie, profiles.channel, profiles.zip_type)[:, 2:], 6)}
    unknown = observe_records([{"attrs": {}, "consent": {}, "first_day": 0, "last": [None] * 5,
                                "recent": [[0.0, None]] * 4, "purchases": 0}], 0, SPEC, defaults)[0]
    assert tuple(np.round(unknown[2:9], 6)) in train
    assert unknown[0] == defaults["recency_months"] / 12 and defaults["purchase_channel"] in CHANNELS and defaults["zip_type"] in ZIPS


def test_a_stated_attribute_keeps_its_latest_value_and_the_rest_default() -> None:
    defaults = attribute_defaults(load_market_config().profile)
    rec = fold_event(None, "customer_attributes", 10 * DAY_US, {"recency_months": 4, "zip_type": "rural"}, SPEC)
    rec = fold_event(rec, "customer_attributes", 5 * DAY_US, {"recency_months": 9}, SPEC)  # older: ignored
    obs = observe_records([rec], 10, SPEC, defaults)[0]
    assert obs[0] == pytest.approx(4 / 12) and obs[8] == 1.0 and obs[7] == 0.0


def test_consent_needs_an_explicit_grant_and_the_latest_statement_wins() -> None:
    rec = fold_event(None, "consent_changed", 2 * DAY_US, {"channel": "sms", "granted": True}, SPEC)
    rec = fold_event(rec, "unsubscribe", 1 * DAY_US, {"channel": "sms"}, SPEC)  # earlier in event time: ignored
    obs = observe_records([rec], 3, SPEC, attribute_defaults(load_market_config().profile))[0]
    assert (obs[9], obs[10], obs[11]) == (0.0, 1.0, 0.0)


def test_never_and_cap_and_day_columns() -> None:
    facts = initial_facts(np.zeros((1, 9), dtype=np.float32), np.array([1]))
    obs = observe(facts, 0, SPEC)[0]
    assert obs[12] == 0.0 and obs[13] == 0.0 and np.all(obs[14:19] == 1.0) and np.all(obs[19:23] == 0.0)
    facts = advance(facts, 0, np.array([[True, False, False, False, False]]), np.array([1]), SPEC)
    assert observe(facts, 1, SPEC)[0][12] == 1.0 and observe(facts, 2, SPEC)[0][12] == 0.0
    assert observe(facts, 1, SPEC)[0][14] == 0.0 and observe(facts, 5, SPEC)[0][14] == pytest.approx(4 / 30)
    assert observe(facts, 200, SPEC)[0][13] == 1.0 and facts.last_day[0, 1] == NEVER


def test_the_logged_observation_is_exact() -> None:
    obs = np.random.default_rng(0).random(24).astype(np.float32)
    assert np.array_equal(decode_observation(encode_observation(obs)), obs)
    with pytest.raises(ValueError, match="24 values"):
        decode_observation(encode_observation(obs[:10]))
