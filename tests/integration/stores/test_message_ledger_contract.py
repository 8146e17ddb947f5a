"""The channels' message ledger, run over every state store backend (``sqlite`` and ``postgresql``): a decision is
claimed once, settles with the provider's message id or a reason, and is found again by message id from another
connection (what the decision API's webhooks do)."""

from __future__ import annotations

from channels.ledger import MessageLedger


def test_a_decision_is_claimed_once_and_found_by_its_message_id(store_url: str) -> None:
    ledger = MessageLedger.from_url(store_url)
    assert ledger.claim("d1", "c1", "email", "sendgrid")
    assert not ledger.claim("d1", "c1", "email", "sendgrid")  # a redelivered decision
    assert ledger.by_decision("d1").outcome is None  # type: ignore[union-attr]
    ledger.settle("d1", "sent", "msg-1")
    assert ledger.claim("d2", "c2", "sms", "twilio")
    ledger.release("d2")  # every retry failed: it may be claimed again
    assert ledger.claim("d2", "c2", "sms", "twilio")
    ledger.settle("d2", "rejected")
    ledger.release("d2")  # a settled claim stays
    ledger.close()
    webhooks = MessageLedger.from_url(store_url)
    entry = webhooks.by_message("sendgrid", "msg-1")
    assert entry is not None and (entry.decision_id, entry.customer_id, entry.channel) == ("d1", "c1", "email")
    assert webhooks.by_message("twilio", "msg-1") is None
    assert webhooks.by_decision("d2").outcome == "rejected"  # type: ignore[union-attr]
    webhooks.close()
