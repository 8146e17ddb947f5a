"""The Bayes filter over the hidden journey state is calibrated, reads only what the engine observes, and the
planner on it stays under the full-information oracle while beating the tuned heuristics."""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any

import numpy as np
import pytest

from environment.belief import (
    N_BELIEF,
    BeliefTracker,
    PlannerSpec,
    WithBelief,
    initial_belief,
    outcome_likelihood,
    parse_planner_name,
    planner_name,
    recency_of,
    update_belief,
)
from environment.belief_fold import responsiveness_rows
from environment.belief_planner import (
    FULL_OUTCOMES,
    OBSERVABLE_OUTCOMES,
    ActionDay,
    BeliefPlanner,
    DayOutcome,
    ServedPlanner,
    VisibleState,
    belief_action_values,
)
from environment.bounds import solve_oracle
from environment.config import load_market_config
from environment.dynamics import step_batch
from environment.heuristics import OfferEveryK, journey_baselines
from environment.population import CHURNED, CUSTOMER, EMAIL, N_ACTIONS, PUSH, SMS, Profiles, responsiveness, sample_profiles
from environment.vector import JourneyVectorEnv
from policies.evaluate import oracle_value, run_journey


def _random_run(n: int, seed: int, days: int):
    """Yield (state before, outcome, belief after) under a random legal policy."""
    env = JourneyVectorEnv(n)
    obs, info = env.reset(seed=seed)
    tracker = BeliefTracker(env.config, env.tables)
    tracker.reset(obs)
    rng = np.random.default_rng(seed)
    for _ in range(days):
        before = env.state
        choice = rng.integers(0, N_ACTIONS, n)
        action = np.where(info["action_mask"][np.arange(n), choice], choice, 0)
        obs, _, _, truncated, info = env.step(action)
        belief = tracker.step(before, env.last_outcome, obs, truncated)
        yield env, belief


def test_belief_is_calibrated_against_the_true_hidden_state() -> None:
    n = 20_000
    for day, (env, belief) in enumerate(_random_run(n, seed=3, days=40), start=1):
        if day in (5, 20, 40):
            for stage in (CUSTOMER, CHURNED):
                predicted = belief[:, stage].sum(axis=(1, 2))
                actual = env.state.stage == stage
                assert abs(predicted.mean() - actual.mean()) < 0.01, (day, stage)
                sure = predicted > 0.8  # when the filter is confident, it is right as often as it says
                if sure.sum() > 200:
                    assert actual[sure].mean() > 0.75, (day, stage)


def test_belief_knows_more_than_the_population_mix() -> None:
    """After 30 days the filter puts more mass on each customer's true state than the population's own mix does."""
    n = 5_000
    env, belief = deque(_random_run(n, seed=4, days=30), maxlen=1)[0]  # the last day's
    rows, s = np.arange(n), env.state
    posterior = belief[rows, s.stage, s.intent, s.fatigue]
    mix = np.zeros(belief.shape[1:])
    np.add.at(mix, (s.stage, s.intent, s.fatigue), 1.0 / n)
    assert np.log(posterior + 1e-12).mean() > np.log(mix[s.stage, s.intent, s.fatigue]).mean() + 0.1


def test_update_reads_no_hidden_state() -> None:
    env = JourneyVectorEnv(500)
    obs, _ = env.reset(seed=6)
    before = env.state
    _, outcome = step_batch(before, np.full(500, 5), np.random.default_rng(0), env.tables)
    scrambled = dataclasses.replace(
        before, stage=np.zeros(500, np.int64), intent=np.full(500, 2), fatigue=np.full(500, 3)
    )
    belief = initial_belief(env.config, recency_of(obs))
    np.testing.assert_array_equal(
        update_belief(belief, env.tables, before, outcome), update_belief(belief, env.tables, scrambled, outcome)
    )


