"""``ame infra init``: create, idempotently, every resource the engine needs on its production backends.

What is created comes from the settings' URLs (``AME_EVENT_LOG``, ``AME_WAREHOUSE``, the ``postgresql://`` stores,
``AME_POLICIES_DIR`` and ``AME_MODELS_DIR``):

- **Pub/Sub** (a ``pubsub://project/topic`` log): the events topic, its dead-letter topic with the subscription that
  keeps dead letters, and one subscription per consumer ``ame agents up`` starts (each agent's shards, filtered
  by the agent's event types, with the dead-letter policy, and the projector's);
- **BigQuery** (a ``bigquery://project/dataset`` warehouse): the dataset and the raw tables; with a Pub/Sub log
  also the table ``raw_pubsub_messages`` and the BigQuery subscription ``<topic>-warehouse`` that fills it, which
  ``ame warehouse load`` reads (:mod:`data.warehouse.pubsub_raw`);
- **PostgreSQL** (every ``postgresql://`` store URL): the schema's migrations;
- **the registries' layout** on their shared storage: the folders and a marker file naming each registry.

Each :class:`Provisioner` first looks at what exists, then creates only what is missing, so a second run creates
nothing; ``dry_run`` only looks. A backend that cannot be reached is reported as failed, naming its URL, and the
others still run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from agents.cli import build_agents
from agents.projector import ProjectorConfig
from agents.state_repository import agent_consumer, projector_consumer
from ame.infra_google import RAW_TABLES, BigQueryResources, PubSubResources, WarehouseSubscription, bigquery_client
from ame.infra_model import Consumer, InfraUnavailable, Provisioner, Row, outcome, unreachable
from data.postgres_db import is_postgres_url, redacted
from data.postgres_migrations import MIGRATIONS, migrate
from data.settings import Settings
from policies.shared_storage import atomic_write

__all__ = ["DEFAULT_AGENTS", "RAW_TABLES", "REGISTRY_MARKER", "InfraUnavailable", "Row", "agent_consumers",
           "bigquery_client", "initialise", "plan"]

REGISTRY_MARKER = ".ame-registry.json"
"""The file that marks a registry's root (on a mounted bucket: proof that the volume is mounted)."""
DEFAULT_AGENTS = ("scoring", "journey", "bidding")
"""The agents ``ame agents up`` runs by default."""


def agent_consumers(agent_names: Sequence[str], shards: int, projector: bool = True) -> list[Consumer]:
    """The subscriptions ``ame agents up`` opens for these agents and shards (``<topic>-agent-<name>-<i>of<n>``,
    each filtered to its agent's event types), and the projector's (``<topic>-projector-<projection>``)."""
    out = [Consumer(agent_consumer(agent.name, i, shards), tuple(sorted(agent.event_types)) or None)
           for agent in build_agents(list(agent_names)) for i in range(shards)]
    if projector:
        out.append(Consumer(projector_consumer(ProjectorConfig.model_fields["projection"].default)))
    return out


class PostgresSchema:
    """The PostgreSQL schema's migrations on one database (:mod:`data.postgres_migrations`).

    :param url: ``postgresql://…``.
    :param timeout_s: how long to wait for a connection.
    """

    label = "PostgreSQL"

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url, self.timeout_s = url, timeout_s
        self.where = redacted(url)

    def ensure(self, dry_run: bool) -> list[Row]:
        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, int(self.timeout_s))) as conn:
                done = self._applied(conn)
                pending = [m.version for m in MIGRATIONS if m.version not in done]
                if pending and not dry_run:
                    pending = migrate(conn)
        except psycopg.OperationalError as error:
            raise unreachable("PostgreSQL", self.where, error) from None
        latest = max(m.version for m in MIGRATIONS)
        status = outcome(not pending, dry_run)
        detail = f"migrations {', '.join(map(str, pending))}" if pending else "current"
        return [Row("PostgreSQL schema", f"schema version {latest}", self.where, status, detail)]

    @staticmethod
    def _applied(conn: Any) -> set[int]:
        if conn.execute("select to_regclass('schema_version')").fetchone()[0] is None:
            return set()
        return {row[0] for row in conn.execute("select version from schema_version")}


