"""``ame infra init`` on Google Cloud: the Pub/Sub topics and subscriptions, the BigQuery dataset and raw tables, and
the BigQuery subscription that copies the events topic into the warehouse (see :mod:`ame.infra`).

Each provisioner looks first (with a bounded retry, so an unreachable service fails within the timeout) and creates
only what is missing. The clients honour ``PUBSUB_EMULATOR_HOST`` and ``BIGQUERY_EMULATOR_HOST``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry

from ame.infra_model import Consumer, InfraUnavailable, Row, outcome, unreachable
from data.log.base import LogUnavailable
from data.warehouse.bigquery_backend import BigQueryWarehouse
from data.warehouse.project import parse_warehouse_url
from data.warehouse.pubsub_raw import RAW_SUBSCRIPTION_TABLE, ensure_subscription_table
from data.warehouse.streaming import raw_events_subscription_request

RAW_TABLES = ("raw_events", "raw_load_state", "raw_loads")
"""The tables :meth:`BigQueryWarehouse.ensure_raw` creates."""


def pubsub_exists(get: Callable[..., Any], where: str, timeout_s: float, **name: str) -> bool:
    """Whether the topic or subscription ``get`` looks up exists; :class:`InfraUnavailable` naming ``where`` when
    Pub/Sub does not answer within ``timeout_s``."""
    retry = Retry(timeout=timeout_s)  # the default retries an unreachable server for minutes
    try:
        get(**name, retry=retry, timeout=timeout_s)
    except gexc.NotFound:
        return False
    except (gexc.GoogleAPICallError, gexc.RetryError) as error:
        raise unreachable("Pub/Sub", where, error) from None
    return True


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
        return pubsub_exists(get, self.where, self.timeout_s, **name)

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
        return Row(kind, path.rpartition("/")[2], self.where, outcome(exists, dry_run), detail)


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

    def client(self) -> Any:
        """The given client, or a new one (:class:`InfraUnavailable` without credentials)."""
        if self._client is not None:
            return self._client
        try:
            return bigquery_client(self.project, self.location)
        except Exception as error:  # noqa: BLE001 - no credentials, no project
            raise InfraUnavailable(f"cannot create a BigQuery client for {self.url}: {error}; run `gcloud auth "
                                   "application-default login` or set GOOGLE_APPLICATION_CREDENTIALS") from None

    def tables(self, client: Any) -> set[str] | None:
        """The dataset's tables (None: no dataset)."""
        from google.cloud import bigquery  # lazy: a Google client is heavy

        retry = bigquery.DEFAULT_RETRY.with_deadline(self.timeout_s)  # fail within the timeout when unreachable
        try:
            client.get_dataset(self.dataset, retry=retry, timeout=self.timeout_s)
            return {t.table_id for t in client.list_tables(self.dataset, retry=retry, timeout=self.timeout_s)}
        except gexc.NotFound:
            return None
        except Exception as error:  # noqa: BLE001 - connection, credential and API errors all mean unreachable
            raise unreachable("BigQuery", self.where, error) from None

    def warehouse(self, client: Any) -> BigQueryWarehouse:
        return BigQueryWarehouse(self.url, client=client, timeout=self.timeout_s, location=self.location or None)

    def ensure(self, dry_run: bool) -> list[Row]:
        client = self.client()
        before = self.tables(client)
        if not dry_run and (before is None or not set(RAW_TABLES) <= before):
            try:
                self.warehouse(client).ensure_raw()
            except Exception as error:  # noqa: BLE001 - reported with the URL
                raise InfraUnavailable(f"BigQuery refused to create the raw tables at {self.where}: {error}") from None
            if not set(RAW_TABLES) <= (self.tables(client) or set()):
                raise InfraUnavailable(f"the raw tables {', '.join(RAW_TABLES)} are still not all in {self.dataset}")
        rows = [Row("BigQuery dataset", self.dataset, self.where, outcome(before is not None, dry_run),
                    self.location or "default location")]
        return rows + [Row("BigQuery table", f"{self.dataset}.{table}", self.where,
                           outcome(before is not None and table in before, dry_run)) for table in RAW_TABLES]


class WarehouseSubscription:
    """The table ``raw_pubsub_messages`` and the BigQuery subscription ``<topic>-warehouse`` that writes every message
    of the events topic into it, which ``ame warehouse load`` reads (:mod:`data.warehouse.pubsub_raw`).

    :param log_url: ``pubsub://project/topic``.
    :param warehouse_url: ``bigquery://project/dataset``.
    :param max_delivery_attempts: tries to write a message before it goes to the dead-letter topic.
    :param timeout_s: how long each call may take.
    :param client: a ``google.cloud.bigquery.Client`` (default: :func:`bigquery_client`).
    """

    label = "Pub/Sub to BigQuery"

    def __init__(self, log_url: str, warehouse_url: str, max_delivery_attempts: int = 5, timeout_s: float = 30.0,
                 client: Any = None) -> None:
        from data.log.pubsub_admin import parse_pubsub_url  # lazy: loads the Google Pub/Sub client

        self.ref = parse_pubsub_url(log_url)
        self.bigquery = BigQueryResources(warehouse_url, client=client, timeout_s=timeout_s)
        self.max_delivery_attempts, self.timeout_s = max_delivery_attempts, timeout_s
        self.subscription = self.ref.subscription_path(f"{self.ref.topic}-warehouse")
        self.where = f"{log_url} to {warehouse_url}"

    def ensure(self, dry_run: bool) -> list[Row]:
        client = self.bigquery.client()
        has_table = RAW_SUBSCRIPTION_TABLE in (self.bigquery.tables(client) or set())
        if not has_table and not dry_run:
            try:
                ensure_subscription_table(self.bigquery.warehouse(client))
            except Exception as error:  # noqa: BLE001 - reported with the URL
                raise InfraUnavailable(f"BigQuery refused to create {RAW_SUBSCRIPTION_TABLE} at {self.where}: {error}") from None
        table = f"{self.bigquery.dataset}.{RAW_SUBSCRIPTION_TABLE}"
        return [Row("BigQuery table", table, self.where, outcome(has_table, dry_run), "the subscription's messages"),
                self._ensure_subscription(table, dry_run)]

    def _ensure_subscription(self, table: str, dry_run: bool) -> Row:
        from google.cloud import pubsub_v1  # lazy: a Google client is heavy

        subscriber = pubsub_v1.SubscriberClient()
        try:
            exists = pubsub_exists(subscriber.get_subscription, self.where, self.timeout_s, subscription=self.subscription)
            if not exists and not dry_run:
                request = raw_events_subscription_request(self.ref.project, self.ref.topic, self.subscription.rpartition("/")[2],
                                                          self.bigquery.dataset.split(".")[1], self.ref.dead_letter.topic)
                request["bigquery_config"]["table"] = table  # the warehouse's project may differ from the topic's
                request["dead_letter_policy"]["max_delivery_attempts"] = self.max_delivery_attempts
                subscriber.create_subscription(request=request, timeout=self.timeout_s)
        except gexc.GoogleAPICallError as error:
            raise InfraUnavailable(f"Pub/Sub refused the BigQuery subscription {self.subscription}: {error}") from None
        finally:
            subscriber.close()
        return Row("Pub/Sub subscription", self.subscription.rpartition("/")[2], self.where, outcome(exists, dry_run),
                   f"writes every message into {table}")
