"""Calibration, score scale, metrics and PSI against brute-force or known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from policies.scoring.calibration import fit_calibrator, fit_isotonic, fit_platt, fit_score_scale
from policies.scoring.drift import numeric_bins, numeric_shares, psi
from policies.scoring.metrics import calibration_table, evaluate, expected_calibration_error, lift_table, pr_auc, roc_auc


def miscalibrated(n: int = 20_000, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    true_p = rng.beta(1, 12, n)
    y = (rng.random(n) < true_p).astype(np.int8)
    raw = np.clip(true_p**0.5, 0, 1)  # monotone but badly over-confident
    return raw, y


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_reduces_the_calibration_error(method: str) -> None:
    raw, y = miscalibrated()
    before = expected_calibration_error(calibration_table(y[10_000:], raw[10_000:]))
    cal = fit_calibrator(raw[:10_000], y[:10_000], method)
    after = expected_calibration_error(calibration_table(y[10_000:], cal.transform(raw[10_000:])))
    assert after < before / 3
    grid = np.linspace(0, 1, 501)
    assert np.all(np.diff(cal.transform(grid)) >= -1e-12)  # monotone: ranking (AUC) is kept


def test_calibrators_roundtrip_json() -> None:
    raw, y = miscalibrated(2_000)
    for cal in (fit_isotonic(raw, y), fit_platt(raw, y)):
        again = type(cal).model_validate_json(cal.model_dump_json())
        np.testing.assert_allclose(again.transform(raw), cal.transform(raw))


def test_score_scale_is_a_percentile_with_tiers() -> None:
    p = np.random.default_rng(2).beta(1, 20, 5_000)
    scale = fit_score_scale(p, high=80, medium=50)
    s = scale.score(p)
    assert s.min() >= 0 and s.max() <= 100
    assert abs(np.mean(s >= 80) - 0.2) < 0.01 and abs(np.mean(s >= 50) - 0.5) < 0.01
    assert np.all(np.diff(scale.score(np.sort(p))) >= 0)
    tiers = scale.tier(s)
    assert set(tiers) == {"High", "Medium", "Low"} and scale.tier_of(80.0) == "High" and scale.tier_of(49.9) == "Low"


def test_roc_auc_matches_pair_counting() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 60)
    p = np.round(rng.random(60), 1)  # with ties
    pairs = [(a, b) for a, b in itertools.product(p[y == 1], p[y == 0])]
    brute = np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs])
    assert roc_auc(y, p) == pytest.approx(brute)


def test_pr_auc_known_value() -> None:
    # ranking: 1, 0, 1, 0 -> precision at the two positives 1/1 and 2/3 -> AP = (1 + 2/3) / 2
    assert pr_auc(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == pytest.approx((1 + 2 / 3) / 2)


def test_lift_table_adds_up() -> None:
    raw, y = miscalibrated(10_000)
    table = lift_table(y, raw)
    assert sum(r["rows"] for r in table) == len(y) and sum(r["positives"] for r in table) == y.sum()
    assert table[-1]["captured"] == pytest.approx(1.0) and table[-1]["cumulative_lift"] == pytest.approx(1.0)
    assert table[0]["lift"] > 2  # the signal is strong
    report = evaluate(y, raw)
    assert report["lift_top_decile"] == table[0]["lift"] and 0.5 < report["roc_auc"] < 1


def test_psi_is_zero_on_the_same_population_and_large_on_a_shift() -> None:
    rng = np.random.default_rng(4)
    ref = rng.normal(0, 1, 20_000)
    edges = numeric_bins(ref)
    same = numeric_shares(rng.normal(0, 1, 20_000), edges)
    shifted = numeric_shares(rng.normal(1, 1, 20_000), edges)
    base = numeric_shares(ref, edges)
    assert psi(base, same) < 0.01
    assert psi(base, shifted) > 0.25
