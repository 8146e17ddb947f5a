"""Off-policy evaluation on data sets: the simulator's bandit cut and the Hillstrom experiment (the engine's own
decision log is read by :mod:`policies.ope_log` and evaluated by :mod:`policies.ope_trajectory`).

- :func:`simulator_ope`: a contextual bandit cut from the journey simulator (the day-0 action of each customer;
  then a fixed continuation policy for the rest of the 60 days; reward = the customer's 60-day return), logged by a
  uniform-random behaviour policy; estimates a target's value and compares it with its on-policy value.
- :func:`hillstrom_ope`: learn a personalized arm policy (men's e-mail / women's e-mail / none) on one half of
  Hillstrom, estimate its spend per customer on the other half by SNIPS and DR with bootstrap CIs.

Reward models for DM/DR are per-action ridge regressions, cross-fitted (2 folds) on the evaluation data.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from environment.acting import proposal_distribution
from environment.config import load_market_config
from environment.guardrails import executed_distribution
from environment.heuristics import EngagementLadder
from policies import ope

logger = logging.getLogger(__name__)

ACTIONS = ("wait", "email", "sms", "push", "ad", "offer")


def _ridge(x: np.ndarray, y: np.ndarray, lam: float = 1.0) -> np.ndarray:
    xb = np.column_stack([np.ones(len(x)), x])
    reg = lam * np.eye(xb.shape[1])
    reg[0, 0] = 0.0
    return np.linalg.solve(xb.T @ xb + reg, xb.T @ y)


def cross_fit_action_models(x: np.ndarray, actions: np.ndarray, rewards: np.ndarray, n_actions: int, seed: int = 0) -> np.ndarray:
    """(n, n_actions) predicted reward of every action per row, from per-action ridge models fitted on the other fold."""
    n = len(x)
    fold = np.random.default_rng(seed).integers(0, 2, n)
    q = np.zeros((n, n_actions))
    for f in (0, 1):
        train, test = fold != f, fold == f
        for a in range(n_actions):
            rows = train & (actions == a)
            if rows.sum() < x.shape[1] + 2:
                q[test, a] = rewards[train].mean() if train.any() else 0.0
                continue
            beta = _ridge(x[rows], rewards[rows])
            q[test, a] = beta[0] + x[test] @ beta[1:]
    return q


def estimate(
    rewards: np.ndarray, propensities: np.ndarray, actions: np.ndarray, target_probs_all: np.ndarray, q_all: np.ndarray,
    n_boot: int = 1000, seed: int = 0,
) -> dict[str, ope.Estimate]:
    """All four estimators from the per-row target distribution ``(n, k)`` and reward predictions ``(n, k)``."""
    rows = np.arange(len(rewards))
    return ope.evaluate(
        rewards, propensities, target_probs_all[rows, actions], q_all[rows, actions], (target_probs_all * q_all).sum(axis=1),
        n_boot=n_boot, seed=seed,
    )


# ---- the simulator ------------------------------------------------------------------------------------


def _first_action_episode(
    config: Any, n: int, seed: int, first: Any, continuation: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Day 0 by ``first(obs, mask) -> actions``, then ``continuation``; returns obs0, mask0, actions0, returns."""
    from environment.vector import JourneyVectorEnv  # lazy: loads torch and stable-baselines3

    env = JourneyVectorEnv(n, config)
    obs, info = env.reset(seed=seed)
    obs0, mask0 = obs.copy(), info["action_mask"].copy()
    a0 = np.asarray(first(obs0, mask0)).reshape(n)
    total = np.zeros(n)
    obs, r, *_ = env.step(a0)
    total += r
    for _ in range(1, env.horizon):
        a, _ = continuation.predict(obs, deterministic=True)
        obs, r, *_ = env.step(a)
        total += r
    return obs0, mask0, a0, total


