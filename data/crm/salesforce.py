"""A small Salesforce REST client: OAuth 2.0 client credentials, upsert by external id, SOQL queries with paging.

Requests go through the activation layer's :class:`~data.activation.transport.HttpTransport`, so they share its
rate limit and its retries (429, 5xx and network errors, with backoff and ``Retry-After``). An expired session
(401) fetches a new token once and repeats the request.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from data.activation.config import RateLimit, RetryPolicy
from data.activation.errors import DestinationError
from data.activation.transport import HttpResponse, HttpTransport
from data.settings import Settings, get_settings

log = logging.getLogger(__name__)


class CrmError(RuntimeError):
    """The CRM refused a request or cannot be reached; the message says which and how to fix it."""


class CrmNotConfigured(CrmError):
    """The Salesforce settings are missing."""


@dataclass(frozen=True, slots=True)
class SalesforceConfig:
    """Where the org is and how to sign in (a connected app with the client credentials flow)."""

    url: str
    client_id: str
    client_secret: str
    api_version: str = "v62.0"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limit: RateLimit = field(default_factory=RateLimit)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> SalesforceConfig:
        """The configuration of ``AME_SALESFORCE_*``; :class:`CrmNotConfigured` names what is missing."""
        s = settings or get_settings()
        missing = [f"AME_{n.upper()}" for n in ("salesforce_url", "salesforce_client_id", "salesforce_client_secret")
                   if not getattr(s, n)]
        if missing:
            raise CrmNotConfigured(f"the CRM loop needs {', '.join(missing)} (see docs/how-to/connect-salesforce.md)")
        return cls(s.salesforce_url.rstrip("/"), s.salesforce_client_id, s.salesforce_client_secret, s.salesforce_api_version)


@dataclass(frozen=True, slots=True)
class UpsertResult:
    record_id: str
    created: bool


class SalesforceClient:
    """One org's REST API. Not thread-safe: one client per thread or actor.

    :param config: the org and the connected app.
    :param transport: the HTTP transport (default: one with the config's retry policy and rate limit).
    """

    def __init__(self, config: SalesforceConfig, transport: HttpTransport | None = None) -> None:
        self.config = config
        self.transport = transport or HttpTransport(config.retry, config.rate_limit)
        self._token: str | None = None
        self._instance_url = config.url

    def _sign_in(self) -> None:
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": self.config.client_id,
                                       "client_secret": self.config.client_secret}).encode()
        response = self._send("POST", f"{self.config.url}/services/oauth2/token", body=form,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        if response.status != 200:
            raise CrmError(f"Salesforce sign-in failed: HTTP {response.status} {_text(response)} "
                           "(check AME_SALESFORCE_CLIENT_ID / _SECRET and that the connected app allows the client credentials flow)")
        payload = response.json()
        self._token = payload["access_token"]
        self._instance_url = payload.get("instance_url", self.config.url).rstrip("/")

    def _send(self, method: str, url: str, **kwargs: Any) -> HttpResponse:
        try:
            return self.transport.request(method, url, **kwargs)
        except DestinationError as error:
            raise CrmError(f"Salesforce unreachable: {error}") from None

    def request(self, method: str, path: str, json_body: Any = None) -> HttpResponse:
        """An authorized request to ``path`` (from ``/services/…``), signing in first, and again once on a 401."""
        response = self._authorized(method, path, json_body)
        if response.status == 401:  # the session expired
            self._token = None
            response = self._authorized(method, path, json_body)
        return response

    def _authorized(self, method: str, path: str, json_body: Any) -> HttpResponse:
        if self._token is None:
            self._sign_in()
        return self._send(method, self._instance_url + path, json_body=json_body, headers={"Authorization": f"Bearer {self._token}"})

    def _data(self, rest: str) -> str:
        return f"/services/data/{self.config.api_version}/{rest}"

    def upsert(self, sobject: str, external_field: str, external_id: str, fields: Mapping[str, Any]) -> UpsertResult:
        """Create or update the record whose ``external_field`` is ``external_id`` (idempotent)."""
        quoted = urllib.parse.quote(external_id, safe="")
        response = self.request("PATCH", self._data(f"sobjects/{sobject}/{external_field}/{quoted}"), dict(fields))
        if response.status not in (200, 201):
            raise CrmError(f"Salesforce refused the {sobject} upsert {external_field}={external_id!r}: HTTP {response.status} "
                           f"{_text(response)}")
        body = response.json() or {}
        return UpsertResult(str(body["id"]), bool(body.get("created", response.status == 201)))

    def query(self, soql: str) -> Iterator[dict[str, Any]]:
        """Every record of a SOQL query, following ``nextRecordsUrl`` page by page."""
        path: str | None = self._data("query?" + urllib.parse.urlencode({"q": soql}))
        while path:
            response = self.request("GET", path)
            if response.status != 200:
                raise CrmError(f"Salesforce refused the query {soql!r}: HTTP {response.status} {_text(response)}")
            page = response.json()
            yield from page.get("records", [])
            path = None if page.get("done", True) else page.get("nextRecordsUrl")


def _text(response: HttpResponse) -> str:
    return response.body[:300].decode("utf-8", "replace")
