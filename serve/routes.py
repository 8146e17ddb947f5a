"""The decision API's routes: a FastAPI app whose handlers validate, call a policy and log; nothing else.

:func:`build_api` makes the app around an :class:`~serve.engine.Engine` (the Serve replica's, or one a test or
plain uvicorn builds); the app closes the engine when it shuts down (the ASGI lifespan, which Ray Serve runs on a
replica's graceful shutdown), so every queued decision is appended. The engine is read from ``app.state.engine``:
an app built without one (the OpenAPI document) answers 503.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError

from data.events import DataAccessed, DataAccessedProperties, EventBase, EventError, new_event_id, validate_event
from data.log.base import LogUnavailable, RejectedInput
from data.postgres_db import PostgresUnavailable
from policies.creative.models import NoCreativeAvailable
from policies.creative.serving import POLICY_NAME, POLICY_VERSION, exposure_event
from policies.creative.serving import select_creative as choose_creative
from policies.slots import PolicyNotLoaded
from serve.auth import ApiKey
from serve.bid_decision import decide_bid
from serve.bid_fast_path import BidFastPath
from serve.creative_review import add_creative_review_routes
from serve.decision_log import DecisionRecord
from serve.dependencies import engine_of, require
from serve.engine import Engine, ServeArgs
from serve.metrics import EdgeMiddleware, ServeMetrics
from serve.nba import reason_of
from serve.schemas import (
    BidRequest,
    CreativeSelectIn,
    CreativeSelectOut,
    CustomerOut,
    EventsIn,
    EventsOut,
    ItemError,
    NextBestActionIn,
    NextBestActionOut,
)
from serve.webhooks import add_webhook_routes

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES: int = ServeArgs.model_fields["max_body_bytes"].default


# ---- the app ---------------------------------------------------------------------------------------------


def build_api(engine: Engine | None = None) -> FastAPI:
    """The FastAPI app (routes, 422 with field names, size limit, metrics, the ``/v1/bid`` fast path).

    :param engine: the replica's engine; None builds the app alone (its OpenAPI document), answering 503.
    """
    app = FastAPI(title="Autonomous Marketing Engine: decision API", version="1", docs_url="/docs", lifespan=_lifespan)
    app.state.engine = engine
    app.add_middleware(  # inside EdgeMiddleware (added after it = outside): timed and size-limited like any route
        BidFastPath, engine=lambda: app.state.engine, route=lambda: _route(app, "/v1/bid"))
    app.add_middleware(EdgeMiddleware, metrics=lambda: _metrics(app), max_body_bytes=lambda: _max_body_bytes(app))
    app.add_exception_handler(RequestValidationError, _unprocessable)
    app.add_exception_handler(PolicyNotLoaded, _not_loaded)
    app.add_exception_handler(LogUnavailable, _log_unavailable)
    app.add_exception_handler(PostgresUnavailable, _state_unavailable)
    for add_routes in (add_ops_routes, add_event_routes, add_customer_routes, add_decision_routes, add_webhook_routes,
                       add_creative_review_routes):
        add_routes(app)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Closes the app's engine at shutdown (off the event loop: it joins threads and appends queued decisions)."""
    yield
    engine: Engine | None = app.state.engine
    if engine is not None:
        await asyncio.to_thread(engine.close)


def _route(app: FastAPI, path: str) -> Any:
    return next((r for r in app.router.routes if getattr(r, "path", None) == path), None)


def _metrics(app: FastAPI) -> ServeMetrics | None:
    engine: Engine | None = app.state.engine
    return engine.metrics if engine is not None else None


def _max_body_bytes(app: FastAPI) -> int:
    engine: Engine | None = app.state.engine
    return engine.args.max_body_bytes if engine is not None else DEFAULT_MAX_BODY_BYTES


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


