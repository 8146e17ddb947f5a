"""The intervals of the live lift: t for means, Wilson for shares, Welch for the difference of two arms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from policies.lift import difference_interval, mean_interval, share_interval


def test_mean_interval_is_the_t_interval() -> None:
    v = np.array([1.0, 2.0, 4.0, 7.0])
    got = mean_interval(v)
    low, high = stats.t.interval(0.95, 3, loc=v.mean(), scale=stats.sem(v))
    assert (got.value, got.low, got.high) == pytest.approx((3.5, low, high))
    assert mean_interval(np.array([2.0])).low == 2.0


def test_share_interval_is_wilsons() -> None:
    got = share_interval(3, 10)
    assert got.value == 0.3 and got.low == pytest.approx(0.1078, abs=1e-3) and got.high == pytest.approx(0.6032, abs=1e-3)
    assert share_interval(0, 50).low == pytest.approx(0.0, abs=1e-12) and share_interval(0, 50).high > 0


def test_difference_interval_is_welchs() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 1.0, 400), rng.normal(0.5, 2.0, 100)
    got = difference_interval(a, b)
    res = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (got.low, got.high) == pytest.approx((res.low, res.high))
    assert got.covers(0.5) and not got.covers(-1.0)
