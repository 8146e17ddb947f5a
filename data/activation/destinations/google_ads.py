"""Google Ads Customer Match: an offline user data job with hashed identifiers.

A run creates one job, adds operations in batches, and runs it when the run closes (rows count as synced
only once the job runs):

1. ``POST {base}/{version}/customers/{cid}/offlineUserDataJobs:create`` with ``{"job": {"type":
   "CUSTOMER_MATCH_USER_LIST", "customerMatchUserListMetadata": {"userList":
   "customers/{cid}/userLists/{id}", "consent": {...}}}}`` -> ``{"resourceName": ...}``;
2. ``POST {base}/{version}/{resourceName}:addOperations`` with ``{"enablePartialFailure": true,
   "operations": [{"create"|"remove" (delete, erase): {"userIdentifiers": [{"hashedEmail": ...}, {"hashedPhoneNumber":
   ...}]}}]}``; a ``partialFailureError`` names failed operations by ``fieldPathElements`` index;
3. ``POST {base}/{version}/{resourceName}:run``.

Headers: ``Authorization: Bearer <OAuth token>``, ``developer-token`` and, for a manager, ``login-customer-id``.
Identifiers are normalized then SHA-256 hashed (hex): emails trimmed and lowercased, phones in E.164.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from data.activation.config import GoogleAdsDestination
from data.activation.destinations.base import BatchOutcome, Operation, Record, RunInfo
from data.activation.destinations.http_common import secret
from data.activation.errors import DestinationError
from data.activation.transport import HttpTransport, raise_for_status

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_email(value: str, remove_gmail_dots: bool = False) -> str | None:
    """Trimmed and lowercased; with ``remove_gmail_dots``, no dots before ``@gmail.com``/``@googlemail.com``."""
    email = value.strip().lower()
    if not _EMAIL.match(email):
        return None
    local, domain = email.rsplit("@", 1)
    if remove_gmail_dots and domain in ("gmail.com", "googlemail.com"):
        local = local.replace(".", "")
    return f"{local}@{domain}"


def normalize_phone(value: str, default_country_code: str = "1") -> str | None:
    """E.164 (``+`` then 8 to 15 digits): ``00`` becomes ``+``; a number without a country code gets the
    default one (a national trunk ``0`` dropped); None when it cannot be a phone number."""
    raw = value.strip()
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    digits = re.sub(r"\D", "", raw)
    if not digits:
        return None
    if not raw.startswith("+"):
        digits = default_country_code + digits.lstrip("0")
    if not 8 <= len(digits) <= 15 or digits.startswith("0"):
        return None
    return "+" + digits


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class GoogleAdsCustomerMatch:
    kind = "google_ads"
    commit_per_batch = False  # nothing counts until the job runs

    def __init__(self, config: GoogleAdsDestination, transport: HttpTransport) -> None:
        self.config = config
        self.transport = transport
        self.headers = {
            "Authorization": f"Bearer {secret(config.token_env, 'Google Ads (OAuth access token)')}",
            "developer-token": secret(config.developer_token_env, "Google Ads (developer token)"),
        }
        if config.login_customer_id:
            self.headers["login-customer-id"] = config.login_customer_id
        self.api = f"{config.base_url.rstrip('/')}/{config.api_version}"
        self.job: str | None = None
        self.operations = 0

    def identifiers(self, record: Record) -> list[dict[str, str]]:
        """The hashed userIdentifiers of a record (empty when it has no usable email or phone)."""
        c = self.config
        out: list[dict[str, str]] = []
        if c.email_field and record.fields.get(c.email_field):
            email = normalize_email(str(record.fields[c.email_field]), c.remove_gmail_dots)
            if email:
                out.append({"hashedEmail": sha256_hex(email)})
        if c.phone_field and record.fields.get(c.phone_field):
            phone = normalize_phone(str(record.fields[c.phone_field]), c.default_country_code)
            if phone:
                out.append({"hashedPhoneNumber": sha256_hex(phone)})
        return out

    def open(self, run: RunInfo) -> None:
        c = self.config
        metadata: dict[str, Any] = {"userList": f"customers/{c.customer_id}/userLists/{c.user_list_id}"}
        consent = {k: v for k, v in (("adUserData", c.consent_ad_user_data),
                                     ("adPersonalization", c.consent_ad_personalization)) if v}
        if consent:
            metadata["consent"] = consent
        body = {"job": {"type": "CUSTOMER_MATCH_USER_LIST", "customerMatchUserListMetadata": metadata}}
        response = self.transport.request("POST", f"{self.api}/customers/{c.customer_id}/offlineUserDataJobs:create",
                                          json_body=body, headers=self.headers)
        raise_for_status(response, "Google Ads offlineUserDataJobs:create")
        self.job = (response.json() or {}).get("resourceName")
        if not self.job:
            raise DestinationError("Google Ads offlineUserDataJobs:create answered without a resourceName")
        self.operations = 0

    def send(self, operation: Operation, records: Sequence[Record]) -> BatchOutcome:
        if self.job is None:
            raise DestinationError("the Google Ads job was not created (open() failed)")
        outcome = BatchOutcome()
        ops, sent = [], []
        verb = "create" if operation == "upsert" else "remove"
        for r in records:
            ids = self.identifiers(r)
            if not ids:
                outcome.failed[r.key] = "no valid email or phone to hash (check the mapped email/phone columns)"
                continue
            ops.append({verb: {"userIdentifiers": ids}})
            sent.append(r)
        if not ops:
            return outcome
        response = self.transport.request("POST", f"{self.api}/{self.job}:addOperations",
                                          json_body={"enablePartialFailure": True, "operations": ops},
                                          headers=self.headers)
        raise_for_status(response, "Google Ads addOperations")
        self.operations += len(ops)
        failure = (response.json() or {}).get("partialFailureError")
        if failure:
            for index, message in _failed_operations(failure):
                if 0 <= index < len(sent):
                    outcome.failed[sent[index].key] = message
        return outcome

    def close(self, ok: bool) -> None:
        if not ok or self.job is None or self.operations == 0:
            return
        response = self.transport.request("POST", f"{self.api}/{self.job}:run", json_body={}, headers=self.headers)
        raise_for_status(response, "Google Ads offlineUserDataJobs:run")


def _failed_operations(status: dict[str, Any]) -> list[tuple[int, str]]:
    """(operation index, message) from a partialFailureError (google.rpc.Status with GoogleAdsFailure details)."""
    out: list[tuple[int, str]] = []
    for detail in status.get("details", []) or []:
        for error in detail.get("errors", []) or []:
            elements = ((error.get("location") or {}).get("fieldPathElements")) or []
            for element in elements:
                if element.get("fieldName") == "operations" and "index" in element:
                    out.append((int(element["index"]), str(error.get("message", "refused by Google Ads"))))
                    break
    return out
