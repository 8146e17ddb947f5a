"""Heuristic journey baselines, their evaluation and their grid search.

Every policy implements SB3's ``predict(obs, state=None, episode_start=None, deterministic=False)`` on a batch
of observations (N, 24) and reads only the observation (see :class:`~environment.journey.JourneyEnv`).
The defaults are the grid-search winners on the calibrated market (``ame sim tune``, seed 0, 4,000 customers).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from environment.acting import EnvBound, Predictor, choose, legal_from_observation
from environment.calibrate import _logistic_fit
from environment.config import MarketConfig, load_market_config
from environment.population import AD, EMAIL, OFFER, PUSH, SMS, WAIT

logger = logging.getLogger(__name__)

# observation columns (JourneyEnv's table)
_CONSENT_EMAIL, _CONSENT_SMS, _CONSENT_PUSH, _CAPPED, _DAY = 9, 10, 11, 12, 13
_SINCE_CONTACT, _SINCE_CLICK, _SINCE_VISIT, _SINCE_PURCHASE = 14, 16, 17, 18
_DAYS = 30.0



def _days(obs: np.ndarray, column: int) -> np.ndarray:
    return np.rint(obs[:, column] * _DAYS)


def _can(obs: np.ndarray, consent_column: int | None = None) -> np.ndarray:
    free = obs[:, _CAPPED] < 0.5
    return free if consent_column is None else free & (obs[:, consent_column] > 0.5)


def _batch(obs: np.ndarray) -> np.ndarray:
    return obs[None, :] if obs.ndim == 1 else obs


def _unbatch(actions: np.ndarray, obs: np.ndarray) -> np.ndarray:
    return actions[0] if obs.ndim == 1 else actions


TUNED_PROPENSITY_WEIGHTS = (
    -6.7491, -1.6071, 0.7924, 0.8338, 0.5085, -0.6974, 0.2825, -0.1635, 0.0118, 0.1782, 0.9363, 0.1143, -0.0335,
    -0.2051, 0.0315, 0.5963, -0.2753, -0.3247, -0.9763, 1.5060, -0.8206, -0.5082, -2.1941, 1.4738, -1.6570,
)
"""The propensity model fitted by :func:`fit_propensity_weights` on the calibrated market (intercept first)."""


def journey_baselines() -> list[Predictor]:
    """The tuned heuristic baselines (the grid-search winners of :func:`tune_journey_heuristics`)."""
    return [EmailEveryK(), EngagementLadder(), PropensityThreshold(), OfferEveryK()]


@dataclass(frozen=True, slots=True)
class EmailEveryK:
    """E-mail every ``k`` days (when consent and the cap allow); never anything else."""

    k: int = 3
    name: str = "email_every_k"

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        obs = _batch(np.asarray(observation))
        send = _can(obs, _CONSENT_EMAIL) & (_days(obs, _SINCE_CONTACT) >= self.k)
        return _unbatch(np.where(send, EMAIL, WAIT), observation), state


_FALLBACK_ACTIONS = {"none": (WAIT, None), "sms": (SMS, _CONSENT_SMS), "push": (PUSH, _CONSENT_PUSH), "ad": (AD, None)}


@dataclass(frozen=True, slots=True)
class OfferEveryK:
    """A discount offer by e-mail every ``k`` days (consent and the cap allowing); customers without e-mail
    consent get the ``fallback`` contact (none, sms, push or ad) on the same cadence."""

    k: int = 4
    fallback: str = "push"
    name: str = "offer_every_k"

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        obs = _batch(np.asarray(observation))
        due = _days(obs, _SINCE_CONTACT) >= self.k
        other, consent_column = _FALLBACK_ACTIONS[self.fallback]
        action = np.where(_can(obs, consent_column) & due & (obs[:, _CONSENT_EMAIL] < 0.5), other, WAIT)
        action = np.where(_can(obs, _CONSENT_EMAIL) & due, OFFER, action)
        return _unbatch(action, observation), state


@dataclass(frozen=True, slots=True)
class EngagementLadder:
    """E-mail every ``k`` days; SMS to whoever clicked in the last ``click_window`` days; a discount offer to
    "considering" customers (visited in the last ``visit_window`` days and not bought since)."""

    k: int = 7
    click_window: int = 1
    visit_window: int = 3
    name: str = "engagement_ladder"

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        obs = _batch(np.asarray(observation))
        since_contact = _days(obs, _SINCE_CONTACT)
        since_visit = _days(obs, _SINCE_VISIT)
        considering = (since_visit <= self.visit_window) & (_days(obs, _SINCE_PURCHASE) > since_visit)
        clicked = _days(obs, _SINCE_CLICK) <= self.click_window
        email_ok = _can(obs, _CONSENT_EMAIL)
        action = np.where(email_ok & (since_contact >= self.k), EMAIL, WAIT)
        action = np.where(_can(obs, _CONSENT_SMS) & clicked & (since_contact >= 2), SMS, action)
        action = np.where(email_ok & considering & (since_contact >= 2), OFFER, action)
        return _unbatch(action, observation), state


@dataclass(frozen=True, slots=True)
class PropensityThreshold:
    """Scores P(purchase in the next 7 days) with a logistic model of the observation, fitted on simulated
    exploration data; sends an offer above ``offer_threshold``, an e-mail above ``email_threshold``, at most
    every ``min_gap`` days."""

    weights: tuple[float, ...] = ()
    email_threshold: float = 0.0063
    offer_threshold: float = 1.1  # the grid found offers not worth their discount for this score
    min_gap: int = 5
    name: str = "propensity_threshold"

    def score(self, obs: np.ndarray) -> np.ndarray:
        w = np.asarray(self.weights or TUNED_PROPENSITY_WEIGHTS)
        return 1.0 / (1.0 + np.exp(-(w[0] + obs @ w[1:])))

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        obs = _batch(np.asarray(observation))
        p = self.score(obs)
        ok = _can(obs, _CONSENT_EMAIL) & (_days(obs, _SINCE_CONTACT) >= self.min_gap)
        action = np.where(ok & (p >= self.email_threshold), EMAIL, WAIT)
        action = np.where(ok & (p >= self.offer_threshold), OFFER, action)
        return _unbatch(action, observation), state


@dataclass(frozen=True, slots=True)
class EpsilonGreedy:
    """Explores around a deterministic ``base`` policy: its action with probability 1 - ``epsilon``, else an action
    drawn uniformly among those the observation allows (the base action included). A behaviour policy whose logs
    off-policy evaluation can read: every allowed action has a known, positive probability."""

    base: Any
    epsilon: float = 0.05
    acting: Literal["argmax", "sample"] = "sample"

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {self.epsilon}")

    @property
    def name(self) -> str:
        return f"{getattr(self.base, 'name', type(self.base).__name__)}-eps{self.epsilon:g}"

    def action_probabilities(self, observation: np.ndarray, action_masks: np.ndarray | None = None) -> np.ndarray:
        obs = _batch(np.asarray(observation, dtype=np.float32))
        legal = legal_from_observation(obs) if action_masks is None else np.asarray(action_masks, dtype=bool)
        base, _ = self.base.predict(obs, deterministic=True)
        greedy = np.eye(legal.shape[1])[np.asarray(base, dtype=np.int64).reshape(len(obs))]
        uniform = legal / legal.sum(axis=1, keepdims=True)
        return (1.0 - self.epsilon) * greedy + self.epsilon * uniform

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        obs = _batch(np.asarray(observation, dtype=np.float32))
        draws = None if deterministic else np.random.default_rng().random(len(obs))
        choice = choose(self, obs, legal_from_observation(obs), draws, "argmax" if deterministic else "sample")
        return _unbatch(choice.proposed, observation), state


HEURISTICS: dict[str, type] = {}
"""Journey heuristics by name (filled below)."""


def heuristic_policy(name: str) -> Any:
    """A journey heuristic by name: a tuned baseline (``offer_every_k``, ...), ``no_contact``, or one of them with
    exploration, ``<name>-eps<epsilon>`` (e.g. ``offer_every_k-eps0.05``)."""
    base, sep, eps = name.partition("-eps")
    if base not in HEURISTICS:
        raise ValueError(f"unknown journey policy {name!r}; built-in: {', '.join(HEURISTICS)} (each may take -eps<e>)")
    policy = HEURISTICS[base]()
    if not sep:
        return policy
    try:
        return EpsilonGreedy(policy, float(eps))
    except ValueError as error:
        raise ValueError(f"journey policy {name!r}: the exploration rate after -eps must be a number in [0, 1] ({error})") from None


@dataclass(frozen=True, slots=True)
class NoContact:
    """Never contacts anyone: the holdout's "no contact" arm."""

    name: str = "no_contact"

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        obs = _batch(np.asarray(observation))
        return _unbatch(np.zeros(len(obs), dtype=np.int64), observation), state


