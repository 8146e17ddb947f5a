"""Off-policy evaluation of a sequential policy on logged trajectories: a target policy's expected return per
customer over the logged days, estimated from the decisions another policy took (one trajectory per customer).

With per-decision importance weights ``w_it = prod_{s<=t} pi(a_is | x_is) / mu_is`` (``mu`` the logged propensity,
``pi`` the target's probability of the action carried out, guardrails included):

==========  =====================================================================================================
IS          per-decision importance sampling (Precup, Sutton & Singh 2000): ``1/N sum_i sum_t w_it r_it``
SNIPS       its self-normalised form: ``sum_t (n_t/N) sum_i w_it r_it / sum_i w_it``
DM          fitted Q evaluation (Le, Voloshin & Yue 2019) with ridge models per action: ``1/N sum_i V(x_i0)``
DR          weighted doubly robust (Thomas & Brunskill 2016), the same Q as control variate
==========  =====================================================================================================

``n_t`` is the number of trajectories with a ``t``-th decision. Confidence intervals are percentile bootstraps
over customers (whole trajectories are resampled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from environment.acting import proposal_distribution
from environment.belief_fold import BeliefModel, visible_from_observation
from environment.belief_planner import ActsOnBelief
from environment.config import load_market_config
from environment.guardrails import executed_distribution
from environment.population import N_ACTIONS
from policies.ope import Estimate, OPEError
from policies.ope_log import LoggedDecisions

ESTIMATORS = ("is", "snips", "dm", "dr")


@dataclass(frozen=True, slots=True)
class Trajectories:
    """Logged decisions as (customers x steps) matrices, padded where a trajectory is shorter."""

    present: np.ndarray  # (N, T) bool
    weight: np.ndarray  # (N, T) w_it
    previous: np.ndarray  # (N, T) w_i,t-1 (1 at t = 0)
    reward: np.ndarray  # (N, T)
    q_logged: np.ndarray  # (N, T) Q(x_it, a_it)
    v_target: np.ndarray  # (N, T) V(x_it) under the target

    @property
    def customers(self) -> int:
        return int(self.present.shape[0])


def target_probabilities(policy: Any, logged: LoggedDecisions, chunk: int = 20_000) -> np.ndarray:
    """(n, 6) the probability the target carries out each action at every logged decision (guardrails included).
    A policy that acts on the belief reads the belief each decision logged (in chunks: the planner's lookahead
    holds a few arrays per decision)."""
    if not isinstance(policy, ActsOnBelief):
        return executed_distribution(proposal_distribution(policy, logged.obs), logged.allowed)
    if logged.belief is None:
        raise OPEError(f"{getattr(policy, 'name', 'the policy')} acts on the belief over hidden journey states, and "
                       "these logged decisions do not carry it (context.belief)")
    model = BeliefModel.of(load_market_config())
    out = np.empty((len(logged), N_ACTIONS))
    for start in range(0, len(logged), chunk):
        part = slice(start, start + chunk)
        obs = logged.obs[part]
        bound = policy.on_belief(logged.belief[part], visible_from_observation(obs, model))
        out[part] = executed_distribution(proposal_distribution(bound, obs), logged.allowed[part])
    return out


def _features(obs: np.ndarray) -> np.ndarray:
    day = obs[:, 13:14].astype(np.float64)
    return np.column_stack([np.ones(len(obs)), obs.astype(np.float64), day**2, day**3])


def fitted_q(logged: LoggedDecisions, target: np.ndarray, iterations: int | None = None, ridge: float = 1.0) -> np.ndarray:
    """(n, 6) Q of the target at every logged decision, by fitted Q evaluation: ridge models per action, refitted
    to ``r + V(next decision)`` once per step of the longest trajectory (the design matrices are factored once)."""
    phi = _features(logged.obs)
    n = len(logged)
    nxt = np.full(n, -1)
    follows = logged.customer[1:] == logged.customer[:-1]
    nxt[:-1][follows] = np.arange(1, n)[follows]
    reg = ridge * np.eye(phi.shape[1])
    reg[0, 0] = 0.0
    fits = {}
    for a in range(N_ACTIONS):
        rows = logged.action == a
        if rows.sum() >= phi.shape[1] * 2:
            fits[a] = (rows, np.linalg.inv(phi[rows].T @ phi[rows] + reg))
    q = np.zeros((n, N_ACTIONS))
    for _ in range(iterations or int(logged.step.max()) + 1):
        v = (target * q).sum(axis=1)
        y = logged.reward + np.where(nxt >= 0, v[np.maximum(nxt, 0)], 0.0)
        fitted = np.empty_like(q)
        for a in range(N_ACTIONS):
            if a in fits:
                rows, inverse = fits[a]
                fitted[:, a] = phi @ (inverse @ (phi[rows].T @ y[rows]))
            else:  # an action (almost) never logged: its Q is the mean target
                rows = logged.action == a
                fitted[:, a] = y[rows].mean() if rows.any() else y.mean()
        q = fitted
    return q


def trajectories(logged: LoggedDecisions, target: np.ndarray, q: np.ndarray) -> Trajectories:
    """The per-customer matrices of the estimators, from the target's probabilities and Q at each decision."""
    rows = np.arange(len(logged))
    ratio = target[rows, logged.action] / logged.propensity
    n, t = len(logged.customers), int(logged.step.max()) + 1
    at = (logged.customer, logged.step)
    present = np.zeros((n, t), dtype=bool)
    present[at] = True
    step_ratio = np.ones((n, t))
    step_ratio[at] = ratio
    weight = np.where(present, np.cumprod(step_ratio, axis=1), 0.0)
    previous = np.where(present, np.concatenate([np.ones((n, 1)), weight[:, :-1]], axis=1), 0.0)

    def matrix(values: np.ndarray) -> np.ndarray:
        out = np.zeros((n, t))
        out[at] = values
        return out

    return Trajectories(present, weight, previous, matrix(logged.reward), matrix(q[rows, logged.action]),
                        matrix((target * q).sum(axis=1)))