def _target_distribution(target: Any, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """What the target carries out at each context: its proposals (environment.acting), forbidden ones as wait."""
    return executed_distribution(proposal_distribution(target, obs), mask)


def simulator_ope(
    target: Any, n_customers: int = 200_000, seed: int = 0, continuation: Any = None, config: Any = None, n_boot: int = 500
) -> dict[str, Any]:
    """Logs of a uniform-random day-0 behaviour vs the target's on-policy value on fresh customers.

    :param target: a predictor (``action_probabilities`` used when present, else its deterministic action).
    :param n_customers: logged customers (and on-policy customers).
    :param seed: the logged customers' seed; the on-policy run uses ``seed + 1``.
    :param continuation: the policy after day 0 (default: the tuned engagement ladder).
    :return: ``{"true": float, "true_stderr": float, "estimates": {name: Estimate}, "behaviour": float}``.
    """
    config = config or load_market_config()
    continuation = continuation or EngagementLadder()
    rng = np.random.default_rng(seed)

    def uniform(obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        g = rng.random(mask.shape) * mask
        return g.argmax(axis=1)

    obs, mask, actions, returns = _first_action_episode(config, n_customers, seed, uniform, continuation)
    propensity = 1.0 / mask.sum(axis=1)
    probs = _target_distribution(target, obs, mask)
    q = cross_fit_action_models(obs.astype(np.float64), actions, returns, mask.shape[1], seed)
    est = estimate(returns, propensity, actions, probs, q, n_boot=n_boot, seed=seed)

    def on_policy(o: np.ndarray, m: np.ndarray) -> np.ndarray:
        p = _target_distribution(target, o, m)
        u = rng.random((len(o), 1))
        return np.minimum((p.cumsum(axis=1) < u).sum(axis=1), p.shape[1] - 1)

    *_, true_returns = _first_action_episode(config, n_customers, seed + 1, on_policy, continuation)
    return {
        "true": float(true_returns.mean()), "true_stderr": float(true_returns.std(ddof=1) / np.sqrt(n_customers)),
        "behaviour": float(returns.mean()), "estimates": est,
    }


# ---- Hillstrom ----------------------------------------------------------------------------------------

HILLSTROM_ARMS = ("Mens E-Mail", "Womens E-Mail", "No E-Mail")


def hillstrom_features(df: Any) -> np.ndarray:
    """Numeric features of Hillstrom's pre-treatment columns."""
    cols = [
        df["recency"].to_numpy(float) / 12.0,
        np.log(df["history"].to_numpy(float)) / 8.2,
        df["mens"].to_numpy(float),
        df["womens"].to_numpy(float),
        df["newbie"].to_numpy(float),
    ]
    for zone in ("Urban", "Surburban"):
        cols.append((df["zip_code"] == zone).to_numpy(float))
    for ch in ("Web", "Phone"):
        cols.append((df["channel"] == ch).to_numpy(float))
    return np.column_stack(cols)


def hillstrom_ope(path: str | Path, seed: int = 0, n_boot: int = 1000) -> dict[str, Any]:
    """Personalized arm policy learned on a random half (per-arm gradient-boosted spend models, argmax), valued
    on the other half by SNIPS and DR (reward model: the training half's models) with bootstrap CIs, beside
    each single arm's SNIPS value on the same half. Propensity 1/3 per arm (the randomized design)."""
    import xgboost as xgb  # lazy: xgboost is heavy

    df = pd.read_csv(path)
    x = hillstrom_features(df)
    arm = df["segment"].map({a: i for i, a in enumerate(HILLSTROM_ARMS)}).to_numpy()
    if np.any(pd.isna(arm)):
        raise ValueError(f"{path}: unknown segment values; expected {HILLSTROM_ARMS}")
    arm = arm.astype(np.int64)
    spend = df["spend"].to_numpy(float)
    half = np.random.default_rng(seed).permutation(len(df)) < len(df) // 2
    train, test = half, ~half

    q_test = np.zeros((test.sum(), 3))
    for a in range(3):
        rows = train & (arm == a)
        params = {"max_depth": 3, "eta": 0.03, "subsample": 0.8, "min_child_weight": 50, "lambda": 10.0, "nthread": 2, "seed": seed}
        booster = xgb.train(params, xgb.DMatrix(x[rows], label=spend[rows]), num_boost_round=200)
        q_test[:, a] = booster.predict(xgb.DMatrix(x[test]))
    choice = q_test.argmax(axis=1)
    probs = np.eye(3)[choice]
    r, a_t = spend[test], arm[test]
    p = np.full(len(r), 1 / 3)
    est = estimate(r, p, a_t, probs, q_test, n_boot=n_boot, seed=seed)
    single = {HILLSTROM_ARMS[k]: ope.evaluate(r, p, (a_t == k).astype(float), estimators=("snips",), n_boot=n_boot, seed=seed)["snips"]
              for k in range(3)}
    shares = {HILLSTROM_ARMS[k]: float((choice == k).mean()) for k in range(3)}
    return {"estimates": est, "single_arms": single, "arm_shares": shares, "n_test": int(test.sum())}
