"""The belief-state planner: each day, the legal action with the highest value on the engine's belief over a
customer's hidden (stage, intent, fatigue), the belief coming from :mod:`environment.belief`'s filter.

The action values are the oracle's (exact DP on the true model). Two sources of them:

- :class:`ExactValues`, solved per customer for every day: the reference in ``ame evaluate``
  (``horizon x N x 960 x 6`` float32, 1.4 GB per 1,000 customers);
- :class:`GridValues`, solved once per response group on a grid of propensities and interpolated in
  log-propensity: what the journey agent serves, a few MB per group whatever the number of customers.

:func:`belief_action_values` is the one decision rule; the simulator's :class:`BeliefPlanner` and the journey
agent both call it, on the same belief, with the same values.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from environment.acting import ActionDistribution, acting_mode
from environment.belief import (
    FATIGUE_AXIS,
    INTENT_AXIS,
    STAGE_AXIS,
    BeliefTracker,
    EnvBelief,
    PlannerSpec,
    after_purchase,
    after_visit,
    drift,
    fatigue_raised,
    fatigue_rested,
    planner_name,
    row_sums,
)
from environment.bounds import solve_oracle
from environment.config import MarketConfig, load_market_config
from environment.dynamics import JourneyState, StepOutcome, Tables, click_prob, conv_prob, unsub_prob, visit_prob
from environment.guardrails import LEGAL
from environment.population import (
    ACTION_CONSENT_BIT,
    ACTION_UNSUB_CHANNEL,
    CLICK_OBSERVED,
    N_ACTIONS,
    OFFER,
    OPEN_OBSERVED,
    WAIT,
    Responsiveness,
    profile_design,
    sample_profiles,
)

Outcome = tuple[bool, bool, bool, bool, bool]
"""(unsubscribed, clicked, opened, visited, purchased)."""


@dataclass(frozen=True, slots=True)
class VisibleState:
    """What the planner reads of N customers besides the belief: their journey day, consent bits, cooldown and
    response multipliers (a function of their attributes)."""

    day: np.ndarray
    consent: np.ndarray
    cooldown: np.ndarray
    resp: Responsiveness

    def __len__(self) -> int:
        return int(self.day.shape[0])


class ActionValues(Protocol):
    """The oracle's action values for the planner's customers."""

    horizon: int

    def on_day(self, day: np.ndarray) -> np.ndarray:
        """(N, stage, intent, fatigue, consent, cooldown, action) for each customer on its ``day``; illegal 0."""
        ...


class ExactValues:
    """The oracle's values solved for these very customers (exact, and memory-heavy)."""

    def __init__(self, tables: Tables, resp: Responsiveness) -> None:
        q = solve_oracle(tables, resp, keep_q=True).q
        assert q is not None
        self.q = np.nan_to_num(q, copy=False, neginf=0.0)  # in place: the table is large
        self.horizon = int(q.shape[0])

    def on_day(self, day: np.ndarray) -> np.ndarray:
        return self.q[np.minimum(day, self.horizon - 1), np.arange(len(day))]


