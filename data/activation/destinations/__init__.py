"""Destinations of the activation syncs, behind one Protocol (:class:`~data.activation.destinations.base.Destination`)."""

from __future__ import annotations

from data.activation.config import (
    BrazeDestination,
    FileDestination,
    GoogleAdsDestination,
    HubSpotDestination,
    SalesforceDestination,
    SyncConfig,
    WebhookDestination,
)
from data.activation.destinations.base import (
    BatchOutcome,
    Destination,
    Operation,
    Record,
    RunInfo,
)
from data.activation.destinations.braze import Braze
from data.activation.destinations.files import FileSink
from data.activation.destinations.google_ads import GoogleAdsCustomerMatch
from data.activation.destinations.hubspot import HubSpot
from data.activation.destinations.salesforce import Salesforce
from data.activation.destinations.webhook import Webhook
from data.activation.transport import HttpTransport

__all__ = ["BatchOutcome", "Destination", "Operation", "Record", "RunInfo", "build_destination"]


def build_destination(sync: SyncConfig, transport: HttpTransport) -> Destination:
    """The destination of ``sync``; credentials are read from the environment here, not at import."""
    d = sync.destination
    if isinstance(d, WebhookDestination):
        return Webhook(d, transport)
    if isinstance(d, FileDestination):
        return FileSink(d)
    if isinstance(d, SalesforceDestination):
        return Salesforce(d, transport)
    if isinstance(d, HubSpotDestination):
        return HubSpot(d, transport)
    if isinstance(d, BrazeDestination):
        return Braze(d, transport)
    if isinstance(d, GoogleAdsDestination):
        return GoogleAdsCustomerMatch(d, transport)
    raise TypeError(f"no destination for {type(d).__name__}")