async def _unprocessable(request: Request, error: RequestValidationError) -> Response:
    """422 with every invalid field named."""
    fields = [{"field": ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")) or "(body)",
               "message": str(err.get("msg")), "rule": str(err.get("type"))} for err in error.errors()]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return _json({"detail": f"invalid request: {summary}", "errors": fields}, 422)


async def _not_loaded(request: Request, error: Exception) -> Response:
    return _json({"detail": str(error)}, 503)


async def _log_unavailable(request: Request, error: Exception) -> Response:
    """503 with the reason (the log is down, locked or its topic missing): the caller may retry the same ids."""
    return _json({"detail": f"the event log is unavailable: {error}"}, 503)


async def _state_unavailable(request: Request, error: Exception) -> Response:
    """503 with the reason (the PostgreSQL state server cannot be reached): nothing was decided, the caller may retry."""
    return _json({"detail": f"the state store is unavailable: {error}"}, 503)


# ---- operations ----------------------------------------------------------------------------------------


def add_ops_routes(app: FastAPI) -> None:
    app.add_api_route("/healthz", healthz, methods=["GET"])
    app.add_api_route("/metrics", metrics, methods=["GET"])


async def healthz(request: Request) -> Response:
    engine = engine_of(request)
    try:
        engine.check_health()
    except Exception as error:  # noqa: BLE001 - any reason the replica cannot serve is a 503 with the reason
        return _json({"status": "unavailable", "detail": str(error)}, 503)
    return _json({"status": "ok", "policies": {n: s.current.version for n, s in engine.slots.items()},
                  "decision_log_pending": engine.decisions.pending})


async def metrics(request: Request) -> Response:
    engine = engine_of(request)
    m = engine.metrics
    try:
        m.event_lag.labels(m.replica).set(await engine.run_io(engine.event_lag))
    except Exception:
        logger.debug("event lag unavailable", exc_info=True)
    m.decision_log_pending.labels(m.replica).set(engine.decisions.pending)
    return Response(await engine.run_io(m.render), media_type="text/plain; version=0.0.4; charset=utf-8")


# ---- events in -----------------------------------------------------------------------------------------


def add_event_routes(app: FastAPI) -> None:
    app.add_api_route("/v1/events", ingest, methods=["POST"], status_code=202, response_model=EventsOut)


async def ingest(body: EventsIn, request: Request, key: ApiKey = require("ingest")) -> Response:
    engine = engine_of(request)
    valid: list[EventBase] = []
    rejects: list[RejectedInput] = []
    errors: list[ItemError] = []
    for i, item in enumerate(body.events):
        raw, checked = _checked(item, engine.max_event_bytes)
        if isinstance(checked, EventBase):
            valid.append(checked)
            continue
        event_id = item.get("event_id") if isinstance(item.get("event_id"), str) else None
        errors.append(ItemError(index=i, event_id=event_id, error=str(checked)))
        rejects.append(RejectedInput(raw=raw, reason=f"item {i}: {checked}", source=f"api:{key.name}:{body.source}",
                                     line=i, event_id=event_id))

    def write() -> tuple[int, int]:
        result = engine.log.append(valid) if valid else None
        if rejects:
            engine.log.dead_letter(rejects)
        return (result.appended, result.duplicates) if result is not None else (0, 0)

    appended, duplicates = await engine.run_io(write)
    out = EventsOut(accepted=len(valid), appended=appended, duplicates=duplicates, rejected=len(errors), errors=errors)
    return _json(out.model_dump(), 202)


def _checked(item: dict[str, Any], max_bytes: int) -> tuple[bytes, EventBase | EventError]:
    """The item's bytes (what the dead letters keep of it) and its validated event, or why it is refused."""
    try:
        raw = orjson.dumps(item)
    except TypeError:  # an integer beyond 64 bits: refused (and kept, as text, in the dead letters)
        return (repr(item).encode("utf-8", "backslashreplace")[:max_bytes],
                EventError("a number in the event is out of range (integers must fit in 64 bits)"))
    if len(raw) > max_bytes:
        return raw, EventError(f"the event is {len(raw):,} bytes; the limit is {max_bytes:,}")
    try:
        return raw, validate_event(item)
    except EventError as error:
        return raw, error