class GridValues:
    """The oracle's values on a grid of propensities, per response group (the creative a customer gets and
    whether it is in that creative's audience); a customer's values are interpolated in log-propensity. Shared by
    every request of a replica: groups are solved once, under a lock, and :meth:`bind` returns a view for one batch."""

    def __init__(self, tables: Tables, log_range: tuple[float, float], points: int) -> None:
        self.tables, self.horizon = tables, tables.horizon
        self.grid = np.linspace(log_range[0], log_range[1], points)
        self._groups: dict[bytes, int] = {}
        self._stack = np.empty((0,))  # (groups, points, horizon, K, I, F, C, G, A) float32
        self._lock = threading.Lock()

    @staticmethod
    def for_market(tables: Tables, profile_model: Any, points: int = 33,
                   sample: int = 200_000, seed: int = 0) -> GridValues:
        """A grid spanning the propensities of the market's customers (a seeded sample, widened by 10%)."""
        profiles = sample_profiles(profile_model, sample, np.random.default_rng(seed))
        lp = profile_design(profile_model, profiles) @ np.asarray(profile_model.propensity_coef)
        lp = lp - profile_model.propensity_log_norm
        lo, hi = float(lp.min()), float(lp.max())
        pad = 0.1 * (hi - lo)
        return GridValues(tables, (lo - pad, hi + pad), points)

    def bind(self, resp: Responsiveness) -> BoundGridValues:
        """The values of these customers (solving any response group not seen yet)."""
        groups = np.array([self._group(resp, i) for i in range(len(resp))], dtype=np.int64)
        x = np.clip(np.log(resp.propensity), self.grid[0], self.grid[-1])
        j = np.clip(np.searchsorted(self.grid, x, side="right") - 1, 0, len(self.grid) - 2)
        w = (x - self.grid[j]) / (self.grid[j + 1] - self.grid[j])
        return BoundGridValues(self._stack, self.horizon, groups, j, w.astype(np.float32))

    def _group(self, resp: Responsiveness, i: int) -> int:
        p = resp.propensity[i]
        key_parts = (resp.click_mult[i] / p, resp.click_conv[i], resp.click_basket[i], resp.basket[i : i + 1])
        key = np.round(np.concatenate(key_parts), 9).tobytes()
        with self._lock:
            if key not in self._groups:
                solved = self._solve(resp, i)[None]
                self._stack = solved if not self._groups else np.concatenate([self._stack, solved])
                self._groups[key] = len(self._groups)
            return self._groups[key]

    def _solve(self, resp: Responsiveness, i: int) -> np.ndarray:
        grid = np.exp(self.grid)
        n = len(grid)
        like = Responsiveness(
            propensity=grid, basket=np.full(n, resp.basket[i]),
            click_mult=np.outer(grid, resp.click_mult[i] / resp.propensity[i]),
            click_conv=np.tile(resp.click_conv[i], (n, 1)), click_basket=np.tile(resp.click_basket[i], (n, 1)),
        )
        q = solve_oracle(self.tables, like, keep_q=True).q
        assert q is not None
        return np.ascontiguousarray(np.swapaxes(np.nan_to_num(q, copy=False, neginf=0.0), 0, 1))


@dataclass(frozen=True, slots=True)
class BoundGridValues:
    """The grid's values for one batch of customers: each one's group, grid cell and weight."""

    values: np.ndarray  # (groups, points, horizon, K, I, F, C, G, A)
    horizon: int
    groups: np.ndarray
    cell: np.ndarray
    weight: np.ndarray

    def on_day(self, day: np.ndarray) -> np.ndarray:
        t = np.minimum(day, self.horizon - 1)
        w = self.weight.reshape(-1, *([1] * (self.values.ndim - 3)))
        return (1.0 - w) * self.values[self.groups, self.cell, t] + w * self.values[self.groups, self.cell + 1, t]


def belief_action_values(values: ActionValues, tables: Tables, now: VisibleState, belief: np.ndarray,
                         lookahead: bool) -> np.ndarray:
    """(N, action): each action's value on the belief; illegal actions -inf. QMDP, or with ``lookahead`` one step
    of belief lookahead first (an action is also worth what the events it brings reveal)."""
    if not lookahead:
        return _qmdp(values.on_day(now.day), belief, now.consent, now.cooldown)
    n = len(now)
    has_tomorrow = now.day + 1 < values.horizon
    tomorrow = values.on_day(now.day + 1) if bool(has_tomorrow.any()) else None
    value = np.full((n, N_ACTIONS), -np.inf)
    for a in range(N_ACTIONS):
        day = ActionDay(tables, now, a)
        total = np.einsum("nkif,nkif->n", belief, np.broadcast_to(day.expected_reward(), belief.shape))
        cooldown = np.full(n, tables.gap - 1) if a != WAIT else np.maximum(now.cooldown - 1, 0)
        kept: dict[bool, tuple[np.ndarray, np.ndarray]] = {}  # tomorrow's values, by whether the day unsubscribed
        for unsub, click, opened, visit, buy in OBSERVABLE_OUTCOMES[a] if tomorrow is not None else ():
            if unsub not in kept:
                consent = now.consent & ~ACTION_CONSENT_BIT[a] if unsub else now.consent
                kept[unsub] = (consent, _states(tomorrow, consent, cooldown))
            consent, q = kept[unsub]
            joint = belief * day.likelihood(unsub, click, opened, visit, buy)
            p = row_sums(joint)
            later = _weighted(q, day.advance(joint, visit, buy), consent, cooldown)
            total = total + np.where(has_tomorrow, p * later.max(axis=1), 0.0)
        value[:, a] = total
    return np.where(LEGAL[now.consent * 2 + (now.cooldown > 0)], value, -np.inf)