def test_kept_action_values_agree_with_the_oracle_policy() -> None:
    env = JourneyVectorEnv(40)
    env.reset(seed=1)
    solution = solve_oracle(env.tables, env.state.resp, keep_q=True)
    assert solution.q is not None
    best = solution.q.reshape(solution.q.shape[0], 40, -1, N_ACTIONS).argmax(axis=-1)
    value = np.take_along_axis(solution.q.reshape((*best.shape, N_ACTIONS)), best[..., None], axis=-1)[..., 0]
    chosen = np.take_along_axis(solution.q.reshape((*best.shape, N_ACTIONS)), solution.policy[..., None].astype(np.int64), axis=-1)[..., 0]
    np.testing.assert_allclose(chosen, value, rtol=1e-5, atol=1e-5)  # the policy's action is a best one


@pytest.mark.parametrize("seed", [10_000])
def test_planner_sits_between_the_heuristics_and_the_oracle(seed: int) -> None:
    n = 800
    oracle = oracle_value(JourneyVectorEnv(1).config, n, seed)
    planner = run_journey(BeliefPlanner(), None, n, seed)
    heuristic = max((run_journey(h, None, n, seed) for h in journey_baselines()), key=lambda m: m.profit)
    assert planner.profit < oracle
    assert planner.profit > heuristic.profit, (planner, heuristic)


def test_offer_cadence_is_among_the_tuned_baselines() -> None:
    assert OfferEveryK().name in {h.name for h in journey_baselines()}


def test_belief_observation_equals_what_a_wrapped_policy_sees() -> None:
    """The env's belief columns (training) and WithBelief on a plain env (evaluation) are the same numbers,
    across an episode boundary."""
    class Recorder:
        seen: np.ndarray

        def predict(self, observation, state=None, episode_start=None, deterministic=False):
            self.seen = observation
            return np.full(len(observation), 5), state

    with_belief, plain = JourneyVectorEnv(200, belief=True), JourneyVectorEnv(200)
    obs_b, _ = with_belief.reset(seed=3)
    obs_p, _ = plain.reset(seed=3)
    assert obs_b.shape == (200, 24 + N_BELIEF)
    recorder = Recorder()
    wrapped = WithBelief(recorder)
    wrapped.bind(plain)
    for day in range(with_belief.horizon + 5):
        wrapped.predict(obs_p)
        np.testing.assert_allclose(recorder.seen, obs_b, err_msg=f"day {day}")
        obs_b, _, _, truncated, info = with_belief.step(np.full(200, 5))
        obs_p, *_ = plain.step(np.full(200, 5))
        if truncated.any():
            assert info["final_obs"][0].shape == (24 + N_BELIEF,)
            np.testing.assert_allclose(obs_b[:, 24:].reshape(200, -1).sum(axis=1), 1.0, rtol=1e-5)


def test_lookahead_on_the_last_day_is_the_expected_reward() -> None:
    """On the last day nothing follows, so the lookahead's values (a sum over every observation the day can show)
    must equal QMDP's (the oracle's last-day action values under the belief): the enumeration is complete."""
    env = JourneyVectorEnv(300)
    obs, _ = env.reset(seed=8)
    planner = BeliefPlanner(lookahead=True)
    planner.bind(env)
    policy = OfferEveryK()
    for _ in range(env.horizon - 1):
        action, _ = policy.predict(obs)
        planner.predict(obs)
        obs, *_ = env.step(action)
    planner.predict(obs)
    belief = planner._belief.tracker.belief
    now = env.state
    assert int(now.day.max()) == env.horizon - 1
    visible = VisibleState(now.day, now.consent, now.cooldown, now.resp)
    ahead = belief_action_values(planner._values, planner._tables, visible, belief, lookahead=True)
    qmdp = belief_action_values(planner._values, planner._tables, visible, belief, lookahead=False)
    legal = np.isfinite(qmdp)
    np.testing.assert_allclose(ahead[legal], qmdp[legal], rtol=1e-4, atol=1e-4)


