"""Copy generators behind one Protocol: the embedded :class:`TemplateGenerator` (deterministic slot-filling from
``catalog.yaml``) and :class:`GeminiGenerator` (google-genai on Vertex AI, the successor of the deprecated
``vertexai.generative_models``)."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field

from data.settings import get_settings
from policies.creative.models import (
    KINDS,
    GenerationError,
    Variant,
    make_variant,
    normalize_text,
)

log = logging.getLogger(__name__)

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")

DISCLOSURE: dict[str, str] = {
    "email_subject": " [AI]",
    "ad_copy": " (AI-generated)",
    "social_post": " #AIgenerated",
    "product_description": " (This description was generated with AI.)",
    "blog_outline": "\n(Outline drafted with AI.)",
    "image": "",
}
"""The AI-generated disclosure each kind must end with when an AI model wrote it (checked by the guardrails). A
picture carries a visible "AI-generated" mark instead (:func:`policies.creative.images.compose`)."""


class Generator(Protocol):
    """Anything that writes ``n`` variants of one kind of copy for one segment."""

    name: str

    def generate(self, kind: str, segment: str, n: int, product: str | None = None) -> list[Variant]: ...


class Catalog(BaseModel):
    """Products, segments, tones and templates (``catalog.yaml``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    products: list[dict[str, str]]
    segments: list[dict[str, str]]
    tones: list[dict[str, str]]
    templates: dict[str, list[str]]
    image_prompts: list[str] = Field(default_factory=list)
    brand: dict[str, str] = Field(default_factory=lambda: {"background": "#12355b", "accent": "#ffb627", "text": "#ffffff"})

    @classmethod
    def load(cls, path: Path = CATALOG_PATH) -> Catalog:
        try:
            return cls.model_validate(yaml.safe_load(path.read_text()))
        except FileNotFoundError:
            raise FileNotFoundError(f"no creative catalog at {path} (pass --catalog or restore policies/creative/catalog.yaml)") from None

    def product(self, product_id: str | None) -> list[dict[str, str]]:
        if product_id is None:
            return self.products
        found = [p for p in self.products if p["id"] == product_id]
        if not found:
            raise ValueError(f"unknown product {product_id!r}; the catalog has {[p['id'] for p in self.products]}")
        return found

    def segment(self, segment_id: str) -> dict[str, str]:
        for s in self.segments:
            if s["id"] == segment_id:
                return s
        return {"id": segment_id, "audience": segment_id.replace("_", " ") + " customers", "hook": "Picked for you"}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown creative kind {kind!r}; use one of {', '.join(KINDS)}")


class TemplateGenerator:
    """The embedded default: every (template, product, tone) combination of the catalog, in an order fixed by
    a hash of the segment, so the same request always gives the same variants. No network, no model."""

    name = "template"

    def __init__(self, catalog: Catalog | None = None) -> None:
        self.catalog = catalog or Catalog.load()

    def generate(self, kind: str, segment: str, n: int, product: str | None = None) -> list[Variant]:
        _check_kind(kind)
        seg = self.catalog.segment(segment)
        combos = list(itertools.product(self.catalog.templates[kind], self.catalog.product(product), self.catalog.tones))
        combos.sort(key=lambda c: hashlib.blake2b(f"{segment}|{c[0]}|{c[1]['id']}|{c[2]['id']}".encode(), digest_size=8).digest())
        out: list[Variant] = []
        seen: set[str] = set()
        for template, prod, tone in combos:
            text = template.format(
                product=prod["name"], category=prod["category"], benefit=prod["benefit"], feature=prod["feature"],
                hook=seg["hook"], audience=seg["audience"], cta=tone["cta"], opener=tone["opener"],
                category_tag=prod["category"].replace(" ", ""),
            )
            text = text[0].upper() + text[1:]
            if normalize_text(text) in seen:
                continue
            seen.add(normalize_text(text))
            out.append(make_variant(kind, segment, text, product=prod["id"], tone=tone["id"], generator=self.name))
            if len(out) == n:
                break
        return out


class GeminiConfig(BaseModel):
    """Where and how the Gemini generator calls Vertex AI. ``base_url`` points the client elsewhere (tests use a
    local stub of the REST API)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    project: str = Field(min_length=1)
    location: str = "us-central1"
    model: str = "gemini-2.5-flash"
    temperature: float = Field(0.9, ge=0, le=2)
    timeout_ms: int = Field(30_000, ge=100)
    attempts: int = Field(2, ge=1, le=5)
    base_url: str | None = None


PROMPT = """Write {n} distinct {kind_words} for {audience} (segment '{segment}'), about: {products}.
Tone: {tone}. Plain text, no personal data, no prices or guarantees unless given.
Answer with a JSON array of {n} strings and nothing else."""

KIND_WORDS = {
    "email_subject": "email subject lines (at most 55 characters)",
    "ad_copy": "short ad texts (at most 130 characters)",
    "social_post": "social media posts (at most 250 characters)",
    "product_description": "product descriptions (at most 550 characters)",
    "blog_outline": ("blog post outlines (a title line, then 4 to 6 numbered section headings, one per line, at most "
                     "1,400 characters)"),
    "image": "headlines to print on a product picture (at most 50 characters)",
}


def vertex_client(project: str, location: str, timeout_ms: int, attempts: int, base_url: str | None, credentials: Any) -> Any:
    """A ``google-genai`` client on Vertex AI (``Client(vertexai=True, project, location)``), with its timeout and
    retries; ``base_url`` points it elsewhere (tests use a local stub of the REST API)."""
    from google import genai  # lazy: the Google client is heavy
    from google.genai import types  # lazy: the Google client is heavy

    http = types.HttpOptions(timeout=timeout_ms, retry_options=types.HttpRetryOptions(attempts=attempts), base_url=base_url)
    return genai.Client(vertexai=True, project=project, location=location, credentials=credentials, http_options=http)


@contextmanager
def vertex_errors(model: str, instead: str) -> Iterator[None]:
    """Vertex AI's failures inside the block as :class:`GenerationError`, saying what to check; ``instead`` names
    the offline alternative."""
    from google.genai import errors  # lazy: the Google client is heavy

    try:
        yield
    except errors.APIError as error:
        raise GenerationError(f"Vertex AI answered {error.code} for model {model!r}: {error.message}") from None
    except Exception as error:  # noqa: BLE001  (transport errors from httpx, auth errors)
        raise GenerationError(
            f"cannot reach Vertex AI ({type(error).__name__}: {error}); check AME_GCP_PROJECT, AME_GCP_LOCATION and "
            f"your application default credentials, or {instead}"
        ) from None


class GeminiGenerator:
    """Variants written by Gemini through ``google-genai`` on Vertex AI (``Client(vertexai=True, project, location)``).

    :param config: project, location, model name, and an optional ``base_url`` override.
    :param credentials: Google credentials (default: application default credentials).
    """

    name = "gemini"

    def __init__(self, config: GeminiConfig, credentials: Any = None, catalog: Catalog | None = None) -> None:
        self.config = config
        self.credentials = credentials
        self.catalog = catalog or Catalog.load()

    @cached_property
    def client(self) -> Any:
        c = self.config
        return vertex_client(c.project, c.location, c.timeout_ms, c.attempts, c.base_url, self.credentials)

    def generate(self, kind: str, segment: str, n: int, product: str | None = None) -> list[Variant]:
        from google.genai import types  # lazy: the Google client is heavy

        _check_kind(kind)
        seg = self.catalog.segment(segment)
        products = self.catalog.product(product)
        tone = self.catalog.tones[0]
        prompt = PROMPT.format(
            n=n, kind_words=KIND_WORDS[kind], audience=seg["audience"], segment=segment, tone=tone["id"],
            products="; ".join(f"{p['name']} ({p['category']}: {p['benefit']}, {p['feature']})" for p in products),
        )
        config = types.GenerateContentConfig(
            temperature=self.config.temperature,
            response_mime_type="application/json",
            response_schema={"type": "ARRAY", "items": {"type": "STRING"}},
            system_instruction="You write marketing copy. Follow the length limits. Never include personal data.",
        )
        with vertex_errors(self.config.model, "use the template generator (AME_CREATIVE_GENERATOR=template)"):
            response = self.client.models.generate_content(model=self.config.model, contents=prompt, config=config)
        try:
            texts = json.loads(response.text or "")
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise ValueError("not a JSON array of strings")
        except ValueError as error:
            raise GenerationError(f"Gemini's answer is not a JSON array of strings ({error}): {str(response.text)[:200]!r}") from None
        prod_id = products[0]["id"] if len(products) == 1 else ""
        out = []
        for text in texts[:n]:
            text = clean_text(text, kind)
            if text:
                out.append(make_variant(kind, segment, text + DISCLOSURE[kind], product=prod_id, tone=tone["id"], generator=self.name))
        return out


def clean_text(text: str, kind: str) -> str:
    """Single spaces; a blog outline keeps its lines (without blank ones), every other kind is one line."""
    if kind == "blog_outline":
        return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())
    return " ".join(text.split())


def default_generator() -> Generator:
    """The generator the settings name (``AME_CREATIVE_GENERATOR``): ``template`` (default) or ``gemini``."""
    s = get_settings()
    if s.creative_generator == "template":
        return TemplateGenerator()
    if s.creative_generator == "gemini":
        if not s.gcp_project:
            raise ValueError("AME_CREATIVE_GENERATOR=gemini needs AME_GCP_PROJECT (and AME_GCP_LOCATION)")
        return GeminiGenerator(GeminiConfig(project=s.gcp_project, location=s.gcp_location, model=s.gemini_model))
    raise ValueError(f"unknown AME_CREATIVE_GENERATOR {s.creative_generator!r}; use 'template' or 'gemini'")
