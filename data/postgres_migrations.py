"""The PostgreSQL schema of the engine's stores, as an ordered list of versioned migrations.

:func:`migrate` applies, in order, each migration not yet in table ``schema_version``, all in one transaction
under a transaction-scoped advisory lock: processes that start together (every pod of a cluster) wait for the
first one, then find the schema current and apply nothing. A migration is never edited once released; a
change is a new migration at the end of the list.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "state store: tracking records, snapshots, profiles, agent state, Pub/Sub de-duplication", """
        create table if not exists tracking (
            consumer text primary key, position bigint not null, updated_at_us bigint not null);
        create table if not exists snapshots (
            consumer text not null, position bigint not null, state bytea not null, state_hash text not null,
            created_at_us bigint not null, primary key (consumer, position));
        create table if not exists profiles (customer_id text primary key, state text not null);
        create table if not exists agent_state (
            consumer text not null, key text not null, record bytea not null, primary key (consumer, key));
        create table if not exists agent_restarts (consumer text primary key, restarts integer not null);
        create table if not exists processed_events (
            consumer text not null, event_id text not null, position bigint not null,
            processed_at_us bigint not null, primary key (consumer, event_id));
    """),
    Migration(2, "PII key store: per-customer keys and erasure tombstones", """
        create table if not exists customer_keys (
            customer_id text primary key, key bytea not null, created_at_us bigint not null);
        create table if not exists erased_customers (
            customer_id text primary key, erased_at_us bigint not null, event_id text, requested_by text);
    """),
    Migration(3, "activation: the rows each destination holds, and the sync runs", """
        create table if not exists activation_rows (
            sync text not null, key text not null, hash text not null, fields bytea not null,
            synced_at double precision not null, primary key (sync, key));
        create table if not exists activation_runs (
            sync text not null, run_id text not null, started_at double precision not null,
            finished_at double precision, status text not null, upserts_sent integer, deletes_sent integer,
            succeeded integer, failed integer, unchanged integer, report bytea, primary key (sync, run_id));
    """),
    Migration(4, "dead letters: input rejected on append, with its raw bytes and the reason", """
        create table if not exists dead_letters (
            id bigint generated always as identity primary key, received_at_us bigint not null,
            last_seen_at_us bigint not null, source text not null, line integer, raw bytea not null,
            raw_sha256 text not null unique, reason text not null, event_id text,
            status text not null default 'pending', times_seen integer not null default 1, position bigint,
            redriven_at_us bigint, replaced_raw bytea);
        create index if not exists ix_dead_letters_status on dead_letters (status, id);
    """),
    Migration(5, "creatives: variants, approvals, the bandit's counts and promotions", """
        create table if not exists creative_variants (
            variant_id text primary key, kind text not null, segment text not null, product text not null,
            tone text not null, text text not null, generator text not null, critical integer not null,
            status text not null, passed integer not null, reasons text not null, score double precision not null,
            in_test integer not null, created_at_us bigint not null, decided_by text, decided_at_us bigint,
            note text);
        create index if not exists creative_variants_arms on creative_variants (segment, kind, status, in_test);
        create table if not exists creative_counts (
            variant_id text primary key, impressions bigint not null, clicks bigint not null,
            conversions bigint not null);
        create table if not exists creative_promotions (
            segment text not null, kind text not null, variant_id text not null, p_best double precision not null,
            impressions bigint not null, promoted_at_us bigint not null, primary key (segment, kind));
    """),
    Migration(6, "event log: events at gap-free positions (the SQLite log's columns)", """
        create table if not exists events (
            position bigint primary key, event_id text not null, event_type text not null, customer_id text not null,
            occurred_at_us bigint not null, recorded_at_us bigint not null, source text not null,
            schema_version integer not null, causation_id text, properties text not null, customer_hash bigint not null);
        create unique index if not exists ux_events_event_id on events (event_id);
    """),
    Migration(7, "creatives: the pictures of image variants, and weekly social calendars", """
        create table if not exists creative_images (
            variant_id text primary key, prompt text not null, media_type text not null, content bytea not null,
            sha256 text not null, width integer not null, height integer not null, disclosed integer not null);
        create table if not exists creative_calendar (
            week text not null, segment text not null, day text not null, channel text not null,
            post_time text not null, variant_id text not null, primary key (week, segment, day, channel));
    """),
    Migration(8, "channels: the message ledger (a claim per decision carried out, the provider's message id)", """
        create table if not exists channel_messages (
            decision_id text primary key, customer_id text not null, channel text not null, provider text not null,
            message_id text, outcome text, claimed_at_us bigint not null);
        create index if not exists channel_messages_by_message on channel_messages (provider, message_id);
    """),
)

LOCK_KEY = zlib.crc32(b"ame schema migrations")
"""The advisory lock that serializes migrators (any 64-bit number no other application on the server uses)."""


def migrate(conn: Any, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply the migrations missing from ``schema_version`` on ``conn`` (a psycopg connection in autocommit
    mode); returns the versions applied now (empty when the schema was current)."""
    applied: list[int] = []
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute("create table if not exists schema_version (version integer primary key,"
                     " description text not null, applied_at timestamptz not null default now())")
        done = {row[0] for row in conn.execute("select version from schema_version")}
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version in done:
                continue
            conn.execute(migration.sql)
            conn.execute("insert into schema_version (version, description) values (%s, %s)",
                         (migration.version, migration.description))
            applied.append(migration.version)
    return applied


def schema_version(conn: Any) -> int:
    """The newest migration applied on ``conn`` (0 before any)."""
    row = conn.execute("select coalesce(max(version), 0) from schema_version").fetchone()
    return int(row[0])
