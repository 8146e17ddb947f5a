"""Beta-Bernoulli Thompson sampling as pure numpy batch functions.

With a Beta(alpha_k, beta_k) posterior on each arm's click rate, Thompson sampling picks arm k with
probability P(k is best | data): the same number that drives auto-promotion. Both are estimated by Monte
Carlo from posterior draws. To make the logged propensity *exactly* the probability of the logged choice,
:func:`thompson_select` draws the arm from the Monte Carlo estimate itself (smoothed so that every arm keeps
a positive probability), so off-policy estimators can trust it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Choice:
    """One bandit decision: the arm, the probability it had of being chosen, and every arm's probability."""

    arm: int
    propensity: float
    probabilities: np.ndarray


def win_probabilities(alpha: np.ndarray, beta: np.ndarray, rng: np.random.Generator, n_draws: int = 4000) -> np.ndarray:
    """Monte Carlo P(arm is best) under independent Beta posteriors.

    :param alpha: ``(..., K)`` successes + prior.
    :param beta: ``(..., K)`` failures + prior.
    :param n_draws: posterior draws per estimate.
    :return: ``(..., K)`` probabilities summing to 1 along the last axis.
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    draws = rng.beta(alpha[..., None, :], beta[..., None, :], size=(*alpha.shape[:-1], n_draws, alpha.shape[-1]))
    best = draws.argmax(axis=-1)
    k = alpha.shape[-1]
    counts = (best[..., None] == np.arange(k)).sum(axis=-2)
    return counts / n_draws


def selection_probabilities(alpha: np.ndarray, beta: np.ndarray, rng: np.random.Generator, n_draws: int = 4000) -> np.ndarray:
    """The probabilities the bandit serves each arm with: P(best) with add-one smoothing, so every arm > 0."""
    wins = win_probabilities(alpha, beta, rng, n_draws) * n_draws
    k = np.asarray(alpha).shape[-1]
    return (wins + 1.0) / (n_draws + k)


def thompson_select(alpha: np.ndarray, beta: np.ndarray, rng: np.random.Generator, n_draws: int = 4000) -> Choice:
    """Pick one arm by Thompson sampling (probability matching) and return it with its exact propensity."""
    probs = selection_probabilities(alpha, beta, rng, n_draws)
    arm = int(rng.choice(probs.shape[-1], p=probs))
    return Choice(arm=arm, propensity=float(probs[arm]), probabilities=probs)


def thompson_batch(alpha: np.ndarray, beta: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """Plain Thompson choices for many impressions at once (the simulator): one posterior draw per arm per
    impression, then argmax.

    :param alpha: ``(R, K)`` posteriors of R independent bandits.
    :param n: impressions per bandit served from these posteriors.
    :return: ``(R, n)`` chosen arms.
    """
    draws = rng.beta(alpha[:, None, :], beta[:, None, :], size=(alpha.shape[0], n, alpha.shape[1]))
    return draws.argmax(axis=-1)


def promotable(p_best: np.ndarray, impressions: np.ndarray, threshold: float = 0.95, min_impressions: int = 100) -> int | None:
    """The arm to promote, or None: its P(best) reaches ``threshold`` and every arm has ``min_impressions``."""
    p_best = np.asarray(p_best)
    if p_best.size == 0 or np.min(impressions) < min_impressions:
        return None
    arm = int(p_best.argmax())
    return arm if p_best[arm] >= threshold else None
