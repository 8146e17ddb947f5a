"""The one typed settings object of the engine, read from ``AME_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Engine configuration. Every field can be set as ``AME_<FIELD>`` (for example ``AME_EVENT_LOG``)."""

    model_config = SettingsConfigDict(env_prefix="AME_", env_file=".env", extra="ignore")

    home: Path = Field(Path(".ame"), description="Folder of the embedded defaults (log, state, warehouse).")
    event_log: str = Field("", description="Event log URL: sqlite:///path or pubsub://project/topic.")
    state_store: str = Field("", description="Projection state store URL (tracking records, snapshots).")
    warehouse: str = Field("", description="Warehouse URL: duckdb:///path or bigquery://project/dataset.")

    append_batch_size: int = Field(1_000, ge=1, le=100_000, description="Events per append transaction.")
    read_batch_size: int = Field(50_000, ge=1, le=1_000_000, description="Events per consumer batch.")
    snapshot_every: int = Field(
        500_000, ge=0, description="Write a projection snapshot every N events (0 disables snapshots)."
    )
    sqlite_busy_timeout_ms: int = Field(60_000, ge=0, description="How long a writer waits for the SQLite lock.")
    max_event_bytes: int = Field(64 * 1024, ge=256, description="Largest accepted event, as raw JSON bytes.")
    models_dir: Path = Field(Path("artifacts/models"), description="Registry of trained models: <kind>/<version>/.")
    model_threads: int = Field(0, ge=0, le=256, description="Threads for model training and batch scoring (0: all cores).")

    def event_log_url(self) -> str:
        return self.event_log or f"sqlite:///{self.home / 'events.db'}"

    def state_store_url(self) -> str:
        return self.state_store or f"sqlite:///{self.home / 'state.db'}"

    def warehouse_url(self) -> str:
        return self.warehouse or f"duckdb:///{self.home / 'warehouse.duckdb'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built on first use (never at import time)."""
    return Settings()
