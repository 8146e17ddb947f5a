"""Upper bounds: the journey oracle (exact finite-horizon DP on the true latent model) and the auction's
hindsight optimum (the LP relaxation of the knapsack under the budget).

The oracle's DP takes expectations of the same probability functions that :func:`environment.dynamics.step_batch`
samples, over the latent state (stage x intent x fatigue x consent x cooldown = 5 x 3 x 4 x 8 x gap states),
solved per customer (the profile sets the customer's response multipliers), vectorized over customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from environment.dynamics import (
    Tables,
    churn_prob,
    click_prob,
    conv_prob,
    latent_index,
    unsub_prob,
    visit_prob,
)
from environment.population import (
    ACTION_CONSENT_BIT,
    ACTION_UNSUB_CHANNEL,
    CUSTOMER,
    N_ACTIONS,
    N_FATIGUE,
    N_INTENT,
    N_STAGES,
    OFFER,
    WAIT,
    Responsiveness,
)

N_CONSENT = 8


@dataclass(frozen=True, slots=True)
class OracleSolution:
    """The optimal policy table and values for N customers."""

    policy: np.ndarray  # (horizon, N, S) int8, the optimal action per day, customer and latent state
    value0: np.ndarray  # (N, S) expected return from day 0
    gap: int
    q: np.ndarray | None = None  # (horizon, N, stage, intent, fatigue, consent, cooldown, action) float32, if kept

    def action(self, day: np.ndarray, state_index: np.ndarray) -> np.ndarray:
        rows = np.arange(state_index.shape[0])
        return self.policy[np.minimum(day, self.policy.shape[0] - 1), rows, state_index].astype(np.int64)


def _grid(n_axes: int, axis: int, size: int) -> np.ndarray:
    shape = [1] * n_axes
    shape[axis] = size
    return np.arange(size).reshape(shape)


def solve_oracle(tab: Tables, resp: Responsiveness, horizon: int | None = None, keep_q: bool = False) -> OracleSolution:
    """Backward induction over the horizon for every customer of ``resp``; exact for the simulated model.
    ``keep_q`` also returns every action's value (illegal actions: -inf), for the belief planner."""
    horizon = tab.horizon if horizon is None else horizon
    n, gap = len(resp), tab.gap
    K, I, F, C, G = N_STAGES, N_INTENT, N_FATIGUE, N_CONSENT, gap  # noqa: E741 - the state space's symbols
    # axes: customer, stage, intent, fatigue, consent, cooldown
    k, i, f = _grid(6, 1, K), _grid(6, 2, I), _grid(6, 3, F)
    cons, g = _grid(6, 4, C), _grid(6, 5, G)
    col = (slice(None),) + (None,) * 5

    def per(x: np.ndarray) -> np.ndarray:
        return x[col]

    prop, basket = per(resp.propensity), per(resp.basket)
    p_visit = visit_prob(tab, prop, k, i)  # (N, K, I, 1, 1, 1)
    p_churn = churn_prob(tab, k, f)  # (1, K, 1, F, 1, 1)
    up = np.where(i < I - 1, tab.intent_up, 0.0)
    down = np.where(i > 0, tab.intent_down, 0.0)
    f_next = np.minimum(np.arange(F) + 1, F - 1)
    f_prev = np.maximum(np.arange(F) - 1, 0)
    g_prev = np.maximum(np.arange(G) - 1, 0)
    decays = np.where(f > 0, tab.fatigue_decay, 0.0)  # (1,1,1,F,1,1)
    has_bit = [(cons & ACTION_CONSENT_BIT[a]) != 0 if ACTION_CONSENT_BIT[a] else np.ones_like(cons, bool) for a in range(N_ACTIONS)]
    offer_ro = basket * (tab.margin - tab.discount)
    plain_ro = basket * tab.margin
    p_buy_plain = conv_prob(tab, 1.0, k, i)
    p_buy_offer = conv_prob(tab, tab.offer_boost, k, i)
    click_terms = []
    for a in range(1, N_ACTIONS):
        boost = tab.offer_boost if a == OFFER else 1.0
        margin = tab.margin - (tab.discount if a == OFFER else 0.0)
        p_click = click_prob(tab, np.full((1,), a), per(resp.click_mult[:, a]), k, i, f)  # pre-contact fatigue
        p_buy = conv_prob(tab, per(resp.click_conv[:, a]) * boost, k, i)
        reward = basket * per(resp.click_basket[:, a]) * margin
        p_unsub = unsub_prob(tab, np.full((1,), a), f)
        loss = tab.unsub_value[max(ACTION_UNSUB_CHANNEL[a], 0)] if ACTION_UNSUB_CHANNEL[a] >= 0 else 0.0
        cleared = np.arange(C) & ~ACTION_CONSENT_BIT[a]
        click_terms.append((a, p_click, p_buy, reward, p_unsub, loss, cleared))

    value = np.zeros((n, K, I, F, C, G))
    policy = np.zeros((horizon, n, K * I * F * C * G), dtype=np.int8)
    q_all = np.zeros((horizon, n, K, I, F, C, G, N_ACTIONS), dtype=np.float32) if keep_q else None
    for t in range(horizon - 1, -1, -1):
        w = value
        # (3) drift: churn (stage axis) then intent drift
        w_up = np.concatenate([w[:, :, 1:], w[:, :, -1:]], axis=2)
        w_dn = np.concatenate([w[:, :, :1], w[:, :, :-1]], axis=2)
        wi = (1.0 - up - down) * w + up * w_up + down * w_dn
        d = (1.0 - p_churn) * wi + p_churn * wi[:, 4:5]
        # (2) visit and purchase, as functions of the pre-visit stage/intent and post-contact f, c, g
        d_up = np.concatenate([d[:, :, 1:], d[:, :, -1:]], axis=2)
        dq = (1.0 - tab.intent_up_on_visit) * d + tab.intent_up_on_visit * d_up
        vnb = np.concatenate(
            [dq[:, 1:2], tab.advance_prob * dq[:, 2:3] + (1 - tab.advance_prob) * dq[:, 1:2], dq[:, 2:]], axis=1
        )
        buy = d[:, CUSTOMER : CUSTOMER + 1, 0:1]
        no_click_plain = d + p_visit * (vnb - d + p_buy_plain * (plain_ro + buy - vnb))
        no_click_offer = d + p_visit * (vnb - d + p_buy_offer * (offer_ro + buy - vnb))
        # (1) the contact
        q_wait = (1.0 - decays) * no_click_plain[..., g_prev] + decays * no_click_plain[:, :, :, f_prev][..., g_prev]
        best, best_q = np.zeros(q_wait.shape, dtype=np.int8), q_wait
        if q_all is not None:
            q_all[t, ..., WAIT] = q_wait
        for a, p_click, p_buy, reward, p_unsub, loss, cleared in click_terms:
            with_click = vnb + p_buy * (reward + buy - vnb)
            no_click = no_click_offer if a == OFFER else no_click_plain
            y = p_click * with_click[:, :, :, f_next, :, G - 1 :] + (1 - p_click) * no_click[:, :, :, f_next, :, G - 1 :]
            q = -tab.cost[a] + (1.0 - p_unsub) * y + p_unsub * (y[:, :, :, :, cleared] - loss)
            legal = has_bit[a] & (g == 0)
            if q_all is not None:
                q_all[t, ..., a] = np.where(legal, q, -np.inf)
            q = np.where(legal, q, q_wait)
            better = q > best_q + 1e-12
            best = np.where(better, np.int8(a), best)
            best_q = np.where(better, q, best_q)
        value = best_q
        policy[t] = best.reshape(n, -1)
    return OracleSolution(policy=policy, value0=value.reshape(n, -1), gap=gap, q=q_all)


