"""A generic webhook: JSON batches, optionally signed with HMAC-SHA256.

Request: ``POST url`` with body ``{"sync", "run_id", "batch", "operation": "upsert"|"delete"|"erase", "records":
[{"key", "fields"}]}``, headers ``Idempotency-Key`` (hash of the body), ``X-AME-Timestamp`` and, with a
secret, ``X-AME-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``.
Response: any 2xx; a body ``{"errors": [{"key": ..., "message": ...}]}`` refuses those rows only.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

import orjson

from data.activation.config import WebhookDestination
from data.activation.destinations.base import BatchOutcome, Operation, Record, RunInfo
from data.activation.destinations.http_common import secret
from data.activation.transport import HttpTransport, raise_for_status


def sign(secret_value: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, ``timestamp.body``): what a receiver recomputes to verify."""
    mac = hmac.new(secret_value.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class Webhook:
    kind = "webhook"
    commit_per_batch = True

    def __init__(self, config: WebhookDestination, transport: HttpTransport) -> None:
        self.config = config
        self.transport = transport
        self.run: RunInfo | None = None
        self.batch = 0
        self.secret = secret(config.secret_env, "the webhook's signature") if config.secret_env else None

    def open(self, run: RunInfo) -> None:
        self.run, self.batch = run, 0

    def send(self, operation: Operation, records: Sequence[Record]) -> BatchOutcome:
        assert self.run is not None, "open() first"
        self.batch += 1
        body = orjson.dumps({
            "sync": self.run.sync, "run_id": self.run.run_id, "batch": self.batch, "operation": operation,
            "records": [{"key": r.key, "fields": r.fields} for r in records],
        }, default=str)
        timestamp = str(int(self.transport.clock.wall()))
        headers = {**self.config.headers, "Content-Type": "application/json", "X-AME-Timestamp": timestamp,
                   "Idempotency-Key": hashlib.sha256(body).hexdigest()[:32]}
        if self.secret:
            headers[self.config.signature_header] = sign(self.secret, timestamp, body)
        response = self.transport.request("POST", self.config.url, body=body, headers=headers)
        raise_for_status(response, f"webhook {self.config.url}")
        outcome = BatchOutcome()
        try:
            payload = response.json()
        except orjson.JSONDecodeError:
            return outcome
        keys = {r.key for r in records}
        for error in (payload or {}).get("errors", []) if isinstance(payload, dict) else []:
            key = str(error.get("key"))
            if key in keys:
                outcome.failed[key] = str(error.get("message", "refused by the webhook"))
        return outcome

    def close(self, ok: bool) -> None:
        return None
