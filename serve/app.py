"""The decision API: a FastAPI app served by one Ray Serve ingress deployment.

Decisions are made **in the ingress replica** (one hop: proxy -> replica): the policies are loaded in the
replica (hot-swapped by :mod:`serve.policies`), bidding state comes from a cache refreshed in batches, and
decisions go to the log through a background batcher (:mod:`serve.decision_log`). The handlers validate,
call a policy and log; nothing else.

``serve run serve.app:build_app`` or ``serve deploy serve/config.yaml``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.journey_decision import JourneyRules
from agents.state_reader import AgentStateReader
from data.events import DataAccessed, DataAccessedProperties, EventError, new_event_id, validate_event
from data.log.base import EventLog, RejectedInput
from policies.slots import BUILTINS, SLOTS, PolicyNotLoaded, PolicySlot, RegistrySource, SlotTarget
from serve.auth import ApiKey, AuthError, KeyStore, token_of
from serve.decide import BidConfig, PacingCache, bid_prices
from serve.decision_log import DecisionLogger, DecisionRecord
from serve.metrics import EdgeMiddleware, ServeMetrics
from serve.nba import NextBestAction, reason_of
from serve.policies import PolicyWatcher
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

logger = logging.getLogger(__name__)

_CUSTOMER_ID = re.compile(r"^[A-Za-z0-9_.:@+\-]{1,128}$")


class ServeArgs(BaseModel):
    """What ``build_app`` takes (the ``args:`` of serve/config.yaml). Empty values fall back to ``AME_*`` settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    event_log: str = ""
    state_store: str = ""
    policies_dir: str = ""
    agent_state_dir: str = Field("", description="The agents' shard stores (AME_HOME/agents): the journey state read here.")
    agent_shards: int = Field(0, ge=0, description="Shards the agents run as (0: AME_AGENT_SHARDS).")
    models_dir: str = ""
    creative_store: str = ""
    api_keys_file: str = Field("", description="JSON file of hashed keys (serve/auth.py); AME_SERVE_API_KEYS_FILE.")
    api_keys: list[ApiKey] = Field(default_factory=list, description="Hashed keys given inline (tests, small installs).")
    max_body_bytes: int = Field(1_048_576, ge=1_024, le=64 * 1_048_576)
    pacing_from_agents: bool = Field(True, description="Read campaign pacing from the bidding agent's actors.")


