"""Off-policy estimators: agree with the true value on a synthetic bandit, refuse bad input."""

from __future__ import annotations

import numpy as np
import pytest

from policies import ope


def _bandit(n: int = 20_000, seed: int = 0):
    """Contextual bandit with 3 arms, uniform-ish logging, a deterministic target and its true value."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    means = np.stack([0.2 + 0.0 * x, 0.5 + 0.3 * x, 0.4 - 0.4 * x], axis=1)
    logging = np.array([0.5, 0.25, 0.25])
    a = rng.choice(3, size=n, p=logging)
    r = rng.normal(means[np.arange(n), a], 1.0)
    target_arm = np.argmax(means, axis=1)
    target_probs = (a == target_arm).astype(float)
    true_value = means[np.arange(n), target_arm].mean()
    probs = np.eye(3)[target_arm]
    return x, a, r, logging[a], target_probs, probs, means, true_value


def test_estimators_recover_true_value() -> None:
    """Over 20 seeded logs: IPS, SNIPS and DR unbiased (a biased reward model), DM off by the model's bias,
    and the 95% bootstrap intervals cover the truth most of the time."""
    errors, covered = {k: [] for k in ope.ESTIMATORS}, dict.fromkeys(ope.ESTIMATORS, 0)
    for seed in range(20):
        x, a, r, p, t, probs, means, truth = _bandit(n=10_000, seed=seed)
        noisy = means + 0.3
        ql, qt = ope.reward_model_terms(lambda c, act, noisy=noisy: noisy[np.arange(len(c)), act], x, a, probs)
        res = ope.evaluate(r, p, t, ql, qt, n_boot=200, seed=seed)
        for k, est in res.items():
            errors[k].append(est.value - truth)
            covered[k] += est.ci_low <= truth <= est.ci_high
        assert res["snips"].value == pytest.approx(ope.snips(r, p, t))
        assert res["ips"].value == pytest.approx(ope.ips(r, p, t))
        assert res["dr"].value == pytest.approx(ope.doubly_robust(r, p, t, ql, qt))
        assert res["dm"].value == pytest.approx(ope.direct_method(qt))
        assert 0 < res["ips"].effective_sample_size < len(r)
    for k in ("ips", "snips", "dr"):
        assert abs(np.mean(errors[k])) < 0.02, (k, np.mean(errors[k]))
        assert covered[k] >= 16, (k, covered[k])
    assert abs(np.mean(errors["dm"]) - 0.3) < 0.02
    assert covered["dm"] == 0


def test_on_policy_logs_give_the_mean() -> None:
    r = np.array([1.0, 2.0, 3.0, 6.0])
    p = np.ones(4)
    assert ope.ips(r, p, p) == pytest.approx(3.0)
    assert ope.snips(r, p, p) == pytest.approx(3.0)


def test_bootstrap_interval_narrows_with_data() -> None:
    rng = np.random.default_rng(1)
    small = rng.normal(size=100)
    big = rng.normal(size=10_000)
    lo1, hi1 = ope.bootstrap_ci(small, np.ones_like(small), n_boot=300)
    lo2, hi2 = ope.bootstrap_ci(big, np.ones_like(big), n_boot=300)
    assert hi2 - lo2 < (hi1 - lo1) / 5


@pytest.mark.parametrize(
    ("p", "t", "match"),
    [([0.0, 0.5], [1.0, 1.0], "propensities"), ([0.5, 1.5], [1.0, 1.0], "propensities"), ([0.5, 0.5], [2.0, 1.0], "target_probs")],
)
def test_bad_probabilities_are_refused(p, t, match) -> None:
    with pytest.raises(ope.OPEError, match=match):
        ope.ips(np.ones(2), np.array(p), np.array(t))


def test_length_mismatch_and_missing_model_are_refused() -> None:
    with pytest.raises(ope.OPEError, match="rows"):
        ope.snips(np.ones(3), np.ones(2), np.ones(2))
    with pytest.raises(ope.OPEError, match="reward model"):
        ope.evaluate(np.ones(2), np.ones(2), np.ones(2), estimators=("dr",))
