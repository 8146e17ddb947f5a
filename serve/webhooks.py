"""``POST /v1/webhooks/{provider}``: the providers' reports on the messages the engine sent (delivered, bounced,
opened, clicked, unsubscribed), verified by each provider's signature and appended to the log as events.

The route takes no API key: the provider's signature is the authentication (:mod:`channels.inbound`). A missing or
wrong signature is answered 401 and appends nothing; a provider whose secret is not configured, 503. Reports on
messages the ledger does not know are counted and skipped, so the provider does not retry them forever.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from fastapi import FastAPI, Request, Response

from channels.inbound import WebhookError, WebhookRequest, WebhookSecrets, read_receipts, receipt_events
from channels.ledger import MessageLedger
from data.settings import get_settings
from serve.dependencies import engine_of
from serve.engine import Engine


def add_webhook_routes(app: FastAPI) -> None:
    app.add_api_route("/v1/webhooks/{provider}", receive_webhook, methods=["POST"])


def _json(data: object, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _ledger(request: Request, engine: Engine) -> MessageLedger:
    """The message ledger in the engine's state store (made once per app)."""
    ledger = getattr(request.app.state, "channel_ledger", None)
    if ledger is None or ledger.store is not engine.state:
        ledger = request.app.state.channel_ledger = MessageLedger(engine.state)
    return ledger


async def receive_webhook(provider: str, request: Request) -> Response:
    engine = engine_of(request)
    settings = get_settings()
    url = str(request.url)
    if settings.channels_webhook_base_url:  # behind a load balancer: the URL the provider called and signed
        query = f"?{request.url.query}" if request.url.query else ""
        url = settings.channels_webhook_base_url.rstrip("/") + request.url.path + query
    now = datetime.now(UTC)
    incoming = WebhookRequest(await request.body(), dict(request.headers), url, now)
    try:
        receipts = read_receipts(provider, incoming, WebhookSecrets.of(settings))
    except WebhookError as error:
        return _json({"detail": str(error)}, error.status)

    def write() -> tuple[int, int, int]:
        events, unknown = receipt_events(receipts, _ledger(request, engine), now)
        result = engine.log.append(events) if events else None
        return (result.appended, result.duplicates, unknown) if result is not None else (0, 0, unknown)

    appended, duplicates, unknown = await engine.run_io(write)
    return _json({"provider": provider, "reports": len(receipts), "appended": appended, "duplicates": duplicates,
                  "unknown_messages": unknown})
