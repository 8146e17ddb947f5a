"""PII for activation, hashed the way ad platforms require: normalized, then SHA-256 (hex).

The normalization is the activation area's (``data/activation/destinations/google_ads.py``), reused here
rather than copied: email trimmed and lower-cased, phone in E.164.
"""

from __future__ import annotations

from data.activation.destinations.google_ads import normalize_email, normalize_phone, sha256_hex


def hashed_email(value: str | None) -> str | None:
    """SHA-256 of the normalized email; None when it is not an email."""
    email = normalize_email(value) if value else None
    return sha256_hex(email) if email else None


def hashed_phone(value: str | None, default_country_code: str = "1") -> str | None:
    """SHA-256 of the E.164 phone; None when it cannot be a phone number."""
    phone = normalize_phone(value, default_country_code) if value else None
    return sha256_hex(phone) if phone else None


__all__ = ["hashed_email", "hashed_phone", "normalize_email", "normalize_phone", "sha256_hex"]