class BiddingTunables(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    default_value: float = Field(2.0, gt=0)
    max_bid: float = Field(50.0, gt=0)
    min_tmax_ms: int = Field(10, ge=0)


class Tunables(BaseModel):
    """The deployment's ``user_config``, applied by ``reconfigure`` without a restart."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    policies: dict[str, str] = Field(default_factory=dict, description="Pinned policies (slot -> NAME@VERSION, VERSION "
                                     "may be builtin); unpinned slots follow what `ame policies promote` points them at.")
    poll_interval_s: float = Field(1.0, gt=0, le=300)
    bidding: BiddingTunables = BiddingTunables()
    decision_batch_size: int = Field(512, ge=1, le=100_000)
    decision_flush_interval_s: float = Field(0.05, gt=0, le=10)
    score_reasons: int = Field(3, ge=0, le=20)




def _pinned(tunables: Tunables, slot: str) -> SlotTarget | None:
    """The target pinned for ``slot`` in ``user_config.policies`` (NAME@VERSION), if any."""
    text = tunables.policies.get(slot)
    if not text:
        return None
    name, sep, version = text.partition("@")
    if not sep or not name or not version:
        raise ValueError(f"user_config.policies.{slot} = {text!r}: pin a policy as NAME@VERSION (e.g. journey-ppo@v0003, offer_every_k@builtin)")
    return SlotTarget(name, version)


class Engine:
    """Everything one replica's handlers use, built once in the replica (``__init__`` loads the policies)."""

    def __init__(self, args: ServeArgs, tunables: Tunables | None = None, source: Any = None,
                 pacing: PacingCache | None = None) -> None:
        from data.log import open_log
        from data.projections.store import open_state_store
        from data.settings import get_settings

        settings = get_settings()
        self.args = args
        self.tunables = tunables or Tunables()
        self.log_url = args.event_log or settings.event_log_url()
        self.max_event_bytes = settings.max_event_bytes
        self.keys = self._keys(args, settings)
        self.metrics = ServeMetrics()
        self.log: EventLog = open_log(self.log_url)
        self.state = open_state_store(args.state_store or settings.state_store_url())
        from data.projections.profile import ProfileProjection

        with self.state.transaction() as conn:
            ProfileProjection().create_tables(conn)  # an empty projection reads as "no such customer", not 500
        self.io = ThreadPoolExecutor(max_workers=2, thread_name_prefix="serve-io")
        self.decisions = DecisionLogger(lambda: open_log(self.log_url), self.tunables.decision_batch_size,
                                        self.tunables.decision_flush_interval_s)
        policies_dir = Path(args.policies_dir or settings.policies_dir)
        self.source = source or RegistrySource(policies_dir, BUILTINS)
        self.slots = {name: PolicySlot(name, self.source, _pinned(self.tunables, name)) for name in SLOTS}
        for slot in self.slots.values():
            slot.on_swap = lambda loaded: self.metrics.policy_swaps.labels(loaded.name, self.metrics.replica).inc()
            slot.refresh()
        self.watcher = PolicyWatcher(self.slots, self.tunables.poll_interval_s)
        self.pacing = pacing or (PacingCache() if args.pacing_from_agents else PacingCache(lambda c: {}))
        journey_state = AgentStateReader(Path(args.agent_state_dir or settings.home / "agents"), "journey",
                                         args.agent_shards or settings.agent_shards)
        self.journey_state = journey_state
        self.nba = NextBestAction(journey_state.record, JourneyRules.of())
        self.bid_config = BidConfig(**self.tunables.bidding.model_dump())
        self._models: dict[str, Any] | None = None
        self._creatives: Any = None
        self.closed = False

    @staticmethod
    def _keys(args: ServeArgs, settings: Any) -> KeyStore:
        keys = list(args.api_keys)
        path = args.api_keys_file or getattr(settings, "serve_api_keys_file", "") or ""
        if path:
            keys += list(KeyStore.from_file(path)._by_hash.values())
        if not keys:
            logger.warning("no API keys configured: every route except /healthz, /metrics and /docs answers 401")
        return KeyStore(keys)

    # -- tunables and health ---------------------------------------------------------------------------

    def apply(self, tunables: Tunables) -> None:
        """Apply a new ``user_config``: pins (a swap where they change), poll interval, bidder, batcher."""
        self.tunables = tunables
        self.bid_config = BidConfig(**tunables.bidding.model_dump())
        self.watcher.interval_s = tunables.poll_interval_s
        self.decisions.batch_size = tunables.decision_batch_size
        self.decisions.flush_interval_s = tunables.decision_flush_interval_s
        for name, slot in self.slots.items():
            slot.pinned = _pinned(tunables, name)
            slot.refresh()

    def check_health(self) -> None:
        for slot in self.slots.values():
            slot.current  # raises PolicyNotLoaded  # noqa: B018
        if self.closed:
            raise RuntimeError("the engine is shut down")

    def close(self) -> None:
        """Stop the background threads and append every queued decision (graceful shutdown)."""
        if self.closed:
            return
        self.closed = True
        self.watcher.stop()
        self.pacing.stop()
        self.decisions.close()
        self.io.shutdown(wait=True)
        self.journey_state.close()
        self.log.close()

    # -- collaborators loaded on first use --------------------------------------------------------------

    def scoring_models(self) -> dict[str, Any]:
        if self._models is None:
            from policies.scoring.registry import ModelRegistry

            registry = ModelRegistry(self.args.models_dir or None)
            models: dict[str, Any] = {}
            for kind in ("lead", "churn"):
                try:
                    models[kind] = registry.load_scoring(kind)
                except Exception as error:  # noqa: BLE001 - a kind without a trained model is simply not scored
                    logger.info("no %s scoring model served: %s", kind, error)
            self._models = models
        return self._models

    def creative_store(self) -> Any:
        if self._creatives is None:
            from policies.creative.store import open_store

            self._creatives = open_store(self.args.creative_store or None)
        return self._creatives

    async def run_io(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.io, fn, *args)

    def event_lag(self) -> int:
        return max(0, self.log.head() - self.state.position("profile"))


# ---- the FastAPI app -------------------------------------------------------------------------------------


_ENGINE: Engine | None = None
"""The replica's engine (set by ``DecisionApi.__init__``; Serve may serve a copy of ``api``, so the handlers
fall back to this module global)."""


def set_replica_engine(engine: Engine | None) -> None:
    global _ENGINE
    _ENGINE = engine


def engine_of(request: Request) -> Engine:
    engine = getattr(request.app.state, "engine", None) or _ENGINE
    if engine is None:
        raise HTTPException(503, "the API is starting: no engine yet")
    return engine


def require(scope: str) -> Any:
    """A dependency that authenticates the caller and checks ``scope``."""

    async def check(request: Request) -> ApiKey:  # async: FastAPI runs a sync dependency in a worker thread
        engine = engine_of(request)
        headers = request.headers
        try:
            return engine.keys.authenticate(token_of(headers.get("authorization"), headers.get("x-api-key")), scope)
        except AuthError as error:
            extra = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
            raise HTTPException(error.status, str(error), headers=extra) from None

    return Depends(check)


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def decide_bid(engine: Engine, body: BidRequest, loaded: Any) -> tuple[int, bytes | None]:
    """One bid decision: (200, the OpenRTB response) or (204, None); the decision is queued for the log.

    Shared by the ``/v1/bid`` route and :class:`BidFastPath`, so both answer byte for byte the same.
    """
    ext = body.ext or {}
    campaign = str(ext.get("campaign_id", "default"))
    prices: list[float | None]
    now = datetime.now(UTC)
    user_id = body.user.id if body.user is not None and body.user.id else "anonymous"
    known_id = _CUSTOMER_ID.match(user_id) is not None
    opted_out = known_id and _opted_out(engine, user_id, "ad")
    if opted_out or (body.tmax is not None and body.tmax < engine.bid_config.min_tmax_ms):
        prices = [None] * len(body.imp)  # no ad to a customer who withdrew consent on the ad channel
    else:
        quote = engine.pacing.quote(loaded.policy, campaign, int(now.timestamp() * 1_000_000))
        prices = bid_prices(body.imp, quote, engine.bid_config)
    bids = [{"id": f"{body.id}-{imp.id}", "impid": imp.id, "price": p} for imp, p in zip(body.imp, prices, strict=True)
            if p is not None]
    engine.decisions.submit(DecisionRecord(  # the event id and the event itself are made by the writer thread
        event_id=None, customer_id=user_id if known_id else "anonymous",
        agent="serve:bid", action="bid" if bids else "no_bid", channel="ad", propensity=1.0,
        policy_name=loaded.name, policy_version=loaded.version, at=now,
        context={"request_id": body.id[:128], "campaign_id": campaign[:128],
                 "price": max((b["price"] for b in bids), default=0.0)}))
    engine.metrics.decided("bid", loaded.name, loaded.version)
    if not bids:
        return 204, None
    return 200, orjson.dumps({"id": body.id, "seatbid": [{"bid": bids}], "cur": "USD",
                              "ext": {"policy": loaded.name, "policy_version": loaded.version}})


class BidFastPath:
    """Pure ASGI: answers an authorized, valid ``POST /v1/bid`` without Starlette's routing and FastAPI's
    dependency solving (on this handler they cost more than the decision itself).

    Everything else goes on to the FastAPI app, the body replayed: other routes, and bids that are not the plain
    case (no engine yet, a missing or refused key, a content type other than JSON, a body that is not JSON or
    not a valid bid request, a policy not loaded). The ``/v1/bid`` route then answers those, so 401/403/422/503,
    their bodies and their order stay the route's own; both paths decide through :func:`decide_bid`.
    """

    def __init__(self, app: Any, engine: Callable[[], Engine | None], route: Callable[[], Any]) -> None:
        self.app = app
        self.engine = engine
        self.route = route
        self._route: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or _route_path(scope) != "/v1/bid":
            await self.app(scope, receive, send)
            return
        messages: list[dict[str, Any]] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # a disconnect: the app sees it as it came
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        if await self._answer(scope, chunks, messages, send):
            return

        async def replay() -> dict[str, Any]:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _answer(self, scope: dict[str, Any], chunks: list[bytes], messages: list[Any], send: Any) -> bool:
        engine = self.engine()
        if engine is None or messages[-1]["type"] != "http.request":
            return False
        authorization = x_api_key = content_type = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"x-api-key":
                x_api_key = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value
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
        if payload is None:
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        else:
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-length", str(len(payload)).encode()), (b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": payload})
        return True


