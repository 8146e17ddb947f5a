"""What ``ame infra init`` reports: one :class:`Row` per resource, from one :class:`Provisioner` per backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Status = Literal["created", "exists", "would create", "embedded", "failed"]


class InfraUnavailable(RuntimeError):
    """A backend cannot be reached, or refused to create a resource."""


@dataclass(frozen=True, slots=True)
class Row:
    """One resource and what became of it."""

    kind: str
    name: str
    where: str
    status: Status
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Consumer:
    """A subscription on the events topic: ``<topic>-<name>``, filtered to ``event_types`` (None: every event)."""

    name: str
    event_types: tuple[str, ...] | None = None


class Provisioner(Protocol):
    """One backend's resources."""

    label: str
    where: str

    def ensure(self, dry_run: bool) -> list[Row]:
        """Create what is missing (``dry_run``: only report it) and report every resource."""
        ...


def unreachable(what: str, where: str, error: Exception) -> InfraUnavailable:
    return InfraUnavailable(f"cannot reach {what} at {where}: {error}")


def outcome(exists: bool, dry_run: bool) -> Status:
    """A resource's status: it was there, or it is (or would be) created now."""
    return "exists" if exists else "would create" if dry_run else "created"
