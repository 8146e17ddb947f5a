"""Which event properties are personal data (PII), per event type, and how an erased value reads.

The registry is the one list the log's encryption, erasure, export and the tests share. A field listed here is
stored encrypted with its customer's key; every other property is stored as given, so PII must only be sent in
these fields (``properties.context`` is for non-personal extras such as UTM tags).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

PII_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType({
    "lead_created": frozenset({"email", "first_name", "last_name", "company", "phone", "push_token"}),
    "identity_merged": frozenset({"identifiers"}),  # kind:value strings (email:ann@example.com)
})
"""Event type -> the properties that hold personal data (a string, or a list of strings)."""

PII_EVENT_TYPES: frozenset[str] = frozenset(PII_FIELDS)
TOKEN_PREFIX = "enc:v1:"
"""Stored form of an encrypted value: ``enc:v1:`` + base64url(nonce ‖ AES-GCM ciphertext ‖ tag)."""
ERASED = "[erased]"
"""How an erased value reads in exports; the log's readers and the warehouse see JSON null instead, so an
erased email can never link two erased customers in identity resolution."""


def pii_fields(event_type: str) -> frozenset[str]:
    """The personal-data properties of an event type (empty for most types)."""
    return PII_FIELDS.get(event_type, frozenset())
