"""Pictures for ``image`` creatives behind one Protocol: the embedded :class:`TemplateImageGenerator` (Pillow, brand
colours, deterministic for a seed) and :class:`ImagenGenerator` (Imagen through google-genai's
``client.models.generate_images`` on Vertex AI).

A generator only draws the picture. :func:`compose` then prints the headline and the visible "AI-generated" mark on
it, so every picture, whoever drew it, carries the disclosure and exactly the text the guardrails checked.
"""

from __future__ import annotations

import hashlib
import io
import logging
import textwrap
from functools import cached_property
from typing import Any, Literal, Protocol

import numpy as np
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from policies.creative.generators import Catalog, vertex_client, vertex_errors
from policies.creative.models import GenerationError, ImageAsset, Variant

log = logging.getLogger(__name__)

AspectRatio = Literal["1:1", "3:4", "4:3", "9:16", "16:9"]
SIZES: dict[str, tuple[int, int]] = {"1:1": (768, 768), "3:4": (576, 768), "4:3": (768, 576), "9:16": (576, 1024),
                                     "16:9": (1024, 576)}
"""The size each aspect ratio is delivered at (an Imagen picture is resized to it before the text goes on)."""
DISCLOSURE_MARK = "AI-generated"


class ImageGenerator(Protocol):
    """Anything that draws ``n`` pictures (no text on them) for one prompt."""

    name: str

    def draw(self, prompt: str, n: int, aspect_ratio: AspectRatio, seed: int) -> list[Image.Image]: ...


def image_prompt(catalog: Catalog, product_id: str) -> str:
    """What the picture of one catalog product shows (the catalog's ``image_prompts`` template)."""
    if not catalog.image_prompts:
        raise ValueError("the creative catalog has no image_prompts; add one (see policies/creative/catalog.yaml)")
    product = catalog.product(product_id)[0]
    colours = " and ".join(catalog.brand[k] for k in ("background", "accent"))
    return catalog.image_prompts[0].format(product=product["name"], category=product["category"],
                                           benefit=product["benefit"], feature=product["feature"], colours=colours)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


