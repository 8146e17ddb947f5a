"""What the engine can know of a customer's hidden journey state: an exact Bayes filter over (stage, intent,
fatigue) from observable events only, and the belief-state planner built on it.

The filter conditions on what the events show each day: the contact (the action taken), the unsubscribe, the
open where the channel reports one, the click where it reports one, the visit and the purchase, and the recency in
the profile (which sets the day-0 prior). Outcomes no event shows (an SMS read, a push tap) are summed out. Consent and the
frequency cap are observed directly. It uses the same probability functions as :func:`environment.dynamics.step_batch`,
so on the simulator it is exact. The planner (QMDP) acts on the belief with the oracle's action values: it is
the reference for what a policy with the engine's information can reach, against the full-information oracle.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import numpy as np

from environment.acting import acting_mode
from environment.config import MarketConfig
from environment.dynamics import (
    JourneyState,
    StepOutcome,
    Tables,
    churn_prob,
    click_prob,
    conv_prob,
    unsub_prob,
    visit_prob,
)
from environment.population import (
    CHURNED,
    CLICK_OBSERVED,
    CUSTOMER,
    N_FATIGUE,
    N_INTENT,
    N_STAGES,
    OFFER,
    OPEN_OBSERVED,
    WAIT,
)

BELIEF_SHAPE = (N_STAGES, N_INTENT, N_FATIGUE)
N_BELIEF = N_STAGES * N_INTENT * N_FATIGUE
# the hidden state's axes, shaped to broadcast against (N, stage, intent, fatigue)
STAGE_AXIS = np.arange(N_STAGES)[None, :, None, None]
INTENT_AXIS = np.arange(N_INTENT)[None, None, :, None]
FATIGUE_AXIS = np.arange(N_FATIGUE)[None, None, None, :]


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


def outcome_likelihood(tab: Tables, state: Any, outcome: Any, all_shown: bool = False) -> np.ndarray:
    """P(what the events showed today | stage, intent, fatigue) per customer: the unsubscribe, the open where the
    channel shows one (e-mail, push), the click where it shows one (e-mail, SMS, ad), the visit and the purchase.
    An outcome no event shows (an SMS read, a push tap) is summed out, so the filter reads what the engine reads;
    ``all_shown`` gives the likelihood of the whole outcome instead."""
    rows = np.arange(len(state))
    a = np.asarray(outcome.action)
    contact = (a != WAIT)[:, None, None, None]
    action = a[:, None, None, None]
    click_mult = state.resp.click_mult[rows, a][:, None, None, None]
    p_click = np.where(contact, click_prob(tab, action, click_mult, STAGE_AXIS, INTENT_AXIS, FATIGUE_AXIS), 0.0)
    p_unsub = np.where(contact, unsub_prob(tab, action, FATIGUE_AXIS), 0.0)

    def seen(flags: np.ndarray) -> np.ndarray:
        return np.asarray(flags, dtype=bool)[:, None, None, None]

    opened, visited, bought = seen(outcome.opened), seen(outcome.visited), seen(outcome.purchased)
    open_shown, click_shown = OPEN_OBSERVED[a][:, None, None, None], CLICK_OBSERVED[a][:, None, None, None]
    if all_shown:
        open_shown, click_shown = np.ones_like(open_shown), np.ones_like(click_shown)
    offer = np.where(action == OFFER, tab.offer_boost, 1.0)

    def purchase(conv_mult: np.ndarray) -> np.ndarray:
        p_buy = conv_prob(tab, conv_mult, STAGE_AXIS, INTENT_AXIS)
        return np.where(visited, np.where(bought, p_buy, 1.0 - p_buy), 1.0)

    # a click: it is an open and a visit
    via_click = p_click * (visited & (opened | ~open_shown)) * purchase(state.resp.click_conv[rows, a][:, None, None, None] * offer)
    # no click: an open (where shown) and an organic visit
    p_open = np.maximum(tab.open_rate[action], p_click)
    p_open_no_click = np.where(p_click < 1.0, (p_open - p_click) / np.maximum(1.0 - p_click, 1e-12), 0.0)
    open_term = np.where(contact & open_shown, np.where(opened, p_open_no_click, 1.0 - p_open_no_click), 1.0)
    p_visit = visit_prob(tab, state.resp.propensity[:, None, None, None], STAGE_AXIS, INTENT_AXIS)
    no_click = (1.0 - p_click) * open_term * np.where(visited, p_visit, 1.0 - p_visit) * purchase(offer)
    clicked = seen(outcome.clicked)
    likelihood = np.where(click_shown, np.where(clicked, via_click, no_click), via_click + no_click)
    return np.where(seen(outcome.unsubscribed), p_unsub, 1.0 - p_unsub) * likelihood


def update_belief(belief: np.ndarray, tab: Tables, state: Any, outcome: Any) -> np.ndarray:
    """The belief after one day: ``state`` is the day's starting state (only its observable parts and the
    profile's responsiveness are read), ``outcome`` what was observed that day."""
    post = belief * outcome_likelihood(tab, state, outcome)

    def flag(x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=bool)[:, None, None, None]

    contact = flag(np.asarray(outcome.action) != WAIT)
    post = np.where(contact, fatigue_raised(post), fatigue_rested(post, tab))
    post = np.where(flag(outcome.purchased), after_purchase(post), np.where(flag(outcome.visited), after_visit(post, tab), post))
    return drift(post, tab)


