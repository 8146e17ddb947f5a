"""The one typed settings object of the engine, read from ``AME_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Engine configuration. Every field can be set as ``AME_<FIELD>`` (for example ``AME_EVENT_LOG``)."""

    model_config = SettingsConfigDict(env_prefix="AME_", env_file=".env", extra="ignore")

    home: Path = Field(Path(".ame"), description="Folder of the embedded defaults (log, state, warehouse).")
    event_log: str = Field("", description="Event log URL: sqlite:///path, postgresql://… or pubsub://project/topic.")
    log_wait_poll_s: float = Field(
        0.02, gt=0, le=10, description="Event log: how often a reader waiting for new events polls an embedded (SQLite) log."
    )
    state_store: str = Field(
        "", description="State store URL (tracking records, projections, snapshots, agent state): sqlite:///path or postgresql://…"
    )
    warehouse: str = Field("", description="Warehouse URL: duckdb:///path or bigquery://project/dataset.")
    warehouse_start: str = Field(
        "2020-01-01", pattern=r"^\d{4}-\d{2}-\d{2}$", description="Warehouse: first day the incremental models cover."
    )
    warehouse_bigquery_location: str = Field("", description="Warehouse: BigQuery dataset location (e.g. EU); empty: the default.")
    warehouse_state: str = Field(
        "", description="Warehouse: where SQLMesh keeps its state (postgresql://…); empty: AME_STATE_STORE when it is "
                        "PostgreSQL and the warehouse BigQuery, else the DuckDB warehouse file (or AME_HOME/sqlmesh_state.duckdb).",
    )
    warehouse_subscription_overlap_s: float = Field(
        600.0, ge=0, le=86_400,
        description="Warehouse load from a Pub/Sub log: how far before its publish-time watermark each load re-reads the "
                    "subscription's table, for rows the subscription wrote late (duplicates are skipped by event_id).")
    warehouse_dictionary_compression: bool = Field(
        False, description="Warehouse (DuckDB): dictionary-compress string columns on build (a file half the size, builds ~8% slower)."
    )

    append_batch_size: int = Field(1_000, ge=1, le=100_000, description="Events per append transaction.")
    read_batch_size: int = Field(50_000, ge=1, le=1_000_000, description="Events per consumer batch.")
    snapshot_every: int = Field(
        500_000, ge=0, description="Write a projection snapshot every N events (0 disables snapshots)."
    )
    sqlite_busy_timeout_ms: int = Field(60_000, ge=0, description="How long a writer waits for the SQLite lock.")
    max_event_bytes: int = Field(64 * 1024, ge=256, description="Largest accepted event, as raw JSON bytes.")
    models_dir: Path = Field(Path("artifacts/models"), description="Registry of trained models: <kind>/<version>/.")
    policies_dir: Path = Field(Path("artifacts/policies"), description="Registry of trained RL policies: <name>/<version>/, slots/.")
    model_threads: int = Field(0, ge=0, le=256, description="Threads for model training and batch scoring (0: all cores).")
    agent_shards: int = Field(2, ge=1, le=1024, description="Shard actors per agent type (hash of customer_id mod N).")
    agent_resources: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict,
        description='Ray custom resources every agent actor asks for, as JSON (e.g. {"agents": 0.001}): pins the shards, '
                    "the projector and the scheduler to the nodes that offer them.",
    )
    agent_batch_size: int = Field(2_000, ge=1, le=100_000, description="Most events an agent shard reads per batch.")
    agent_holdout_share: float = Field(0.05, ge=0.0, le=0.5, description="Share of customers held out from the agents' policies.")
    agent_state_read_chunk: int = Field(
        500, ge=1, le=30_000, description="Agents: keys per state read (one SQL `in (...)` list; SQLite binds at most 32,766 values)."
    )
    agent_rate_window: int = Field(
        64, ge=2, le=100_000, description="Agents and projectors: batches the reported events/s is measured over."
    )
    agent_rate_idle_s: float = Field(5.0, gt=0, description="Agents and projectors: events/s reads 0 after this long without a batch.")
    agent_max_backoff_s: float = Field(
        5.0, gt=0, le=300,
        description="Agents and projectors: longest wait before retrying a failed batch (doubling from the poll interval).",
    )
    agent_stop_timeout_s: float = Field(
        30.0, gt=0, le=3_600, description="Agents and projectors: how long stopping waits for the batch in hand to finish."
    )
    projector_poll_interval_s: float = Field(
        0.05, gt=0, le=10, description="Projector actor: wait between polls of the log when caught up (bounds how fresh consent is)."
    )
    pubsub_publish_timeout_s: float = Field(30.0, gt=0, description="Pub/Sub: how long append waits for its publishes.")
    pubsub_batch_max_messages: int = Field(500, ge=1, le=1_000, description="Pub/Sub publisher: messages per batch.")
    pubsub_batch_max_latency_s: float = Field(0.01, ge=0, description="Pub/Sub publisher: longest wait to fill a batch.")
    pubsub_flow_max_messages: int = Field(1_000, ge=1, description="Pub/Sub subscriber: unacked messages held at most.")
    pubsub_flow_max_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Pub/Sub subscriber: unacked bytes held at most.")
    pubsub_ack_deadline_s: int = Field(60, ge=10, le=600, description="Pub/Sub subscription ack deadline.")
    pubsub_pull_wait_s: float = Field(
        10.0, ge=1, le=60, description="Pub/Sub subscriber: longest one pull waits for messages before it asks again."
    )
    pubsub_max_delivery_attempts: int = Field(5, ge=5, le=100, description="Pub/Sub: deliveries before the dead-letter topic.")
    pubsub_dead_letter_store: str = Field(
        "", description="Pub/Sub: URL (sqlite:///path or postgresql://…) of the store of input rejected on append."
    )
    creative_store: str = Field(
        "", description="Creatives: URL (sqlite:///path or postgresql://…) of the variants, approvals and bandit posteriors."
    )
    serve_api_keys_file: str = Field("", description="Serve: JSON file of hashed API keys with scopes (ame serve keys new).")
    serve_api_keys_reload_s: float = Field(
        2.0, gt=0, le=3_600, description="Serve: how often a replica checks the API key file for a rotation."
    )
    creative_generator: str = Field("template", description="Creatives: 'template' (embedded, offline) or 'gemini' (Vertex AI).")
    gemini_model: str = Field("gemini-2.5-flash", description="Creatives: the Gemini model name on Vertex AI.")
    gcp_project: str = Field("", description="Creatives: Google Cloud project of the Vertex AI client.")
    gcp_location: str = Field("us-central1", description="Creatives: Vertex AI location.")
    key_store: str = Field(
        "", description="Privacy: URL of the per-customer keys, sqlite:///path or postgresql://… (default: beside the log, events.keys.db)."
    )
    postgres_pool_max_size: int = Field(8, ge=3, le=1_000, description="PostgreSQL stores: most connections each store's pool opens.")
    postgres_connect_timeout_s: float = Field(10.0, gt=0, le=600, description="PostgreSQL stores: how long to wait for a connection.")
    privacy_encrypt: bool = Field(True, description="Privacy: encrypt PII properties with per-customer keys on append.")
    activation_config: Path = Field(
        Path("syncs.yaml"), description="Activation: the sync YAML file (see data/activation/syncs.example.yaml)."
    )
    channels_sendgrid_url: str = Field("https://api.sendgrid.com", description="Channels: SendGrid API base URL (e-mail).")
    channels_sendgrid_api_key: SecretStr = Field(SecretStr(""), description="Channels: SendGrid API key (mail.send scope).")
    channels_email_from: str = Field("", description="Channels: the sender address of e-mails.")
    channels_sendgrid_webhook_public_key: str = Field(
        "", description="Channels: the Signed Event Webhook's verification key (base64 DER, from SendGrid's mail settings).")
    channels_twilio_url: str = Field("https://api.twilio.com", description="Channels: Twilio API base URL (SMS).")
    channels_twilio_account_sid: str = Field("", description="Channels: Twilio account SID.")
    channels_twilio_auth_token: SecretStr = Field(
        SecretStr(""), description="Channels: Twilio auth token (basic auth, and the key of X-Twilio-Signature).")
    channels_sms_from: str = Field("", description="Channels: the sender number (E.164) or Messaging Service SID (MG...).")
    channels_fcm_url: str = Field("https://fcm.googleapis.com", description="Channels: Firebase Cloud Messaging base URL (push).")
    channels_fcm_project: str = Field("", description="Channels: the Firebase project id.")
    channels_fcm_access_token: SecretStr = Field(
        SecretStr(""), description="Channels: a fixed OAuth token for FCM; empty: Application Default Credentials.")
    channels_push_webhook_secret: SecretStr = Field(
        SecretStr(""), description="Channels: HMAC secret of the app's push receipts (FCM has no delivery webhook).")
    channels_webhook_base_url: str = Field(
        "", description="Channels: the public base URL of the webhooks (Twilio signs the URL it calls); empty: the request's.")
    channels_webhook_max_age_s: float = Field(
        600.0, gt=0, description="Channels: signed webhooks older than this (by their timestamp) are refused (replays).")
    salesforce_url: str = Field(
        "", description="CRM: the Salesforce org's My Domain URL (https://…my.salesforce.com); its OAuth token endpoint is "
        "/services/oauth2/token. Empty: the CRM loop is off."
    )
    salesforce_client_id: str = Field("", description="CRM: the connected app's consumer key (client credentials flow).")
    salesforce_client_secret: str = Field("", description="CRM: the connected app's consumer secret.")
    salesforce_api_version: str = Field("v62.0", pattern=r"^v\d+\.\d$", description="CRM: the Salesforce REST API version.")
    schedule_interval_s: float = Field(30.0, gt=0, le=3_600, description="Scheduler: how often it looks for due jobs.")
    schedule_warehouse_cron: str = Field("20 * * * *", description="Scheduler: cron (UTC) of the warehouse load and build.")
    schedule_crm_cron: str = Field("*/10 * * * *", description="Scheduler: cron (UTC) of the pull of CRM outcomes.")
    schedule_retrain_cron: str = Field("0 3 * * *", description="Scheduler: cron (UTC) of the lead model's retrain and challenge.")
    schedule_drift_cron: str = Field("0 5 * * *", description="Scheduler: cron (UTC) of the lead model's drift check.")

    def event_log_url(self) -> str:
        return self.event_log or f"sqlite:///{self.home / 'events.db'}"

    def state_store_url(self) -> str:
        return self.state_store or f"sqlite:///{self.home / 'state.db'}"

    def pubsub_dead_letter_store_url(self) -> str:
        return self.pubsub_dead_letter_store or f"sqlite:///{self.home / 'pubsub-dead-letters.db'}"

    def creative_store_url(self) -> str:
        return self.creative_store or f"sqlite:///{self.home / 'creatives.db'}"

    def warehouse_url(self) -> str:
        return self.warehouse or f"duckdb:///{self.home / 'warehouse.duckdb'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built on first use (never at import time)."""
    return Settings()