def _route_path(scope: dict[str, Any]) -> str:
    """The path the app routes on (without the ``root_path`` a mount or a Serve route prefix adds)."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def _field_errors(error: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for err in error.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        out.append({"field": ".".join(loc) or "(body)", "message": str(err.get("msg")), "rule": str(err.get("type"))})
    return out


def build_api(engine: Engine | None = None) -> FastAPI:
    """The FastAPI app (routes, 422 with field names, size limit, metrics). ``engine`` may be set later on
    ``app.state.engine`` (the Serve replica does so in ``__init__``)."""
    app = FastAPI(title="Autonomous Marketing Engine: decision API", version="1", docs_url="/docs")
    app.state.engine = engine
    app.add_middleware(  # inside EdgeMiddleware (added after it = outside): timed and size-limited like any route
        BidFastPath, engine=lambda: _engine_or_none(app),
        route=lambda: next((r for r in app.router.routes if getattr(r, "path", None) == "/v1/bid"), None),
    )
    app.add_middleware(
        EdgeMiddleware,
        metrics=lambda: _engine_or_none(app).metrics if _engine_or_none(app) is not None else None,
        max_body_bytes=lambda: _engine_or_none(app).args.max_body_bytes if _engine_or_none(app) is not None else 1_048_576,
    )

    @app.exception_handler(RequestValidationError)
    async def _unprocessable(request: Request, error: RequestValidationError) -> Response:
        fields = _field_errors(error)
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return _json({"detail": f"invalid request: {summary}", "errors": fields}, 422)

    @app.exception_handler(PolicyNotLoaded)
    async def _not_loaded(request: Request, error: PolicyNotLoaded) -> Response:
        return _json({"detail": str(error)}, 503)

    @app.get("/healthz")
    async def healthz(request: Request) -> Response:
        engine = engine_of(request)
        try:
            engine.check_health()
        except Exception as error:  # noqa: BLE001
            return _json({"status": "unavailable", "detail": str(error)}, 503)
        return _json({"status": "ok", "policies": {n: s.current.version for n, s in engine.slots.items()},
                      "decision_log_pending": engine.decisions.pending})

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        engine = engine_of(request)
        m = engine.metrics
        try:
            m.event_lag.labels(m.replica).set(await engine.run_io(engine.event_lag))
        except Exception:
            logger.debug("event lag unavailable", exc_info=True)
        m.decision_log_pending.labels(m.replica).set(engine.decisions.pending)
        return Response(m.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post("/v1/events", status_code=202, response_model=EventsOut)
    async def ingest(body: EventsIn, request: Request, key: ApiKey = require("ingest")) -> Response:
        engine = engine_of(request)
        valid, rejects, errors = [], [], []
        for i, item in enumerate(body.events):
            try:
                try:
                    raw = orjson.dumps(item)
                except TypeError:  # an integer beyond 64 bits: refused (and kept, as text, in the dead letters)
                    raw = repr(item).encode("utf-8", "backslashreplace")[: engine.max_event_bytes]
                    raise EventError("a number in the event is out of range (integers must fit in 64 bits)") from None
                if len(raw) > engine.max_event_bytes:
                    raise EventError(f"the event is {len(raw):,} bytes; the limit is {engine.max_event_bytes:,}")
                valid.append(validate_event(item))
            except EventError as error:
                event_id = item.get("event_id") if isinstance(item.get("event_id"), str) else None
                errors.append(ItemError(index=i, event_id=event_id, error=str(error)))
                rejects.append(RejectedInput(raw=raw, reason=f"item {i}: {error}", source=f"api:{key.name}:{body.source}",
                                             line=i, event_id=event_id))

        def write() -> tuple[int, int]:
            appended = duplicates = 0
            if valid:
                result = engine.log.append(valid)
                appended, duplicates = result.appended, result.duplicates
            if rejects:
                engine.log.dead_letter(rejects)
            return appended, duplicates

        appended, duplicates = await engine.run_io(write)
        out = EventsOut(accepted=len(valid), appended=appended, duplicates=duplicates, rejected=len(errors), errors=errors)
        return _json(out.model_dump(), 202)

    @app.get("/v1/customers/{customer_id}", response_model=CustomerOut)
    async def customer(customer_id: str, request: Request, key: ApiKey = require("decide")) -> Response:
        engine = engine_of(request)
        profile = await engine.run_io(_load_profile, engine, customer_id)
        if profile is None:
            raise HTTPException(404, f"no customer {customer_id!r} in the profile projection (is the projector caught up?)")
        scores = await engine.run_io(_scores, engine, profile)
        engine.decisions.submit(DataAccessed(  # the audit log: who read which customer's data (data/privacy)
            event_id=new_event_id(), customer_id=profile.customer_id, occurred_at=datetime.now(UTC), source="serve",
            properties=DataAccessedProperties(accessor=f"api:{key.name}"[:256], resource="GET /v1/customers/{customer_id}")))
        return _json({"customer_id": customer_id, "profile": profile.to_dict(), "scores": scores})

    @app.post("/v1/next-best-action", response_model=NextBestActionOut)
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

    @app.post("/v1/bid", responses={204: {"description": "No bid."}})
    async def bid(body: BidRequest, request: Request, key: ApiKey = require("decide")) -> Response:
        engine = engine_of(request)
        status, payload = decide_bid(engine, body, engine.slots["bidding"].current)
        return Response(status_code=204) if payload is None else Response(payload, status, media_type="application/json")

    @app.post("/v1/creatives/select", response_model=CreativeSelectOut)
    async def select_creative(body: CreativeSelectIn, request: Request, key: ApiKey = require("decide")) -> Response:
        from policies.creative.models import NoCreativeAvailable
        from policies.creative.serving import POLICY_NAME, POLICY_VERSION, exposure_event
        from policies.creative.serving import select_creative as choose

        engine = engine_of(request)
        try:
            variant, propensity = await engine.run_io(lambda: choose(body.segment, body.kind, store=engine.creative_store()))
        except NoCreativeAvailable as error:
            raise HTTPException(404, str(error)) from None
        now = datetime.now(UTC)
        request_id = body.request_id or new_event_id(now)
        event = exposure_event(variant, propensity, body.customer_id, now, request_id)
        engine.decisions.submit(event)
        engine.metrics.decided("creative", POLICY_NAME, POLICY_VERSION)
        return _json({"decision_id": event.event_id, "customer_id": body.customer_id, "variant_id": variant.variant_id,
                      "kind": variant.kind, "segment": variant.segment, "text": variant.text, "propensity": propensity,
                      "policy_name": POLICY_NAME, "policy_version": POLICY_VERSION})

    return app


def _engine_or_none(app: FastAPI) -> Engine | None:
    return getattr(app.state, "engine", None) or _ENGINE


def _load_profile(engine: Engine, customer_id: str) -> Any:
    from data.projections.profile import ProfileProjection

    return ProfileProjection().get(engine.state.read(), customer_id)


def _opted_out(engine: Engine, customer_id: str, channel: str) -> bool:
    """True where the customer's latest consent_changed or unsubscribe on ``channel`` withdrew consent."""
    profile = _load_profile(engine, customer_id)
    return profile is not None and profile.consent_for(channel) is False


