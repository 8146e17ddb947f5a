"""Off-policy evaluation: the value of a target policy estimated from decisions another policy logged.

Every estimator takes one row per logged decision (numpy arrays of equal length):

- ``rewards``: the outcome observed after the logged action;
- ``propensities``: the probability the *logging* (behaviour) policy gave that action, in (0, 1];
- ``target_probs``: the probability the *target* policy gives that same logged action in that context;
- for the model-based estimators, a reward model's prediction for the logged action
  (``predicted_logged``) and its expected reward under the target policy,
  ``predicted_target = sum_a pi(a|x) * r_hat(x, a)``.

Estimators (Dudik, Langford & Li 2011; Swaminathan & Joachims 2015):

==========  ==========================================================================================
IPS         mean(w * r), with w = target / propensity; unbiased, high variance
SNIPS       sum(w * r) / sum(w); self-normalised, slightly biased, much lower variance
DM          mean(predicted_target); as good as the reward model
DR          mean(predicted_target + w * (r - predicted_logged)); unbiased if either part is right
==========  ==========================================================================================

:func:`evaluate` returns all of them with percentile bootstrap confidence intervals (resampling rows,
vectorised: one ``(n_boot, n)`` index matrix evaluated in chunks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ESTIMATORS",
    "Estimate",
    "OPEError",
    "RewardModel",
    "bootstrap_ci",
    "direct_method",
    "doubly_robust",
    "evaluate",
    "importance_weights",
    "ips",
    "reward_model_terms",
    "snips",
]


class OPEError(ValueError):
    """Inputs that off-policy evaluation cannot use (lengths differ, propensities outside (0, 1], ...)."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """One estimator's value with its bootstrap confidence interval."""

    estimator: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    effective_sample_size: float

    def as_dict(self) -> dict[str, float | int | str]:
        """A plain dict (for JSON and tables)."""
        return {
            "estimator": self.estimator,
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n": self.n,
            "effective_sample_size": self.effective_sample_size,
        }


