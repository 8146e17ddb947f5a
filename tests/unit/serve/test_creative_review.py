"""The creative review page and its actions in-process (FastAPI TestClient, no Ray): the approve scope on the
page, the pictures and the actions (header or sign-in cookie for reading, header only for deciding), the
decisions in the store, and the page escaping the copy it shows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from policies.creative.generators import TemplateGenerator
from policies.creative.images import TemplateImageGenerator
from policies.creative.models import Status, Verdict, make_variant
from policies.creative.pipeline import generate_for_test, generate_images
from policies.creative.store import CreativeStore
from serve.auth import generate_key
from serve.decide import PacingCache
from serve.engine import Engine, ServeArgs, Tunables
from serve.routes import build_api


def review_engine(tmp_path: Path, log_url: str, state_url: str) -> tuple[Engine, dict[str, str], CreativeStore]:
    """An engine whose keys are ``reviewer`` (approve), ``site`` (decide) and ``ops`` (admin), and whose creative
    store holds pending ad copy and pending pictures."""
    tokens, keys = {}, []
    for name, scopes in (("reviewer", ["approve"]), ("site", ["decide"]), ("ops", ["admin"])):
        tokens[name], key = generate_key(name, scopes)
        keys.append(key)
    url = f"sqlite:///{tmp_path / 'creatives.db'}"
    store = CreativeStore(url)
    generate_for_test(TemplateGenerator(), store, "ad_copy", "vip", n=4, top=2)
    generate_images(TemplateGenerator(), TemplateImageGenerator(), store, "vip", n=2, product="day-pack")
    args = ServeArgs(event_log=log_url, state_store=state_url, api_keys=keys, pacing_from_agents=False, creative_store=url,
                     agent_state_dir=str(tmp_path / "agents"), agent_shards=1)
    return Engine(args, Tunables(poll_interval_s=0.05), pacing=PacingCache(lambda c: {})), tokens, store


@pytest.fixture
def review(tmp_path: Path, log_url: str, state_url: str) -> Iterator[tuple[TestClient, dict[str, str], CreativeStore]]:
    engine, tokens, store = review_engine(tmp_path, log_url, state_url)
    yield TestClient(build_api(engine)), tokens, store
    engine.close()


def test_the_page_needs_the_approve_scope(review: tuple[TestClient, dict[str, str], CreativeStore]) -> None:
    client, tokens, store = review
    page = client.get("/v1/creatives/review")
    assert page.status_code == 401 and 'form class="signin"' in page.text and "missing API key" in page.text
    page = client.get("/v1/creatives/review", headers={"X-API-Key": tokens["site"]})
    assert page.status_code == 403 and "lacks the &#x27;approve&#x27; scope" in page.text and "<article" not in page.text
    pending = store.list(status=Status.PENDING)
    assert {s.variant.kind for s in pending} == {"ad_copy", "image"}
    for headers, cookies in (({"X-API-Key": tokens["reviewer"]}, {}), ({}, {"ame_api_key": tokens["reviewer"]}),
                             ({"Authorization": f"Bearer {tokens['ops']}"}, {})):
        client.cookies.clear()
        client.cookies.update(cookies)
        page = client.get("/v1/creatives/review", headers=headers)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert all(f'data-id="{s.variant.variant_id}"' in page.text for s in pending)
        assert f'<span id="count">{len(pending)}</span>' in page.text
    csp = page.headers["content-security-policy"]
    nonce = csp.split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in page.text and "default-src 'none'" in csp and "unsafe-inline" not in csp


def test_pictures_are_served_to_reviewers_only(review: tuple[TestClient, dict[str, str], CreativeStore]) -> None:
    client, tokens, store = review
    picture = store.list(status=Status.PENDING, kind="image")[0].variant.variant_id
    client.cookies.set("ame_api_key", tokens["reviewer"])
    answer = client.get(f"/v1/creatives/{picture}/image")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert answer.content == store.image(picture).content and answer.headers["etag"] == f'"{store.image(picture).sha256}"'
    client.cookies.clear()
    assert client.get(f"/v1/creatives/{picture}/image", headers={"X-API-Key": tokens["site"]}).status_code == 403
    assert client.get(f"/v1/creatives/{picture}/image").status_code == 401
    assert client.get("/v1/creatives/cv-nope/image", headers={"X-API-Key": tokens["reviewer"]}).status_code == 404


def test_approve_and_reject(review: tuple[TestClient, dict[str, str], CreativeStore]) -> None:
    client, tokens, store = review
    first, second = (s.variant.variant_id for s in store.list(status=Status.PENDING)[:2])
    refused = client.post(f"/v1/creatives/{first}/approve", headers={"X-API-Key": tokens["site"]})
    assert refused.status_code == 403 and store.get(first).status is Status.PENDING
    client.cookies.set("ame_api_key", tokens["reviewer"])
    cookie_only = client.post(f"/v1/creatives/{first}/approve")
    assert cookie_only.status_code == 401 and store.get(first).status is Status.PENDING  # actions: header only
    client.cookies.clear()
    reviewer = {"X-API-Key": tokens["reviewer"]}
    done = client.post(f"/v1/creatives/{first}/approve", headers=reviewer)
    assert done.status_code == 200 and done.json() == {"variant_id": first, "status": "approved", "decided_by": "api:reviewer",
                                                       "note": None}
    done = client.post(f"/v1/creatives/{second}/reject", headers=reviewer, json={"note": "off brand"})
    assert done.status_code == 200 and (store.get(second).status, store.get(second).note) == (Status.REJECTED, "off brand")
    page = client.get("/v1/creatives/review", headers=reviewer).text
    assert f'data-id="{first}"' not in page and f'data-id="{second}"' not in page
    failed = make_variant("ad_copy", "vip", "A miracle cure, act now")
    store.add([(failed, Verdict(passed=False, reasons=("banned term: 'miracle'",)), False)])
    answer = client.post(f"/v1/creatives/{failed.variant_id}/approve", headers=reviewer)
    assert answer.status_code == 409 and "cannot be approved" in answer.json()["detail"]
    assert client.post("/v1/creatives/cv-nope/reject", headers=reviewer).status_code == 404
    assert client.post(f"/v1/creatives/{first}/approve", headers=reviewer, json={"note": "x" * 1001}).status_code == 422


def test_the_page_escapes_the_copy(review: tuple[TestClient, dict[str, str], CreativeStore]) -> None:
    client, tokens, store = review
    sneaky = make_variant("ad_copy", "vip", '<script>alert("x")</script> 50% off', critical=True)
    store.add([(sneaky, Verdict(passed=True), False)])
    page = client.get("/v1/creatives/review", headers={"X-API-Key": tokens["reviewer"]}).text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; 50% off" in page and '<script>alert("x")' not in page
