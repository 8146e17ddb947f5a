"""Calibration on the real Hillstrom file: the simulated one-shot campaign reproduces the arm means within 10%."""

from __future__ import annotations

import pytest

from data.datasets import dataset_path
from environment.calibrate import (
    ARMS,
    METRICS,
    calibrate,
    fit_profile_model,
    load_hillstrom,
    real_arm_means,
    simulate_campaign,
)
from environment.config import MarketConfig, load_market_config

SOURCE_MEANS = {  # hillstrom/SOURCE.md
    "Mens E-Mail": (0.18276, 0.012531, 1.4226),
    "Womens E-Mail": (0.15140, 0.008837, 1.0772),
    "No E-Mail": (0.10617, 0.005726, 0.6528),
}


@pytest.fixture(scope="module")
def hillstrom():
    return load_hillstrom(dataset_path("hillstrom", "hillstrom.csv"))


def test_real_arm_means_are_those_of_source_md(hillstrom) -> None:
    real = real_arm_means(hillstrom)
    for arm, expected in SOURCE_MEANS.items():
        for metric, value in zip(METRICS, expected, strict=True):
            assert getattr(real[arm], metric) == pytest.approx(value, rel=1e-3)


def test_shipped_calibration_reproduces_hillstrom_arms_within_10_percent(hillstrom) -> None:
    real = real_arm_means(hillstrom)
    sim = simulate_campaign(load_market_config(), n_per_arm=400_000, seed=2024)
    for arm in ARMS:
        for metric in METRICS:
            s, r = getattr(sim[arm], metric), getattr(real[arm], metric)
            assert abs(s / r - 1) < 0.10, f"{arm} {metric}: simulated {s:.5f} vs real {r:.5f}"
    # the e-mail effect has the real ordering: men's > women's > none on every metric
    for metric in METRICS:
        assert getattr(sim["Mens E-Mail"], metric) > getattr(sim["Womens E-Mail"], metric) > getattr(sim["No E-Mail"], metric)


def test_uncalibrated_market_is_far_from_hillstrom(hillstrom) -> None:
    """The test above can fail: the default, uncalibrated parameters miss the arm means."""
    real = real_arm_means(hillstrom)
    sim = simulate_campaign(MarketConfig(), n_per_arm=50_000, seed=1)
    assert max(abs(getattr(sim[a], m) / getattr(real[a], m) - 1) for a in ARMS for m in METRICS) > 0.10


def test_profile_model_fits_the_marginals(hillstrom) -> None:
    model = fit_profile_model(hillstrom, MarketConfig().profile)
    assert model.newbie_prob == pytest.approx(hillstrom["newbie"].mean())
    assert sum(model.recency_probs) == pytest.approx(1.0)
    assert model.propensity_coef[0] < 0  # older recency, fewer visits (as in the data)


@pytest.mark.slow
def test_calibrate_from_scratch_on_the_real_file(hillstrom) -> None:
    config = calibrate(hillstrom, n_per_arm=200_000, iterations=8, seed=3)
    real = real_arm_means(hillstrom)
    sim = simulate_campaign(config, n_per_arm=400_000, seed=99)
    for arm in ARMS:
        for metric in METRICS:
            assert abs(getattr(sim[arm], metric) / getattr(real[arm], metric) - 1) < 0.10