def _as_1d(name: str, x: np.ndarray | list[float], n: int | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise OPEError(f"{name} must be one value per logged decision (1-d), got shape {a.shape}")
    if n is not None and a.shape[0] != n:
        raise OPEError(f"{name} has {a.shape[0]} rows but rewards has {n}; pass one value per logged decision")
    if not np.all(np.isfinite(a)):
        raise OPEError(f"{name} contains NaN or infinite values; drop or fix those rows")
    return a


def importance_weights(propensities: np.ndarray, target_probs: np.ndarray) -> np.ndarray:
    """``target / propensity`` per row, after checking propensities lie in (0, 1] and targets in [0, 1].

    :param propensities: the behaviour policy's probability of the logged action.
    :param target_probs: the target policy's probability of the same action.
    :return: the importance weights.
    """
    p = _as_1d("propensities", propensities)
    t = _as_1d("target_probs", target_probs, p.shape[0])
    if np.any(p <= 0) or np.any(p > 1):
        raise OPEError("propensities must lie in (0, 1]; log the probability the behaviour policy gave its action")
    if np.any(t < 0) or np.any(t > 1):
        raise OPEError("target_probs must lie in [0, 1]; pass the target policy's probability of the logged action")
    return t / p


def ips(rewards: np.ndarray, propensities: np.ndarray, target_probs: np.ndarray) -> float:
    """Inverse propensity scoring: ``mean(w * r)``.

    :param rewards: observed reward per logged decision.
    :param propensities: behaviour probability of the logged action.
    :param target_probs: target probability of the logged action.
    :return: the estimated value per decision of the target policy.
    """
    r = _as_1d("rewards", rewards)
    w = importance_weights(propensities, target_probs)
    _check_len(r, w)
    return float(np.mean(w * r)) if r.size else float("nan")


def snips(rewards: np.ndarray, propensities: np.ndarray, target_probs: np.ndarray) -> float:
    """Self-normalised IPS: ``sum(w * r) / sum(w)`` (NaN when the target never agrees with the log).

    :param rewards: observed reward per logged decision.
    :param propensities: behaviour probability of the logged action.
    :param target_probs: target probability of the logged action.
    :return: the estimated value per decision of the target policy.
    """
    r = _as_1d("rewards", rewards)
    w = importance_weights(propensities, target_probs)
    _check_len(r, w)
    s = w.sum()
    return float((w * r).sum() / s) if s > 0 else float("nan")


def direct_method(predicted_target: np.ndarray) -> float:
    """Direct method: the reward model's mean expected reward under the target policy.

    :param predicted_target: ``sum_a pi(a|x) r_hat(x, a)`` per logged context.
    :return: the estimated value per decision of the target policy.
    """
    q = _as_1d("predicted_target", predicted_target)
    return float(np.mean(q)) if q.size else float("nan")


def doubly_robust(
    rewards: np.ndarray,
    propensities: np.ndarray,
    target_probs: np.ndarray,
    predicted_logged: np.ndarray,
    predicted_target: np.ndarray,
) -> float:
    """Doubly robust: ``mean(q_target + w * (r - q_logged))``.

    :param rewards: observed reward per logged decision.
    :param propensities: behaviour probability of the logged action.
    :param target_probs: target probability of the logged action.
    :param predicted_logged: the reward model's prediction for the logged action.
    :param predicted_target: the reward model's expected reward under the target policy.
    :return: the estimated value per decision of the target policy.
    """
    r = _as_1d("rewards", rewards)
    w = importance_weights(propensities, target_probs)
    _check_len(r, w)
    ql = _as_1d("predicted_logged", predicted_logged, r.shape[0])
    qt = _as_1d("predicted_target", predicted_target, r.shape[0])
    return float(np.mean(qt + w * (r - ql))) if r.size else float("nan")


def _check_len(r: np.ndarray, w: np.ndarray) -> None:
    if r.shape[0] != w.shape[0]:
        raise OPEError(f"rewards has {r.shape[0]} rows but propensities has {w.shape[0]}; pass one value per logged decision")


# Row-wise forms used by the bootstrap: (numerator terms, denominator terms) so that a resample's estimate
# is sum(num[idx]) / sum(den[idx]). IPS/DM/DR use den = 1.
def _terms(
    name: str, r: np.ndarray, w: np.ndarray, ql: np.ndarray | None, qt: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    ones = np.ones_like(r)
    if name == "ips":
        return w * r, ones
    if name == "snips":
        return w * r, w
    if name == "dm":
        if qt is None:
            raise OPEError("the direct method needs predicted_target (a reward model's value of the target policy)")
        return qt, ones
    if name == "dr":
        if qt is None or ql is None:
            raise OPEError("doubly robust needs predicted_logged and predicted_target from a reward model")
        return qt + w * (r - ql), ones
    raise OPEError(f"unknown estimator {name!r}; choose from {', '.join(ESTIMATORS)}")


ESTIMATORS: tuple[str, ...] = ("ips", "snips", "dm", "dr")


def bootstrap_ci(
    numerator: np.ndarray,
    denominator: np.ndarray,
    n_boot: int = 1000,
    alpha: float = 0.05,
    rng: np.random.Generator | int | None = 0,
    chunk: int = 50,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``sum(num) / sum(den)`` resampling rows with replacement.

    :param numerator: per-row numerator terms.
    :param denominator: per-row denominator terms (ones for a plain mean).
    :param n_boot: bootstrap resamples.
    :param alpha: 1 - coverage (0.05 gives a 95% interval).
    :param rng: a generator or a seed.
    :param chunk: resamples evaluated per vectorised batch (bounds memory at ``chunk * n`` indices).
    :return: (low, high).
    """
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    n = num.shape[0]
    if n == 0:
        return float("nan"), float("nan")
    g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    stats = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        idx = g.integers(0, n, size=(k, n))
        d = den[idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            stats[start : start + k] = num[idx].sum(axis=1) / d
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def evaluate(
    rewards: np.ndarray,
    propensities: np.ndarray,
    target_probs: np.ndarray,
    predicted_logged: np.ndarray | None = None,
    predicted_target: np.ndarray | None = None,
    estimators: tuple[str, ...] | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Every requested estimator with a bootstrap CI; DM and DR only when reward-model predictions are given.

    :param rewards: observed reward per logged decision.
    :param propensities: behaviour probability of the logged action, in (0, 1].
    :param target_probs: target probability of the logged action, in [0, 1].
    :param predicted_logged: reward model's prediction for the logged action (DR).
    :param predicted_target: reward model's expected reward under the target policy (DM, DR).
    :param estimators: subset of ``("ips", "snips", "dm", "dr")``; default all that the inputs allow.
    :param n_boot: bootstrap resamples (0 skips the intervals: they are NaN).
    :param alpha: 1 - coverage.
    :param seed: bootstrap seed (each estimator uses the same resamples, so their CIs are comparable).
    :return: estimator name -> :class:`Estimate`.
    """
    r = _as_1d("rewards", rewards)
    w = importance_weights(propensities, target_probs)
    _check_len(r, w)
    ql = None if predicted_logged is None else _as_1d("predicted_logged", predicted_logged, r.shape[0])
    qt = None if predicted_target is None else _as_1d("predicted_target", predicted_target, r.shape[0])
    if estimators is None:
        estimators = ("ips", "snips") + (("dm",) if qt is not None else ()) + (("dr",) if qt is not None and ql is not None else ())
    ess = float(w.sum() ** 2 / (w**2).sum()) if np.any(w > 0) else 0.0
    out: dict[str, Estimate] = {}
    for name in estimators:
        num, den = _terms(name, r, w, ql, qt)
        s = den.sum()
        value = float(num.sum() / s) if s > 0 else float("nan")
        lo, hi = bootstrap_ci(num, den, n_boot=n_boot, alpha=alpha, rng=seed) if n_boot > 0 else (float("nan"), float("nan"))
        out[name] = Estimate(name, value, lo, hi, int(r.shape[0]), ess)
    return out


# A reward model for DM/DR: anything mapping (contexts, actions) -> predicted reward.
RewardModel = Callable[[np.ndarray, np.ndarray], np.ndarray]


def reward_model_terms(
    model: RewardModel, contexts: np.ndarray, logged_actions: np.ndarray, target_action_probs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(predicted_logged, predicted_target)`` from a reward model over ``n_actions`` discrete actions.

    :param model: ``model(contexts, actions) -> rewards``, vectorised over rows.
    :param contexts: features per logged decision, shape ``(n, d)``.
    :param logged_actions: logged action index per row, shape ``(n,)``.
    :param target_action_probs: the target policy's distribution per row, shape ``(n, n_actions)``.
    :return: predictions for the logged action, and the target-weighted expected prediction.
    """
    probs = np.asarray(target_action_probs, dtype=np.float64)
    n, k = probs.shape
    actions = np.asarray(logged_actions).astype(np.int64)
    per_action = np.stack([model(contexts, np.full(n, a, dtype=np.int64)) for a in range(k)], axis=1)
    return per_action[np.arange(n), actions], (probs * per_action).sum(axis=1)
