"""What the engine can know of a customer's hidden journey state: an exact Bayes filter over (stage, intent,
fatigue) from observable events only, and the belief-state planner built on it.

The filter conditions on what the engine sees each day: its own contact (the action taken), the unsubscribe,
open, click, visit and purchase, and the recency in the profile (which sets the day-0 prior). Consent and the
frequency cap are observed directly. It uses the same probability functions as :func:`environment.dynamics.step_batch`,
so on the simulator it is exact. The planner (QMDP) acts on the belief with the oracle's action values: it is
the reference for what a policy with the engine's information can reach, against the full-information oracle.
"""

from __future__ import annotations

import re
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np

from environment.acting import acting_mode
from environment.bounds import solve_oracle
from environment.config import MarketConfig
from environment.dynamics import (
    JourneyState,
    StepOutcome,
    Tables,
    churn_prob,
    click_prob,
    conv_prob,
    legal_mask,
    unsub_prob,
    visit_prob,
)
from environment.guardrails import LEGAL as _LEGAL
from environment.population import (
    ACTION_CONSENT_BIT,
    ACTION_UNSUB_CHANNEL,
    CHURNED,
    CUSTOMER,
    N_ACTIONS,
    N_FATIGUE,
    N_INTENT,
    N_STAGES,
    OFFER,
    WAIT,
)

BELIEF_SHAPE = (N_STAGES, N_INTENT, N_FATIGUE)
N_BELIEF = N_STAGES * N_INTENT * N_FATIGUE
_K = np.arange(N_STAGES)[None, :, None, None]
_I = np.arange(N_INTENT)[None, None, :, None]
_F = np.arange(N_FATIGUE)[None, None, None, :]


