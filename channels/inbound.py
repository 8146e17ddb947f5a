"""The providers' webhooks: each provider's signature, and its reports on messages turned into events.

- SendGrid's Signed Event Webhook: ECDSA (P-256, SHA-256) over ``timestamp + body``, the signature (base64 DER) in
  ``X-Twilio-Email-Event-Webhook-Signature`` and the timestamp in ``X-Twilio-Email-Event-Webhook-Timestamp``,
  checked with the verification key of SendGrid's mail settings.
- Twilio's status callback: ``X-Twilio-Signature``, base64 HMAC-SHA1 keyed by the auth token over the URL Twilio
  called followed by every form parameter, sorted by name, as name + value.
- Push: FCM has no delivery webhook, so the app reports receipts itself, signed like the engine's own webhooks:
  ``X-AME-Signature: sha256=<hex HMAC-SHA256 of "<X-AME-Timestamp>.<body>">`` with a shared secret.

A report names the provider's message id; the customer and the decision come from the
:class:`~channels.ledger.MessageLedger` entry written when the message was sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from channels.ledger import MessageLedger
from data.activation.destinations.webhook import sign
from data.events import EVENT_TYPES, EventBase, derive_event_id
from data.settings import Settings

Kind = Literal["delivered", "bounced", "opened", "clicked", "unsubscribed", "failed"]
SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
TWILIO_SIGNATURE = "X-Twilio-Signature"
APP_SIGNATURE = "X-AME-Signature"
APP_TIMESTAMP = "X-AME-Timestamp"
TWILIO_UNSUBSCRIBED = "21610"
"""Twilio's error code for a recipient who replied STOP."""


class WebhookError(Exception):
    """Base of the webhook errors; ``status`` is the HTTP status the API answers."""

    status = 400


class SignatureRefused(WebhookError):
    """The signature is missing, malformed, wrong or too old: nothing is appended."""

    status = 401


class WebhookNotConfigured(WebhookError):
    """The secret that verifies this provider is not set; the message names the setting."""

    status = 503


class UnknownProvider(WebhookError):
    status = 404


@dataclass(frozen=True, slots=True)
class Receipt:
    """One provider report on one message."""

    provider: str
    message_id: str
    kind: Kind
    key: str  # the provider's id of the report: a redelivered report has the same
    at: datetime | None = None
    decision_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WebhookSecrets:
    sendgrid_public_key: str = ""
    twilio_auth_token: str = ""
    push_secret: str = ""
    max_age_s: float = 600.0

    @staticmethod
    def of(settings: Settings) -> WebhookSecrets:
        return WebhookSecrets(settings.channels_sendgrid_webhook_public_key,
                              settings.channels_twilio_auth_token.get_secret_value(),
                              settings.channels_push_webhook_secret.get_secret_value(), settings.channels_webhook_max_age_s)


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """What a webhook's verification and parsing read of the HTTP request."""

    body: bytes
    headers: Mapping[str, str]
    url: str
    now: datetime

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


# ---- signatures -------------------------------------------------------------------------------------------


def _required(value: str, setting: str, provider: str) -> str:
    if not value:
        raise WebhookNotConfigured(f"the {provider} webhook cannot be verified: set AME_{setting.upper()}")
    return value


def _fresh(timestamp: str | None, request: WebhookRequest, max_age_s: float) -> None:
    try:
        age = request.now.timestamp() - float(timestamp or "")
    except ValueError:
        raise SignatureRefused("missing or malformed signature timestamp") from None
    if abs(age) > max_age_s:
        raise SignatureRefused(f"the signature's timestamp is {age:.0f}s away from now (limit {max_age_s:.0f}s)")


