"""The journey's true model as pure numpy batch functions: ``reset_batch`` and ``step_batch(state, actions, rng)``.

The single env, the vector env, the market stream and the calibration all step customers through
:func:`step_batch`; the oracle (:mod:`environment.bounds`) takes expectations of the same probability
functions (``*_prob`` below), so the dynamic program solves exactly the model that is simulated.

One day, in order: (1) the contact (an illegal action becomes wait): cost, unsubscribe, open, click;
fatigue rises after a contact and may decay after a wait; (2) a visit (every click is one, else an organic
visit) and maybe a purchase, which moves stage and intent; (3) drift: churn and intent drift.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from environment.config import JourneyModel, MarketConfig
from environment.guardrails import LEGAL, allowed_actions
from environment.observation import (
    JourneyFacts,
    ObservationSpec,
    initial_facts,
    profiles_columns,
)
from environment.observation import advance as advance_facts
from environment.observation import observe as observe_facts
from environment.population import (
    ACTION_CONSENT_BIT,
    ACTION_UNSUB_CHANNEL,
    CHURNED,
    CLICK_OBSERVED,
    CUSTOMER,
    N_FATIGUE,
    N_INTENT,
    OFFER,
    OPEN_OBSERVED,
    WAIT,
    Profiles,
    Responsiveness,
    initial_latent,
    matched_creative,
    profile_design,
    responsiveness,
    sample_profiles,
)

MAX_CLICK = 0.95


@dataclass(frozen=True, slots=True)
class Tables:
    """The journey model as numpy arrays, for the hot path."""

    cost: np.ndarray
    open_rate: np.ndarray
    click_rate: np.ndarray
    unsub_rate: np.ndarray
    unsub_value: np.ndarray
    stage_click: np.ndarray
    intent_click: np.ndarray
    fatigue_click: np.ndarray
    fatigue_unsub: np.ndarray
    fatigue_churn: np.ndarray
    visit_hazard: np.ndarray
    intent_visit: np.ndarray
    conv_rate: np.ndarray
    intent_conv: np.ndarray
    churn_hazard: np.ndarray
    fatigue_decay: float
    offer_boost: float
    discount: float
    margin: float
    basket_sigma: float
    advance_prob: float
    intent_up_on_visit: float
    intent_up: float
    intent_down: float
    gap: int
    horizon: int
    spec: ObservationSpec

    @staticmethod
    def of(model: JourneyModel) -> Tables:
        a = np.asarray
        return Tables(
            cost=a(model.cost), open_rate=a(model.open_rate), click_rate=a(model.click_rate),
            unsub_rate=a(model.unsub_rate), unsub_value=a(model.unsub_value), stage_click=a(model.stage_click_mult),
            intent_click=a(model.intent_click_mult), fatigue_click=a(model.fatigue_click_mult),
            fatigue_unsub=a(model.fatigue_unsub_mult), fatigue_churn=a(model.fatigue_churn_mult),
            visit_hazard=a(model.visit_hazard) * model.visit_scale, intent_visit=a(model.intent_visit_mult),
            conv_rate=a(model.conv_rate) * model.conv_scale, intent_conv=a(model.intent_conv_mult),
            churn_hazard=a(model.churn_hazard), fatigue_decay=model.fatigue_decay,
            offer_boost=model.offer_conv_boost, discount=model.discount_pct / 100.0, margin=model.margin_rate,
            basket_sigma=model.basket_log_sigma, advance_prob=model.advance_prob,
            intent_up_on_visit=model.intent_up_on_visit, intent_up=model.intent_up, intent_down=model.intent_down,
            gap=model.min_days_between_contacts, horizon=model.horizon_days, spec=ObservationSpec.of(model),
        )


# ---- the probability functions (shared with the oracle's DP) ------------------------------------------


def click_prob(tab: Tables, action: np.ndarray, click_mult: np.ndarray, k, i, f) -> np.ndarray:
    """P(click) of a contact; ``click_mult`` is the customer's multiplier for that action."""
    return np.minimum(
        tab.click_rate[action] * click_mult * tab.stage_click[k] * tab.intent_click[i] * tab.fatigue_click[f], MAX_CLICK
    )


def unsub_prob(tab: Tables, action, f) -> np.ndarray:
    return np.minimum(tab.unsub_rate[action] * tab.fatigue_unsub[f], 1.0)


