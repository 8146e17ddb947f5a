"""Guardrails: every variant gets a pass or fail with all its reasons, and a quality score for pre-ranking.

Checks: length per kind, banned terms, the AI-generated disclosure (for AI-written copy), PII (e-mail addresses,
phone numbers, card-like numbers that pass the Luhn check), and duplicates (the same normalised text, or a
near-duplicate by word-set Jaccard similarity) against the batch and against copy already stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from policies.creative.generators import DISCLOSURE
from policies.creative.models import Variant, Verdict, normalize_text

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PHONE = re.compile(r"(?<!\w)(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?\d{2,4}[\s.-]\d{3,4}[\s.-]?\d{3,4}(?!\w)")
CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
CLAIM = re.compile(r"\d+\s*%|[$€£]\s*\d|\bfree\b|\bguarantee", re.IGNORECASE)


class GuardrailConfig(BaseModel):
    """The rules (configurable; the defaults are the product's)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_length: dict[str, int] = Field(
        default_factory=lambda: {"email_subject": 60, "ad_copy": 150, "social_post": 280, "product_description": 600,
                                 "blog_outline": 1500, "image": 70}
    )
    min_length: int = 8
    banned_terms: tuple[str, ...] = (
        "guaranteed", "risk-free", "risk free", "miracle", "cure", "act now", "click here", "100% free",
        "no strings attached", "winner", "cheap", "lowest price ever", "viagra", "crypto",
    )
    ideal_length: dict[str, int] = Field(
        default_factory=lambda: {"email_subject": 40, "ad_copy": 90, "social_post": 140, "product_description": 250,
                                 "blog_outline": 450, "image": 35}
    )
    near_duplicate_jaccard: float = Field(0.8, gt=0, le=1, description="Word-set similarity at or above which copy is a near-duplicate.")
    critical_kinds: tuple[str, ...] = Field(("ad_copy", "image"), description="Kinds a human always approves: paid "
                                            "ads, and pictures (the checks read an image's text and prompt, not its pixels).")


def luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def pii_found(text: str) -> list[str]:
    """What kinds of personal data the text leaks: ``email``, ``phone``, ``card``."""
    found = []
    if EMAIL.search(text):
        found.append("email")
    cards = [m for m in CARD.findall(text) if luhn_ok(re.sub(r"\D", "", m))]
    if cards:
        found.append("card")
    if PHONE.search(CARD.sub(lambda m: "" if m.group(0) in cards else m.group(0), text)):
        found.append("phone")
    return found


def _words(text: str) -> frozenset[str]:
    return frozenset(normalize_text(text).split())


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def is_critical(variant: Variant, config: GuardrailConfig | None = None) -> bool:
    """Needs a human: the kind is critical (paid ads by default) or the copy makes a price, discount or free claim."""
    config = config or GuardrailConfig()
    return variant.critical or variant.kind in config.critical_kinds or bool(CLAIM.search(variant.text))


def quality_score(variant: Variant, config: GuardrailConfig) -> float:
    """A simple pre-ranking model in [0, 1]: length close to the kind's ideal, a call to action, no shouting."""
    text = variant.text
    ideal = config.ideal_length[variant.kind]
    length = max(0.0, 1.0 - abs(len(text) - ideal) / ideal)
    cta = 1.0 if re.search(r"\b(discover|shop|take a look|come see|meet|get)\b", text, re.IGNORECASE) else 0.0
    shouting = min(1.0, text.count("!") / 3 + sum(w.isupper() and len(w) > 3 for w in text.split()) / 3)
    return round(0.6 * length + 0.3 * cta + 0.1 * (1.0 - shouting), 4)


class Guardrails:
    """Checks a batch of variants; ``existing`` texts (already stored for the same segment and kind) count for
    the duplicate filter."""

    def __init__(self, config: GuardrailConfig | None = None) -> None:
        self.config = config or GuardrailConfig()
        self._banned = [(t, re.compile(rf"(?<!\w){re.escape(t)}(?!\w)", re.IGNORECASE)) for t in self.config.banned_terms]

    def check_one(self, variant: Variant) -> list[str]:
        """Every reason this variant fails, on its own (no duplicate check)."""
        c, text, reasons = self.config, variant.text, []
        limit = c.max_length[variant.kind]
        if len(text) > limit:
            reasons.append(f"too long for {variant.kind}: {len(text)} > {limit} characters")
        if len(text) < c.min_length:
            reasons.append(f"too short: {len(text)} < {c.min_length} characters")
        for term, pattern in self._banned:
            if pattern.search(text):
                reasons.append(f"banned term: {term!r}")
        if variant.generator != "template" and not text.endswith(DISCLOSURE[variant.kind].strip()):
            reasons.append(f"missing AI-generated disclosure {DISCLOSURE[variant.kind].strip()!r}")
        for kind in pii_found(text):
            reasons.append(f"PII leak: {kind}")
        return reasons

    def check_prompt(self, prompt: str) -> list[str]:
        """Every reason an image prompt fails: banned terms and personal data, as in copy (prefixed ``prompt:``)."""
        reasons = [f"prompt: banned term: {term!r}" for term, pattern in self._banned if pattern.search(prompt)]
        return reasons + [f"prompt: PII leak: {kind}" for kind in pii_found(prompt)]

    def check(self, variants: Sequence[Variant], existing: Iterable[str] = ()) -> list[Verdict]:
        """A verdict per variant, in order. A duplicate of an earlier variant of the batch (or of ``existing``) fails."""
        seen_exact = {normalize_text(t) for t in existing}
        seen_words = [_words(t) for t in existing]
        out = []
        for v in variants:
            reasons = self.check_one(v)
            norm, words = normalize_text(v.text), _words(v.text)
            if norm in seen_exact:
                reasons.append("duplicate: same text as another variant")
            else:
                best = max((jaccard(words, w) for w in seen_words), default=0.0)
                if best >= self.config.near_duplicate_jaccard:
                    reasons.append(f"near-duplicate: {best:.0%} of its words shared with another variant")
            if not reasons:  # only passing copy blocks later copy
                seen_exact.add(norm)
                seen_words.append(words)
            out.append(Verdict(passed=not reasons, reasons=tuple(reasons), score=quality_score(v, self.config)))
        return out
