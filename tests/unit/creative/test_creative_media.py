"""Blog outlines, images (the offline template pictures; Imagen with its model call faked at the client) and the
weekly social calendar: generated, checked, disclosed, stored, approved like any copy."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from datetime import date
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest
from google.genai import types
from PIL import Image

from policies.creative.calendar import CalendarConfig, calendar_rows, plan_week, to_csv, to_json
from policies.creative.generators import DISCLOSURE, Catalog, TemplateGenerator, clean_text
from policies.creative.guardrails import Guardrails
from policies.creative.images import SIZES, ImagenConfig, ImagenGenerator, TemplateImageGenerator
from policies.creative.models import GenerationError, Status, Variant, VariantNotFound, make_variant
from policies.creative.pipeline import generate_drafts, generate_images
from policies.creative.store import CreativeStore
from tests.unit.creative.json_stub import JsonStub


@pytest.fixture
def store(tmp_path: Path) -> CreativeStore:
    return CreativeStore(f"sqlite:///{tmp_path / 'creatives.db'}")


# ---- blog outlines -------------------------------------------------------------------------------------


def test_blog_outlines_have_a_title_and_sections_and_pass(store: CreativeStore) -> None:
    stored = generate_drafts(TemplateGenerator(), store, "blog_outline", "vip", 3)
    passed = [s for s in stored if s.verdict.passed]
    assert passed and all(s.status is Status.APPROVED and not s.in_test for s in passed)
    lines = passed[0].variant.text.splitlines()
    assert len(lines) == 6 and [line[:2] for line in lines[1:]] == ["1.", "2.", "3.", "4.", "5."]


def test_ai_outlines_keep_their_lines_and_need_the_disclosure() -> None:
    text = clean_text("  Title  here\n\n1.  First\n2. Second  ", "blog_outline") + DISCLOSURE["blog_outline"]
    assert text == "Title here\n1. First\n2. Second\n(Outline drafted with AI.)"
    assert clean_text("one\ntwo", "social_post") == "one two"
    ai = make_variant("blog_outline", "vip", text, generator="gemini")
    assert Guardrails().check_one(ai) == []
    bare = make_variant("blog_outline", "vip", "Title here\n1. First\n2. Second", generator="gemini")
    assert any("disclosure" in r for r in Guardrails().check_one(bare))


# ---- images, offline -----------------------------------------------------------------------------------


def test_template_pictures_are_deterministic_for_a_seed_and_disclosed(tmp_path: Path) -> None:
    runs = []
    for i, seed in enumerate((7, 7, 8)):
        st = CreativeStore(f"sqlite:///{tmp_path / f'c{i}.db'}")
        stored = generate_images(TemplateGenerator(), TemplateImageGenerator(), st, "vip", n=2, seed=seed, aspect_ratio="16:9")
        runs.append([(s.variant.variant_id, st.image(s.variant.variant_id)) for s in stored])
    same, again, other = runs
    assert [a.content for _, a in same] == [a.content for _, a in again]
    assert [a.sha256 for _, a in same] != [a.sha256 for _, a in other]
    for vid, asset in same:
        assert asset.sha256 == hashlib.sha256(asset.content).hexdigest() and asset.media_type == "image/png"
        picture = Image.open(io.BytesIO(asset.content))
        assert picture.size == SIZES["16:9"] == (asset.width, asset.height) and asset.disclosed
        corner = picture.convert("RGB").crop((picture.width - 200, 0, picture.width, 60))
        colours = {c for _, c in corner.getcolors(maxcolors=100_000)}
        assert (0, 0, 0) in colours and (255, 255, 255) in colours  # the black "AI-generated" mark, white letters
        assert asset.prompt.startswith("A clean product photograph of the") and vid.startswith("cv-")


def test_pictures_wait_for_approval_and_are_stored_with_their_bytes(store: CreativeStore) -> None:
    stored = generate_images(TemplateGenerator(), TemplateImageGenerator(), store, "loyal", n=3, product="city-parka")
    assert [s.status for s in stored] == [Status.PENDING] * 3 and all(s.variant.critical for s in stored)
    assert all(s.variant.kind == "image" and s.variant.product == "city-parka" for s in stored)
    assert "City Parka" in store.image(stored[0].variant.variant_id).prompt
    decided = store.decide(stored[0].variant.variant_id, approve=True, by="alice")
    assert decided.status is Status.APPROVED
    again = generate_images(TemplateGenerator(), TemplateImageGenerator(), store, "loyal", n=3, product="city-parka")
    assert [s.variant.variant_id for s in again] == [s.variant.variant_id for s in stored]  # same seed: same creatives
    assert store.get(stored[0].variant.variant_id).status is Status.APPROVED
    with pytest.raises(VariantNotFound, match="no picture"):
        store.image("cv-nope")


class _Headlines:
    """A copywriter whose headlines are given (to reach the guardrails with bad text)."""

    name = "template"

    def __init__(self, *texts: str) -> None:
        self.texts = texts

    def generate(self, kind: str, segment: str, n: int, product: str | None = None) -> list[Variant]:
        return [make_variant(kind, segment, t, product="day-pack") for t in self.texts[:n]]


def test_the_text_on_the_picture_and_the_prompt_are_checked(store: CreativeStore) -> None:
    stored = generate_images(_Headlines("Call 555-123-4567 today", "A miracle backpack"), TemplateImageGenerator(),
                             store, "new", n=2)
    assert [s.status for s in stored] == [Status.FAILED, Status.FAILED]
    assert "PII leak: phone" in stored[0].verdict.reasons and "banned term: 'miracle'" in stored[1].verdict.reasons
    catalog = Catalog.load().model_copy(update={"image_prompts": ["The {product}: a miracle for jane@example.com"]})
    stored = generate_images(_Headlines("Day Pack for the trail"), TemplateImageGenerator(), store, "new", n=1, catalog=catalog)
    assert set(stored[0].verdict.reasons) == {"prompt: banned term: 'miracle'", "prompt: PII leak: email"}
    with pytest.raises(ValueError, match="cannot be approved"):
        store.decide(stored[0].variant.variant_id, approve=True, by="alice")


# ---- Imagen on Vertex AI, the model call faked at the client -------------------------------------------


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (1024, 1024)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


class _FakeModels:
    def __init__(self, answer: list[types.GeneratedImage] | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.answer = answer

    def generate_images(self, *, model: str, prompt: str, config: types.GenerateImagesConfig) -> types.GenerateImagesResponse:
        self.calls.append({"model": model, "prompt": prompt, "config": config})
        n = config.number_of_images or 1
        images = self.answer if self.answer is not None else [
            types.GeneratedImage(image=types.Image(image_bytes=_png((10 * i, 90, 30)), mime_type="image/png")) for i in range(n)]
        return types.GenerateImagesResponse(generated_images=images)


class _FakeClient:
    def __init__(self, models: _FakeModels) -> None:
        self.models = models


def _imagen(models: _FakeModels, **config: Any) -> ImagenGenerator:
    generator = ImagenGenerator(ImagenConfig(project="demo-project", location="europe-west4", model="imagen-test", **config))
    generator.__dict__["client"] = _FakeClient(models)  # the boundary: google-genai's client
    return generator


def test_imagen_request_config_and_pictures(store: CreativeStore) -> None:
    models = _FakeModels()
    headlines = _Headlines(*(f"Day Pack, take {i}: room for a day out" for i in range(6)))
    stored = generate_images(headlines, _imagen(models), store, "vip", n=6, aspect_ratio="9:16")
    assert [c["config"].number_of_images for c in models.calls] == [4, 2]  # Imagen answers at most 4 per request
    call = models.calls[0]
    assert call["model"] == "imagen-test" and "Day Pack 20L" in call["prompt"]
    config: types.GenerateImagesConfig = call["config"]
    assert config.aspect_ratio == "9:16" and config.person_generation == types.PersonGeneration.DONT_ALLOW
    assert config.safety_filter_level == types.SafetyFilterLevel.BLOCK_MEDIUM_AND_ABOVE
    assert config.add_watermark is True and config.include_rai_reason is True and config.output_mime_type == "image/png"
    assert config.negative_prompt and config.seed is None  # Vertex AI takes no seed while the watermark is on
    assert len(stored) == 6 and all(s.status is Status.PENDING and s.variant.generator == "template+imagen" for s in stored)
    asset = store.image(stored[0].variant.variant_id)
    assert Image.open(io.BytesIO(asset.content)).size == SIZES["9:16"] and asset.disclosed  # resized, marked
    strict = _imagen(_FakeModels(), person_generation="ALLOW_ADULT", safety_filter_level="BLOCK_LOW_AND_ABOVE")
    config = strict.request_config(1, "1:1")
    assert (config.person_generation, config.safety_filter_level) == (types.PersonGeneration.ALLOW_ADULT,
                                                                      types.SafetyFilterLevel.BLOCK_LOW_AND_ABOVE)


def test_imagen_filtered_answer_and_errors_are_generation_errors(store: CreativeStore) -> None:
    filtered = _FakeModels([types.GeneratedImage(rai_filtered_reason="58061214: the prompt mentions a person")])
    with pytest.raises(GenerationError, match=r"no picture.*58061214"):
        generate_images(TemplateGenerator(), _imagen(filtered), store, "vip", n=1)

    class Down(_FakeModels):
        def generate_images(self, **kwargs: Any) -> types.GenerateImagesResponse:
            raise ConnectionError("connection refused")

    with pytest.raises(GenerationError, match=r"cannot reach Vertex AI.*template"):
        generate_images(TemplateGenerator(), _imagen(Down()), store, "vip", n=1)
    assert store.list(kind="image") == []
    with pytest.raises(ValueError):
        ImagenConfig(project="p", person_generation="ALLOW_ALL")  # type: ignore[arg-type]


# ---- the weekly social calendar -------------------------------------------------------------------------


def test_calendar_fills_each_day_and_channel_once_and_keeps_its_plan(store: CreativeStore) -> None:
    week = date(2026, 12, 7)
    entries = plan_week(TemplateGenerator(), store, week, "vip")
    assert len(entries) == 14 and len({e.variant_id for e in entries}) == 14
    assert {(e.day.isoformat(), e.channel) for e in entries} == {
        (f"2026-12-{d:02d}", c) for d in range(7, 14) for c in ("linkedin", "instagram")}
    assert all(store.get(e.variant_id).variant.kind == "social_post" for e in entries)
    assert plan_week(TemplateGenerator(), store, week, "vip") == entries  # planned once: the stored plan
    following = plan_week(TemplateGenerator(), store, date(2026, 12, 14), "vip", CalendarConfig(days=3))
    assert len(following) == 6 and not {e.variant_id for e in following} & {e.variant_id for e in entries}
    replanned = plan_week(TemplateGenerator(), store, week, "vip", replan=True)
    assert not {e.variant_id for e in replanned} & {e.variant_id for e in following}


def test_calendar_exports_and_bad_input(store: CreativeStore) -> None:
    entries = plan_week(TemplateGenerator(), store, date(2026, 12, 7), "new", CalendarConfig(channels={"x": "18:15"}, days=2))
    rows = calendar_rows(entries, store)
    data = orjson.loads(to_json(rows))
    assert [(r["day"], r["weekday"], r["time"], r["channel"]) for r in data] == [
        ("2026-12-07", "Monday", "18:15", "x"), ("2026-12-08", "Tuesday", "18:15", "x")]
    assert data[0]["text"] == store.get(data[0]["variant_id"]).variant.text and data[0]["status"] == "approved"
    csv_lines = to_csv(rows).splitlines()
    assert csv_lines[0] == "day,weekday,time,channel,segment,variant_id,status,text" and len(csv_lines) == 3
    with pytest.raises(ValueError, match=r"starts on a Monday.*use 2026-12-07"):
        plan_week(TemplateGenerator(), store, date(2026, 12, 9), "new")
    with pytest.raises(ValueError, match="not HH:MM"):
        CalendarConfig(channels={"x": "25:00"})


class _PredictStub(JsonStub):
    """Vertex AI's ``:predict`` for Imagen: records each request, answers ``sampleCount`` pictures."""

    requests: ClassVar[list[tuple[str, dict]]] = []

    def do_POST(self) -> None:
        body = self.json_body()
        type(self).requests.append((self.path, body))
        picture = base64.b64encode(_png((200, 40, 40), (640, 360))).decode()
        n = body["parameters"]["sampleCount"]
        self.answer(200, {"predictions": [{"bytesBase64Encoded": picture, "mimeType": "image/png"}] * n})


