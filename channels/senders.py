"""One sender per provider, each with the request and response shapes of the provider's real API.

A sender turns an :class:`OutboundMessage` into one HTTP request through the activation layer's transport
(:class:`~data.activation.transport.HttpTransport`: its token bucket, retries with backoff and ``Retry-After``) and
returns the provider's message id. A provider's refusal (4xx) raises :class:`~data.activation.errors.DestinationError`
with ``retryable=False``; running out of retries raises it with ``retryable=True``.

None of the three APIs takes an idempotency key on send, so the dispatcher's ledger (keyed by decision id) is
what keeps a redelivered decision from sending twice; each request still carries the decision id to the provider
(SendGrid ``custom_args``, FCM ``data``), so its webhooks name the decision too.
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from channels.config import FcmConfig, ProvidersConfig, SendGridConfig, TwilioConfig
from data.activation.errors import DestinationError
from data.activation.transport import HttpResponse, HttpTransport, raise_for_status

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


class ChannelNotConfigured(RuntimeError):
    """A message is due on a channel whose provider has no credentials; the message names the settings to set."""


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message to send: who to, what, and the decision it carries out (echoed back by the provider)."""

    decision_id: str
    customer_id: str
    to: str
    body: str
    subject: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)

    def tags(self) -> dict[str, str]:
        """What the provider echoes back in its webhooks: the decision and the customer, plus ``metadata``."""
        return {"decision_id": self.decision_id, "customer_id": self.customer_id, **self.metadata}


class Sender(Protocol):
    """Sends messages on one channel through one provider."""

    provider: ClassVar[str]
    channel: ClassVar[str]

    def send(self, message: OutboundMessage) -> str:
        """Send ``message``; returns the provider's message id."""
        ...


def _require(values: Mapping[str, str], provider: str) -> None:
    missing = [name for name, value in values.items() if not value]
    if missing:
        names = ", ".join(f"AME_CHANNELS_{name.upper()}" for name in missing)
        raise ChannelNotConfigured(f"{provider} is not configured: set {names}")


def _header(response: HttpResponse, name: str) -> str | None:
    return next((v for k, v in response.headers.items() if k.lower() == name.lower()), None)


class SendGridSender:
    """E-mail: ``POST {url}/v3/mail/send`` (bearer API key), answered ``202`` with the id in ``X-Message-Id``."""

    provider: ClassVar[str] = "sendgrid"
    channel: ClassVar[str] = "email"

    def __init__(self, config: SendGridConfig, transport: HttpTransport) -> None:
        _require({"sendgrid_api_key": config.api_key.get_secret_value(), "email_from": config.sender}, "SendGrid")
        self.config = config
        self.transport = transport

    def request_body(self, message: OutboundMessage) -> dict[str, Any]:
        return {
            "personalizations": [{"to": [{"email": message.to}], "custom_args": message.tags()}],
            "from": {"email": self.config.sender},
            "subject": message.subject,
            "content": [{"type": "text/plain", "value": message.body}],
        }

    def send(self, message: OutboundMessage) -> str:
        response = self.transport.request(
            "POST", f"{self.config.url.rstrip('/')}/v3/mail/send", json_body=self.request_body(message),
            headers={"Authorization": f"Bearer {self.config.api_key.get_secret_value()}"})
        raise_for_status(response, "SendGrid mail/send")
        message_id = _header(response, "X-Message-Id")
        if not message_id:
            raise DestinationError("SendGrid mail/send answered without an X-Message-Id header", status=response.status)
        return message_id