HEURISTICS.update({"offer_every_k": OfferEveryK, "email_every_k": EmailEveryK, "engagement_ladder": EngagementLadder,
                   "propensity_threshold": PropensityThreshold, "no_contact": NoContact})


@dataclass(frozen=True, slots=True)
class JourneyScore:
    """Mean return per customer over one episode, with its standard error."""

    policy: str
    mean: float
    stderr: float
    returns: np.ndarray


def evaluate_journey(
    policy: Predictor, config: MarketConfig | None = None, n_customers: int = 2_000, seed: int = 0
) -> JourneyScore:
    """Run ``policy`` for one episode on ``n_customers`` customers, acting as the engine acts
    (:func:`environment.acting.choose`); the same seed gives the same customers and draws."""
    from environment.vector import JourneyVectorEnv  # lazy: loads torch and stable-baselines3

    config = config or load_market_config()
    env = JourneyVectorEnv(n_customers, config)
    obs, info = env.reset(seed=seed)
    if isinstance(policy, EnvBound):
        policy.bind(env)
    draws = np.random.default_rng([seed, 0xA7])
    total = np.zeros(n_customers)
    for _ in range(env.horizon):
        choice = choose(policy, obs, info["action_mask"], draws.random(n_customers))
        obs, reward, _, _, info = env.step(choice.executed)
        total += reward
    name = getattr(policy, "name", type(policy).__name__)
    return JourneyScore(name, float(total.mean()), float(total.std(ddof=1) / np.sqrt(n_customers)), total)