def test_imagen_request_on_the_wire(store: CreativeStore) -> None:
    """The real google-genai client against a local stub of Vertex AI: the config reaches the REST request."""
    from google.oauth2.credentials import Credentials  # lazy: the Google client is heavy

    handler = type("Handler", (_PredictStub,), {"requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        config = ImagenConfig(project="demo-project", location="europe-west4", model="imagen-test", attempts=1, timeout_ms=5000,
                              base_url=f"http://127.0.0.1:{server.server_port}")
        imagen = ImagenGenerator(config, credentials=Credentials(token="stub-token"))
        stored = generate_images(TemplateGenerator(), imagen, store, "vip", n=2, product="linen-shirt", aspect_ratio="16:9")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    path, body = handler.requests[0]
    assert path == "/v1beta1/projects/demo-project/locations/europe-west4/publishers/google/models/imagen-test:predict"
    assert "Linen Shirt" in body["instances"][0]["prompt"]
    parameters = body["parameters"]
    assert (parameters["sampleCount"], parameters["aspectRatio"]) == (2, "16:9")
    assert parameters["personGeneration"] == "DONT_ALLOW" and parameters["safetySetting"] == "BLOCK_MEDIUM_AND_ABOVE"
    assert parameters["addWatermark"] is True and parameters["includeRaiReason"] is True
    assert len(stored) == 2 and store.image(stored[0].variant.variant_id).width == SIZES["16:9"][0]