def visit_prob(tab: Tables, propensity: np.ndarray, k, i) -> np.ndarray:
    """P(organic visit) in a day without a click."""
    return np.minimum(tab.visit_hazard[k] * tab.intent_visit[i] * propensity, 1.0)


def conv_prob(tab: Tables, conv_mult, k, i) -> np.ndarray:
    """P(purchase | visit); ``conv_mult`` carries the click-through and offer multipliers."""
    return np.minimum(tab.conv_rate[k] * tab.intent_conv[i] * conv_mult, 1.0)


def churn_prob(tab: Tables, k, f) -> np.ndarray:
    return np.minimum(tab.churn_hazard[k] * tab.fatigue_churn[f], 1.0)


# ---- state ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JourneyState:
    """N customers: latent state (stage, intent, fatigue), consent and cap, and the facts the engine has
    observed (:class:`~environment.observation.JourneyFacts`, from which every observation is made)."""

    day: np.ndarray  # (N,) int
    stage: np.ndarray  # latent
    intent: np.ndarray  # latent
    fatigue: np.ndarray  # latent
    consent: np.ndarray  # bits: email 1, sms 2, push 4 (observable)
    cooldown: np.ndarray  # days until a contact is allowed again (observable)
    facts: JourneyFacts  # what the events have shown: attributes, consent, engagement days
    creative: np.ndarray  # (N,) the e-mail creative this customer gets
    resp: Responsiveness

    def __len__(self) -> int:
        return int(self.day.shape[0])


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What happened to each customer in one day (arrays of length N), enough to emit the events."""

    requested: np.ndarray
    action: np.ndarray  # after enforcement (illegal -> wait)
    illegal: np.ndarray
    unsubscribed: np.ndarray
    opened: np.ndarray
    clicked: np.ndarray
    visited: np.ndarray
    purchased: np.ndarray
    amount: np.ndarray
    discount: np.ndarray
    churned: np.ndarray  # latent: churned today
    reward: np.ndarray


def reset_batch(
    config: MarketConfig,
    n: int,
    rng: np.random.Generator,
    profiles: Profiles | None = None,
    creative: np.ndarray | None = None,
) -> JourneyState:
    """A fresh batch of ``n`` customers on day 0 (profiles drawn unless given)."""
    profiles = sample_profiles(config.profile, n, rng) if profiles is None else profiles
    resp = responsiveness(config.profile, config.journey, profiles, creative)
    stage, intent, consent = initial_latent(config.profile, profiles, rng)
    zeros = np.zeros(n, dtype=np.int64)
    return JourneyState(
        day=zeros.copy(), stage=stage, intent=intent, fatigue=zeros.copy(), consent=consent, cooldown=zeros.copy(),
        facts=initial_facts(profiles_columns(profiles), consent),
        creative=matched_creative(profiles) if creative is None else np.asarray(creative, dtype=np.int64),
        resp=resp,
    )


def where_state(mask: np.ndarray, fresh: JourneyState, old: JourneyState) -> JourneyState:
    """Customers where ``mask`` is true come from ``fresh``, the others from ``old`` (reset with a mask)."""

    def pick(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        m = mask.reshape((-1,) + (1,) * (a.ndim - 1))
        return np.where(m, a, b)

    def pick_all(cls: type, a: object, b: object) -> object:
        return cls(*(pick(getattr(a, f.name), getattr(b, f.name)) for f in fields(cls)))

    nested = {"resp": Responsiveness, "facts": JourneyFacts}
    values = {f.name: pick(getattr(fresh, f.name), getattr(old, f.name)) for f in fields(JourneyState) if f.name not in nested}
    values |= {name: pick_all(cls, getattr(fresh, name), getattr(old, name)) for name, cls in nested.items()}
    return JourneyState(**values)


def legal_mask(state: JourneyState) -> np.ndarray:
    """(N, 6) bool: which actions consent and the frequency cap allow (wait always); the guardrails' rule."""
    return allowed_actions(state.consent, state.cooldown > 0)


def observe(state: JourneyState, spec: ObservationSpec) -> np.ndarray:
    """The (N, 24) float32 observation of the customers' facts at the start of their current day."""
    return observe_facts(state.facts, state.day, spec)


