"""Salesforce: upsert by external id with sObject Collections, delete by external id (mirror, withdrawn consent,
and an erased customer alike: the record is deleted).

Upsert: ``PATCH {instance}/services/data/vXX.X/composite/sobjects/{SObject}/{ExternalIdField}`` with
``{"allOrNone": false, "records": [{"attributes": {"type": SObject}, ExternalIdField: value, ...}]}`` (at
most 200 records); the response lists one ``{"id", "success", "errors": [{"statusCode", "message",
"fields"}], "created"}`` per record, in order. Delete: ``DELETE .../sobjects/{SObject}/{ExternalIdField}/{value}``
(204; a 404 means it is already gone).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence

from data.activation.config import SalesforceDestination
from data.activation.destinations.base import BatchOutcome, Operation, Record, RunInfo
from data.activation.destinations.http_common import secret
from data.activation.errors import DestinationError
from data.activation.transport import HttpTransport, raise_for_status


class Salesforce:
    kind = "salesforce"
    commit_per_batch = True

    def __init__(self, config: SalesforceDestination, transport: HttpTransport) -> None:
        self.config = config
        self.transport = transport
        self.headers = {"Authorization": f"Bearer {secret(config.token_env, 'Salesforce')}"}
        self.base = f"{config.instance_url.rstrip('/')}/services/data/{config.api_version}"

    def open(self, run: RunInfo) -> None:
        return None

    def send(self, operation: Operation, records: Sequence[Record]) -> BatchOutcome:
        return self._upsert(records) if operation == "upsert" else self._delete(records)

    def _upsert(self, records: Sequence[Record]) -> BatchOutcome:
        c = self.config
        body = {
            "allOrNone": False,
            "records": [{"attributes": {"type": c.sobject}, **r.fields} for r in records],
        }
        url = f"{self.base}/composite/sobjects/{c.sobject}/{c.external_id_field}"
        response = self.transport.request("PATCH", url, json_body=body, headers=self.headers)
        raise_for_status(response, f"Salesforce upsert {c.sobject}")
        results = response.json()
        if not isinstance(results, list) or len(results) != len(records):
            raise DestinationError(f"Salesforce answered {len(results) if isinstance(results, list) else results!r}"
                                   f" results for {len(records)} records; expected one per record")
        outcome = BatchOutcome()
        for record, result in zip(records, results, strict=True):
            if not result.get("success"):
                errors = result.get("errors") or [{}]
                outcome.failed[record.key] = "; ".join(
                    f"{e.get('statusCode', 'ERROR')}: {e.get('message', '')}"
                    + (f" (fields: {', '.join(e['fields'])})" if e.get("fields") else "")
                    for e in errors
                )
        return outcome

    def _delete(self, records: Sequence[Record]) -> BatchOutcome:
        c = self.config
        outcome = BatchOutcome()
        for record in records:
            value = record.fields.get(c.external_id_field)
            if value in (None, ""):
                outcome.failed[record.key] = f"no {c.external_id_field} to delete by"
                continue
            url = f"{self.base}/sobjects/{c.sobject}/{c.external_id_field}/{urllib.parse.quote(str(value), safe='')}"
            response = self.transport.request("DELETE", url, headers=self.headers)
            if response.status == 404 or 200 <= response.status < 300:
                continue
            outcome.failed[record.key] = f"HTTP {response.status}: {response.body[:300].decode('utf-8', 'replace')}"
        return outcome

    def close(self, ok: bool) -> None:
        return None
