"""``ame infra init``: create, idempotently, every resource the engine needs on its production backends.

What is created comes from the settings' URLs (``AME_EVENT_LOG``, ``AME_WAREHOUSE``, the ``postgresql://`` stores,
``AME_POLICIES_DIR`` and ``AME_MODELS_DIR``):

- **Pub/Sub** (a ``pubsub://project/topic`` log): the events topic, its dead-letter topic with the subscription that
  keeps dead letters, and one subscription per consumer ``ame agents up`` starts (each agent's shards, filtered
  by the agent's event types, with the dead-letter policy, and the projector's);
- **BigQuery** (a ``bigquery://project/dataset`` warehouse): the dataset and the raw tables;
- **PostgreSQL** (every ``postgresql://`` store URL): the schema's migrations;
- **the registries' layout** on their shared storage: the folders and a marker file naming each registry.

Each :class:`Provisioner` first looks at what exists, then creates only what is missing, so a second run creates
nothing; ``dry_run`` only looks. A backend that cannot be reached is reported as failed, naming its URL, and the
others still run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import psycopg
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry

from agents.cli import build_agents
from agents.projector import ProjectorConfig
from data.log.base import LogUnavailable
from data.postgres_db import is_postgres_url, redacted
from data.postgres_migrations import MIGRATIONS, migrate
from data.settings import Settings
from data.warehouse.bigquery_backend import BigQueryWarehouse
from data.warehouse.project import parse_warehouse_url
from policies.shared_storage import atomic_write

Status = Literal["created", "exists", "would create", "embedded", "failed"]
REGISTRY_MARKER = ".ame-registry.json"
"""The file that marks a registry's root (on a mounted bucket: proof that the volume is mounted)."""
RAW_TABLES = ("raw_events", "raw_load_state", "raw_loads")
"""The tables :meth:`BigQueryWarehouse.ensure_raw` creates."""
DEFAULT_AGENTS = ("scoring", "journey", "bidding")
"""The agents ``ame agents up`` runs by default."""


class InfraUnavailable(RuntimeError):
    """A backend cannot be reached, or refused to create a resource."""


@dataclass(frozen=True, slots=True)
class Row:
    """One resource and what became of it."""

    kind: str
    name: str
    where: str
    status: Status
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Consumer:
    """A subscription on the events topic: ``<topic>-<name>``, filtered to ``event_types`` (None: every event)."""

    name: str
    event_types: tuple[str, ...] | None = None


class Provisioner(Protocol):
    """One backend's resources."""

    label: str
    where: str

    def ensure(self, dry_run: bool) -> list[Row]:
        """Create what is missing (``dry_run``: only report it) and report every resource."""
        ...


def agent_consumers(agent_names: Sequence[str], shards: int, projector: bool = True) -> list[Consumer]:
    """The subscriptions ``ame agents up`` opens for these agents and shards (``<topic>-agent-<name>-<i>of<n>``,
    each filtered to its agent's event types), and the projector's (``<topic>-projector-<projection>``)."""
    out = [Consumer(f"agent-{agent.name}-{i}of{shards}", tuple(sorted(agent.event_types)) or None)
           for agent in build_agents(list(agent_names)) for i in range(shards)]
    if projector:
        out.append(Consumer(f"projector-{ProjectorConfig.model_fields['projection'].default}"))
    return out


def _unreachable(what: str, where: str, error: Exception) -> InfraUnavailable:
    return InfraUnavailable(f"cannot reach {what} at {where}: {error}")


class PubSubResources:
    """The events topic, its dead-letter topic and the consumers' subscriptions (see the module docstring).

    :param log_url: ``pubsub://project/topic``.
    :param consumers: the subscriptions to create on the events topic.
    :param ack_deadline_s: the consumers' ack deadline.
    :param max_delivery_attempts: deliveries of a message before it goes to the dead-letter topic.
    :param timeout_s: how long each look-up may take.
    """

    label = "Pub/Sub"

    def __init__(self, log_url: str, consumers: Sequence[Consumer], ack_deadline_s: int = 60,
                 max_delivery_attempts: int = 5, timeout_s: float = 30.0) -> None:
        from data.log.pubsub_admin import parse_pubsub_url  # lazy: loads the Google Pub/Sub client

        self.url = log_url
        self.ref = parse_pubsub_url(log_url)
        self.consumers = list(consumers)
        self.ack_deadline_s = ack_deadline_s
        self.max_delivery_attempts = max_delivery_attempts
        self.timeout_s = timeout_s
        host = os.environ.get("PUBSUB_EMULATOR_HOST")
        self.where = f"{log_url} (emulator {host})" if host else log_url

    def _exists(self, get: Callable[..., Any], **name: str) -> bool:
        retry = Retry(timeout=self.timeout_s)  # the default retries an unreachable server for minutes
        try:
            get(**name, retry=retry, timeout=self.timeout_s)
        except gexc.NotFound:
            return False
        except (gexc.GoogleAPICallError, gexc.RetryError) as error:
            raise _unreachable("Pub/Sub", self.where, error) from None
        return True

    def ensure(self, dry_run: bool) -> list[Row]:
        from google.cloud import pubsub_v1  # lazy: a Google client is heavy

        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        try:
            return self._ensure(publisher, subscriber, dry_run)
        except LogUnavailable as error:  # a create refused (permissions, quota)
            raise InfraUnavailable(f"Pub/Sub at {self.where}: {error}") from None
        finally:
            subscriber.close()
            publisher.stop()

    def _ensure(self, publisher: Any, subscriber: Any, dry_run: bool) -> list[Row]:
        from data.log.pubsub_admin import ensure_subscription, ensure_topic  # lazy: loads the Google Pub/Sub client

        rows = []
        for path, detail in ((self.ref.path, "the events"), (self.ref.dead_letter.path, "dead letters")):
            exists = self._exists(publisher.get_topic, topic=path)
            if not exists and not dry_run:
                ensure_topic(publisher, path)
            rows.append(self._row("Pub/Sub topic", path, exists, dry_run, detail))
        audit = self.ref.subscription_path(f"{self.ref.dead_letter.topic}-audit")
        exists = self._exists(subscriber.get_subscription, subscription=audit)
        if not exists and not dry_run:
            ensure_subscription(subscriber, audit, self.ref.dead_letter.path)
        rows.append(self._row("Pub/Sub subscription", audit, exists, dry_run, "keeps the dead letters"))
        for consumer in self.consumers:
            rows.append(self._ensure_consumer(subscriber, consumer, dry_run))
        return rows

    def _ensure_consumer(self, subscriber: Any, consumer: Consumer, dry_run: bool) -> Row:
        path = self.ref.subscription_path(f"{self.ref.topic}-{consumer.name}")
        exists = self._exists(subscriber.get_subscription, subscription=path)
        if not exists and not dry_run:
            from data.log.pubsub_admin import ensure_consumer_resources  # lazy: loads the Google Pub/Sub client

            made = ensure_consumer_resources(self.url, consumer.name, consumer.event_types, self.max_delivery_attempts,
                                             self.ack_deadline_s)
            if made != path:
                raise InfraUnavailable(f"the consumer {consumer.name!r} subscribes as {made}, not {path}")
        types = f"{len(consumer.event_types)} event types" if consumer.event_types else "every event"
        detail = f"{types}; dead letters after {self.max_delivery_attempts} deliveries"
        return self._row("Pub/Sub subscription", path, exists, dry_run, detail)

    def _row(self, kind: str, path: str, exists: bool, dry_run: bool, detail: str) -> Row:
        return Row(kind, path.rpartition("/")[2], self.where, "exists" if exists else "would create" if dry_run else "created", detail)


