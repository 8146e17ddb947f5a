"""The journey decision, shared by the journey agent and the decision API: the observation of a customer's folded
facts (:mod:`environment.observation`), the guardrails (:mod:`environment.guardrails`), the choice
(:func:`environment.acting.choose`, drawing from the decision's id) and what the log keeps of it.

Every logged decision carries what off-policy evaluation needs: the action carried out with its probability under
what was actually done, the proposal and its probability, why a proposal was suppressed, the actions the guardrails
allowed (``context.allowed``, bit i for action i), and the observation itself (``context.obs``: the 24 float32
values, base64 of their little-endian bytes; ``features_hash`` is the hash of the same bytes), and the belief over
the customer's hidden state at the start of the day (``context.belief``: 60 float64 values, base64) wherever it
was kept: for a policy that acts on the belief, and for every decision with ``log_belief`` on, so a policy that
acts on the belief can be judged on the log too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from environment.acting import capable, choose, draws_of
from environment.belief_fold import BeliefModel, advance_beliefs, encode_belief, visible_states
from environment.belief_planner import ActsOnBelief
from environment.config import MarketConfig, load_market_config
from environment.dynamics import Tables
from environment.guardrails import (
    ACTION_CHANNEL,
    QuietHours,
    allowed_actions,
    mask_bits,
    suppression_reason,
)
from environment.observation import (
    ObservationSpec,
    attribute_defaults,
    consent_bits,
    day_of,
    decode_observation,  # noqa: F401 - re-exported: the logged form of an observation
    encode_observation,
    observe_records,
    withdrawn,
)
from environment.population import ACTIONS

Record = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class JourneyRules:
    """What a journey decision depends on besides the policy: the observation's constants and defaults (from the
    market the policies are trained on) and the quiet hours."""

    spec: ObservationSpec
    defaults: Mapping[str, Any]
    quiet: QuietHours
    belief: BeliefModel
    log_belief: bool = False

    @staticmethod
    def of(config: MarketConfig | None = None, quiet_hours: tuple[int, int] = (21, 8), log_belief: bool = False) -> JourneyRules:
        config = config or load_market_config()
        defaults = attribute_defaults(config.profile)
        return JourneyRules(ObservationSpec.of(config.journey), defaults, QuietHours(*quiet_hours),
                            BeliefModel(config, Tables.of(config.journey), defaults), log_belief)


@dataclass(frozen=True, slots=True)
class JourneyDecision:
    """One customer's decision: what was carried out, what was proposed, and the observation it was taken on."""

    action: str
    propensity: float
    proposed: str
    proposed_propensity: float
    suppressed: str | None
    allowed: int
    observation: np.ndarray
    belief: np.ndarray | None = None

    @property
    def channel(self) -> str | None:
        return ACTION_CHANNEL[ACTIONS.index(self.action)]

    @property
    def features_hash(self) -> str:
        return hashlib.blake2b(self.observation.tobytes(), digest_size=8).hexdigest()

    def context(self) -> dict[str, Any]:
        """What the log keeps for off-policy evaluation (besides action, propensity and policy)."""
        out: dict[str, Any] = {"obs": encode_observation(self.observation), "allowed": self.allowed,
                               "proposed": self.proposed, "proposed_propensity": self.proposed_propensity}
        if self.suppressed:
            out["suppressed"] = self.suppressed
        if self.belief is not None:
            out["belief"] = encode_belief(self.belief)
        return out


def last_contact_day(record: Record) -> int | None:
    """The day of the last contact, sent (a fact) or decided by the engine and not yet seen as sent."""
    days = [d for d in (record["last"][0], record.get("pending_contact_day")) if d is not None]
    return max(days) if days else None


def allowed_for(records: Sequence[Record], now_us: Sequence[int], rules: JourneyRules) -> np.ndarray:
    """(N, 6) the actions the guardrails allow each customer now."""
    today = np.array([day_of(t) for t in now_us], dtype=np.int64)
    last = np.array([d if (d := last_contact_day(r)) is not None else -(10**6) for r in records], dtype=np.int64)
    consent = np.array([consent_bits(r) for r in records], dtype=np.int64)
    quiet = np.array([rules.quiet.at(t) for t in now_us], dtype=bool)
    ad_withdrawn = np.array([withdrawn(r, "ad") for r in records], dtype=bool)
    capped = (today - last) < rules.spec.min_days_between_contacts
    return allowed_actions(consent, capped, quiet, ad_withdrawn)


def decide_journeys(policy: Any, records: Sequence[Record], now_us: Sequence[int], decision_ids: Sequence[str],
                    rules: JourneyRules) -> list[JourneyDecision]:
    """The decisions for these customers (one batched policy call); a sampling policy draws from the ids."""
    if not records:
        return []
    today = [day_of(t) for t in now_us]
    obs = observe_records(records, today, rules.spec, rules.defaults)
    allowed = allowed_for(records, now_us, rules)
    on_belief = capable(policy, ActsOnBelief)
    belief = resp = None
    if on_belief or rules.log_belief:  # the belief at the start of today, from the records' day-fold
        resp = rules.belief.responsiveness(records)
        belief = advance_beliefs(records, today, rules.belief, resp)  # type: ignore[arg-type]
    if on_belief:
        visible = visible_states(records, today, [last_contact_day(r) for r in records], rules.belief, resp)
        policy = policy.on_belief(belief, visible)
    choice = choose(policy, obs, allowed, draws_of(decision_ids))
    out = []
    for k, rec in enumerate(records):
        proposed, executed = int(choice.proposed[k]), int(choice.executed[k])
        reason = None
        if proposed != executed:
            reason = suppression_reason(proposed, consent_bits(rec), _capped(rec, today[k], rules),
                                        rules.quiet.at(now_us[k]), withdrawn(rec, "ad"))
        out.append(JourneyDecision(
            action=ACTIONS[executed], propensity=round(float(choice.propensity[k]), 9), proposed=ACTIONS[proposed],
            proposed_propensity=round(float(choice.proposed_propensity[k]), 9), suppressed=reason,
            allowed=mask_bits(allowed[k]), observation=obs[k], belief=None if belief is None else belief[k],
        ))
    return out


def _capped(record: Record, today: int, rules: JourneyRules) -> bool:
    last = last_contact_day(record)
    return last is not None and today - last < rules.spec.min_days_between_contacts
