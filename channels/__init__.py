"""Channel senders: journey decisions carried out through e-mail (SendGrid), SMS (Twilio) and push (Firebase Cloud
Messaging), and the providers' webhooks turned back into events.

- :mod:`channels.config`: the providers' URLs and credentials (from ``AME_CHANNELS_*``), rate limits and retries.
- :mod:`channels.senders`: one sender per provider, with the provider's request and response shapes.
- :mod:`channels.ledger`: what was sent for which decision, under which provider message id.
- :mod:`channels.dispatcher`: the ``dispatch`` agent: re-checks the guardrails, sends, logs ``*_sent``.
- :mod:`channels.inbound`: the providers' webhook signatures, and their payloads as events.
"""
