"""Identity resolution: which logged ids are one customer.

Events carry identifiers besides the id they were logged under: an anonymous web or app id
(``properties.anonymous_id``), an email (``lead_created``), a CRM contact id (``properties.context.crm_contact_id``
of ``lead_created``). Two ids that share an identifier are one customer, and so is every id an
``identity_merged`` event names. The customers are the connected components of the graph of ids and identifiers.

The canonical id of a component is the id of its earliest ``lead_created`` event (ties: the smaller id); a
component with no lead keeps its smallest id. The warehouse model ``intermediate_identity`` computes the
same mapping in SQL; the profile projection calls :func:`resolve_identities` over the links it folded with
:func:`identity_links`. A change of mapping is recorded as ``identity_merged`` events
(:func:`identity_merged_events`), with deterministic ids, so a replay re-derives the same history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from data.events import IdentityMerged, derive_event_id


@dataclass(frozen=True, slots=True)
class IdentityLink:
    """``customer_id`` carries ``identifier`` (written ``kind:value``, e.g. ``email:ann@example.com``)."""

    customer_id: str
    identifier: str


def identity_links(event_type: str, customer_id: str, properties: Mapping[str, Any]) -> list[IdentityLink]:
    """The links one event contributes (the same rules as the SQL model's ``links``).

    :param event_type: the event's type.
    :param customer_id: the id the event was logged under.
    :param properties: the event's properties, as a dict.
    """
    links = [IdentityLink(customer_id, f"customer_id:{customer_id}")]
    anonymous_id = properties.get("anonymous_id")
    if anonymous_id:
        links.append(IdentityLink(customer_id, f"anonymous_id:{anonymous_id}"))
    if event_type == "lead_created":
        email = properties.get("email")
        if email:
            links.append(IdentityLink(customer_id, f"email:{str(email).lower()}"))
        crm = (properties.get("context") or {}).get("crm_contact_id")
        if crm:
            links.append(IdentityLink(customer_id, f"crm_contact_id:{crm}"))
    elif event_type == "identity_merged":
        for merged in properties.get("merged_ids") or ():
            links.append(IdentityLink(str(merged), f"customer_id:{customer_id}"))
    return links


def connected_components(left: np.ndarray, right: np.ndarray, n: int) -> np.ndarray:
    """Component label (the smallest node index) of each of ``n`` nodes, given edges ``left[i]``–``right[i]``.

    Vectorized min-label propagation with pointer jumping: each round takes the minimum label across every
    edge, then follows labels to their own labels; it stops when nothing changes.
    """
    labels = np.arange(n, dtype=np.int64)
    if len(left) == 0:
        return labels
    while True:
        low = np.minimum(labels[left], labels[right])
        updated = labels.copy()
        np.minimum.at(updated, left, low)
        np.minimum.at(updated, right, low)
        while True:  # pointer jumping: a label's label is also a label of the component
            jumped = updated[updated]
            if np.array_equal(jumped, updated):
                break
            updated = jumped
        if np.array_equal(updated, labels):
            return labels
        labels = updated


def resolve_identities(links: Iterable[IdentityLink], lead_created_at: Mapping[str, datetime | int]) -> dict[str, str]:
    """Every customer_id in ``links`` → its canonical customer_id.

    :param links: the links of the events folded so far (see :func:`identity_links`).
    :param lead_created_at: the first ``lead_created`` time of each id that filled in a form.
    """
    pairs = list(links)
    if not pairs:
        return {}
    customers, customer_idx = np.unique(np.array([p.customer_id for p in pairs], dtype=object), return_inverse=True)
    identifiers, identifier_idx = np.unique(np.array([p.identifier for p in pairs], dtype=object), return_inverse=True)
    n_customers = len(customers)
    labels = connected_components(customer_idx, identifier_idx + n_customers, n_customers + len(identifiers))
    component = labels[:n_customers]
    canonical: dict[int, tuple[int, Any, str]] = {}
    for customer, comp in zip(customers, component, strict=True):
        created = lead_created_at.get(customer)
        key = (0, _sortable(created), customer) if created is not None else (1, 0, customer)
        if comp not in canonical or key < canonical[comp]:
            canonical[comp] = key
    return {customer: canonical[comp][2] for customer, comp in zip(customers, component, strict=True)}


def _sortable(moment: datetime | int) -> float:
    return moment.timestamp() if isinstance(moment, datetime) else float(moment)


def identity_merged_events(
    before: Mapping[str, str], after: Mapping[str, str], occurred_at: datetime, source: str = "identity"
) -> list[IdentityMerged]:
    """The ``identity_merged`` events that take mapping ``before`` to mapping ``after``.

    One event per canonical id that gained ids; its id is derived from the canonical id and the merged ids, so
    computing it again (a replay) gives the same event, which the log stores once.
    """
    gained: dict[str, list[str]] = {}
    for customer, canonical in after.items():
        if customer != canonical and before.get(customer, customer) != canonical:
            gained.setdefault(canonical, []).append(customer)
    events = []
    for canonical, merged in sorted(gained.items()):
        merged = sorted(merged)
        events.append(IdentityMerged(
            event_id=derive_event_id("identity_merged", canonical, *merged),
            customer_id=canonical,
            occurred_at=occurred_at,
            source=source,
            properties={"merged_ids": merged},
        ))
    return events