def test_pricing_unsubscribes_changes_the_plan_not_the_market() -> None:
    """A planner with unsubscribes priced 20x contacts less riskily and unsubscribes fewer customers than the plain
    one on the same customers; the env it acts in keeps the true unsubscribe values (profit is measured on them)."""
    config = load_market_config()
    plain = run_journey(BeliefPlanner(), config, 400, 21)
    priced_planner = BeliefPlanner(unsub_price=20.0)
    priced = run_journey(priced_planner, config, 400, 21)
    assert priced.unsubscribe_rate < plain.unsubscribe_rate
    assert priced_planner.name == "belief_planner_u20"
    np.testing.assert_allclose(priced_planner.env.tables.unsub_value, config.journey.unsub_value)
    with pytest.raises(ValueError, match="unsubscribe price"):
        BeliefPlanner(unsub_price=0.0)


def test_planner_names_round_trip() -> None:
    assert parse_planner_name("belief_planner") == (False, 1.0, False)
    assert parse_planner_name("belief_lookahead_u4") == (True, 4.0, False)
    assert parse_planner_name("belief_lookahead_u2.5") == (True, 2.5, False)
    assert parse_planner_name("belief_lookahead_ux") is None and parse_planner_name("offer_every_k") is None
    assert parse_planner_name("belief_lookahead_u4_grid") == (True, 4.0, True)
    for lookahead, price, grid in ((False, 1.0, False), (True, 1.0, True), (True, 4.0, False), (False, 2.5, True)):
        assert parse_planner_name(planner_name(lookahead, price, grid)) == (lookahead, price, grid)


@pytest.mark.parametrize("action", range(N_ACTIONS))
def test_what_a_day_can_show_is_complete_and_disjoint(action: int) -> None:
    """Over what a day of ``action`` can show, the filter's likelihoods sum to 1 in every hidden state (so the
    lookahead weighs each observation once); over every outcome, seen or not, the whole likelihoods do too."""
    env = JourneyVectorEnv(50)
    env.reset(seed=3)
    now = env.state
    visible = VisibleState(now.day, now.consent, now.cooldown, now.resp)
    for outcomes, all_shown in ((OBSERVABLE_OUTCOMES[action], False), (FULL_OUTCOMES[action], True)):
        total = sum(outcome_likelihood(env.tables, visible, _day_of(action, outcome, 50), all_shown)
                    for outcome in outcomes)
        np.testing.assert_allclose(total, 1.0, atol=1e-9)


@pytest.mark.parametrize("action", range(N_ACTIONS))
def test_the_lookaheads_fast_day_is_the_filters_day(action: int) -> None:
    """The lookahead's one-action form of the day (likelihood and transition) equals the filter's, outcome by
    outcome, so the planner plans with the belief the filter would hold."""
    env = JourneyVectorEnv(40)
    obs, _ = env.reset(seed=6)
    now = env.state
    visible = VisibleState(now.day, now.consent, now.cooldown, now.resp)
    belief = initial_belief(env.config, recency_of(obs))
    day = ActionDay(env.tables, visible, action)
    for outcome in OBSERVABLE_OUTCOMES[action]:
        seen = _day_of(action, outcome, 40)
        np.testing.assert_allclose(np.broadcast_to(day.likelihood(*outcome), belief.shape),
                                   outcome_likelihood(env.tables, visible, seen), rtol=1e-12, atol=1e-15)
        if outcome_likelihood(env.tables, visible, seen).min() > 0:
            joint = belief * day.likelihood(*outcome)
            np.testing.assert_allclose(day.advance(joint, outcome[3], outcome[4]),
                                       update_belief(belief, env.tables, visible, seen), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("action", "hidden"), [(SMS, "opened"), (PUSH, "clicked")])
