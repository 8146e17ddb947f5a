"""The Open Bandit Dataset experiment: pieces on synthetic logs; the report on the shipped sample."""

from __future__ import annotations

import numpy as np
import pytest

from data.datasets import dataset_path
from policies.creative.obd import (
    ObdLogs,
    item_ctr,
    obd_report,
    position_frequencies,
    top_k_policy,
)


def test_top_k_policy_is_a_distribution() -> None:
    probs = top_k_policy(np.array([0.1, 0.5, 0.3, 0.2]), k=2, epsilon=0.2)
    assert abs(probs.sum() - 1) < 1e-12 and probs[1] == probs[2] == pytest.approx(0.4 + 0.05)
    assert probs[0] == pytest.approx(0.05)


def test_item_ctr_shrinks_and_frequencies() -> None:
    logs = ObdLogs(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), np.array([1.0, 1.0, 0, 0]), np.full(4, 0.5), 2)
    ctr = item_ctr(logs, prior_strength=2.0)
    assert ctr[0] == pytest.approx((2 + 1.0) / 4) and ctr[1] == pytest.approx(1.0 / 4)
    assert np.allclose(position_frequencies(logs), 0.5)


def test_obd_report_on_the_shipped_sample() -> None:
    rows = obd_report(dataset_path("open_bandit"), n_boot=200)
    by = {(r.policy.split(" (")[0].split(" items")[0], r.method): r for r in rows}
    random_ctr = by[("random", "on-policy")]
    assert random_ctr.value == pytest.approx(0.0038, abs=0.002)  # the eval half of random/all (SOURCE.md: 0.0038 overall)
    assert by[("Bernoulli TS", "on-policy")].value == pytest.approx(0.0042, abs=1e-6)
    for r in rows:
        assert r.ci_low <= r.value <= r.ci_high and 0 <= r.value < 0.05
    assert {r.method for r in rows} >= {"IPS", "SNIPS", "DR", "on-policy"}