def _qmdp(table: np.ndarray, belief: np.ndarray, consent: np.ndarray, cooldown: np.ndarray) -> np.ndarray:
    """(N, action) the belief-weighted values of a day's table (see :meth:`ActionValues.on_day`); illegal -inf."""
    return _weighted(_states(table, consent, cooldown), belief, consent, cooldown)


def _states(table: np.ndarray, consent: np.ndarray, cooldown: np.ndarray) -> np.ndarray:
    """(N, stage, intent, fatigue, action): a day's table at each customer's consent and cooldown."""
    by_consent = np.moveaxis(table, (4, 5), (1, 2))  # (N, consent, cooldown, K, I, F, A): a gather of whole blocks
    return by_consent[np.arange(len(consent)), consent, cooldown]


def _weighted(q: np.ndarray, belief: np.ndarray, consent: np.ndarray, cooldown: np.ndarray) -> np.ndarray:
    value = np.einsum("nkif,nkifa->na", belief, q)
    return np.where(LEGAL[consent * 2 + (cooldown > 0)], value, -np.inf)


class ActionDay:
    """One action's day for N customers, as the filter models it (:func:`environment.belief.outcome_likelihood`),
    with every outcome flag the same for all customers: the lookahead's fast form."""

    def __init__(self, tab: Tables, now: VisibleState, a: int) -> None:
        self.tab, self.a, self.contact = tab, a, a != WAIT
        resp = now.resp
        offer = tab.offer_boost if a == OFFER else 1.0
        if self.contact:
            self.p_click = click_prob(tab, np.array(a), resp.click_mult[:, a][:, None, None, None], STAGE_AXIS, INTENT_AXIS, FATIGUE_AXIS)
            self.p_unsub = unsub_prob(tab, np.array(a), FATIGUE_AXIS)
            p_open = np.maximum(tab.open_rate[a], self.p_click)
            self.p_open_no_click = np.where(self.p_click < 1.0, (p_open - self.p_click) / np.maximum(1.0 - self.p_click, 1e-12), 0.0)
        else:
            self.p_click = self.p_unsub = self.p_open_no_click = np.zeros((1, 1, 1, 1))
        self.p_buy_click = conv_prob(tab, resp.click_conv[:, a][:, None, None, None] * offer, STAGE_AXIS, INTENT_AXIS)
        self.p_buy_plain = conv_prob(tab, np.asarray(offer), STAGE_AXIS, INTENT_AXIS)
        self.p_visit = visit_prob(tab, resp.propensity[:, None, None, None], STAGE_AXIS, INTENT_AXIS)
        self.basket = resp.basket[:, None, None, None]
        self.click_basket = resp.click_basket[:, a][:, None, None, None]

    def expected_reward(self) -> np.ndarray:
        """(N, K, I, F) today's expected reward in each hidden state."""
        tab, a = self.tab, self.a
        margin = tab.margin - (tab.discount if a == OFFER else 0.0)
        bought = (self.p_click * self.p_buy_click * self.click_basket
                  + (1.0 - self.p_click) * self.p_visit * self.p_buy_plain) * self.basket * margin
        loss = tab.unsub_value[max(ACTION_UNSUB_CHANNEL[a], 0)]  # as the market charges it
        return bought - tab.cost[a] - self.p_unsub * loss

    def likelihood(self, unsub: bool, click: bool, opened: bool, visit: bool, buy: bool) -> np.ndarray:
        """P(this day shows these events | hidden state)."""
        open_shown, click_shown = bool(OPEN_OBSERVED[self.a]), bool(CLICK_OBSERVED[self.a])

        def purchase(p_buy: np.ndarray) -> np.ndarray | float:
            return (p_buy if buy else 1.0 - p_buy) if visit else 1.0

        via_click = self.p_click * purchase(self.p_buy_click) if visit and (opened or not open_shown) else 0.0
        open_term = (self.p_open_no_click if opened else 1.0 - self.p_open_no_click) if self.contact and open_shown else 1.0
        no_click = (1.0 - self.p_click) * open_term * (self.p_visit if visit else 1.0 - self.p_visit) * purchase(self.p_buy_plain)
        like = (via_click if click else no_click) if click_shown else via_click + no_click
        return (self.p_unsub if unsub else 1.0 - self.p_unsub) * like

    def advance(self, joint: np.ndarray, visit: bool, buy: bool) -> np.ndarray:
        """The next day's belief from the joint (belief x likelihood) of an outcome: the filter's transition."""
        post = fatigue_raised(joint) if self.contact else fatigue_rested(joint, self.tab)
        if buy:
            post = after_purchase(post)
        elif visit:
            post = after_visit(post, self.tab)
        return drift(post, self.tab)


