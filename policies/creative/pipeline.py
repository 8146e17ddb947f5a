"""Generate, check, rank, store: ``generate_for_test`` writes N variants and puts the best ``top`` that pass
the guardrails into the segment's bandit test; ``generate_drafts`` stores copy outside any test (blog outlines,
calendar posts); ``generate_images`` draws pictures with their headlines. Critical ones wait for a human."""

from __future__ import annotations

import logging
from dataclasses import replace

from policies.creative.generators import Catalog, Generator
from policies.creative.guardrails import Guardrails, is_critical
from policies.creative.images import AspectRatio, ImageGenerator, asset_of, compose, image_prompt
from policies.creative.models import ImageAsset, Variant, Verdict, variant_id_of
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


def generate_drafts(
    generator: Generator, store: CreativeStore, kind: str, segment: str, n: int, product: str | None = None,
    guardrails: Guardrails | None = None,
) -> list[StoredVariant]:
    """Generate, check and store ``n`` variants that enter no bandit test (blog outlines, calendar posts)."""
    return generate_for_test(generator, store, kind, segment, n=n, top=0, product=product, guardrails=guardrails)


def generate_images(
    copywriter: Generator,
    painter: ImageGenerator,
    store: CreativeStore,
    segment: str,
    n: int = 4,
    product: str | None = None,
    aspect_ratio: AspectRatio = "1:1",
    seed: int = 0,
    guardrails: Guardrails | None = None,
    catalog: Catalog | None = None,
) -> list[StoredVariant]:
    """``n`` image creatives: headlines by ``copywriter``, pictures by ``painter``, composed with the headline and
    the visible AI-generated mark, checked (the headline as copy, the prompt for banned terms and personal data)
    and stored with their PNG bytes and SHA-256. Pictures are critical: they wait for a human's approval.

    :return: every stored image variant of this run, in generation order.
    """
    guardrails = guardrails or Guardrails()
    catalog = catalog or Catalog.load()
    headlines = copywriter.generate("image", segment, n, product)
    by_product: dict[str, list[Variant]] = {}
    for headline in headlines:  # a headline about several products (Gemini's) is drawn with the first one asked for
        by_product.setdefault(headline.product or catalog.product(product)[0]["id"], []).append(headline)
    variants: list[Variant] = []
    assets: list[ImageAsset] = []
    for product_id, group in by_product.items():
        prompt = image_prompt(catalog, product_id)
        pictures = painter.draw(prompt, len(group), aspect_ratio, seed)
        for headline, picture in zip(group, pictures, strict=True):
            composed = compose(picture, headline.text, catalog.brand, aspect_ratio)
            asset = asset_of(headline, prompt, composed)
            variant = headline.model_copy(update={
                "variant_id": variant_id_of("image", segment, f"{headline.text} {asset.sha256}"), "product": product_id,
                "generator": headline.generator if painter.name == "template" else f"{headline.generator}+{painter.name}"})
            variant = variant.model_copy(update={"critical": is_critical(variant, guardrails.config)})
            variants.append(variant)
            assets.append(replace(asset, variant_id=variant.variant_id))
    existing = [s.variant.text for s in store.list(segment=segment, kind="image")]
    verdicts = [_with_image_checks(v, a, guardrails) for v, a in zip(guardrails.check(variants, existing), assets, strict=True)]
    store.add_images(assets)  # first: every stored image variant has its picture
    stored = store.add([(v, verdict, False) for v, verdict in zip(variants, verdicts, strict=True)])
    log.info("drew %d images for %s with %s: %d passed", len(stored), segment, painter.name, sum(v.passed for v in verdicts))
    return stored


def _with_image_checks(verdict: Verdict, asset: ImageAsset, guardrails: Guardrails) -> Verdict:
    reasons = list(verdict.reasons) + guardrails.check_prompt(asset.prompt)
    if not asset.disclosed:
        reasons.append("missing the visible AI-generated mark on the picture")
    return verdict.model_copy(update={"passed": not reasons, "reasons": tuple(reasons)})
