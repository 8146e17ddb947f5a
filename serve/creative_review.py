"""The creative review page of the decision API: ``GET /v1/creatives/review`` lists the pending variants (copy and
pictures) with approve and reject buttons, which call ``POST /v1/creatives/{variant_id}/approve|reject``;
``GET /v1/creatives/{variant_id}/image`` serves a picture. Every route needs a key with the ``approve`` scope.

A browser sends no API key header when it opens a page, so the page and its pictures also take the key from the
cookie ``ame_api_key`` that the page's sign-in form sets (``SameSite=Strict``, path ``/v1/creatives``). The
actions take the key from the header only (the page's script sends it): another site cannot make a reviewer's
browser approve anything.
"""

from __future__ import annotations

import html
import secrets
from functools import lru_cache
from pathlib import Path
from string import Template

import orjson
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from policies.creative.models import Status, VariantNotFound
from policies.creative.store import StoredVariant
from serve.auth import ApiKey, AuthError, token_of
from serve.dependencies import engine_of, require

SCOPE = "approve"
COOKIE = "ame_api_key"
TEMPLATE = Path(__file__).with_name("creative_review.html")


class DecisionIn(BaseModel):
    """An approval or a rejection, with an optional note (why)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    note: str | None = Field(None, max_length=1000)


REFUSED = {401: {"description": "No known API key."}, 403: {"description": "The key lacks the approve scope."},
           404: {"description": "No such creative."}}


def add_creative_review_routes(app: FastAPI) -> None:
    app.add_api_route("/v1/creatives/review", review_page, methods=["GET"], summary="The review page (HTML)",
                      response_class=HTMLResponse, responses={401: {"description": "The sign-in form."}, 403: REFUSED[403]})
    app.add_api_route("/v1/creatives/{variant_id}/image", image, methods=["GET"], summary="The picture of an image creative",
                      responses={200: {"content": {"image/png": {}}}, **REFUSED})
    app.add_api_route("/v1/creatives/{variant_id}/approve", approve, methods=["POST"], summary="Approve a pending creative",
                      responses={**REFUSED, 409: {"description": "The guardrails failed it: it cannot be approved."}})
    app.add_api_route("/v1/creatives/{variant_id}/reject", reject, methods=["POST"], summary="Reject a creative",
                      responses=REFUSED)


# ---- the page ------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _template() -> Template:
    return Template(TEMPLATE.read_text())


def _page(body: str, status: int = 200) -> Response:
    """The page around ``body``: its inline script and style run under a per-response nonce, nothing else does."""
    nonce = secrets.token_urlsafe(16)
    csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src 'self' data:; "
           "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
    headers = {"Content-Security-Policy": csp, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "no-referrer"}
    return Response(_template().substitute(nonce=nonce, body=body), status, headers=headers, media_type="text/html; charset=utf-8")


def _signin(message: str, status: int) -> Response:
    return _page(
        f'<h1>Creatives to review</h1><p class="error">{html.escape(message)}</p>'
        '<form class="signin"><input name="key" type="password" autocomplete="off" placeholder="API key with the approve scope"'
        ' aria-label="API key"><button type="submit">Sign in</button></form>', status)


def _authenticated(request: Request) -> ApiKey | Response:
    """The caller's key (header, else the sign-in cookie) holding the approve scope, or the page saying why not."""
    engine = engine_of(request)
    token = token_of(request.headers.get("authorization"), request.headers.get("x-api-key")) or request.cookies.get(COOKIE)
    try:
        return engine.keys.authenticate(token, SCOPE)
    except AuthError as error:
        return _signin(str(error), error.status)


def _card(item: StoredVariant) -> str:
    v = item.variant
    vid = html.escape(v.variant_id)
    picture = (f'<img src="/v1/creatives/{vid}/image" alt="{html.escape(v.text)}">' if v.kind == "image" else "")
    meta = " · ".join(html.escape(x) for x in (v.kind, v.segment, v.product or "all products", v.generator,
                                               f"score {item.verdict.score:.2f}"))
    return (f'<article class="card" data-id="{vid}"><div class="meta"><code>{vid}</code><br>{meta}</div>{picture}'
            f'<pre class="text">{html.escape(v.text)}</pre>'
            '<input class="note" type="text" maxlength="1000" placeholder="note (optional)" aria-label="note">'
            '<div class="actions"><button class="approve" type="button">Approve</button>'
            '<button class="reject" type="button">Reject</button></div><p class="status" role="status"></p></article>')


async def review_page(request: Request) -> Response:
    """The pending variants, each with its approve and reject buttons."""
    key = _authenticated(request)
    if isinstance(key, Response):
        return key
    engine = engine_of(request)
    pending = await engine.run_io(lambda: engine.creative_store().list(status=Status.PENDING))
    cards = "".join(_card(item) for item in pending)
    body = (f'<header class="top"><h1>Creatives to review: <span id="count">{len(pending)}</span></h1>'
            f'<span>signed in as {html.escape(key.name)} <button class="signout" type="button">Sign out</button></span></header>'
            f'<p id="empty" {"" if not pending else "hidden"}>Nothing waits for a review.</p>'
            f'<section class="cards">{cards}</section>')
    return _page(body)


async def image(variant_id: str, request: Request) -> Response:
    """The picture of an image variant (PNG)."""
    key = _authenticated(request)
    if isinstance(key, Response):
        raise HTTPException(key.status_code, "an API key with the approve scope is needed to see creatives")
    engine = engine_of(request)
    try:
        asset = await engine.run_io(lambda: engine.creative_store().image(variant_id))
    except VariantNotFound as error:
        raise HTTPException(404, str(error)) from None
    return Response(asset.content, media_type=asset.media_type,
                    headers={"Cache-Control": "private, max-age=3600", "ETag": f'"{asset.sha256}"'})


# ---- the actions ---------------------------------------------------------------------------------------


async def _decide(request: Request, variant_id: str, approve: bool, body: DecisionIn | None, key: ApiKey) -> Response:
    engine = engine_of(request)
    note = body.note if body is not None else None
    try:
        item = await engine.run_io(lambda: engine.creative_store().decide(variant_id, approve=approve, by=f"api:{key.name}", note=note))
    except VariantNotFound as error:
        raise HTTPException(404, str(error).strip('"')) from None
    except ValueError as error:  # the guardrails failed it: it cannot be approved
        raise HTTPException(409, str(error)) from None
    return Response(orjson.dumps({"variant_id": item.variant.variant_id, "status": item.status.value,
                                  "decided_by": item.decided_by, "note": item.note}), media_type="application/json")


async def approve(variant_id: str, request: Request, body: DecisionIn | None = None, key: ApiKey = require(SCOPE)) -> Response:
    """Approve a pending variant: it can be served from now on (409 when the guardrails failed it)."""
    return await _decide(request, variant_id, True, body, key)


async def reject(variant_id: str, request: Request, body: DecisionIn | None = None, key: ApiKey = require(SCOPE)) -> Response:
    """Reject a variant: it is never served."""
    return await _decide(request, variant_id, False, body, key)
