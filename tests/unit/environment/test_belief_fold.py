"""The belief's day-fold over a customer's events: bounded notes, closed days stay closed, the logged form."""

from __future__ import annotations

import numpy as np
import pytest

from environment.belief import N_BELIEF, initial_belief
from environment.belief_fold import (
    DAY_US,
    BeliefModel,
    advance_beliefs,
    days_to_close,
    decode_belief,
    encode_belief,
    note_seen,
)
from environment.config import load_market_config
from environment.observation import new_record


def test_notes_keep_at_most_a_horizon_of_days() -> None:
    record = new_record()
    for day in range(200):
        note_seen(record, "page_view", day * DAY_US + 3_600_000_000, keep_days=60)
    days = sorted(int(d) for d in record["seen"])
    assert len(days) <= 61 and days[-1] == 199 and days[0] >= 199 - 60


def test_an_event_for_a_closed_day_changes_nothing() -> None:
    model = BeliefModel.of(load_market_config())
    record = new_record() | {"first_day": 10}
    note_seen(record, "email_sent", 10 * DAY_US)
    advance_beliefs([record], [12], model)
    before = list(record["belief"])
    note_seen(record, "purchase", 11 * DAY_US)  # late: day 11 is closed
    assert "11" not in record.get("seen", {}) and record["belief"] == before and record["belief_day"] == 12


def test_a_long_unseen_customer_catches_up_one_horizon_from_the_prior() -> None:
    config = load_market_config()
    model = BeliefModel.of(config)
    old = new_record() | {"first_day": 0}
    fresh = new_record() | {"first_day": 400 - config.journey.horizon_days}
    a, b = advance_beliefs([old, fresh], [400, 400], model)
    np.testing.assert_array_equal(a, b)  # nothing was seen: both start from the prior one horizon back
    prior = initial_belief(config, np.array([model.defaults["recency_months"]]))[0]
    assert not np.allclose(a, prior)  # a horizon of days without events moved it


def test_the_logged_belief_is_exact_and_checked() -> None:
    belief = np.random.default_rng(0).dirichlet(np.ones(N_BELIEF)).reshape(5, 3, 4)
    np.testing.assert_array_equal(decode_belief(encode_belief(belief)), belief)
    with pytest.raises(ValueError, match="60 values"):
        decode_belief(encode_belief(belief)[:40])


def test_advancing_a_current_belief_is_a_day_or_none(monkeypatch) -> None:
    """A belief the agent closed yesterday is advanced one day today, and not at all twice on the same day."""
    import environment.belief_fold as fold

    model = BeliefModel.of(load_market_config())
    record = new_record() | {"first_day": 20_000}
    advance_beliefs([record], [20_300], model)
    calls = []
    real = fold.update_belief
    monkeypatch.setattr(fold, "update_belief", lambda *a: calls.append(1) or real(*a))
    advance_beliefs([record], [20_301], model)
    advance_beliefs([record], [20_301], model)
    assert len(calls) == 1
    assert list(days_to_close(np.array([20_300, 20_299]), np.array([20_301, 20_301]))) == [20_299, 20_300]
    assert len(days_to_close(np.array([], dtype=np.int64), np.array([], dtype=np.int64))) == 0
