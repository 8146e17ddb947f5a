"""API keys with scopes, stored hashed.

A key is a random token (``ame_`` + 32 url-safe bytes) shown once when it is made; the store keeps only its
SHA-256 (a slow password hash buys nothing for 256-bit random tokens, and would cost every request). Scopes:
``ingest`` (POST /v1/events), ``decide`` (reads and decisions), ``approve`` (the creative review page and its
approvals), ``admin`` (everything). A request without a
known key answers 401; a known key without the route's scope answers 403.

The key file is JSON: ``{"keys": [{"name": "crm", "sha256": "<hex>", "scopes": ["ingest"]}]}``
(``ame serve keys new NAME --scope ingest`` prints a key and the line to add).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

Scope = Literal["ingest", "decide", "approve", "admin"]
SCOPES: tuple[str, ...] = ("ingest", "decide", "approve", "admin")


class AuthError(Exception):
    """Base of the authentication errors; ``status`` is the HTTP status to answer."""

    status: int = 401


class Unauthorized(AuthError):
    status = 401


class Forbidden(AuthError):
    status = 403


class ApiKey(BaseModel):
    """One stored key: a name, the SHA-256 of the token, its scopes."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: frozenset[Scope] = Field(min_length=1)

    @field_validator("scopes", mode="before")
    @classmethod
    def _listed(cls, value: object) -> object:
        return frozenset(value) if isinstance(value, (list, tuple, set)) else value


def hash_key(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def generate_key(name: str, scopes: Iterable[str]) -> tuple[str, ApiKey]:
    """A new token (to hand to the caller once) and its stored, hashed entry."""
    token = "ame_" + secrets.token_urlsafe(32)
    return token, ApiKey(name=name, sha256=hash_key(token), scopes=frozenset(scopes))  # type: ignore[arg-type]


class KeyStore:
    """Looks tokens up by their hash and checks the scope a route needs."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._by_hash = {k.sha256: k for k in keys}

    def __len__(self) -> int:
        return len(self._by_hash)

    def __iter__(self) -> Iterator[ApiKey]:
        return iter(self._by_hash.values())

    @classmethod
    def from_file(cls, path: str | Path) -> KeyStore:
        """Read the JSON key file (see the module docstring)."""
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(
                f"API key file {file} not found: create it with `ame serve keys new NAME --scope decide --file {file}`"
            )
        data = orjson.loads(file.read_bytes())
        return cls(ApiKey.model_validate(k) for k in data.get("keys", []))

    def authenticate(self, token: str | None, scope: str) -> ApiKey:
        """The key for ``token`` if it holds ``scope`` (or admin); raises Unauthorized or Forbidden."""
        if not token:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
        digest = hash_key(token)
        key = self._by_hash.get(digest)
        if key is None or not hmac.compare_digest(key.sha256, digest):
            raise Unauthorized("unknown API key")
        if scope not in key.scopes and "admin" not in key.scopes:
            raise Forbidden(f"API key {key.name!r} lacks the {scope!r} scope (it has: {', '.join(sorted(key.scopes))})")
        return key


def token_of(authorization: str | None, x_api_key: str | None) -> str | None:
    """The token from ``Authorization: Bearer ...`` or ``X-API-Key``."""
    if x_api_key:
        return x_api_key.strip()
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None
