"""Value objects of the creative area: variants, guardrail verdicts, statuses and errors."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["email_subject", "ad_copy", "social_post", "product_description", "blog_outline", "image"]
KINDS: tuple[str, ...] = get_args(Kind)
TEXT_KINDS: tuple[str, ...] = tuple(k for k in KINDS if k != "image")
"""The kinds a text generator writes; an ``image`` variant's text is the headline drawn on its picture."""


class Status(StrEnum):
    """Where a variant is in its life: only ``approved`` variants are ever served."""

    PENDING = "pending"  # critical, passed the guardrails, waits for a human
    APPROVED = "approved"  # by a human, or automatically when not critical
    REJECTED = "rejected"  # by a human
    FAILED = "failed"  # by the guardrails (never servable, not even by approval)


class CreativeError(Exception):
    """Base of the creative area's errors."""


class NoCreativeAvailable(CreativeError, LookupError):
    """No approved variant to serve for a segment and kind."""


class VariantNotFound(CreativeError, KeyError):
    """No variant with that id in the store."""


class GenerationError(CreativeError, RuntimeError):
    """A generator could not produce variants (bad response, unreachable endpoint)."""


class Variant(BaseModel):
    """One generated piece of copy for one kind, segment and product (for an ``image``, the headline on it).

    :param critical: needs a human's approval before it can be served.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    variant_id: str
    kind: Kind
    segment: str = Field(min_length=1, max_length=64)
    product: str = Field("", max_length=128)
    tone: str = Field("", max_length=64)
    text: str = Field(min_length=1, max_length=4000)
    generator: str = "template"
    critical: bool = False


class Verdict(BaseModel):
    """The guardrails' pass or fail for one variant, with every reason it failed and a quality score."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    passed: bool
    reasons: tuple[str, ...] = ()
    score: float = 0.0


def normalize_text(text: str) -> str:
    """Lower case, letters and digits only, single spaces: the form the duplicate filter compares."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def variant_id_of(kind: str, segment: str, text: str) -> str:
    """A deterministic id: the same copy for the same kind and segment is the same variant."""
    digest = hashlib.blake2b(f"{kind}\x1f{segment}\x1f{normalize_text(text)}".encode(), digest_size=8).hexdigest()
    return f"cv-{digest}"


def make_variant(kind: str, segment: str, text: str, **fields: object) -> Variant:
    """A :class:`Variant` with its id derived from its kind, segment and text."""
    return Variant(variant_id=variant_id_of(kind, segment, text), kind=kind, segment=segment, text=text, **fields)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ImageAsset:
    """The picture of an ``image`` variant: what was asked for, the encoded bytes and their SHA-256.

    :param prompt: what the image model was asked to draw (checked by the guardrails like copy).
    :param disclosed: the visible "AI-generated" mark is drawn on the picture.
    """

    variant_id: str
    prompt: str
    media_type: str
    content: bytes
    sha256: str
    width: int
    height: int
    disclosed: bool


@dataclass(frozen=True, slots=True)
class CalendarEntry:
    """One post of a weekly social calendar: when, where, and which stored ``social_post`` variant."""

    week: date
    day: date
    post_time: str
    channel: str
    segment: str
    variant_id: str
