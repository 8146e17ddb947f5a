"""Braze: ``POST {rest_endpoint}/users/track`` with attribute objects, 75 a request.

Body ``{"attributes": [{"external_id": "...", "<attribute>": value, ...}]}``, header ``Authorization:
Bearer <REST API key>``. A 2xx with ``"message": "success"`` and ``"errors": [{"type", "input_array":
"attributes", "index"}]`` refused only those objects. Mirror deletes set the synced attributes to null
(which removes them from the profile) instead of deleting the user. An erased customer's user is deleted with
``POST {rest_endpoint}/users/delete`` and ``{"external_ids": [...]}`` (at most 50 a request).
"""

from __future__ import annotations

from collections.abc import Sequence

from data.activation.config import BrazeDestination
from data.activation.destinations.base import BatchOutcome, Operation, Record, RunInfo
from data.activation.destinations.http_common import secret
from data.activation.errors import DestinationError
from data.activation.transport import HttpTransport, raise_for_status

USERS_DELETE_MAX = 50
"""External ids per ``/users/delete`` request (Braze's limit)."""


class Braze:
    kind = "braze"
    commit_per_batch = True

    def __init__(self, config: BrazeDestination, transport: HttpTransport) -> None:
        self.config = config
        self.transport = transport
        self.headers = {"Authorization": f"Bearer {secret(config.api_key_env, 'Braze')}"}
        self.url = f"{config.rest_endpoint.rstrip('/')}/users/track"
        self.delete_url = f"{config.rest_endpoint.rstrip('/')}/users/delete"

    def open(self, run: RunInfo) -> None:
        return None

    def send(self, operation: Operation, records: Sequence[Record]) -> BatchOutcome:
        if operation == "erase":
            return self._delete_users(records)
        idf = self.config.external_id_field
        outcome = BatchOutcome()
        attributes, sent = [], []
        for r in records:
            ext = r.fields.get(idf)
            if ext in (None, ""):
                outcome.failed[r.key] = f"no {idf} (Braze external_id) for this row"
                continue
            values = {k: (None if operation == "delete" else v) for k, v in r.fields.items() if k != idf}
            attributes.append({"external_id": str(ext), **values})
            sent.append(r)
        if not attributes:
            return outcome
        response = self.transport.request("POST", self.url, json_body={"attributes": attributes},
                                          headers=self.headers)
        raise_for_status(response, "Braze /users/track")
        payload = response.json() or {}
        if payload.get("message") != "success":
            raise DestinationError(f"Braze /users/track: {payload.get('message')!r} {payload.get('errors', '')}",
                                   status=response.status)
        for error in payload.get("errors", []) or []:
            if isinstance(error, dict) and error.get("input_array", "attributes") == "attributes":
                index = error.get("index")
                if isinstance(index, int) and 0 <= index < len(sent):
                    outcome.failed[sent[index].key] = str(error.get("type", "refused by Braze"))
        return outcome

    def _delete_users(self, records: Sequence[Record]) -> BatchOutcome:
        """Delete the records' users (``/users/delete``, 50 external ids a request)."""
        idf = self.config.external_id_field
        outcome = BatchOutcome()
        ids = []
        for r in records:
            ext = r.fields.get(idf)
            if ext in (None, ""):
                outcome.failed[r.key] = f"no {idf} (Braze external_id) for this row"
            else:
                ids.append(str(ext))
        for start in range(0, len(ids), USERS_DELETE_MAX):
            response = self.transport.request("POST", self.delete_url, headers=self.headers,
                                              json_body={"external_ids": ids[start:start + USERS_DELETE_MAX]})
            raise_for_status(response, "Braze /users/delete")
        return outcome

    def close(self, ok: bool) -> None:
        return None