# ---- customers -----------------------------------------------------------------------------------------


def add_customer_routes(app: FastAPI) -> None:
    app.add_api_route("/v1/customers/{customer_id}", customer, methods=["GET"], response_model=CustomerOut)


async def customer(customer_id: str, request: Request, key: ApiKey = require("decide")) -> Response:
    engine = engine_of(request)
    profile = await engine.run_io(engine.profile, customer_id)
    if profile is None:
        raise HTTPException(404, f"no customer {customer_id!r} in the profile projection (is the projector caught up?)")
    scores = await engine.run_io(engine.scores, profile)
    engine.decisions.submit(DataAccessed(  # the audit log: who read which customer's data (data/privacy)
        event_id=new_event_id(), customer_id=profile.customer_id, occurred_at=datetime.now(UTC), source="serve",
        properties=DataAccessedProperties(accessor=f"api:{key.name}"[:256], resource="GET /v1/customers/{customer_id}")))
    return _json({"customer_id": customer_id, "profile": profile.to_dict(), "scores": scores})


# ---- decisions -----------------------------------------------------------------------------------------


def add_decision_routes(app: FastAPI) -> None:
    app.add_api_route("/v1/next-best-action", next_best_action, methods=["POST"], response_model=NextBestActionOut)
    app.add_api_route("/v1/bid", bid, methods=["POST"], responses={204: {"description": "No bid."}})
    app.add_api_route("/v1/creatives/select", select_creative, methods=["POST"], response_model=CreativeSelectOut)


async def next_best_action(body: NextBestActionIn, request: Request, key: ApiKey = require("decide")) -> Response:
    engine = engine_of(request)
    loaded = engine.slots["journey"].current
    record = await engine.run_io(engine.nba.record, body.customer_id)
    now = datetime.now(UTC)
    decision_id = new_event_id(now)
    decision = engine.nba.decide(loaded.policy, record, int(now.timestamp() * 1_000_000), decision_id)
    engine.decisions.submit(DecisionRecord(
        event_id=decision_id, customer_id=body.customer_id, agent="serve:nba", action=decision.action,
        channel=decision.channel, propensity=decision.propensity, policy_name=loaded.name,
        policy_version=loaded.version, features_hash=decision.features_hash, context=decision.context(), at=now))
    engine.metrics.decided("next_best_action", loaded.name, loaded.version)
    return _json({"decision_id": decision_id, "customer_id": body.customer_id, "action": decision.action,
                  "channel": decision.channel, "propensity": decision.propensity, "policy_name": loaded.name,
                  "policy_version": loaded.version, "reason": reason_of(decision)})


async def bid(body: BidRequest, request: Request, key: ApiKey = require("decide")) -> Response:
    engine = engine_of(request)
    status, payload = decide_bid(engine, body, engine.slots["bidding"].current)
    return Response(status_code=204) if payload is None else Response(payload, status, media_type="application/json")


async def select_creative(body: CreativeSelectIn, request: Request, key: ApiKey = require("decide")) -> Response:
    engine = engine_of(request)
    try:
        variant, propensity = await engine.run_io(
            lambda: choose_creative(body.segment, body.kind, store=engine.creative_store()))
    except NoCreativeAvailable as error:
        raise HTTPException(404, str(error)) from None
    now = datetime.now(UTC)
    event = exposure_event(variant, propensity, body.customer_id, now, body.request_id or new_event_id(now))
    engine.decisions.submit(event)
    engine.metrics.decided("creative", POLICY_NAME, POLICY_VERSION)
    return _json({"decision_id": event.event_id, "customer_id": body.customer_id, "variant_id": variant.variant_id,
                  "kind": variant.kind, "segment": variant.segment, "text": variant.text, "propensity": propensity,
                  "policy_name": POLICY_NAME, "policy_version": POLICY_VERSION})