class TemplateImageGenerator:
    """The embedded default: the brand's background with a pattern of accent shapes drawn from a seeded
    generator; the same prompt and seed give the same pixels. No network, no model."""

    name = "template"

    def __init__(self, catalog: Catalog | None = None) -> None:
        self.catalog = catalog or Catalog.load()

    def draw(self, prompt: str, n: int, aspect_ratio: AspectRatio, seed: int) -> list[Image.Image]:
        width, height = SIZES[aspect_ratio]
        background, accent = _rgb(self.catalog.brand["background"]), _rgb(self.catalog.brand["accent"])
        prompt_key = int.from_bytes(hashlib.blake2b(prompt.encode(), digest_size=4).digest(), "big")
        pictures = []
        for i in range(n):
            rng = np.random.default_rng([seed, prompt_key, i])
            picture = Image.new("RGB", (width, height), background)
            layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
            pen = ImageDraw.Draw(layer)
            for _ in range(int(rng.integers(5, 10))):
                x, y = rng.uniform(0, width), rng.uniform(0, height * 0.6)
                r = rng.uniform(0.05, 0.25) * min(width, height)
                pen.ellipse((x - r, y - r, x + r, y + r), fill=(*accent, int(rng.integers(50, 140))))
            picture.paste(layer, (0, 0), layer)
            pictures.append(picture)
        return pictures


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def compose(picture: Image.Image, headline: str, brand: dict[str, str], aspect_ratio: AspectRatio) -> Image.Image:
    """The picture at its delivered size with the headline on a brand-coloured band and the visible
    "AI-generated" mark in the top right corner."""
    width, height = SIZES[aspect_ratio]
    out = picture.convert("RGB").resize((width, height))
    pen = ImageDraw.Draw(out)
    size = max(18, width // 22)
    lines = textwrap.wrap(headline, width=max(12, int(width / (size * 0.55)))) or [""]
    band = int(len(lines) * size * 1.3 + size)
    pen.rectangle((0, height - band, width, height), fill=_rgb(brand["background"]))
    pen.rectangle((0, height - band, width, height - band + max(4, size // 6)), fill=_rgb(brand["accent"]))
    y = height - band + size * 0.6
    for line in lines:
        pen.text((size * 0.6, y), line, font=_font(size), fill=_rgb(brand["text"]))
        y += size * 1.3
    mark = _font(max(16, width // 32))
    left, top, right, bottom = pen.textbbox((0, 0), DISCLOSURE_MARK, font=mark)
    pad = max(6, width // 100)
    box = (width - (right - left) - 3 * pad, pad, width - pad, pad + (bottom - top) + 2 * pad)
    pen.rectangle(box, fill=(0, 0, 0))
    pen.text((box[0] + pad - left, box[1] + pad - top), DISCLOSURE_MARK, font=mark, fill=(255, 255, 255))
    return out


def encode_png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def asset_of(variant: Variant, prompt: str, picture: Image.Image) -> ImageAsset:
    """The stored form of a composed picture: PNG bytes and their SHA-256."""
    content = encode_png(picture)
    return ImageAsset(variant_id=variant.variant_id, prompt=prompt, media_type="image/png", content=content,
                      sha256=hashlib.sha256(content).hexdigest(), width=picture.width, height=picture.height,
                      disclosed=True)


class ImagenConfig(BaseModel):
    """Where and how the Imagen generator calls Vertex AI (``base_url`` points the client elsewhere).

    :param person_generation: ``DONT_ALLOW`` (the default: product pictures need no people) or ``ALLOW_ADULT``.
    :param safety_filter_level: Vertex AI's filter of unsafe prompts and pictures.
    :param add_watermark: Imagen's invisible SynthID watermark, beside the visible mark this project draws.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    project: str = Field(min_length=1)
    location: str = "us-central1"
    model: str = "imagen-4.0-generate-001"
    person_generation: Literal["DONT_ALLOW", "ALLOW_ADULT"] = "DONT_ALLOW"
    safety_filter_level: Literal["BLOCK_LOW_AND_ABOVE", "BLOCK_MEDIUM_AND_ABOVE", "BLOCK_ONLY_HIGH"] = "BLOCK_MEDIUM_AND_ABOVE"
    negative_prompt: str = "text, letters, logos, watermarks, faces"
    add_watermark: bool = True
    per_call: int = Field(4, ge=1, le=4, description="Pictures per request (Imagen answers at most 4).")
    timeout_ms: int = Field(120_000, ge=100)
    attempts: int = Field(2, ge=1, le=5)
    base_url: str | None = None


class ImagenGenerator:
    """Pictures drawn by Imagen through ``google-genai`` on Vertex AI (``client.models.generate_images``).

    Imagen's pictures carry its SynthID watermark; Vertex AI ignores a seed while the watermark is on, so
    these pictures, unlike the template's, differ from run to run.

    :param config: project, location, model and the request's safety settings.
    :param credentials: Google credentials (default: application default credentials).
    """

    name = "imagen"

    def __init__(self, config: ImagenConfig, credentials: Any = None) -> None:
        self.config = config
        self.credentials = credentials

    @cached_property
    def client(self) -> Any:
        c = self.config
        return vertex_client(c.project, c.location, c.timeout_ms, c.attempts, c.base_url, self.credentials)

    def request_config(self, n: int, aspect_ratio: AspectRatio) -> Any:
        """The ``GenerateImagesConfig`` of one request for ``n`` (at most 4) pictures."""
        from google.genai import types  # lazy: the Google client is heavy

        c = self.config
        return types.GenerateImagesConfig(
            number_of_images=n, aspect_ratio=aspect_ratio, person_generation=types.PersonGeneration(c.person_generation),
            safety_filter_level=types.SafetyFilterLevel(c.safety_filter_level), negative_prompt=c.negative_prompt,
            add_watermark=c.add_watermark, include_rai_reason=True, output_mime_type="image/png",
        )

    def draw(self, prompt: str, n: int, aspect_ratio: AspectRatio, seed: int) -> list[Image.Image]:
        pictures: list[Image.Image] = []
        while len(pictures) < n:
            pictures += self._request(prompt, min(self.config.per_call, n - len(pictures)), aspect_ratio)
        return pictures

    def _request(self, prompt: str, n: int, aspect_ratio: AspectRatio) -> list[Image.Image]:
        with vertex_errors(self.config.model, "draw template pictures (--generator template)"):
            response = self.client.models.generate_images(model=self.config.model, prompt=prompt,
                                                          config=self.request_config(n, aspect_ratio))
        generated = list(response.generated_images or [])
        images = [g.image.image_bytes for g in generated if g.image is not None and g.image.image_bytes]
        if not images:
            reasons = sorted({g.rai_filtered_reason for g in generated if g.rai_filtered_reason}) or ["no reason given"]
            raise GenerationError(f"Imagen returned no picture for the prompt (filtered: {'; '.join(reasons)}); "
                                  "change the prompt or the catalog's image_prompts")
        try:
            return [Image.open(io.BytesIO(data)) for data in images]
        except UnidentifiedImageError:
            raise GenerationError("Imagen's answer holds bytes that are not a picture") from None