class OraclePolicy:
    """The optimal journey policy: it reads the latent state of a :class:`~environment.vector.JourneyVectorEnv`
    (which no real policy can) and follows the DP solution; re-solved whenever the env draws new customers."""

    name = "oracle"

    def __init__(self, env: Any = None) -> None:
        self.env = env
        self._resp: Responsiveness | None = None
        self.solution: OracleSolution | None = None

    def bind(self, env: Any) -> None:
        """Read the latent state of ``env`` (a :class:`~environment.vector.JourneyVectorEnv`)."""
        self.env, self._resp, self.solution = env, None, None

    def expected_value(self) -> np.ndarray:
        """Exact expected return of each current customer from its day-0 latent state."""
        self._ensure_solved()
        assert self.solution is not None
        return self.solution.value0[np.arange(self.env.num_envs), latent_index(self.env.state, self.env.tables.gap)]

    def predict(
        self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, Any]:
        self._ensure_solved()
        assert self.solution is not None
        s = self.env.state
        return self.solution.action(s.day, latent_index(s, self.env.tables.gap)), state

    def _ensure_solved(self) -> None:
        if self.env is None or self.env.state is None:
            raise RuntimeError("bind the oracle to a JourneyVectorEnv and reset it before asking")
        if self.env.state.resp is not self._resp:
            self._resp = self.env.state.resp
            self.solution = solve_oracle(self.env.tables, self._resp)


# ---- auctions -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HindsightResult:
    value: float  # the LP optimum: expected value bought within the budget
    spend: float
    threshold: float  # value-per-price ratio of the marginal (fractional) impression
    impressions: float


def hindsight_lp(value: np.ndarray, price: np.ndarray, budget: float) -> HindsightResult:
    """The LP relaxation of the hindsight knapsack: take impressions by expected value over price (the price
    being what winning would have cost: max(competing bid, reserve)), filling the budget, the last one fractionally."""
    value = np.asarray(value, dtype=np.float64)
    price = np.asarray(price, dtype=np.float64)
    free = price <= 0
    base_value = float(value[free].sum())
    value, price = value[~free], price[~free]
    order = np.argsort(-(value / price), kind="stable")
    v, p = value[order], price[order]
    cum = np.cumsum(p)
    full = int(np.searchsorted(cum, budget, side="right"))
    spent = float(cum[full - 1]) if full else 0.0
    total = base_value + float(v[:full].sum())
    count = float(full)
    threshold = float(v[full - 1] / p[full - 1]) if full else np.inf
    if full < len(v):
        frac = (budget - spent) / p[full]
        total += frac * v[full]
        spent += frac * p[full]
        count += frac
        threshold = float(v[full] / p[full])
    return HindsightResult(value=total, spend=spent, threshold=threshold, impressions=count)
