"""The decision API as a Ray Serve application: one ingress deployment, ``DecisionApi``, serving the FastAPI app
of :mod:`serve.routes`.

Decisions are made **in the ingress replica** (one hop: proxy -> replica). A replica's ``__init__`` builds its
:class:`~serve.engine.Engine` (the policies loaded), Serve then asks it for its app (``__serve_build_asgi_app__``,
called after the constructor), ``reconfigure`` applies the ``user_config`` and ``check_health`` fails while a
policy is not loaded. On a graceful shutdown Serve runs the app's lifespan shutdown, which closes the engine:
every queued decision is appended before the replica exits.

``serve run serve.app:build_app`` or ``serve deploy serve/config.yaml``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from serve.engine import Engine, ServeArgs, Tunables
from serve.routes import build_api

if TYPE_CHECKING:
    from ray.serve import Application
    from ray.serve.deployment import Deployment

__all__ = ["build_app", "decision_api"]

class DecisionApiReplica:
    """One replica of the ingress: its engine and its app (the plain class; :func:`decision_api` wraps it)."""

    def __init__(self, args: dict[str, Any] | None = None) -> None:
        self.engine = Engine(ServeArgs.model_validate(args or {}))

    def __serve_build_asgi_app__(self) -> FastAPI:
        """The replica's app, bound to its engine (Serve calls this after ``__init__``)."""
        return build_api(self.engine)

    def reconfigure(self, config: dict[str, Any]) -> None:
        self.engine.apply(Tunables.model_validate(config or {}))

    def check_health(self) -> None:
        self.engine.check_health()


def decision_api(**options: Any) -> Deployment:
    """The ``DecisionApi`` deployment, with Serve ``options`` (``num_replicas``, ``user_config``, ...) applied."""
    from ray import serve  # lazy: Ray Serve is heavy, and importing this module must not need its controller

    deployment = serve.deployment(  # the defaults; serve/config.yaml overrides them in production
        name="DecisionApi",
        ray_actor_options={"num_cpus": 0.5},
        max_ongoing_requests=256,
        health_check_period_s=2,
        graceful_shutdown_timeout_s=30,
        autoscaling_config={"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 32},
    )(serve.ingress()(DecisionApiReplica))  # no app given: each replica builds its own (__serve_build_asgi_app__)
    if options.get("num_replicas") is not None:
        options.setdefault("autoscaling_config", None)
    return deployment.options(**options) if options else deployment


def build_app(args: dict[str, Any] | None = None, **options: Any) -> Application:
    """The Serve application (``serve run serve.app:build_app``; ``import_path`` in serve/config.yaml).

    :param args: :class:`~serve.engine.ServeArgs` fields (validated here, so a typo fails the deploy, not a request).
    :param options: Serve deployment options for tests and benchmarks (the config file sets them in production).
    """
    parsed = ServeArgs.model_validate(args or {})
    return decision_api(**options).bind(parsed.model_dump(mode="json"))