def test_the_filter_does_not_read_what_no_event_shows(action: int, hidden: str) -> None:
    """An SMS read and a push tap show no event: the belief after the day is the same whether they happened."""
    env = JourneyVectorEnv(50)
    obs, _ = env.reset(seed=4)
    belief = initial_belief(env.config, recency_of(obs))
    seen = _day_of(action, (False, False, False, True, False), 50)
    flipped = dataclasses.replace(seen, **{hidden: np.ones(50, dtype=bool)})
    np.testing.assert_array_equal(update_belief(belief, env.tables, env.state, seen),
                                  update_belief(belief, env.tables, env.state, flipped))


def test_grid_values_act_as_the_exact_planner_does() -> None:
    """The servable planner (action values interpolated on a propensity grid) picks the exact planner's action on
    almost every customer-day and earns the same."""
    config = load_market_config()
    exact = run_journey(BeliefPlanner(lookahead=True, unsub_price=4.0), config, 300, 12)
    grid = run_journey(ServedPlanner(PlannerSpec(True, 4.0, True)), config, 300, 12)
    assert abs(grid.profit - exact.profit) <= 0.02 * abs(exact.profit)


def _day_of(action: int, outcome: tuple[bool, ...], n: int) -> Any:
    unsub, click, opened, visit, buy = outcome
    return DayOutcome(*(np.full(n, x) for x in (action, unsub, click, opened, visit, buy)))


def test_a_customers_belief_and_plan_do_not_depend_on_the_batch() -> None:
    """The agents fold beliefs in batches cut wherever a poll ends: a customer's belief and the planner's values
    must be the same bits alone as in any batch (a replay after a restart re-derives the same decisions)."""
    env = JourneyVectorEnv(300)
    obs, _ = env.reset(seed=13)
    now = env.state
    visible = VisibleState(now.day, now.consent, now.cooldown, now.resp)
    belief = initial_belief(env.config, recency_of(obs))
    seen = _day_of(EMAIL, (False, False, True, True, True), 300)
    batch = update_belief(belief, env.tables, visible, seen)
    planner = ServedPlanner(PlannerSpec(True, 4.0, True))
    values = belief_action_values(planner.grid.bind(now.resp), planner.tables, visible, batch, lookahead=True)
    for rows in (slice(0, 1), slice(7, 8), slice(100, 163)):
        part = VisibleState(now.day[rows], now.consent[rows], now.cooldown[rows], responsiveness_rows(now.resp, np.arange(300)[rows]))
        seen_part = _day_of(EMAIL, (False, False, True, True, True), len(part))
        alone = update_belief(belief[rows], env.tables, part, seen_part)
        np.testing.assert_array_equal(alone, batch[rows])
        values_part = belief_action_values(planner.grid.bind(part.resp), planner.tables, part, alone, lookahead=True)
        np.testing.assert_array_equal(values_part, values[rows])


def test_a_customers_response_multipliers_do_not_depend_on_the_batch() -> None:
    config = load_market_config()
    profiles = sample_profiles(config.profile, 2_000, np.random.default_rng(1))
    batch = responsiveness(config.profile, config.journey, profiles)
    for i in range(0, 2_000, 37):
        alone = Profiles(*(np.asarray(getattr(profiles, f.name))[i : i + 1] for f in dataclasses.fields(Profiles)))
        np.testing.assert_array_equal(responsiveness(config.profile, config.journey, alone).propensity,
                                      batch.propensity[i : i + 1])


def test_a_bound_grid_keeps_its_customers_when_another_batch_binds() -> None:
    """A replica's requests share the planner's grid: binding one batch must not change another's values."""
    env = JourneyVectorEnv(60)
    env.reset(seed=14)
    resp = env.state.resp
    grid = ServedPlanner(PlannerSpec(True, 6.0, True)).grid
    first = grid.bind(responsiveness_rows(resp, np.arange(30)))
    before = first.on_day(np.zeros(30, dtype=np.int64))
    grid.bind(responsiveness_rows(resp, np.arange(30, 60)))
    np.testing.assert_array_equal(first.on_day(np.zeros(30, dtype=np.int64)), before)