def verify_sendgrid(public_key_b64: str, request: WebhookRequest, max_age_s: float) -> None:
    """SendGrid's ECDSA signature over ``timestamp + body`` (raises :class:`SignatureRefused`)."""
    signature, timestamp = request.header(SENDGRID_SIGNATURE), request.header(SENDGRID_TIMESTAMP)
    if not signature or not timestamp:
        raise SignatureRefused(f"missing {SENDGRID_SIGNATURE} or {SENDGRID_TIMESTAMP}")
    key = load_der_public_key(base64.b64decode(public_key_b64))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise WebhookNotConfigured("AME_CHANNELS_SENDGRID_WEBHOOK_PUBLIC_KEY is not an elliptic-curve public key")
    try:
        key.verify(base64.b64decode(signature, validate=True), timestamp.encode() + request.body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise SignatureRefused("the SendGrid signature does not match the body") from None
    _fresh(timestamp, request, max_age_s)


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Base64 HMAC-SHA1 of the URL followed by each parameter (sorted by name, then value) as name + value."""
    data = url + "".join(k + v for k, v in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def verify_twilio(auth_token: str, request: WebhookRequest, params: Sequence[tuple[str, str]]) -> None:
    signature = request.header(TWILIO_SIGNATURE)
    if not signature or not hmac.compare_digest(signature, twilio_signature(auth_token, request.url, params)):
        raise SignatureRefused(f"missing or wrong {TWILIO_SIGNATURE} (is AME_CHANNELS_WEBHOOK_BASE_URL the URL Twilio calls?)")


def verify_app(secret: str, request: WebhookRequest, max_age_s: float) -> None:
    """The app's receipts: ``sha256=<hex>`` HMAC-SHA256 of ``timestamp.body`` (the engine's webhook signature)."""
    signature, timestamp = request.header(APP_SIGNATURE), request.header(APP_TIMESTAMP)
    if not signature or not timestamp or not hmac.compare_digest(signature, sign(secret, timestamp, request.body)):
        raise SignatureRefused(f"missing or wrong {APP_SIGNATURE}")
    _fresh(timestamp, request, max_age_s)


# ---- payloads ---------------------------------------------------------------------------------------------


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise WebhookError(f"the body is not JSON: {error}") from None


def _time(value: Any) -> datetime | None:
    return datetime.fromtimestamp(float(value), UTC) if isinstance(value, int | float) else None


SENDGRID_KINDS: dict[str, Kind] = {"delivered": "delivered", "bounce": "bounced", "dropped": "bounced",
                                   "open": "opened", "click": "clicked", "unsubscribe": "unsubscribed",
                                   "group_unsubscribe": "unsubscribed", "spamreport": "unsubscribed"}


def sendgrid_message_id(sg_message_id: str) -> str:
    """The ``X-Message-Id`` a report's ``sg_message_id`` starts with (``<id>.filter…``)."""
    return sg_message_id.split(".filter", 1)[0].split(".", 1)[0]


def parse_sendgrid(body: bytes) -> list[Receipt]:
    """SendGrid's batch (a JSON array of events); processed, deferred and other kinds are skipped."""
    items = _json(body)
    if not isinstance(items, list):
        raise WebhookError("a SendGrid Event Webhook body is a JSON array of events")
    out = []
    for item in items:
        kind = SENDGRID_KINDS.get(str(item.get("event"))) if isinstance(item, dict) else None
        if kind is None or not item.get("sg_message_id"):
            continue
        detail = {k: item[k] for k in ("url", "reason", "type") if item.get(k)}
        if item["event"] == "dropped":
            detail["type"] = "dropped"
        out.append(Receipt("sendgrid", sendgrid_message_id(str(item["sg_message_id"])), kind,
                           str(item.get("sg_event_id") or f"{item['sg_message_id']}:{item['event']}"),
                           _time(item.get("timestamp")), item.get("decision_id"), detail))
    return out


def parse_twilio(params: Sequence[tuple[str, str]]) -> list[Receipt]:
    """A status callback: delivered, or undelivered/failed (with its error code; 21610 is also an unsubscribe)."""
    form = dict(params)
    sid, status = form.get("MessageSid") or form.get("SmsSid"), form.get("MessageStatus") or form.get("SmsStatus")
    if not sid or not status:
        raise WebhookError("a Twilio status callback needs MessageSid and MessageStatus")
    code = form.get("ErrorCode") or None
    out = []
    if status == "delivered":
        out.append(Receipt("twilio", sid, "delivered", f"{sid}:delivered"))
    elif status in ("undelivered", "failed"):
        out.append(Receipt("twilio", sid, "failed", f"{sid}:{status}", detail={"status": status, "error_code": code}))
        if code == TWILIO_UNSUBSCRIBED:
            out.append(Receipt("twilio", sid, "unsubscribed", f"{sid}:unsubscribed"))
    return out


APP_KINDS: dict[str, Kind] = {"delivered": "delivered", "opened": "opened", "clicked": "opened",
                              "unsubscribed": "unsubscribed"}


