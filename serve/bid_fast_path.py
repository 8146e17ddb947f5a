"""``POST /v1/bid`` without Starlette's routing and FastAPI's dependency solving (on this handler they cost more
than the decision itself): a pure ASGI middleware in front of the decision API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from policies.slots import PolicyNotLoaded
from serve.auth import AuthError, token_of
from serve.bid_decision import decide_bid
from serve.engine import Engine
from serve.schemas import BidRequest

Message = dict[str, Any]


class BidFastPath:
    """Answers an authorized, valid ``POST /v1/bid`` itself; everything else goes on to the app, the body replayed.

    Everything else is: other routes, and bids that are not the plain case (no engine yet, a missing or refused
    key, a content type other than JSON, a body that is not JSON or not a valid bid request, a policy not loaded).
    The ``/v1/bid`` route then answers those, so 401/403/422/503, their bodies and their order stay the route's
    own; both paths decide through :func:`~serve.bid_decision.decide_bid`.

    :param app: the app behind (the decision API with its middleware).
    :param engine: the replica's engine, or None while it starts.
    :param route: the ``/v1/bid`` route, put in the scope as the router would (the metrics label latency by it).
    """

    def __init__(self, app: Any, engine: Callable[[], Engine | None], route: Callable[[], Any]) -> None:
        self.app = app
        self.engine = engine
        self.route = route
        self._route: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or route_path(scope) != "/v1/bid":
            await self.app(scope, receive, send)
            return
        messages, chunks = await _read_body(receive)
        if await self._answer(scope, chunks, messages, send):
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _answer(self, scope: dict[str, Any], chunks: list[bytes], messages: list[Message], send: Any) -> bool:
        """Decide and send the answer when the request is the plain case; False (nothing sent) otherwise."""
        engine = self.engine()
        if engine is None or messages[-1]["type"] != "http.request":
            return False
        authorization, x_api_key, content_type = _headers(scope["headers"])
        if content_type is None or not (content_type == b"application/json" or content_type.startswith(b"application/json;")):
            return False
        try:
            engine.keys.authenticate(token_of(authorization, x_api_key), "decide")
            body = BidRequest.model_validate_json(b"".join(chunks))
            loaded = engine.slots["bidding"].current
        except (AuthError, ValidationError, PolicyNotLoaded):
            return False
        if self._route is None:
            self._route = self.route()
        if self._route is not None:
            scope["route"] = self._route  # what EdgeMiddleware labels the latency with
        status, payload = decide_bid(engine, body, loaded)
        await _send(send, status, payload)
        return True


async def _read_body(receive: Any) -> tuple[list[Message], list[bytes]]:
    """Every message of the request (to replay) and the body's chunks; stops at a disconnect."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break  # a disconnect: the app sees it as it came
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return messages, chunks


def _headers(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None, bytes | None]:
    """The ``authorization``, ``x-api-key`` and ``content-type`` headers (None where absent)."""
    authorization = x_api_key = content_type = None
    for name, value in headers:
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"x-api-key":
            x_api_key = value.decode("latin-1")
        elif name == b"content-type":
            content_type = value
    return authorization, x_api_key, content_type


async def _send(send: Any, status: int, payload: bytes | None) -> None:
    if payload is None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(payload)).encode()), (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": payload})


def route_path(scope: dict[str, Any]) -> str:
    """The path the app routes on (without the ``root_path`` a mount or a Serve route prefix adds)."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path