def _scores(engine: Engine, profile: Any) -> list[dict[str, Any]]:
    from policies.scoring.errors import ScoringError

    out = []
    now = datetime.now(UTC)
    for kind, model in engine.scoring_models().items():
        try:
            s = model.score_profile(profile, now, top_k=engine.tunables.score_reasons)
        except ScoringError as error:
            logger.info("%s model not served on profiles: %s", kind, error)
            continue
        out.append({"model": kind, "model_version": model.version, "score": round(s.score, 2),
                    "probability": round(s.probability, 6), "tier": s.tier,
                    "reasons": [{"feature": r.feature, "contribution": r.contribution, "value": r.value} for r in s.reasons]})
    return out


# ---- Ray Serve -------------------------------------------------------------------------------------------

api = build_api()
"""The app the Serve ingress serves (one per replica process; ``DecisionApi.__init__`` sets its engine)."""


def _deployment() -> Any:
    from ray import serve

    @serve.deployment(
        name="DecisionApi",
        ray_actor_options={"num_cpus": 0.5},
        max_ongoing_requests=256,
        health_check_period_s=2,
        graceful_shutdown_timeout_s=30,
        autoscaling_config={"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 32},
    )
    @serve.ingress(api)
    class DecisionApi:
        """The ingress: ``__init__`` loads the policies; ``reconfigure`` applies ``user_config``."""

        def __init__(self, args: dict[str, Any] | None = None) -> None:
            import importlib

            self.engine = Engine(ServeArgs.model_validate(args or {}))
            importlib.import_module("serve.app").set_replica_engine(self.engine)

        def reconfigure(self, config: dict[str, Any]) -> None:
            self.engine.apply(Tunables.model_validate(config or {}))

        def check_health(self) -> None:
            self.engine.check_health()

        def __del__(self) -> None:
            engine = getattr(self, "engine", None)
            if engine is not None:
                engine.close()

    return DecisionApi


DecisionApi = None  # built lazily: importing this module must not need Ray Serve's controller


def decision_api(**options: Any) -> Any:
    """The ``DecisionApi`` deployment, with Serve ``options`` (``num_replicas``, ``user_config``, ...) applied."""
    global DecisionApi
    if DecisionApi is None:
        DecisionApi = _deployment()
    if options.get("num_replicas") is not None:
        options.setdefault("autoscaling_config", None)
    return DecisionApi.options(**options) if options else DecisionApi


def build_app(args: dict[str, Any] | None = None, **options: Any) -> Any:
    """The Serve application (``serve run serve.app:build_app``; ``import_path`` in serve/config.yaml).

    :param args: :class:`ServeArgs` fields (validated here, so a typo fails the deploy, not a request).
    :param options: Serve deployment options for tests and benchmarks (the config file sets them in production).
    """
    parsed = ServeArgs.model_validate(args or {})
    return decision_api(**options).bind(parsed.model_dump(mode="json"))
