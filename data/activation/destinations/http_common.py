"""Helpers shared by the HTTP destinations: secrets from the environment, per-row error collection."""

from __future__ import annotations

import os

from data.activation.errors import MissingSecret


def secret(env_name: str, what: str) -> str:
    """The value of ``env_name``; a :class:`MissingSecret` naming the variable when it is unset."""
    value = os.environ.get(env_name, "")
    if not value:
        raise MissingSecret(f"{what} needs a credential: set the environment variable {env_name}")
    return value