def step_batch(
    state: JourneyState, actions: np.ndarray, rng: np.random.Generator, tab: Tables
) -> tuple[JourneyState, StepOutcome]:
    """Advance every customer one day under ``actions`` (ints in 0..5); pure apart from drawing from ``rng``."""
    n = len(state)
    requested = np.asarray(actions, dtype=np.int64).reshape(n)
    legal = LEGAL[state.consent * 2 + (state.cooldown > 0), requested]
    a = np.where(legal, requested, WAIT)
    contact = a != WAIT
    k, i, f, c, g = state.stage, state.intent, state.fatigue, state.consent, state.cooldown
    u = rng.random((10, n), dtype=np.float32)
    z = rng.standard_normal(n, dtype=np.float32)
    rows = np.arange(n)
    resp = state.resp

    # (1) the contact
    p_click = np.where(contact, click_prob(tab, a, resp.click_mult[rows, a], k, i, f), 0.0)
    p_unsub = np.where(contact, unsub_prob(tab, a, f), 0.0)
    unsub = u[0] < p_unsub
    clicked = u[1] < p_click
    p_open = np.maximum(tab.open_rate[a], p_click)
    opened = contact & (clicked | (u[2] < (p_open - p_click) / (1.0 - p_click)))
    consent = np.where(unsub, c & ~ACTION_CONSENT_BIT[a], c)
    decays = (u[3] < tab.fatigue_decay) & (f > 0)
    fatigue = np.where(contact, np.minimum(f + 1, N_FATIGUE - 1), f - decays)
    cooldown = np.where(contact, tab.gap - 1, np.maximum(g - 1, 0))

    # (2) visit and purchase
    visited = clicked | (u[4] < visit_prob(tab, resp.propensity, k, i))
    conv_mult = np.where(clicked, resp.click_conv[rows, a], 1.0) * np.where(a == OFFER, tab.offer_boost, 1.0)
    bought = visited & (u[5] < conv_prob(tab, conv_mult, k, i))
    mean_amount = resp.basket * np.where(clicked, resp.click_basket[rows, a], 1.0)
    sigma = tab.basket_sigma
    amount = np.where(bought, np.round(mean_amount * np.exp(sigma * z - 0.5 * sigma * sigma), 2), 0.0)
    discount = np.where(a == OFFER, np.round(amount * tab.discount, 2), 0.0)
    advance = (k == 0) | ((k == 1) & (u[6] < tab.advance_prob))
    stage = np.where(bought, CUSTOMER, np.where(visited & advance, k + 1, k))
    intent = np.where(
        bought, 0, np.where(visited & (u[7] < tab.intent_up_on_visit), np.minimum(i + 1, N_INTENT - 1), i)
    )

    # (3) drift
    churned = u[8] < churn_prob(tab, stage, fatigue)
    stage = np.where(churned, CHURNED, stage)
    up = (intent < N_INTENT - 1) & (u[9] < tab.intent_up)
    down = (intent > 0) & (u[9] >= tab.intent_up) & (u[9] < tab.intent_up + tab.intent_down)
    intent = intent + up - down

    unsub_loss = np.where(unsub, tab.unsub_value[np.maximum(ACTION_UNSUB_CHANNEL[a], 0)], 0.0)
    reward = tab.margin * amount - discount - tab.cost[a] - unsub_loss

    seen = np.column_stack([contact, opened & OPEN_OBSERVED[a], clicked & CLICK_OBSERVED[a], visited, bought])
    facts = advance_facts(state.facts, state.day, seen, consent, tab.spec)
    new_state = replace(
        state, day=state.day + 1, stage=stage, intent=intent, fatigue=fatigue, consent=consent, cooldown=cooldown,
        facts=facts,
    )
    outcome = StepOutcome(
        requested=requested, action=a, illegal=~legal, unsubscribed=unsub, opened=opened, clicked=clicked,
        visited=visited, purchased=bought, amount=amount, discount=discount, churned=churned & (k != CHURNED),
        reward=reward,
    )
    return new_state, outcome


def latent_index(state: JourneyState, gap: int) -> np.ndarray:
    """The flat index of each customer's latent state (stage, intent, fatigue, consent, cooldown) for the DP."""
    return (((state.stage * N_INTENT + state.intent) * N_FATIGUE + state.fatigue) * 8 + state.consent) * gap + state.cooldown


__all__ = [
    "JourneyState",
    "StepOutcome",
    "Tables",
    "churn_prob",
    "click_prob",
    "conv_prob",
    "latent_index",
    "legal_mask",
    "observe",
    "profile_design",
    "reset_batch",
    "step_batch",
    "unsub_prob",
    "visit_prob",
    "where_state",
]
