"""Who may be sent to a destination: not an erased customer, and only with the consent the destination's use needs.

Consent is read where the engine keeps it, the customer profiles in the state store (the latest ``consent_changed``
or ``unsubscribe`` per channel), and erasures from the log's key store (the customers ``ame privacy erase`` erased).
The rule is the engine's own: e-mail, SMS and push need consent that was given and not withdrawn since; ads are
refused only where the customer withdrew ``ad`` consent (as ``/v1/bid`` does).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from data.privacy.keystore import PiiKeyStore, open_key_store
from data.projections.profile import ProfileProjection
from data.projections.store import StateStore, open_state_store


class AudienceGate(Protocol):
    """What decides who may be sent."""

    def erased(self, keys: Collection[str]) -> set[str]:
        """The keys whose customer was erased."""
        ...

    def consent(self, keys: Collection[str], channel: str) -> dict[str, bool | None]:
        """Each key's latest consent statement on ``channel`` (None: never stated; absent keys: never stated)."""
        ...


def consent_allows(channel: str, stated: bool | None) -> bool:
    """Whether a customer whose latest statement on ``channel`` is ``stated`` may be sent for that channel."""
    return stated is not False if channel == "ad" else stated is True


def blocked(gate: AudienceGate, keys: Collection[str], channel: str | None) -> tuple[set[str], set[str]]:
    """(erased keys, keys without the consent ``channel`` needs) among ``keys``; no channel: no consent check."""
    erased = gate.erased(keys)
    if channel is None:
        return erased, set()
    rest = [k for k in keys if k not in erased]
    stated = gate.consent(rest, channel)
    return erased, {k for k in rest if not consent_allows(channel, stated.get(k))}


class EngineGate:
    """Consent from the profile projection of the state store, erasures from the log's key store.

    :param state: the state store (``AME_STATE_STORE``), which the profile projection fills.
    :param keys: the key store of the event log.
    """

    def __init__(self, state: StateStore, keys: PiiKeyStore) -> None:
        self.state = state
        self.keys = keys
        with self.state.transaction() as conn:
            ProfileProjection().create_tables(conn)  # no projection yet: nobody has stated consent

    @classmethod
    def from_urls(cls, state_url: str, log_url: str) -> EngineGate:
        """The gate over the state store at ``state_url`` and the key store of the log at ``log_url``."""
        return cls(open_state_store(state_url), open_key_store(log_url))

    def erased(self, keys: Collection[str]) -> set[str]:
        return self.keys.erased_customers() & set(keys)

    def consent(self, keys: Collection[str], channel: str) -> dict[str, bool | None]:
        with self.state.reading() as conn:
            profiles = ProfileProjection().load(conn, keys)
        return {key: profile.consent_for(channel) for key, profile in profiles.items()}

    def close(self) -> None:
        self.state.close()
        self.keys.close()
