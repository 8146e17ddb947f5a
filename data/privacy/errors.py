"""The privacy area's errors."""

from __future__ import annotations


class PrivacyError(RuntimeError):
    """Base of the privacy errors."""


class KeyStoreUnavailable(PrivacyError):
    """The key store cannot be opened."""


class UnsupportedForErasure(PrivacyError):
    """A backend that erasure cannot reach yet."""
