"""HubSpot contacts: batch upsert by a unique property (email by default).

``POST {base}/crm/v3/objects/contacts/batch/upsert`` with ``{"inputs": [{"idProperty": "email", "id":
"<value>", "properties": {...}}]}`` (at most 100 inputs). 200 means every input was written; 207
(multi-status) lists ``errors`` whose ``context`` names the ids that failed. Mirror deletes clear the synced
properties (an upsert with empty strings, which HubSpot reads as "clear"), because archiving a contact needs
HubSpot's record id and would remove the person, not just the audience membership. An erased customer is
deleted for good with ``POST {base}/crm/v3/objects/contacts/gdpr-delete`` and ``{"objectId": "<value>",
"idProperty": "email"}``, one contact a call (204; a 404 means it is already gone).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from data.activation.config import HubSpotDestination
from data.activation.destinations.base import BatchOutcome, Operation, Record, RunInfo
from data.activation.destinations.http_common import secret
from data.activation.transport import HttpTransport, raise_for_status


def _context_ids(context: Any) -> set[str]:
    ids: set[str] = set()
    if isinstance(context, dict):
        for value in context.values():
            values = value if isinstance(value, list) else [value]
            ids.update(str(v).lower() for v in values if isinstance(v, str | int))
    return ids


class HubSpot:
    kind = "hubspot"
    commit_per_batch = True

    def __init__(self, config: HubSpotDestination, transport: HttpTransport) -> None:
        self.config = config
        self.transport = transport
        self.headers = {"Authorization": f"Bearer {secret(config.token_env, 'HubSpot')}"}
        self.url = f"{config.base_url.rstrip('/')}/crm/v3/objects/{config.object_type}/batch/upsert"
        self.gdpr_url = f"{config.base_url.rstrip('/')}/crm/v3/objects/{config.object_type}/gdpr-delete"

    def open(self, run: RunInfo) -> None:
        return None

    def send(self, operation: Operation, records: Sequence[Record]) -> BatchOutcome:
        if operation == "erase":
            return self._gdpr_delete(records)
        idp = self.config.id_property
        outcome = BatchOutcome()
        inputs, sent = [], []
        for r in records:
            ident = r.fields.get(idp)
            if ident in (None, ""):
                outcome.failed[r.key] = f"no {idp} (the upsert's idProperty) for this row"
                continue
            props = {k: ("" if operation == "delete" else ("" if v is None else v))
                     for k, v in r.fields.items() if k != idp}
            inputs.append({"idProperty": idp, "id": str(ident), "properties": props})
            sent.append(r)
        if not inputs:
            return outcome
        response = self.transport.request("POST", self.url, json_body={"inputs": inputs}, headers=self.headers)
        raise_for_status(response, "HubSpot batch upsert")
        if response.status == 207:
            _attribute_errors(response.json() or {}, {str(r.fields[idp]).lower(): r for r in sent}, idp, outcome)
        return outcome

    def _gdpr_delete(self, records: Sequence[Record]) -> BatchOutcome:
        """Permanently delete each record's contact (HubSpot's GDPR delete, one a call)."""
        idp = self.config.id_property
        outcome = BatchOutcome()
        for r in records:
            ident = r.fields.get(idp)
            if ident in (None, ""):
                outcome.failed[r.key] = f"no {idp} (the GDPR delete's idProperty) for this row"
                continue
            response = self.transport.request("POST", self.gdpr_url, json_body={"objectId": str(ident), "idProperty": idp},
                                              headers=self.headers)
            if response.status != 404:
                raise_for_status(response, "HubSpot GDPR delete")
        return outcome

    def close(self, ok: bool) -> None:
        return None


def _attribute_errors(payload: dict[str, Any], by_id: dict[str, Record], idp: str, outcome: BatchOutcome) -> None:
    """A 207 multi-status answer: each error fails the rows its context names; rows with neither a result nor an
    attributable error are counted as failed (they are resent)."""
    unattributed: list[str] = []
    for error in payload.get("errors", []):
        message = f"{error.get('category', 'ERROR')}: {error.get('message', '')}"
        hits = _context_ids(error.get("context")) & by_id.keys()
        for ident in hits:
            outcome.failed[by_id[ident].key] = message
        if not hits:
            unattributed.append(message)
    if unattributed:
        written = {str((res.get("properties") or {}).get(idp, "")).lower() for res in payload.get("results", [])}
        for ident, r in by_id.items():
            if ident not in written and r.key not in outcome.failed:
                outcome.failed[r.key] = unattributed[0]