def _estimates(tr: Trajectories, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Every estimator for each row of ``counts`` (B, N): how often each customer is drawn (1s: the data as is)."""
    total = counts.sum(axis=1, keepdims=True)
    n_t = counts @ tr.present
    share = n_t / total

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)

    w_sum = counts @ tr.weight
    prev_sum = counts @ tr.previous
    weighted_r = counts @ (tr.weight * tr.reward)
    return {
        "is": (weighted_r / total).sum(axis=1),
        "snips": (share * ratio(weighted_r, w_sum)).sum(axis=1),
        "dm": (counts @ tr.v_target[:, 0]) / total[:, 0],
        "dr": (share * (ratio(counts @ (tr.weight * (tr.reward - tr.q_logged)), w_sum)
                        + ratio(counts @ (tr.previous * tr.v_target), prev_sum))).sum(axis=1),
    }


def evaluate_trajectories(policy: Any, logged: LoggedDecisions, n_boot: int = 1000, alpha: float = 0.05,
                          seed: int = 0, chunk: int = 100) -> dict[str, Estimate]:
    """Every estimator of ``policy``'s value per customer, with percentile bootstrap CIs over customers."""
    if len(logged) == 0:
        raise OPEError("no logged decisions to evaluate on")
    if np.any(logged.propensity <= 0) or np.any(logged.propensity > 1):
        raise OPEError("logged propensities must lie in (0, 1]")
    target = target_probabilities(policy, logged)
    tr = trajectories(logged, target, fitted_q(logged, target))
    n = tr.customers
    point = {k: float(v[0]) for k, v in _estimates(tr, np.ones((1, n))).items()}
    final = tr.weight[np.arange(n), tr.present.sum(axis=1) - 1]
    ess = float(final.sum() ** 2 / (final**2).sum()) if np.any(final > 0) else 0.0
    draws = _bootstrap(tr, n_boot, seed, chunk)
    out = {}
    for name in ESTIMATORS:
        lo, hi = (np.quantile(draws[name], [alpha / 2, 1 - alpha / 2]) if n_boot else (np.nan, np.nan))
        out[name] = Estimate(name, point[name], float(lo), float(hi), n, ess)
    return out


def compare_trajectories(candidate: Any, current: Any, logged: LoggedDecisions, n_boot: int = 500, alpha: float = 0.05,
                         seed: int = 0) -> dict[str, tuple[Estimate, Estimate, float, float]]:
    """Both policies' estimates on the same log, and the interval of their difference (candidate - current) from
    the same bootstrap resamples: ``{estimator: (candidate, current, low, high)}``."""
    estimates, draws = [], []
    for policy in (candidate, current):
        target = target_probabilities(policy, logged)
        tr = trajectories(logged, target, fitted_q(logged, target))
        estimates.append({k: float(v[0]) for k, v in _estimates(tr, np.ones((1, tr.customers))).items()})
        draws.append(_bootstrap(tr, n_boot, seed, 100))
    out = {}
    n = len(logged.customers)
    for name in ESTIMATORS:
        diff = draws[0][name] - draws[1][name]
        lo, hi = np.quantile(diff, [alpha / 2, 1 - alpha / 2]) if n_boot else (np.nan, np.nan)
        out[name] = (Estimate(name, estimates[0][name], np.nan, np.nan, n, np.nan),
                     Estimate(name, estimates[1][name], np.nan, np.nan, n, np.nan), float(lo), float(hi))
    return out


def _bootstrap(tr: Trajectories, n_boot: int, seed: int, chunk: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = tr.customers
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ESTIMATORS}
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=k).astype(np.float64)
        for name, values in _estimates(tr, counts).items():
            parts[name].append(values)
    return {k: np.concatenate(v) if v else np.array([]) for k, v in parts.items()}


def behaviour_value(logged: LoggedDecisions) -> float:
    """The logged policy's own return per customer (what its trajectories earned)."""
    return float(logged.reward.sum() / len(logged.customers))