def parse_app_receipts(body: bytes) -> list[Receipt]:
    """The app's push receipts: ``{"receipts": [{"decision_id" or "message_id", "event", "id", "timestamp"?}]}``;
    ``decision_id`` is in every message's ``data``, ``message_id`` is the ``name`` FCM answered the send with."""
    doc = _json(body)
    items = doc.get("receipts") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise WebhookError('push receipts are {"receipts": [{"decision_id", "event", "id"}]}')
    out = []
    for item in items:
        if (not isinstance(item, dict) or item.get("event") not in APP_KINDS
                or not (item.get("message_id") or item.get("decision_id"))):
            raise WebhookError(f"a push receipt needs decision_id or message_id, and an event of {', '.join(APP_KINDS)}:"
                               f" {item!r:.200}")
        message_id = str(item.get("message_id") or "")
        key = str(item.get("id") or f"{message_id or item['decision_id']}:{item['event']}")
        out.append(Receipt("fcm", message_id, APP_KINDS[item["event"]], key, _time(item.get("timestamp")),
                           item.get("decision_id")))
    return out


def read_receipts(provider: str, request: WebhookRequest, secrets: WebhookSecrets) -> list[Receipt]:
    """Verify ``request`` as ``provider``'s webhook and return its reports (raises a :class:`WebhookError`)."""
    if provider == "sendgrid":
        verify_sendgrid(_required(secrets.sendgrid_public_key, "channels_sendgrid_webhook_public_key", "SendGrid"),
                        request, secrets.max_age_s)
        return parse_sendgrid(request.body)
    if provider == "twilio":
        params = urllib.parse.parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        verify_twilio(_required(secrets.twilio_auth_token, "channels_twilio_auth_token", "Twilio"), request, params)
        return parse_twilio(params)
    if provider == "fcm":
        verify_app(_required(secrets.push_secret, "channels_push_webhook_secret", "push receipts"), request,
                   secrets.max_age_s)
        return parse_app_receipts(request.body)
    raise UnknownProvider(f"no webhook for provider {provider!r}; known: sendgrid, twilio, fcm")


# ---- events -----------------------------------------------------------------------------------------------

EVENT_OF: dict[tuple[str, Kind], str] = {
    ("email", "delivered"): "email_delivered", ("email", "bounced"): "email_bounced",
    ("email", "opened"): "email_open", ("email", "clicked"): "email_click", ("email", "unsubscribed"): "unsubscribe",
    ("sms", "delivered"): "sms_delivered", ("sms", "failed"): "sms_failed", ("sms", "unsubscribed"): "unsubscribe",
    ("push", "delivered"): "push_delivered", ("push", "opened"): "push_open", ("push", "unsubscribed"): "unsubscribe",
}
"""The event each report becomes, by the message's channel."""


def _properties(event_type: str, receipt: Receipt, channel: str, decision_id: str) -> dict[str, Any]:
    if event_type == "unsubscribe":
        return {"channel": channel, "reason": f"{receipt.provider} webhook"}
    props: dict[str, Any] = {"decision_id": decision_id, "provider_message_id": receipt.message_id or None}
    if event_type == "email_click" and receipt.detail.get("url"):
        props["url"] = str(receipt.detail["url"])[:2048]
    elif event_type == "email_bounced":
        props["kind"] = "blocked" if receipt.detail.get("type") == "blocked" else (
            "dropped" if receipt.detail.get("type") == "dropped" else "bounce")
        props["reason"] = str(receipt.detail.get("reason") or "")[:2048] or None
    elif event_type == "sms_failed":
        props.update(status=receipt.detail.get("status", "undelivered"), error_code=receipt.detail.get("error_code"))
    return props


def receipt_events(receipts: Sequence[Receipt], ledger: MessageLedger, now: datetime) -> tuple[list[EventBase], int]:
    """The events of ``receipts`` whose message the ledger knows, and how many it did not know (skipped)."""
    events: list[EventBase] = []
    unknown = 0
    for receipt in receipts:
        entry = ledger.by_message(receipt.provider, receipt.message_id) if receipt.message_id else None
        if entry is None and receipt.decision_id:
            entry = ledger.by_decision(str(receipt.decision_id))
        event_type = EVENT_OF.get((entry.channel, receipt.kind)) if entry is not None else None
        if entry is None or event_type is None:
            unknown += entry is None
            continue
        events.append(EVENT_TYPES[event_type].model_validate({
            "event_id": derive_event_id("webhook", receipt.provider, receipt.key, event_type),
            "customer_id": entry.customer_id, "occurred_at": receipt.at or now, "source": f"webhook:{receipt.provider}",
            "causation_id": entry.decision_id,
            "properties": _properties(event_type, receipt, entry.channel, entry.decision_id)}))
    return events, unknown
