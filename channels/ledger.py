"""The message ledger: for each decision carried out, the provider, its message id and the customer, in the state
store (``AME_STATE_STORE``: SQLite or PostgreSQL, shared by the dispatcher and the decision API).

It is what makes sending idempotent (a decision is claimed before its request goes out, so a redelivered decision
finds its claim and is not sent again) and what the webhooks resolve a provider's message id with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from data.projections.store import StateStore, open_state_store

# SQLite's table; on PostgreSQL the migrations made it (data/postgres_migrations.py).
_SCHEMA = (
    "create table if not exists channel_messages (decision_id text primary key, customer_id text not null,"
    " channel text not null, provider text not null, message_id text, outcome text, claimed_at_us bigint not null)",
    "create index if not exists channel_messages_by_message on channel_messages (provider, message_id)",
)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    decision_id: str
    customer_id: str
    channel: str
    provider: str
    message_id: str | None
    outcome: str | None
    """``sent``, the reason it was suppressed, or None while the request is out (or was cut off by a crash: then
    whether it was sent is unknown)."""


class MessageLedger:
    """The ``channel_messages`` table of a state store.

    :param store: the state store (the decision API's, or one opened from a URL with :meth:`from_url`).
    """

    def __init__(self, store: StateStore) -> None:
        self.store = store
        if store.dialect == "sqlite":
            with store.transaction() as conn:
                for statement in _SCHEMA:
                    conn.execute(statement)

    @classmethod
    def from_url(cls, url: str | None = None) -> MessageLedger:
        """The ledger in the state store at ``url`` (default: ``AME_STATE_STORE``)."""
        return cls(open_state_store(url))

    def claim(self, decision_id: str, customer_id: str, channel: str, provider: str) -> bool:
        """Claim ``decision_id`` before carrying it out: False when it was claimed before (look it up with
        :meth:`by_decision`; never send it again)."""
        with self.store.transaction() as conn:
            done = conn.execute("select 1 from channel_messages where decision_id = ?", (decision_id,)).fetchone()
            if done is not None:
                return False
            conn.execute("insert into channel_messages (decision_id, customer_id, channel, provider, message_id, outcome,"
                         " claimed_at_us) values (?, ?, ?, ?, null, null, ?)",
                         (decision_id, customer_id, channel, provider, int(time.time() * 1e6)))
        return True

    def settle(self, decision_id: str, outcome: str, message_id: str | None = None) -> None:
        """Record how a claimed decision ended: ``sent`` with the provider's message id, or why it was not sent."""
        with self.store.transaction() as conn:
            conn.execute("update channel_messages set outcome = ?, message_id = ? where decision_id = ?",
                         (outcome, message_id, decision_id))

    def release(self, decision_id: str) -> None:
        """Drop an unsettled claim whose request certainly did not go out (every retry failed): it may be sent later."""
        with self.store.transaction() as conn:
            conn.execute("delete from channel_messages where decision_id = ? and outcome is null", (decision_id,))

    def by_message(self, provider: str, message_id: str) -> LedgerEntry | None:
        """The entry of a provider's message id (what a webhook names)."""
        with self.store.reading() as conn:
            row = conn.execute("select decision_id, customer_id, channel, provider, message_id, outcome from channel_messages"
                               " where provider = ? and message_id = ?", (provider, message_id)).fetchone()
        return None if row is None else LedgerEntry(*row)

    def by_decision(self, decision_id: str) -> LedgerEntry | None:
        with self.store.reading() as conn:
            row = conn.execute("select decision_id, customer_id, channel, provider, message_id, outcome from channel_messages"
                               " where decision_id = ?", (decision_id,)).fetchone()
        return None if row is None else LedgerEntry(*row)

    def close(self) -> None:
        self.store.close()
