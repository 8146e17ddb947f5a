"""The bandit's pure functions and the vectorised simulator (small, fast runs)."""

from __future__ import annotations

import numpy as np

from policies.creative.bandit import (
    promotable,
    selection_probabilities,
    thompson_select,
    win_probabilities,
)
from policies.creative.simulate import simulate_tests


def test_win_probabilities_known_cases() -> None:
    rng = np.random.default_rng(0)
    p = win_probabilities(np.array([1.0, 1.0]), np.array([1.0, 1.0]), rng, 20_000)
    assert abs(p[0] - 0.5) < 0.02 and abs(p.sum() - 1) < 1e-12
    p = win_probabilities(np.array([101.0, 11.0]), np.array([901.0, 991.0]), rng, 5000)
    assert p[0] > 0.999
    batch = win_probabilities(np.ones((4, 3)), np.ones((4, 3)), rng, 1000)
    assert batch.shape == (4, 3)


def test_selection_probabilities_stay_positive() -> None:
    probs = selection_probabilities(np.array([1000.0, 1.0]), np.array([1.0, 1000.0]), np.random.default_rng(0), 1000)
    assert (probs > 0).all() and abs(probs.sum() - 1) < 1e-12
    choice = thompson_select(np.array([1000.0, 1.0]), np.array([1.0, 1000.0]), np.random.default_rng(0), 1000)
    assert choice.arm == 0 and choice.propensity == choice.probabilities[0]


def test_promotable_needs_threshold_and_impressions() -> None:
    assert promotable(np.array([0.96, 0.04]), np.array([200, 200])) == 0
    assert promotable(np.array([0.94, 0.06]), np.array([200, 200])) is None
    assert promotable(np.array([0.99, 0.01]), np.array([200, 50])) is None


def test_simulator_finds_an_easy_best_and_beats_uniform() -> None:
    r = simulate_tests(ctrs=(0.02, 0.03, 0.08), reps=100, horizon=6000, batch=500, n_draws=300, seed=1)
    assert r.found_best_by(6000) >= 0.95
    assert r.wrong_promotions <= 0.05
    assert r.regret_ts.mean() < 0.5 * r.regret_uniform