class TwilioSender:
    """SMS: ``POST {url}/2010-04-01/Accounts/{sid}/Messages.json``, form-encoded, basic auth (account SID, auth
    token); answered ``201`` with the message resource, whose ``sid`` is the id."""

    provider: ClassVar[str] = "twilio"
    channel: ClassVar[str] = "sms"

    def __init__(self, config: TwilioConfig, transport: HttpTransport) -> None:
        _require({"twilio_account_sid": config.account_sid, "twilio_auth_token": config.auth_token.get_secret_value(),
                  "sms_from": config.sender}, "Twilio")
        self.config = config
        self.transport = transport

    def form(self, message: OutboundMessage) -> dict[str, str]:
        sender = "MessagingServiceSid" if self.config.sender.startswith("MG") else "From"
        form = {"To": message.to, sender: self.config.sender, "Body": message.body}
        if self.config.status_callback:
            form["StatusCallback"] = self.config.status_callback
        return form

    def send(self, message: OutboundMessage) -> str:
        c = self.config
        auth = base64.b64encode(f"{c.account_sid}:{c.auth_token.get_secret_value()}".encode()).decode()
        response = self.transport.request(
            "POST", f"{c.url.rstrip('/')}/2010-04-01/Accounts/{urllib.parse.quote(c.account_sid)}/Messages.json",
            body=urllib.parse.urlencode(self.form(message)).encode(),
            headers={"Authorization": f"Basic {auth}", "Content-Type": "application/x-www-form-urlencoded"})
        raise_for_status(response, "Twilio Messages")
        sid = (response.json() or {}).get("sid")
        if not sid:
            raise DestinationError("Twilio Messages answered without a sid", status=response.status)
        return str(sid)


class FcmSender:
    """Push: ``POST {url}/v1/projects/{project}/messages:send`` (OAuth bearer token), answered with the message
    resource, whose ``name`` (``projects/{project}/messages/{id}``) is the id."""

    provider: ClassVar[str] = "fcm"
    channel: ClassVar[str] = "push"

    def __init__(self, config: FcmConfig, transport: HttpTransport) -> None:
        _require({"fcm_project": config.project}, "Firebase Cloud Messaging")
        self.config = config
        self.transport = transport
        self._credentials: Any = None

    def request_body(self, message: OutboundMessage) -> dict[str, Any]:
        return {"message": {"token": message.to, "notification": {"title": message.subject, "body": message.body},
                            "data": message.tags()}}

    def token(self) -> str:
        """The fixed token of the settings, else one from Application Default Credentials (refreshed when stale)."""
        fixed = self.config.access_token.get_secret_value()
        if fixed:
            return fixed
        import google.auth  # lazy: the Google auth stack is only needed with real credentials
        import google.auth.transport.requests

        if self._credentials is None:
            self._credentials, _ = google.auth.default(scopes=[FCM_SCOPE])
        if not self._credentials.valid:
            self._credentials.refresh(google.auth.transport.requests.Request())
        return str(self._credentials.token)

    def send(self, message: OutboundMessage) -> str:
        c = self.config
        response = self.transport.request(
            "POST", f"{c.url.rstrip('/')}/v1/projects/{urllib.parse.quote(c.project)}/messages:send",
            json_body=self.request_body(message), headers={"Authorization": f"Bearer {self.token()}"})
        raise_for_status(response, "FCM messages:send")
        name = (response.json() or {}).get("name")
        if not name:
            raise DestinationError("FCM messages:send answered without a message name", status=response.status)
        return str(name)


SENDERS: dict[str, type[SendGridSender] | type[TwilioSender] | type[FcmSender]] = {
    "email": SendGridSender, "sms": TwilioSender, "push": FcmSender}
"""The sender of each channel."""


def build_sender(channel: str, config: ProvidersConfig) -> Sender:
    """The sender of ``channel`` with its own transport (each provider has its own rate limit)."""
    cls = SENDERS.get(channel)
    if cls is None:
        raise ValueError(f"no sender for channel {channel!r}; known: {', '.join(SENDERS)}")
    transport = HttpTransport(config.retry, config.rate_limit)
    provider_config = getattr(config, cls.provider)
    return cls(provider_config, transport)  # type: ignore[arg-type]