@dataclass(frozen=True, slots=True)
class DayOutcome:
    action: np.ndarray
    unsubscribed: np.ndarray
    clicked: np.ndarray
    opened: np.ndarray
    visited: np.ndarray
    purchased: np.ndarray


def _outcomes(action: int, shown_only: bool) -> list[Outcome]:
    """Every (unsubscribe, click, open, visit, purchase) a day of ``action`` can bring; with ``shown_only`` only
    what its events can tell apart (an open the channel does not report is never seen; a click it does not report
    shows as a visit). A click is an open and a visit."""
    if action == WAIT:
        return [(False, False, False, visit, buy) for visit in (False, True) for buy in ((False, True) if visit else (False,))]
    opens = (False, True) if OPEN_OBSERVED[action] or not shown_only else (False,)
    clicks = (False, True) if CLICK_OBSERVED[action] or not shown_only else (False,)
    return [
        (unsub, click, opened, visit, buy)
        for unsub in (False, True)
        for click in clicks
        for opened in ((True,) if click and len(opens) == 2 else opens)
        for visit in ((True,) if click else (False, True))
        for buy in ((False, True) if visit else (False,))
    ]


OBSERVABLE_OUTCOMES = {a: _outcomes(a, shown_only=True) for a in range(N_ACTIONS)}
FULL_OUTCOMES = {a: _outcomes(a, shown_only=False) for a in range(N_ACTIONS)}


class BeliefPlanner:
    """The reference planner in the simulator: action values solved exactly for the bound env's customers
    (:class:`ExactValues`), the belief followed with the filter (reading only what the events show)."""

    name = "belief_planner"

    def __init__(self, env: Any = None, lookahead: bool = False, unsub_price: float = 1.0) -> None:
        if not unsub_price > 0:
            raise ValueError(f"the unsubscribe price must be > 0, got {unsub_price}")
        self.lookahead, self.unsub_price = lookahead, unsub_price
        self.name = planner_name(lookahead, unsub_price)
        self.env: Any = None
        self._tables: Tables | None = None
        self._values: ActionValues | None = None
        self._belief: EnvBelief | None = None
        self._resp: Any = None
        if env is not None:
            self.bind(env)

    @property
    def belief(self) -> np.ndarray | None:
        """(N, stage, intent, fatigue): the belief the last decision was made on."""
        return None if self._belief is None else self._belief.tracker.belief

    def bind(self, env: Any) -> None:
        """Plan for the customers of ``env`` (a :class:`~environment.vector.JourneyVectorEnv`, reset)."""
        self.env, self._values, self._resp = env, None, None
        self._tables = priced_tables(env.tables, self.unsub_price)
        self._belief = EnvBelief(env)

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        if self.env is None or self.env.state is None or self._belief is None or self._tables is None:
            raise RuntimeError("bind the planner to a reset JourneyVectorEnv before asking")
        now = self.env.state
        if now.resp is not self._resp:  # new customers: their action values
            self._values, self._resp = ExactValues(self._tables, now.resp), now.resp
        belief = self._belief.now(observation)
        assert self._values is not None
        visible = VisibleState(now.day, now.consent, now.cooldown, now.resp)
        value = belief_action_values(self._values, self._tables, visible, belief, self.lookahead)
        return value.argmax(axis=1), state


def priced_tables(tables: Tables, unsub_price: float) -> Tables:
    """The tables the planner plans with: unsubscribes priced at ``unsub_price`` x their value (the filter and
    the market keep the true model)."""
    return tables if unsub_price == 1.0 else replace(tables, unsub_value=tables.unsub_value * unsub_price)


@runtime_checkable
class ActsOnBelief(Protocol):
    """A policy that decides on the engine's belief over the hidden state (kept in the journey agent's state):
    given today's beliefs and what else it reads, it is an ordinary predictor of the 24-column observation."""

    def on_belief(self, belief: np.ndarray, visible: VisibleState) -> Any: ...


