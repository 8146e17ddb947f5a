"""Generate, check, rank, store: ``generate_for_test`` writes N variants and puts the best ``top`` that pass
the guardrails into the segment's bandit test. Critical ones wait for a human."""

from __future__ import annotations

import logging

from policies.creative.generators import Generator
from policies.creative.guardrails import Guardrails, is_critical
from policies.creative.store import CreativeStore, StoredVariant

log = logging.getLogger(__name__)


def generate_for_test(
    generator: Generator,
    store: CreativeStore,
    kind: str,
    segment: str,
    n: int = 10,
    top: int = 3,
    product: str | None = None,
    guardrails: Guardrails | None = None,
) -> list[StoredVariant]:
    """Generate ``n`` variants, check them, and enter the ``top`` passing ones (by quality score) into the test.

    :return: every stored variant of this run, in generation order.
    """
    guardrails = guardrails or Guardrails()
    variants = generator.generate(kind, segment, n, product)
    variants = [v.model_copy(update={"critical": is_critical(v, guardrails.config)}) for v in variants]
    existing = [s.variant.text for s in store.list(segment=segment, kind=kind)]
    verdicts = guardrails.check(variants, existing)
    ranked = sorted((i for i, v in enumerate(verdicts) if v.passed), key=lambda i: (-verdicts[i].score, variants[i].variant_id))
    chosen = set(ranked[:top])
    stored = store.add([(v, verdicts[i], i in chosen) for i, v in enumerate(variants)])
    log.info("generated %d %s variants for %s: %d passed, %d in test", len(variants), kind, segment, len(ranked), len(chosen))
    return stored
