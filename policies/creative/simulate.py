"""The bandit in a simulator: R independent tests of K variants with known click rates, vectorised over R.

Serving reads the posteriors in rounds of ``batch`` impressions (as the store is updated by the agent), so in a
round the Thompson choices are a multinomial draw with the arms' P(best) (Monte Carlo, ``n_draws``); after each round a test promotes its
arm with P(best) >= ``threshold`` (every arm shown >= ``min_impressions``) and serves only that arm from then on.
Uniform A/B splitting is the baseline: every arm gets 1/K of the traffic for the whole horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policies.creative.bandit import win_probabilities

DEFAULT_CTRS = (*tuple(float(x) for x in np.round(np.linspace(0.03, 0.04, 9), 5)), 0.05)
"""Ten variants: nine between 3.0% and 4.0%, the best at 5.0% (25% above the second best)."""


@dataclass(frozen=True, slots=True)
class SimResult:
    """What R replications of one test did over ``horizon`` impressions."""

    reps: int
    horizon: int
    promoted_arm: np.ndarray  # (R,), -1 where nothing was promoted
    promoted_at: np.ndarray  # (R,), impressions at promotion (horizon + 1 where none)
    regret_ts: np.ndarray  # (R,), expected clicks lost vs always the best, Thompson + promotion
    regret_uniform: float  # expected clicks lost by uniform splitting over the same horizon
    best: int

    def found_best_by(self, impressions: int) -> float:
        """Share of replications that promoted the true best arm within ``impressions``."""
        return float(np.mean((self.promoted_arm == self.best) & (self.promoted_at <= impressions)))

    def impressions_for(self, share: float = 0.95) -> int | None:
        """Fewest impressions by which ``share`` of replications promoted the true best arm (None: not reached)."""
        at = np.sort(np.where(self.promoted_arm == self.best, self.promoted_at, np.iinfo(np.int64).max))
        need = int(np.ceil(share * self.reps)) - 1
        value = at[need]
        return None if value > self.horizon else int(value)

    @property
    def wrong_promotions(self) -> float:
        return float(np.mean((self.promoted_arm >= 0) & (self.promoted_arm != self.best)))


def simulate_tests(
    ctrs: tuple[float, ...] = DEFAULT_CTRS,
    reps: int = 500,
    horizon: int = 100_000,
    batch: int = 1000,
    threshold: float = 0.95,
    min_impressions: int = 100,
    n_draws: int = 500,
    seed: int = 0,
) -> SimResult:
    """Run ``reps`` seeded tests of Thompson sampling with auto-promotion (see the module docstring)."""
    rng = np.random.default_rng(seed)
    p = np.asarray(ctrs, dtype=np.float64)
    k, best = p.size, int(np.argmax(p))
    gap = p[best] - p
    alpha, beta = np.ones((reps, k)), np.ones((reps, k))
    promoted = np.full(reps, -1)
    promoted_at = np.full(reps, horizon + 1)
    regret = np.zeros(reps)
    p_best = np.full((reps, k), 1.0 / k)  # P(best) of every test, refreshed after each round
    for start in range(0, horizon, batch):
        n = min(batch, horizon - start)
        done = promoted >= 0
        regret[done] += n * gap[promoted[done]]
        active = np.flatnonzero(~done)
        if active.size == 0:
            continue
        shown = rng.multinomial(n, p_best[active])
        clicks = rng.binomial(shown, p)
        alpha[active] += clicks
        beta[active] += shown - clicks
        regret[active] += shown @ gap
        p_best[active] = win_probabilities(alpha[active], beta[active], rng, n_draws)
        impressions = alpha[active] + beta[active] - 2
        ok = (p_best[active].max(axis=1) >= threshold) & (impressions.min(axis=1) >= min_impressions)
        promoted[active[ok]] = p_best[active[ok]].argmax(axis=1)
        promoted_at[active[ok]] = start + n
    return SimResult(reps, horizon, promoted, promoted_at, regret, float(horizon * gap.mean()), best)
