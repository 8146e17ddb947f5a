"""Generators (template; Gemini against a local stub of the Vertex AI REST API), guardrails, the pipeline."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from policies.creative.generators import (
    DISCLOSURE,
    GeminiConfig,
    GeminiGenerator,
    TemplateGenerator,
)
from policies.creative.guardrails import Guardrails, is_critical, pii_found
from policies.creative.models import KINDS, GenerationError, Status, make_variant
from policies.creative.pipeline import generate_for_test
from policies.creative.store import CreativeStore
from tests.unit.creative.json_stub import JsonStub


@pytest.mark.parametrize("kind", KINDS)
def test_template_generator_is_deterministic_distinct_and_passes(kind: str) -> None:
    a = TemplateGenerator().generate(kind, "loyal", 10)
    b = TemplateGenerator().generate(kind, "loyal", 10)
    assert [v.text for v in a] == [v.text for v in b] and len(a) == 10
    assert len({v.variant_id for v in a}) == 10
    assert all(v.passed for v in Guardrails().check(a)[:1])
    assert [v.text for v in TemplateGenerator().generate(kind, "new", 10)] != [v.text for v in a]


def test_guardrails_fail_with_every_reason() -> None:
    g = Guardrails()
    bad = make_variant("email_subject", "vip", "GUARANTEED miracle deal, mail jane.doe@example.com or call +1 415 555 0199 now!!",
                       generator="gemini")
    verdict = g.check([bad])[0]
    text = " | ".join(verdict.reasons)
    assert not verdict.passed
    for expected in ("too long", "banned term: 'guaranteed'", "banned term: 'miracle'", "disclosure", "PII leak: email", "PII leak: phone"):
        assert expected in text, text


def test_pii_check_cards_by_luhn() -> None:
    assert pii_found("card 4111 1111 1111 1111 please") == ["card"]
    assert "card" not in pii_found("order 4111 1111 1111 1112")  # fails Luhn
    assert pii_found("The Trail Runner 2 with 20L of room") == []


def test_disclosure_required_only_for_ai_copy() -> None:
    g = Guardrails()
    text = "Meet the Trail Runner 2"
    assert g.check([make_variant("email_subject", "vip", text)])[0].passed
    assert not g.check([make_variant("email_subject", "vip", text, generator="gemini")])[0].passed
    assert g.check([make_variant("email_subject", "vip", text + DISCLOSURE["email_subject"], generator="gemini")])[0].passed


def test_duplicates_and_near_duplicates_fail() -> None:
    g = Guardrails()
    vs = [
        make_variant("social_post", "vip", "Our Linen Shirt brings cool comfort on hot days. Come see!"),
        make_variant("social_post", "vip", "our linen shirt brings cool comfort, on hot days - come see"),
        make_variant("social_post", "vip", "Our Linen Shirt brings cool comfort on hot days. Come see it!"),
        make_variant("social_post", "vip", "Winter is coming: the City Parka keeps you warm."),
    ]
    verdicts = g.check(vs, existing=["The City Parka keeps you warm this winter, it is coming"])
    assert verdicts[0].passed
    assert "duplicate" in verdicts[1].reasons[0]
    assert "near-duplicate" in verdicts[2].reasons[0]
    assert not verdicts[3].passed  # near-duplicate of existing copy


def test_critical_claims_and_kinds() -> None:
    assert is_critical(make_variant("email_subject", "vip", "20% off the City Parka"))
    assert is_critical(make_variant("ad_copy", "vip", "City Parka"))
    assert not is_critical(make_variant("email_subject", "vip", "Meet the City Parka"))


def test_generate_10_test_top_3(tmp_path: Path) -> None:
    store = CreativeStore(f"sqlite:///{tmp_path / 'c.db'}")
    stored = generate_for_test(TemplateGenerator(), store, "email_subject", "vip", n=10, top=3)
    assert len(stored) == 10
    in_test = [s for s in stored if s.in_test]
    assert len(in_test) == 3
    assert min(s.verdict.score for s in in_test) >= max(s.verdict.score for s in stored if not s.in_test and s.verdict.passed)
    ads = generate_for_test(TemplateGenerator(), store, "ad_copy", "vip", n=10, top=3)
    assert all(s.status is Status.PENDING for s in ads if s.verdict.passed)  # ad copy is critical
    assert store.arms("vip", "ad_copy") == []


# ---- Gemini through google-genai, against a local stub of the Vertex AI REST API -----------------------


class _Stub(JsonStub):
    requests: ClassVar[list[tuple[str, dict, str | None]]] = []
    reply: object = None
    status = 200

    def do_POST(self) -> None:
        body = self.json_body()
        type(self).requests.append((self.path, body, self.headers.get("Authorization")))
        text = json.dumps(type(self).reply) if not isinstance(type(self).reply, str) else type(self).reply
        payload = {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}]}
        if self.status != 200:
            payload = {"error": {"code": self.status, "message": "quota exceeded", "status": "RESOURCE_EXHAUSTED"}}
        self.answer(self.status, payload)


@pytest.fixture
def vertex_stub() -> Iterator[tuple[str, type[_Stub]]]:
    handler = type("Handler", (_Stub,), {"requests": [], "reply": None, "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", handler
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _gemini(url: str) -> GeminiGenerator:
    from google.oauth2.credentials import Credentials  # lazy: the Google client is heavy

    config = GeminiConfig(project="demo-project", location="europe-west4", model="gemini-test-model", base_url=url, timeout_ms=5000,
                          attempts=1)
    return GeminiGenerator(config, credentials=Credentials(token="stub-token"))


def test_gemini_generator_calls_vertex_and_discloses(vertex_stub) -> None:
    url, handler = vertex_stub
    handler.reply = [f"Meet the City Parka, take {i}" for i in range(10)]
    variants = _gemini(url).generate("email_subject", "vip", 10, product="city-parka")
    path, body, auth = handler.requests[0]
    assert path == "/v1beta1/projects/demo-project/locations/europe-west4/publishers/google/models/gemini-test-model:generateContent"
    assert auth == "Bearer stub-token"
    assert "10 distinct email subject lines" in body["contents"][0]["parts"][0]["text"]
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    assert len(variants) == 10 and all(v.generator == "gemini" and v.product == "city-parka" for v in variants)
    assert all(v.text.endswith("[AI]") for v in variants)
    assert all(v.passed for v in Guardrails().check(variants))


def test_gemini_bad_answer_and_errors_are_generation_errors(vertex_stub) -> None:
    url, handler = vertex_stub
    handler.reply = "this is not json"
    with pytest.raises(GenerationError, match="not a JSON array"):
        _gemini(url).generate("ad_copy", "vip", 3)
    handler.status = 429
    with pytest.raises(GenerationError, match="429"):
        _gemini(url).generate("ad_copy", "vip", 3)


def test_gemini_unreachable_is_a_generation_error() -> None:
    with pytest.raises(GenerationError, match="template generator"):
        _gemini("http://127.0.0.1:9").generate("ad_copy", "vip", 3)