def row_sums(x: np.ndarray) -> np.ndarray:
    """(N,) each customer's total, the same bits whatever the batch (a reduction over several axes of a batch may
    group its additions by the batch's size; one row's contiguous sum does not)."""
    return np.ascontiguousarray(x).reshape(len(x), -1).sum(axis=1)


def _in_order(parts: Any) -> np.ndarray:
    """The sum of ``parts`` added one after another (the same order, so the same bits, in every batch)."""
    it = iter(parts)
    total = np.array(next(it), copy=True)
    for part in it:
        total += part
    return total


def fatigue_raised(post: np.ndarray) -> np.ndarray:
    """After a contact: fatigue +1 (capped)."""
    raised = np.concatenate([np.zeros_like(post[..., :1]), post[..., :-1]], axis=-1)
    raised[..., -1] += post[..., -1]
    return raised


def fatigue_rested(post: np.ndarray, tab: Tables) -> np.ndarray:
    """After a wait: fatigue decays by one with probability fatigue_decay."""
    d = tab.fatigue_decay
    rested = post * np.where(FATIGUE_AXIS > 0, 1.0 - d, 1.0)
    rested[..., :-1] += d * post[..., 1:]
    return rested


def after_purchase(post: np.ndarray) -> np.ndarray:
    """A purchase makes a customer with low intent."""
    bought = np.zeros_like(post)
    bought[:, CUSTOMER, 0, :] = _in_order(post[:, k, i] for k in range(N_STAGES) for i in range(N_INTENT))
    return bought


def after_visit(post: np.ndarray, tab: Tables) -> np.ndarray:
    """A visit advances the stage and may raise intent."""
    advanced = post.copy()
    advanced[:, 0] = 0.0
    advanced[:, 1] = post[:, 0] + (1.0 - tab.advance_prob) * post[:, 1]
    advanced[:, 2] = post[:, 2] + tab.advance_prob * post[:, 1]
    q = tab.intent_up_on_visit
    raised_intent = (1.0 - q) * advanced
    raised_intent[:, :, 1:] += q * advanced[:, :, :-1]
    raised_intent[:, :, -1] += q * advanced[:, :, -1]
    return raised_intent


def drift(post: np.ndarray, tab: Tables) -> np.ndarray:
    """Churn on the new stage and fatigue, then intent drift; normalised."""
    churn = post * churn_prob(tab, STAGE_AXIS, FATIGUE_AXIS)
    post = post - churn
    post[:, CHURNED] += _in_order(churn[:, k] for k in range(N_STAGES))
    up, down = tab.intent_up, tab.intent_down
    drifted = post * np.array([1.0 - up, 1.0 - up - down, 1.0 - down])[None, None, :, None]
    drifted[:, :, 1:] += up * post[:, :, :-1]
    drifted[:, :, :-1] += down * post[:, :, 1:]
    total = row_sums(drifted)[:, None, None, None]
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
        self._belief: EnvBelief | None = None

    def bind(self, env: Any) -> None:
        self._belief = EnvBelief(env)

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


class EnvBelief:
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


_PLANNER_NAME = re.compile(r"^belief_(planner|lookahead)(?:_u(\d+(?:\.\d+)?))?(_grid)?$")


class PlannerSpec(NamedTuple):
    """A belief planner named as ``belief_lookahead_u4_grid``: lookahead or QMDP, the unsubscribe price, and
    whether its action values come from the propensity grid (servable) or are solved per customer (the reference)."""

    lookahead: bool
    unsub_price: float = 1.0
    grid: bool = False


def planner_name(lookahead: bool, unsub_price: float = 1.0, grid: bool = False) -> str:
    """``belief_planner`` or ``belief_lookahead``, with ``_u<price>`` when unsubscribes are priced higher and
    ``_grid`` for the servable form."""
    base = "belief_lookahead" if lookahead else "belief_planner"
    priced = base if unsub_price == 1.0 else f"{base}_u{unsub_price:g}"
    return f"{priced}_grid" if grid else priced


def parse_planner_name(name: str) -> PlannerSpec | None:
    """The planner a name such as ``belief_lookahead_u4`` or ``belief_lookahead_u4_grid`` stands for; None for
    other names."""
    match = _PLANNER_NAME.match(name)
    if match is None:
        return None
    return PlannerSpec(match.group(1) == "lookahead", float(match.group(2) or 1.0), match.group(3) is not None)


__all__ = [
    "BELIEF_SHAPE", "N_BELIEF", "BeliefTracker", "PlannerSpec", "WithBelief", "initial_belief", "outcome_likelihood", "parse_planner_name",
    "planner_name", "update_belief",
]