class ServedPlanner:
    """The belief planner as the engine serves it: action values from the propensity grid (:class:`GridValues`)
    and the belief from the journey agent's day-fold (:mod:`environment.belief_fold`). In the simulator it tracks
    the belief itself, with the same filter; both call :func:`belief_action_values`."""

    acting = "argmax"

    def __init__(self, spec: PlannerSpec, config: MarketConfig | None = None) -> None:
        self.config = config or load_market_config()
        self.spec = spec
        self.name = planner_name(spec.lookahead, spec.unsub_price, grid=True)
        self.tables = priced_tables(Tables.of(self.config.journey), spec.unsub_price)
        self.grid = GridValues.for_market(self.tables, self.config.profile)

    def on_belief(self, belief: np.ndarray, visible: VisibleState) -> _OnBelief:
        return _OnBelief(self, belief, visible)


class _OnBelief:
    """A served planner bound to today's beliefs: an SB3-style predictor of the observation it was asked for."""

    def __init__(self, planner: ServedPlanner, belief: np.ndarray, visible: VisibleState) -> None:
        self.planner, self.belief, self.visible = planner, belief, visible

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        if len(observation) != len(self.visible):
            raise ValueError(f"the planner was given {len(self.visible)} beliefs for {len(observation)} observations")
        values = self.planner.grid.bind(self.visible.resp)
        value = belief_action_values(values, self.planner.tables, self.visible, self.belief, self.planner.spec.lookahead)
        return value.argmax(axis=1), state


class FollowedBelief:
    """The simulator's side of a policy that acts on the belief: the filter over the market's customers, updated on
    each day's outcome (it reads only what the events show), as the journey agent's day-fold is."""

    def __init__(self, config: MarketConfig, tables: Tables) -> None:
        self.tracker = BeliefTracker(config, tables)
        self._pending: tuple[JourneyState, StepOutcome] | None = None

    def bound(self, policy: ActsOnBelief, obs: np.ndarray, state: JourneyState) -> Any:
        """``policy`` on today's belief of every customer."""
        if self.tracker.belief is None:
            belief = self.tracker.reset(obs)
        elif self._pending is not None:
            belief = self.tracker.step(*self._pending, obs, np.zeros(len(obs), dtype=bool))
        else:
            belief = self.tracker.belief
        self._pending = None
        return policy.on_belief(belief, VisibleState(state.day, state.consent, state.cooldown, state.resp))

    def saw(self, before: JourneyState, outcome: StepOutcome) -> None:
        self._pending = (before, outcome)


class BeliefObserving:
    """A trained policy that observes the belief too (trained with ``JourneyVectorEnv(belief=True)``), as the engine
    serves it: its observation is the 24 columns followed by the 60 of the belief the journey agent keeps."""

    def __init__(self, policy: Any, name: str | None = None) -> None:
        self.policy = policy
        self.name = name or getattr(policy, "name", type(policy).__name__)
        self.acting = acting_mode(policy)

    def on_belief(self, belief: np.ndarray, visible: VisibleState) -> _WithBeliefColumns:
        bound = _DistributionWithBeliefColumns if isinstance(self.policy, ActionDistribution) else _WithBeliefColumns
        return bound(self.policy, belief, self.acting)


class _WithBeliefColumns:
    """A belief-observing policy bound to today's beliefs: it acts on the 24 columns it is given plus the belief."""

    def __init__(self, policy: Any, belief: np.ndarray, acting: Any) -> None:
        self.policy, self.belief, self.acting = policy, belief, acting

    def _features(self, observation: np.ndarray) -> np.ndarray:
        obs = np.atleast_2d(np.asarray(observation, dtype=np.float32))
        return np.concatenate([obs, self.belief.reshape(len(obs), -1).astype(np.float32)], axis=1)

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, Any]:
        return self.policy.predict(self._features(observation), state=state, episode_start=episode_start,
                                   deterministic=deterministic)


class _DistributionWithBeliefColumns(_WithBeliefColumns):
    """The same, for a policy that gives its action distribution (it samples, or acts by its argmax)."""

    def action_probabilities(self, observation: np.ndarray, action_masks: np.ndarray | None = None) -> np.ndarray:
        return self.policy.action_probabilities(self._features(observation), action_masks)
