"""The webhooks' signatures against the providers' published examples, and the reports' mapping to events."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from channels.inbound import (
    SignatureRefused,
    UnknownProvider,
    WebhookError,
    WebhookNotConfigured,
    WebhookRequest,
    WebhookSecrets,
    parse_app_receipts,
    parse_sendgrid,
    parse_twilio,
    read_receipts,
    sendgrid_message_id,
    twilio_signature,
)
from data.activation.destinations.webhook import sign

# SendGrid's example (its Event Webhook helper's tests): key, payload, signature and timestamp
SENDGRID_KEY = ("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlv"
                "FYPAZFceEu/1FwCM/QmGUhA==")
SENDGRID_SIGNATURE = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0="
SENDGRID_TIMESTAMP = "1588788367"
SENDGRID_PAYLOAD = b'{"category":"example_payload","event":"test_event","message_id":"message_id"}'
# Twilio's example (its request-validation docs)
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+14158675309"), ("Digits", "1234"),
                 ("From", "+14158675309"), ("To", "+18005551212")]
TWILIO_EXPECTED = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def request(body: bytes, headers: dict[str, str], at: float, url: str = "https://engine.example/v1/webhooks/x") -> WebhookRequest:
    return WebhookRequest(body, headers, url, datetime.fromtimestamp(at, UTC))


def test_sendgrids_published_signature_verifies_and_a_changed_byte_does_not() -> None:
    secrets = WebhookSecrets(sendgrid_public_key=SENDGRID_KEY, max_age_s=600)
    headers = {"x-twilio-email-event-webhook-signature": SENDGRID_SIGNATURE,
               "x-twilio-email-event-webhook-timestamp": SENDGRID_TIMESTAMP}
    with pytest.raises(WebhookError, match="JSON array"):  # verified, then parsed: SendGrid posts an array
        read_receipts("sendgrid", request(SENDGRID_PAYLOAD, headers, 1588788367 + 5), secrets)
    with pytest.raises(SignatureRefused, match="does not match"):
        read_receipts("sendgrid", request(SENDGRID_PAYLOAD.replace(b"test", b"best"), headers, 1588788367), secrets)
    with pytest.raises(SignatureRefused, match="away from now"):  # a replay hours later
        read_receipts("sendgrid", request(SENDGRID_PAYLOAD, headers, 1588788367 + 7200), secrets)
    with pytest.raises(WebhookNotConfigured, match="AME_CHANNELS_SENDGRID_WEBHOOK_PUBLIC_KEY"):
        read_receipts("sendgrid", request(SENDGRID_PAYLOAD, headers, 1588788367), WebhookSecrets())


def test_twilios_published_signature() -> None:
    assert twilio_signature("12345", TWILIO_URL, TWILIO_PARAMS) == TWILIO_EXPECTED
    assert twilio_signature("12345", TWILIO_URL, reversed(TWILIO_PARAMS)) == TWILIO_EXPECTED
    assert twilio_signature("12345", TWILIO_URL.replace("bar=2", "bar=3"), TWILIO_PARAMS) != TWILIO_EXPECTED


def test_a_twilio_status_callback_is_read_once_its_signature_holds() -> None:
    form = [("MessageSid", "SM1"), ("MessageStatus", "undelivered"), ("ErrorCode", "21610"), ("AccountSid", "AC1")]
    body = "&".join(f"{k}={v}" for k, v in form).encode()
    url = "https://engine.example/v1/webhooks/twilio"
    good = {"X-Twilio-Signature": twilio_signature("tok", url, form)}
    receipts = read_receipts("twilio", request(body, good, 0, url), WebhookSecrets(twilio_auth_token="tok"))
    assert [(r.message_id, r.kind) for r in receipts] == [("SM1", "failed"), ("SM1", "unsubscribed")]
    with pytest.raises(SignatureRefused):
        read_receipts("twilio", request(body, {"X-Twilio-Signature": "forged"}, 0, url), WebhookSecrets(twilio_auth_token="tok"))
    with pytest.raises(SignatureRefused):  # signed for another URL
        read_receipts("twilio", request(body, good, 0, url + "?x=1"), WebhookSecrets(twilio_auth_token="tok"))


def test_the_apps_push_receipts_are_signed_with_the_shared_secret() -> None:
    body = b'{"receipts": [{"message_id": "projects/p/messages/0:1", "event": "opened", "id": "r1"}]}'
    now = 1_800_000_000
    headers = {"X-AME-Timestamp": str(now), "X-AME-Signature": sign("s3cret", str(now), body)}
    [receipt] = read_receipts("fcm", request(body, headers, now), WebhookSecrets(push_secret="s3cret"))
    assert (receipt.message_id, receipt.kind, receipt.key) == ("projects/p/messages/0:1", "opened", "r1")
    with pytest.raises(SignatureRefused):
        read_receipts("fcm", request(body, headers, now), WebhookSecrets(push_secret="other"))
    with pytest.raises(UnknownProvider):
        read_receipts("mailchimp", request(body, headers, now), WebhookSecrets())


def test_provider_reports_map_to_kinds() -> None:
    assert sendgrid_message_id("14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0") == "14c5d75ce93"
    assert sendgrid_message_id("W86EgYT6SQKk0lRflfLRsA.filter0425p1las1-1626-5B0E1B05-2B.0") == "W86EgYT6SQKk0lRflfLRsA"
    events = [{"event": e, "sg_message_id": "m.filter1", "sg_event_id": e} for e in
              ("processed", "deferred", "delivered", "bounce", "dropped", "open", "click", "unsubscribe", "spamreport")]
    kinds = [r.kind for r in parse_sendgrid(orjson.dumps(events))]
    assert kinds == ["delivered", "bounced", "bounced", "opened", "clicked", "unsubscribed", "unsubscribed"]
    assert parse_twilio([("MessageSid", "SM1"), ("MessageStatus", "sent")]) == []
    with pytest.raises(WebhookError, match="MessageSid"):
        parse_twilio([("MessageStatus", "delivered")])
    with pytest.raises(WebhookError, match="decision_id or message_id"):
        parse_app_receipts(b'{"receipts": [{"event": "opened"}]}')
