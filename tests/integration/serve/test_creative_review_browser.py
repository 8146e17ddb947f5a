"""The creative review page in a real browser: headless Chromium (Debian's ``chromium``, driven by Playwright) signs
in with a reviewer's key, sees the pending copy and pictures, approves a picture with one click (the store shows it
approved, the page no longer lists it) and rejects copy with a note; a key without the approve scope is refused
on the page and on the action."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from policies.creative.models import Status
from policies.creative.store import CreativeStore
from serve.routes import build_api
from tests.integration.demo.test_report_browser import CHROMIUM, FLAGS
from tests.unit.serve.test_creative_review import review_engine

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium; .ci/run does)")


@pytest.fixture
def served(tmp_path: Path, log_url: str, state_url: str) -> Iterator[tuple[str, dict[str, str], CreativeStore]]:
    """The decision API on 127.0.0.1 (uvicorn in a thread), with a reviewer's and a site's key."""
    engine, tokens, store = review_engine(tmp_path, log_url, state_url)
    server = uvicorn.Server(uvicorn.Config(build_api(engine), host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", tokens, store
    server.should_exit = True
    thread.join(10)
    engine.close()


def _sign_in(page, base: str, token: str) -> None:
    page.goto(f"{base}/v1/creatives/review")
    page.fill("form.signin input[name=key]", token)
    page.click("form.signin button")
    page.wait_for_load_state("load")


def test_a_reviewer_approves_in_the_browser_and_a_key_without_the_scope_is_refused(
    served: tuple[str, dict[str, str], CreativeStore],
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    base, tokens, store = served
    pending = store.list(status=Status.PENDING)
    picture = next(s.variant.variant_id for s in pending if s.variant.kind == "image")
    copy = next(s.variant.variant_id for s in pending if s.variant.kind == "ad_copy")
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            _sign_in(page, base, tokens["reviewer"])
            page.wait_for_selector("article.card")
            assert page.locator("article.card").count() == len(pending)
            shown = page.eval_on_selector_all("article.card img", "els => els.map(e => e.complete && e.naturalWidth)")
            assert len(shown) == 2 and all(w and w > 100 for w in shown), shown

            page.locator(f'article.card[data-id="{picture}"] button.approve').click()
            page.wait_for_selector(f'article.card[data-id="{picture}"]', state="detached")
            assert page.text_content("#count") == str(len(pending) - 1)
            decided = store.get(picture)
            assert (decided.status, decided.decided_by) == (Status.APPROVED, "api:reviewer")

            card = page.locator(f'article.card[data-id="{copy}"]')
            card.locator("input.note").fill("too pushy")
            card.locator("button.reject").click()
            page.wait_for_selector(f'article.card[data-id="{copy}"]', state="detached")
            assert (store.get(copy).status, store.get(copy).note) == (Status.REJECTED, "too pushy")

            page.reload()
            page.wait_for_load_state("load")
            listed = page.eval_on_selector_all("article.card", "els => els.map(e => e.dataset.id)")
            assert picture not in listed and copy not in listed and len(listed) == len(pending) - 2

            site = browser.new_page()
            site.on("pageerror", lambda e: errors.append(str(e)))
            _sign_in(site, base, tokens["site"])
            answer = site.reload()
            assert answer is not None and answer.status == 403
            assert "lacks the 'approve' scope" in site.text_content("body") and site.locator("article.card").count() == 0
            left = next(s.variant.variant_id for s in store.list(status=Status.PENDING))
            status = site.evaluate(
                "([id, key]) => fetch('/v1/creatives/' + id + '/approve', {method: 'POST', headers: {'X-API-Key': key}})"
                ".then(r => r.status)", [left, tokens["site"]])
            assert status == 403 and store.get(left).status is Status.PENDING
        finally:
            browser.close()
    assert not [e for e in errors if "status of 401" not in e and "status of 403" not in e], errors