def fit_propensity_weights(config: MarketConfig | None = None, n_customers: int = 4_000, seed: int = 123) -> tuple[float, ...]:
    """Fit the propensity model on exploration data: P(purchase within 7 days | observation), random policy."""
    from environment.vector import JourneyVectorEnv  # lazy: loads torch and stable-baselines3

    config = config or load_market_config()
    env = JourneyVectorEnv(n_customers, config)
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    observations, purchases = [], []
    for _ in range(env.horizon):
        mask = info["action_mask"]
        explore = np.where(rng.random(n_customers) < 0.15, rng.integers(1, 6, n_customers), WAIT)
        action = np.where(mask[np.arange(n_customers), explore], explore, WAIT)
        observations.append(obs)
        obs, _, _, _, info = env.step(action)
        purchases.append(env.last_outcome.purchased)
    bought = np.array(purchases, dtype=np.float64)  # (days, N)
    window = 7
    future = np.array([bought[t : t + window].max(axis=0) for t in range(env.horizon - window)])
    x = np.concatenate(observations[: env.horizon - window])
    beta = _logistic_fit(x.astype(np.float64), future.reshape(-1), ridge=1.0)
    return tuple(float(b) for b in beta)


def grid_search(
    make: Callable[..., Predictor], grid: dict[str, Iterable[Any]], config: MarketConfig, n_customers: int, seed: int
) -> tuple[dict[str, Any], float]:
    """The parameters of ``make`` with the best mean return on the simulator (same customers for each)."""
    best: tuple[dict[str, Any], float] = ({}, -np.inf)
    keys = list(grid)
    for values in itertools.product(*(list(grid[k]) for k in keys)):
        params = dict(zip(keys, values, strict=True))
        score = evaluate_journey(make(**params), config, n_customers, seed).mean
        logger.debug("%s %s -> %.4f", getattr(make, "__name__", make), params, score)
        if score > best[1]:
            best = (params, score)
    return best


def tune_journey_heuristics(
    config: MarketConfig | None = None, n_customers: int = 4_000, seed: int = 0, quick: bool = False
) -> dict[str, tuple[Predictor, float]]:
    """Grid-search each heuristic's parameters; returns the tuned policies and their scores."""
    config = config or load_market_config()
    weights = fit_propensity_weights(config)
    probe = PropensityThreshold(weights)
    from environment.vector import JourneyVectorEnv  # lazy: loads torch and stable-baselines3

    env = JourneyVectorEnv(n_customers, config)
    obs, _ = env.reset(seed=seed + 1)
    quantiles = np.quantile(probe.score(obs), [0.5, 0.7, 0.8, 0.9, 0.95, 0.98])
    if quick:
        grids = {
            "email_every_k": {"k": [3, 7, 14]},
            "engagement_ladder": {"k": [7, 14], "click_window": [3], "visit_window": [3, 7]},
            "propensity_threshold": {"email_threshold": list(quantiles[[1, 3]]), "offer_threshold": [1.1, float(quantiles[5])],
                                     "min_gap": [7]},
            "offer_every_k": {"k": [3, 5], "fallback": ["none", "sms"]},
        }
    else:
        grids = {
            "email_every_k": {"k": [2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 18, 21, 30, 61]},
            "engagement_ladder": {"k": [5, 7, 10, 14, 21, 61], "click_window": [1, 3, 7], "visit_window": [1, 3, 7, 14]},
            "propensity_threshold": {
                "email_threshold": [float(q) for q in quantiles],
                "offer_threshold": [float(q) for q in quantiles[2:]] + [1.1],
                "min_gap": [3, 5, 7, 10, 14],
            },
            "offer_every_k": {"k": [2, 3, 4, 5, 6, 7, 8, 10, 14], "fallback": list(_FALLBACK_ACTIONS)},
        }
    makers: dict[str, Callable[..., Predictor]] = {
        "email_every_k": EmailEveryK,
        "engagement_ladder": EngagementLadder,
        "propensity_threshold": lambda **p: PropensityThreshold(weights, **p),
        "offer_every_k": OfferEveryK,
    }
    tuned: dict[str, tuple[Predictor, float]] = {}
    for name, grid in grids.items():
        params, score = grid_search(makers[name], grid, config, n_customers, seed)
        tuned[name] = (makers[name](**params), score)
        logger.info("tuned %s: %s -> %.4f", name, params, score)
    return tuned
