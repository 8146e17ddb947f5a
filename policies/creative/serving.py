"""What serving calls: :func:`select_creative` picks an approved variant for a segment by Thompson sampling and
returns it with the probability it had of being chosen; :func:`exposure_event` is the ``decision_made`` to log.

Only variants whose status is ``approved`` (and that passed the guardrails, and are in the segment's test)
are candidates; a promoted variant is served with propensity 1.
"""

from __future__ import annotations

import logging
from datetime import datetime

import numpy as np

from data.events import DecisionMade, DecisionMadeProperties, derive_event_id
from policies.creative.bandit import promotable, thompson_select, win_probabilities
from policies.creative.models import NoCreativeAvailable, Variant
from policies.creative.store import CreativeStore, Promotion, open_store

log = logging.getLogger(__name__)

POLICY_NAME = "creative-thompson"
POLICY_VERSION = "beta-bernoulli-1"
PRIOR = (1.0, 1.0)
"""Beta(1, 1): a uniform prior on every variant's click rate."""


def _posteriors(arms: list) -> tuple[np.ndarray, np.ndarray]:
    clicks = np.array([c.clicks for _, c in arms], dtype=np.float64)
    shown = np.array([c.impressions for _, c in arms], dtype=np.float64)
    return PRIOR[0] + clicks, PRIOR[1] + np.maximum(shown - clicks, 0.0)


def select_creative(
    segment: str,
    kind: str = "email_subject",
    *,
    store: CreativeStore | None = None,
    rng: np.random.Generator | None = None,
    n_draws: int = 2000,
) -> tuple[Variant, float]:
    """The variant to show a customer of ``segment`` and the probability the bandit chose it.

    :param segment: the customer's segment (the bandit runs one test per segment and kind).
    :param kind: ``email_subject``, ``ad_copy``, ``social_post`` or ``product_description``.
    :param store: the creative store (default: the configured one).
    :param rng: randomness (default: fresh entropy); pass a seeded generator for reproducible choices.
    :param n_draws: posterior draws for the Monte Carlo propensity.
    :return: ``(variant, propensity)``, propensity in (0, 1].
    :raises NoCreativeAvailable: no approved variant for this segment and kind (serving answers 404).
    """
    store = store or open_store()
    arms = store.arms(segment, kind)
    if not arms:
        raise NoCreativeAvailable(
            f"no approved creative for segment {segment!r} and kind {kind!r}: generate some with "
            f"`ame creatives generate --segment {segment} --kind {kind}` and approve the pending ones"
        )
    promoted = store.promotion(segment, kind)
    if promoted is not None:
        for variant, _ in arms:
            if variant.variant_id == promoted.variant_id:
                return variant, 1.0
    if len(arms) == 1:
        return arms[0][0], 1.0
    alpha, beta = _posteriors(arms)
    choice = thompson_select(alpha, beta, rng or np.random.default_rng(), n_draws)
    return arms[choice.arm][0], choice.propensity


def exposure_event(
    variant: Variant, propensity: float, customer_id: str, occurred_at: datetime, request_id: str
) -> DecisionMade:
    """The ``decision_made`` that logs one exposure (what the CreativeAgent counts as an impression).

    :param request_id: unique per serving request; the event id is derived from it (idempotent retries).
    """
    return DecisionMade(
        event_id=derive_event_id(request_id, "creative", variant.variant_id, at=occurred_at),
        customer_id=customer_id,
        occurred_at=occurred_at,
        source="agent:creative",
        properties=DecisionMadeProperties(
            agent="creative",
            action=variant.variant_id,
            propensity=propensity,
            policy_name=POLICY_NAME,
            policy_version=POLICY_VERSION,
            context={"segment": variant.segment, "kind": variant.kind, "creative_id": variant.variant_id},
        ),
    )


def check_promotion(
    store: CreativeStore,
    segment: str,
    kind: str,
    *,
    threshold: float = 0.95,
    min_impressions: int = 100,
    n_draws: int = 20_000,
) -> Promotion | None:
    """Promote the segment's variant whose posterior P(best) >= ``threshold`` (Monte Carlo, seeded by the counts
    so a replay decides the same). Returns the promotion, or None."""
    arms = store.arms(segment, kind)
    if len(arms) < 2 or store.promotion(segment, kind) is not None:
        return None
    alpha, beta = _posteriors(arms)
    seed = int(alpha.sum() * 1_000_003 + beta.sum()) % (2**32)
    p_best = win_probabilities(alpha, beta, np.random.default_rng(seed), n_draws)
    shown = np.array([c.impressions for _, c in arms])
    arm = promotable(p_best, shown, threshold, min_impressions)
    if arm is None:
        return None
    promotion = Promotion(segment, kind, arms[arm][0].variant_id, float(p_best[arm]), int(shown.sum()))
    store.promote(promotion)
    log.info("promoted %s for %s/%s at P(best)=%.3f after %d impressions", promotion.variant_id, segment, kind, promotion.p_best,
             promotion.impressions)
    return promotion
