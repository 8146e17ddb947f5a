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
from data.activation.transport import HttpTransport

__all__ = ["BatchOutcome", "Destination", "Operation", "Record", "RunInfo", "build_destination"]


def build_destination(sync: SyncConfig, transport: HttpTransport) -> Destination:
    """The destination of ``sync``; credentials are read from the environment here, not at import."""
    d = sync.destination
    if isinstance(d, WebhookDestination):
        from data.activation.destinations.webhook import Webhook

        return Webhook(d, transport)
    if isinstance(d, FileDestination):
        from data.activation.destinations.files import FileSink

        return FileSink(d)
    if isinstance(d, SalesforceDestination):
        from data.activation.destinations.salesforce import Salesforce

        return Salesforce(d, transport)
    if isinstance(d, HubSpotDestination):
        from data.activation.destinations.hubspot import HubSpot

        return HubSpot(d, transport)
    if isinstance(d, BrazeDestination):
        from data.activation.destinations.braze import Braze

        return Braze(d, transport)
    if isinstance(d, GoogleAdsDestination):
        from data.activation.destinations.google_ads import GoogleAdsCustomerMatch

        return GoogleAdsCustomerMatch(d, transport)
    raise TypeError(f"no destination for {type(d).__name__}")