def initial_belief(config: MarketConfig, recency: np.ndarray) -> np.ndarray:
    """(N, stage, intent, fatigue) day-0 prior: the stage prior of the recency bucket, the intent prior, no fatigue."""
    bucket = np.minimum((np.asarray(recency, dtype=np.int64) - 1) // 4, 2)
    stage = np.asarray(config.profile.initial_stage_probs, dtype=np.float64)
    stage = stage / stage.sum(axis=1, keepdims=True)
    intent = np.asarray(config.profile.initial_intent_probs, dtype=np.float64)
    intent = intent / intent.sum()
    belief = np.zeros((len(bucket), *BELIEF_SHAPE))
    belief[..., 0] = stage[bucket][:, :, None] * intent[None, None, :]
    return belief


def recency_of(observation: np.ndarray) -> np.ndarray:
    """The profile's recency (months, 1..12) from the observation's first column (recency / 12)."""
    return np.rint(np.asarray(observation)[:, 0] * 12.0).astype(np.int64)


def _observation_likelihood(tab: Tables, state: JourneyState, outcome: StepOutcome) -> np.ndarray:
    """P(today's observed unsubscribe, click, open, visit, purchase | stage, intent, fatigue) per customer."""
    rows = np.arange(len(state))
    a = outcome.action
    contact = (a != WAIT)[:, None, None, None]
    action = a[:, None, None, None]
    p_click = np.where(contact, click_prob(tab, action, state.resp.click_mult[rows, a][:, None, None, None], _K, _I, _F), 0.0)
    p_unsub = np.where(contact, unsub_prob(tab, action, _F), 0.0)

    def seen(flags: np.ndarray) -> np.ndarray:
        return np.asarray(flags, dtype=bool)[:, None, None, None]

    clicked, opened, visited, bought = seen(outcome.clicked), seen(outcome.opened), seen(outcome.visited), seen(outcome.purchased)
    likelihood = np.where(seen(outcome.unsubscribed), p_unsub, 1.0 - p_unsub) * np.where(clicked, p_click, 1.0 - p_click)
    p_open = np.maximum(tab.open_rate[action], p_click)
    p_open_no_click = np.where(p_click < 1.0, (p_open - p_click) / np.maximum(1.0 - p_click, 1e-12), 0.0)
    likelihood = likelihood * np.where(contact & ~clicked, np.where(opened, p_open_no_click, 1.0 - p_open_no_click), 1.0)
    p_visit = visit_prob(tab, state.resp.propensity[:, None, None, None], _K, _I)
    likelihood = likelihood * np.where(clicked, 1.0, np.where(visited, p_visit, 1.0 - p_visit))
    conv_mult = np.where(clicked, state.resp.click_conv[rows, a][:, None, None, None], 1.0) * np.where(
        action == OFFER, tab.offer_boost, 1.0
    )
    p_buy = conv_prob(tab, conv_mult, _K, _I)
    return likelihood * np.where(visited, np.where(bought, p_buy, 1.0 - p_buy), 1.0)


def update_belief(belief: np.ndarray, tab: Tables, state: JourneyState, outcome: StepOutcome) -> np.ndarray:
    """The belief after one day: ``state`` is the day's starting state (only its observable parts and the
    profile's responsiveness are read), ``outcome`` what was observed that day."""
    post = belief * _observation_likelihood(tab, state, outcome)
    contact = (outcome.action != WAIT)[:, None, None, None]
    # fatigue: +1 after a contact; after a wait it decays by one with probability fatigue_decay
    raised = np.concatenate([np.zeros_like(post[..., :1]), post[..., :-1]], axis=-1)
    raised[..., -1] += post[..., -1]
    d = tab.fatigue_decay
    rested = post * np.where(_F > 0, 1.0 - d, 1.0)
    rested[..., :-1] += d * post[..., 1:]
    post = np.where(contact, raised, rested)
    # a purchase makes a customer with low intent; a visit advances the stage and may raise intent
    bought = np.zeros_like(post)
    bought[:, CUSTOMER, 0, :] = post.sum(axis=(1, 2))
    advanced = post.copy()
    advanced[:, 0] = 0.0
    advanced[:, 1] = post[:, 0] + (1.0 - tab.advance_prob) * post[:, 1]
    advanced[:, 2] = post[:, 2] + tab.advance_prob * post[:, 1]
    q = tab.intent_up_on_visit
    raised_intent = (1.0 - q) * advanced
    raised_intent[:, :, 1:] += q * advanced[:, :, :-1]
    raised_intent[:, :, -1] += q * advanced[:, :, -1]
    purchased = np.asarray(outcome.purchased, dtype=bool)[:, None, None, None]
    visited = np.asarray(outcome.visited, dtype=bool)[:, None, None, None]
    post = np.where(purchased, bought, np.where(visited, raised_intent, post))
    # churn, on the new stage and fatigue
    churn = post * churn_prob(tab, _K, _F)
    post = post - churn
    post[:, CHURNED] += churn.sum(axis=1)
    # intent drift
    up, down = tab.intent_up, tab.intent_down
    drifted = post * np.array([1.0 - up, 1.0 - up - down, 1.0 - down])[None, None, :, None]
    drifted[:, :, 1:] += up * post[:, :, :-1]
    drifted[:, :, :-1] += down * post[:, :, 1:]
    total = drifted.sum(axis=(1, 2, 3), keepdims=True)
    return drifted / np.maximum(total, 1e-300)


class BeliefTracker:
    """Keeps the belief of every customer of a :class:`~environment.vector.JourneyVectorEnv` in step with it,
    reading only what the engine observes (the outcome's events, consent, the profile)."""

    def __init__(self, config: MarketConfig, tables: Tables) -> None:
        self.config, self.tables = config, tables
        self.belief: np.ndarray | None = None

    def reset(self, observation: np.ndarray) -> np.ndarray:
        self.belief = initial_belief(self.config, recency_of(observation))
        return self.belief

    def step(self, before: JourneyState, outcome: StepOutcome, observation: np.ndarray, restarted: np.ndarray) -> np.ndarray:
        """Update after a day; customers in ``restarted`` are new ones (their prior, from ``observation``)."""
        if self.belief is None:
            raise RuntimeError("reset the tracker before stepping it")
        belief = update_belief(self.belief, self.tables, before, outcome)
        self.belief = belief
        return self.restart(observation, restarted) if restarted.any() else belief

    def restart(self, observation: np.ndarray, restarted: np.ndarray) -> np.ndarray:
        """New customers in ``restarted`` start from their prior (read from ``observation``)."""
        if self.belief is None:
            raise RuntimeError("reset the tracker before restarting customers")
        fresh = initial_belief(self.config, recency_of(observation))
        self.belief = np.where(restarted[:, None, None, None], fresh, self.belief)
        return self.belief


class WithBelief:
    """Serves a policy trained on belief observations (``JourneyVectorEnv(belief=True)``) in an environment
    that gives the plain 24 columns: it tracks the belief from the bound env's observed outcomes and appends it."""

    def __init__(self, policy: Any, name: str | None = None) -> None:
        self.policy, self.name = policy, name or getattr(policy, "name", "policy")
        self.acting = acting_mode(policy)
        self._belief: _FollowedBelief | None = None

    def bind(self, env: Any) -> None:
        self._belief = _FollowedBelief(env)

    def _features(self, observation: np.ndarray) -> np.ndarray:
        """The observation with today's belief appended (call once per day: it steps the filter)."""
        if self._belief is None:
            raise RuntimeError("bind WithBelief to a JourneyVectorEnv before asking")
        belief = self._belief.now(observation)
        return np.concatenate([observation, belief.reshape(len(observation), -1).astype(np.float32)], axis=1)

    def action_probabilities(self, observation: np.ndarray, action_masks: np.ndarray | None = None) -> np.ndarray:
        return self.policy.action_probabilities(self._features(observation), action_masks)

    def predict(
        self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = False
    ) -> tuple[np.ndarray, Any]:
        return self.policy.predict(self._features(observation), state=state, episode_start=episode_start,
                                   deterministic=deterministic)


class _FollowedBelief:
    """The belief of a bound env's current customers, updated from what the env reports it observed each day."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.tracker = BeliefTracker(env.config, env.tables)
        self._before: JourneyState | None = None

    def now(self, observation: np.ndarray) -> np.ndarray:
        state = self.env.state
        if self._before is None or bool(np.all(state.day == 0)):
            belief = self.tracker.reset(observation)
        else:
            belief = self.tracker.step(self._before, self.env.last_outcome, observation, state.day == 0)
        self._before = state
        return belief


class BeliefPlanner:
    """QMDP on the exact belief: each day, the legal action with the highest belief-weighted oracle action value;
    with ``lookahead``, one step of belief lookahead first (an action is also worth what its outcome reveals).

    It observes what a policy observes (the filter reads no latent state); the oracle's action values come from
    the true model, so it measures what the engine's information allows, not what can be learned. Memory:
    ``horizon x N x 960 x 6`` float32 action values (1.4 GB for 1,000 customers).
    """

    name = "belief_planner"

    def __init__(self, env: Any = None, lookahead: bool = False, unsub_price: float = 1.0) -> None:
        if not unsub_price > 0:
            raise ValueError(f"the unsubscribe price must be > 0, got {unsub_price}")
        self.lookahead, self.unsub_price = lookahead, unsub_price
        self.name = planner_name(lookahead, unsub_price)
        self.env: Any = None
        self._tables: Tables | None = None
        self._q: np.ndarray | None = None
        self._belief: _FollowedBelief | None = None
        self._resp: Any = None
        if env is not None:
            self.bind(env)

    @property
    def belief(self) -> np.ndarray | None:
        """(N, stage, intent, fatigue): the belief the last decision was made on."""
        return None if self._belief is None else self._belief.tracker.belief

    def bind(self, env: Any) -> None:
        """Plan for the customers of ``env`` (a :class:`~environment.vector.JourneyVectorEnv`, reset)."""
        self.env, self._q, self._resp = env, None, None
        tables = env.tables
        # plans with unsubscribes priced at unsub_price x their value; the filter and the env keep the true model
        self._tables = tables if self.unsub_price == 1.0 else replace(tables, unsub_value=tables.unsub_value * self.unsub_price)
        self._belief = _FollowedBelief(env)

    def predict(
        self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, Any]:
        if self.env is None or self.env.state is None or self._belief is None:
            raise RuntimeError("bind the planner to a reset JourneyVectorEnv before asking")
        now = self.env.state
        if now.resp is not self._resp:  # new customers: their action values
            self._q, self._resp = solve_oracle(self._tables, now.resp, keep_q=True).q, now.resp
        belief = self._belief.now(observation)
        assert self._q is not None
        value = self._lookahead(now, belief) if self.lookahead else self._qmdp(now, belief)
        action = np.where(legal_mask(now), value, -np.inf).argmax(axis=1)
        return action, state

    def _belief_values(self, day: int | np.ndarray, belief: np.ndarray, consent: np.ndarray, cooldown: np.ndarray) -> np.ndarray:
        """(N, action) belief-weighted oracle action values; illegal actions -inf."""
        assert self._q is not None
        rows = np.arange(belief.shape[0])
        q = self._q[day, rows, :, :, :, consent, cooldown]  # (N, stage, intent, fatigue, action)
        value = np.einsum("nkif,nkifa->na", belief, np.where(np.isfinite(q), q, 0.0))
        return np.where(_LEGAL[consent * 2 + (cooldown > 0)], value, -np.inf)

    def _qmdp(self, now: JourneyState, belief: np.ndarray) -> np.ndarray:
        assert self._q is not None
        return self._belief_values(np.minimum(now.day, self._q.shape[0] - 1), belief, now.consent, now.cooldown)

    def _lookahead(self, now: JourneyState, belief: np.ndarray) -> np.ndarray:
        """Each action's expected reward today plus, over every observation it can bring, the best belief-weighted
        value tomorrow: QMDP one step later, so an action that reveals the state is worth what it reveals."""
        assert self._q is not None and self._tables is not None
        tab, n = self._tables, len(now)
        rows, t = np.arange(n), int(now.day.max())
        value = np.full((n, N_ACTIONS), -np.inf)
        for a in range(N_ACTIONS):
            contact = a != WAIT
            total = np.zeros(n)
            for unsub, click, opened, visit, buy in _OBSERVATIONS[contact]:
                seen = SimpleNamespace(
                    action=np.full(n, a), unsubscribed=np.full(n, unsub), clicked=np.full(n, click),
                    opened=np.full(n, opened), visited=np.full(n, visit), purchased=np.full(n, buy),
                )
                p = (belief * _observation_likelihood(tab, now, seen)).sum(axis=(1, 2, 3))
                amount = now.resp.basket * (now.resp.click_basket[rows, a] if click else 1.0)
                reward = -tab.cost[a] + buy * amount * (tab.margin - (tab.discount if a == OFFER else 0.0))
                if unsub:
                    reward = reward - tab.unsub_value[max(ACTION_UNSUB_CHANNEL[a], 0)]
                later = 0.0
                if t + 1 < self._q.shape[0]:
                    consent = np.where(unsub, now.consent & ~ACTION_CONSENT_BIT[a], now.consent)
                    cooldown = np.full(n, tab.gap - 1) if contact else np.maximum(now.cooldown - 1, 0)
                    later = self._belief_values(t + 1, update_belief(belief, tab, now, seen), consent, cooldown).max(axis=1)
                total += p * (reward + later)
            value[:, a] = total
        return value


_PLANNER_NAME = re.compile(r"^belief_(planner|lookahead)(?:_u(\d+(?:\.\d+)?))?$")


def planner_name(lookahead: bool, unsub_price: float = 1.0) -> str:
    """``belief_planner`` or ``belief_lookahead``, with ``_u<price>`` when unsubscribes are priced higher."""
    base = "belief_lookahead" if lookahead else "belief_planner"
    return base if unsub_price == 1.0 else f"{base}_u{unsub_price:g}"


def parse_planner_name(name: str) -> tuple[bool, float] | None:
    """(lookahead, unsubscribe price) of a planner name such as ``belief_lookahead_u4``; None for other names."""
    match = _PLANNER_NAME.match(name)
    if match is None:
        return None
    return match.group(1) == "lookahead", float(match.group(2) or 1.0)


def _observation_outcomes(contact: bool) -> list[tuple[bool, bool, bool, bool, bool]]:
    """Every (unsubscribe, click, open, visit, purchase) a day can show: a click is an open and a visit."""
    if not contact:
        return [(False, False, False, visit, buy) for visit in (False, True) for buy in ((False, True) if visit else (False,))]
    return [
        (unsub, click, opened, visit, buy)
        for unsub in (False, True)
        for click in (False, True)
        for opened in ((True,) if click else (False, True))
        for visit in ((True,) if click else (False, True))
        for buy in ((False, True) if visit else (False,))
    ]


_OBSERVATIONS = {False: _observation_outcomes(False), True: _observation_outcomes(True)}


__all__ = [
    "BELIEF_SHAPE", "N_BELIEF", "BeliefPlanner", "BeliefTracker", "WithBelief", "initial_belief", "parse_planner_name",
    "planner_name", "update_belief",
]
