"""Lifetime value: BG/NBD and Gamma-Gamma reproduce Fader, Hardie & Lee on CDNOW; formulas checked on
simulated customers; CLV discounting behaves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from policies.scoring.clv import (
    BGNBD,
    GammaGamma,
    customer_lifetime_value,
    fit_bgnbd,
    fit_gamma_gamma,
    read_transactions,
    rfm_summary,
)

PAPER_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PAPER_LL = -9582.4
PAPER_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def test_bgnbd_reproduces_the_paper_on_the_cdnow_summary(datasets: Path) -> None:
    summary = pd.read_csv(datasets / "cdnow" / "cdnow_customers_summary.csv")
    model = fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
    for name, value in PAPER_BGNBD.items():
        assert getattr(model, name) == pytest.approx(value, rel=0.01), name
    assert model.log_likelihood == pytest.approx(PAPER_LL, rel=0.01, abs=0.1)
    assert abs(model.log_likelihood - PAPER_LL) < 0.5


def test_gamma_gamma_reproduces_the_paper(datasets: Path) -> None:
    summary = pd.read_csv(datasets / "cdnow" / "cdnow_customers_summary_with_transactions.csv")
    model = fit_gamma_gamma(summary["x"], summary["zbar"])
    for name, value in PAPER_GG.items():
        assert getattr(model, name) == pytest.approx(value, rel=0.02), name


def test_rfm_from_raw_transactions_matches_the_published_summary(datasets: Path) -> None:
    tx = read_transactions(datasets / "cdnow" / "CDNOW_sample.txt")
    assert len(tx) == 6_919 and tx["customer_id"].nunique() == 2_357
    rfm = rfm_summary(tx, "1997-09-30", "1998-06-30")
    published = pd.read_csv(datasets / "cdnow" / "cdnow_customers_summary_with_transactions.csv")
    np.testing.assert_array_equal(rfm["x"].to_numpy(), published["x"].to_numpy())
    np.testing.assert_allclose(rfm["t_x"].to_numpy(), published["t_x"].to_numpy(), atol=0.006)  # published rounds to 0.01
    np.testing.assert_allclose(rfm["T"].to_numpy(), published["T"].to_numpy(), atol=0.006)
    np.testing.assert_allclose(rfm["zbar"].to_numpy(), published["zbar"].to_numpy(), atol=0.006)
    assert (rfm["holdout_length"] == 39).all() and rfm["x_holdout"].sum() > 1_000


def simulate_bgnbd(params: BGNBD, n: int, T: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Customers from the BG/NBD story: Poisson purchases, a coin flip after each one to drop out."""
    lam = rng.gamma(params.r, 1 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < p[i]:
                break
    return x, t_x, np.full(n, T)


def test_bgnbd_recovers_simulated_parameters_and_forecasts() -> None:
    rng = np.random.default_rng(11)
    truth = BGNBD(r=0.5, alpha=5.0, a=0.8, b=3.0)
    x, t_x, T = simulate_bgnbd(truth, 4_000, 40.0, rng)
    fitted = fit_bgnbd(x, t_x, T)
    assert fitted.r == pytest.approx(truth.r, rel=0.15) and fitted.alpha == pytest.approx(truth.alpha, rel=0.25)
    # E[X(T)] of the fitted model matches the simulated mean number of purchases
    assert fitted.expected_transactions(40.0) == pytest.approx(x.mean(), rel=0.05)
    alive = fitted.p_alive(x, t_x, T)
    assert np.all(alive[x == 0] == 1.0) and np.all((alive > 0) & (alive <= 1))


def test_gamma_gamma_recovers_simulated_parameters() -> None:
    rng = np.random.default_rng(12)
    truth = GammaGamma(p=6.0, q=4.0, gamma=15.0)
    n = 3_000
    x = rng.integers(1, 8, n).astype(float)
    nu = rng.gamma(truth.q, 1 / truth.gamma, n)
    zbar = np.array([rng.gamma(truth.p, 1 / v, int(k)).mean() for v, k in zip(nu, x, strict=True)])
    fitted = fit_gamma_gamma(x, zbar)
    assert fitted.population_mean == pytest.approx(truth.population_mean, rel=0.1)
    assert fitted.p == pytest.approx(truth.p, rel=0.15)


def test_clv_discounting_and_horizon() -> None:
    bg = BGNBD(**PAPER_BGNBD)
    gg = GammaGamma(**PAPER_GG)
    x, t_x, T, z = np.array([0.0, 2, 5]), np.array([0.0, 20, 35]), np.array([38.0, 38, 38]), np.array([0.0, 30, 40])
    undiscounted = customer_lifetime_value(bg, gg, x, t_x, T, z, horizon=52, annual_discount_rate=0.0)
    discounted = customer_lifetime_value(bg, gg, x, t_x, T, z, horizon=52, annual_discount_rate=0.2)
    longer = customer_lifetime_value(bg, gg, x, t_x, T, z, horizon=104, annual_discount_rate=0.2)
    assert np.all(discounted < undiscounted) and np.all(longer > discounted)
    expected = bg.conditional_expected_transactions(52, x, t_x, T) * gg.expected_spend(x, z)
    np.testing.assert_allclose(undiscounted, expected, rtol=1e-9)
    assert undiscounted[2] > undiscounted[1]  # more frequent, more recent, higher spend