def bigquery_client(project: str, location: str | None = None) -> Any:
    """A BigQuery client: Application Default Credentials, or anonymous ones against the emulator named by
    ``BIGQUERY_EMULATOR_HOST`` (``http://host:port``), as the Pub/Sub client does with ``PUBSUB_EMULATOR_HOST``."""
    from google.cloud import bigquery  # lazy: a Google client is heavy

    credentials = None
    if os.environ.get("BIGQUERY_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials  # lazy: only against the emulator

        credentials = AnonymousCredentials()
    return bigquery.Client(project=project, location=location or None, credentials=credentials)


class BigQueryResources:
    """The warehouse's dataset and raw tables.

    :param url: ``bigquery://project/dataset``.
    :param location: the dataset's location (empty: BigQuery's default).
    :param client: a ``google.cloud.bigquery.Client`` (default: :func:`bigquery_client`).
    :param timeout_s: how long each call may take.
    """

    label = "BigQuery"

    def __init__(self, url: str, location: str = "", client: Any = None, timeout_s: float = 30.0) -> None:
        target = parse_warehouse_url(url)
        self.url, self.location, self.timeout_s = url, location, timeout_s
        self.dataset = f"{target.project}.{target.dataset}"
        self.project = target.project or ""
        self._client = client
        host = os.environ.get("BIGQUERY_EMULATOR_HOST")
        self.where = f"{url} (emulator {host})" if host else url

    def _tables(self, client: Any) -> set[str] | None:
        """The dataset's tables (None: no dataset)."""
        from google.cloud import bigquery  # lazy: a Google client is heavy

        retry = bigquery.DEFAULT_RETRY.with_deadline(self.timeout_s)  # fail within the timeout when unreachable
        try:
            client.get_dataset(self.dataset, retry=retry, timeout=self.timeout_s)
            return {t.table_id for t in client.list_tables(self.dataset, retry=retry, timeout=self.timeout_s)}
        except gexc.NotFound:
            return None
        except Exception as error:  # noqa: BLE001 - connection, credential and API errors all mean unreachable
            raise _unreachable("BigQuery", self.where, error) from None

    def ensure(self, dry_run: bool) -> list[Row]:
        try:
            client = self._client or bigquery_client(self.project, self.location)
        except Exception as error:  # noqa: BLE001 - no credentials, no project
            raise InfraUnavailable(f"cannot create a BigQuery client for {self.url}: {error}; run `gcloud auth "
                                   "application-default login` or set GOOGLE_APPLICATION_CREDENTIALS") from None
        before = self._tables(client)
        after = before
        if not dry_run and (before is None or not set(RAW_TABLES) <= before):
            try:
                BigQueryWarehouse(self.url, client=client, timeout=self.timeout_s, location=self.location or None).ensure_raw()
            except Exception as error:  # noqa: BLE001 - reported with the URL
                raise InfraUnavailable(f"BigQuery refused to create the raw tables at {self.where}: {error}") from None
            after = self._tables(client)
        new = "would create" if dry_run else "created"
        rows = [Row("BigQuery dataset", self.dataset, self.where, "exists" if before is not None else new,
                    self.location or "default location")]
        for table in sorted(set(RAW_TABLES) | (after or set())):
            rows.append(Row("BigQuery table", f"{self.dataset}.{table}", self.where,
                            "exists" if before and table in before else new))
        return rows


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
            raise _unreachable("PostgreSQL", self.where, error) from None
        latest = max(m.version for m in MIGRATIONS)
        status: Status = "exists" if not pending else "would create" if dry_run else "created"
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
        status: Status = "exists" if exists else "would create" if dry_run else "created"
        return Row("registry marker" if marker else "registry folder", str(path), registry, status)


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
