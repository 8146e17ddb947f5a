"""What the decision API's handlers depend on: the engine of the app serving the request, and the caller's key."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, HTTPException, Request

from serve.auth import ApiKey, AuthError, token_of
from serve.engine import Engine


def engine_of(request: Request) -> Engine:
    """The engine of the app serving ``request`` (``app.state.engine``); 503 while there is none."""
    engine: Engine | None = request.app.state.engine
    if engine is None:
        raise HTTPException(503, "the API is starting: no engine yet")
    return engine


def require(scope: str) -> Any:
    """A dependency that authenticates the caller and checks ``scope``: ``key: ApiKey = require("decide")``."""

    async def check(request: Request) -> ApiKey:  # async: FastAPI runs a sync dependency in a worker thread
        engine = engine_of(request)
        headers = request.headers
        try:
            return engine.keys.authenticate(token_of(headers.get("authorization"), headers.get("x-api-key")), scope)
        except AuthError as error:
            extra = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
            raise HTTPException(error.status, str(error), headers=extra) from None

    return Depends(check)