class RegistryLayout:
    """The registries' folders on their shared storage, each with its marker file.

    :param roots: registry name -> its root folder (and the sub-folders it needs).
    """

    label = "registries"

    def __init__(self, roots: dict[str, tuple[Path, tuple[str, ...]]]) -> None:
        self.roots = roots
        self.where = ", ".join(str(root) for root, _ in roots.values())

    def ensure(self, dry_run: bool) -> list[Row]:
        rows = []
        for name, (root, subfolders) in self.roots.items():
            for folder in (root, *(root / s for s in subfolders)):
                rows.append(self._ensure(folder, name, dry_run))
            rows.append(self._ensure(root / REGISTRY_MARKER, name, dry_run))
        return rows

    def _ensure(self, path: Path, registry: str, dry_run: bool) -> Row:
        exists, marker = path.exists(), path.name == REGISTRY_MARKER
        try:
            if not exists and not dry_run and marker:
                created = datetime.now(UTC).isoformat(timespec="seconds")
                atomic_write(path, json.dumps({"registry": registry, "layout": 1, "created_at": created}))
            elif not exists and not dry_run:
                path.mkdir(parents=True)
        except OSError as error:
            raise InfraUnavailable(f"cannot write the {registry} registry at {path}: {error}") from None
        return Row("registry marker" if marker else "registry folder", str(path), registry, outcome(exists, dry_run))


@dataclass(frozen=True, slots=True)
class Embedded:
    """A backend that needs no set-up: an embedded file, created on first use."""

    label: str
    where: str

    def ensure(self, dry_run: bool) -> list[Row]:
        return [Row(self.label, self.where, self.where, "embedded", "a local file, created on first use")]


def store_urls(settings: Settings, log_url: str) -> list[str]:
    """The distinct ``postgresql://`` URLs among the log and the stores."""
    urls = (log_url, settings.state_store_url(), settings.key_store, settings.creative_store_url(),
            settings.pubsub_dead_letter_store_url())
    return list(dict.fromkeys(u for u in urls if is_postgres_url(u)))


def plan(settings: Settings, log_url: str | None = None, warehouse_url: str | None = None,
         agents: Sequence[str] = DEFAULT_AGENTS, shards: int | None = None, timeout_s: float = 30.0) -> list[Provisioner]:
    """What ``ame infra init`` looks after for these settings, one provisioner per backend."""
    log_url = log_url or settings.event_log_url()
    warehouse_url = warehouse_url or settings.warehouse_url()
    out: list[Provisioner] = []
    if log_url.startswith("pubsub://"):
        consumers = agent_consumers(agents, shards or settings.agent_shards)
        out.append(PubSubResources(log_url, consumers, settings.pubsub_ack_deadline_s,
                                   settings.pubsub_max_delivery_attempts, timeout_s))
    elif not is_postgres_url(log_url):
        out.append(Embedded("event log", log_url))
    if warehouse_url.startswith("bigquery://"):
        out.append(BigQueryResources(warehouse_url, settings.warehouse_bigquery_location, timeout_s=timeout_s))
        if log_url.startswith("pubsub://"):
            out.append(WarehouseSubscription(log_url, warehouse_url, settings.pubsub_max_delivery_attempts, timeout_s))
    else:
        out.append(Embedded("warehouse", warehouse_url))
    out += [PostgresSchema(url, min(timeout_s, settings.postgres_connect_timeout_s)) for url in store_urls(settings, log_url)]
    out.append(RegistryLayout({"policies": (settings.policies_dir, ("slots",)), "models": (settings.models_dir, ())}))
    return out


def initialise(provisioners: Sequence[Provisioner], dry_run: bool = False) -> list[Row]:
    """Run every provisioner; one that cannot reach its backend gives a ``failed`` row with the reason."""
    rows: list[Row] = []
    for provisioner in provisioners:
        try:
            rows += provisioner.ensure(dry_run)
        except InfraUnavailable as error:
            rows.append(Row(provisioner.label, "", provisioner.where, "failed", str(error)))
    return rows
