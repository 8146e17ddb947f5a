"""A Salesforce stub on 127.0.0.1: the OAuth token endpoint, sObject create and upsert by external id, and SOQL
queries of the shape the CRM loop sends (``SELECT … FROM X WHERE A = v AND SystemModstamp >= t ORDER BY …``), paged
with ``nextRecordsUrl``. It records every request (the recording HTTP stub of the activation tests)."""

from __future__ import annotations

import itertools
import json
import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote

from tests.integration.activation.activation_stub import StubRequest, StubResponse, StubServer

DATA = re.compile(r"^/services/data/(v\d+\.\d)/(.*)$")
SELECT = re.compile(r"^SELECT (?P<fields>.+?) FROM (?P<object>\w+)(?: WHERE (?P<where>.+?))?(?: ORDER BY (?P<order>\w+))?$")
CONDITION = re.compile(r"^(?P<field>\w+) (?P<op>=|>=|>) (?P<value>.+)$")


def sf_time(moment: datetime) -> str:
    """Salesforce's datetime format: 2026-01-01T10:00:00.000+0000."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


class SalesforceStub(StubServer):
    """An org in memory. ``records[object][id]`` holds the fields; every change stamps ``SystemModstamp``."""

    def __init__(self, client_id: str = "app-id", client_secret: str = "app-secret", page_size: int = 2000) -> None:
        super().__init__()
        self.client_id, self.client_secret, self.page_size = client_id, client_secret, page_size
        self.records: dict[str, dict[str, dict[str, Any]]] = {"Task": {}, "Opportunity": {}, "Lead": {}}
        self.tokens: set[str] = set()
        self._ids = itertools.count(1)
        self._pages: dict[str, list[dict[str, Any]]] = {}
        self._clock = datetime(2026, 1, 1, tzinfo=UTC)
        self._guard = threading.Lock()
        self.responder = self.respond

    # -- the org, as a test changes it ---------------------------------------------------------------------

    def _stamp(self) -> str:
        self._clock = max(self._clock + timedelta(milliseconds=1), datetime.now(UTC))
        return sf_time(self._clock)

    def add(self, sobject: str, stamp: datetime | None = None, **fields: Any) -> str:
        """A new record, stamped now (or at ``stamp``: history loaded into the org)."""
        with self._guard:
            record_id = f"{sobject[:3].upper()}{next(self._ids):012d}"
            modstamp = sf_time(stamp) if stamp else self._stamp()
            self.records[sobject][record_id] = {**fields, "Id": record_id, "SystemModstamp": modstamp}
            return record_id

    def update(self, sobject: str, record_id: str, **fields: Any) -> None:
        with self._guard:
            self.records[sobject][record_id].update(fields, SystemModstamp=self._stamp())

    def close_opportunity(self, record_id: str, won: bool) -> None:
        """Mark an opportunity Closed Won or Closed Lost (as a sales rep does)."""
        self.update("Opportunity", record_id, StageName="Closed Won" if won else "Closed Lost", IsClosed=True, IsWon=won)

    def find(self, sobject: str, field: str, value: Any) -> list[dict[str, Any]]:
        return [r for r in self.records[sobject].values() if r.get(field) == value]

    # -- HTTP ------------------------------------------------------------------------------------------------

    def respond(self, request: StubRequest) -> StubResponse:
        if request.path == "/services/oauth2/token" and request.method == "POST":
            return self._token(request)
        if request.headers.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
            return StubResponse(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
        match = DATA.match(request.path)
        if not match:
            return StubResponse(404, [{"errorCode": "NOT_FOUND", "message": request.path}])
        rest = match.group(2).strip("/").split("/")
        if rest[0] == "query":
            return self._query(request, rest)
        if rest[0] == "sobjects" and request.method == "POST" and len(rest) == 2:
            return StubResponse(201, {"id": self.add(rest[1], **request.json), "success": True, "errors": []})
        if rest[0] == "sobjects" and request.method == "PATCH" and len(rest) == 4:
            return self._upsert(rest[1], rest[2], unquote(rest[3]), request.json)
        return StubResponse(404, [{"errorCode": "NOT_FOUND", "message": request.path}])

    def _token(self, request: StubRequest) -> StubResponse:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "client_credentials" or (form.get("client_id"), form.get("client_secret")) != (
                self.client_id, self.client_secret):
            return StubResponse(400, {"error": "invalid_client", "error_description": "invalid client credentials"})
        token = f"token-{len(self.tokens) + 1}"
        self.tokens.add(token)
        return StubResponse(200, {"access_token": token, "instance_url": self.url, "token_type": "Bearer"})

    def _upsert(self, sobject: str, field: str, value: str, fields: dict[str, Any]) -> StubResponse:
        if field in fields:
            return StubResponse(400, [{"errorCode": "INVALID_FIELD", "message": f"{field} is in the URL; leave it out of the body"}])
        found = self.find(sobject, field, value)
        if found:
            self.update(sobject, found[0]["Id"], **fields)
            return StubResponse(200, {"id": found[0]["Id"], "success": True, "created": False, "errors": []})
        return StubResponse(201, {"id": self.add(sobject, **fields, **{field: value}), "success": True, "created": True, "errors": []})

    def _query(self, request: StubRequest, rest: list[str]) -> StubResponse:
        if len(rest) == 2:  # a next page
            return self._page(rest[1], request.path.rsplit("/", 1)[0])
        soql = parse_qs(request.query)["q"][0]
        match = SELECT.match(soql.strip())
        if not match:
            return StubResponse(400, [{"errorCode": "MALFORMED_QUERY", "message": soql}])
        rows = [r for r in self.records[match["object"]].values() if _matches(r, match["where"])]
        if match["order"]:
            rows.sort(key=lambda r: r.get(match["order"]) or "")
        fields = [f.strip() for f in match["fields"].split(",")]
        shaped = [{"attributes": {"type": match["object"]}, **{f: r.get(f) for f in fields}} for r in rows]
        key = f"q{next(self._ids)}"
        self._pages[key] = shaped
        return self._page(f"{key}-0", request.path.rstrip("/"))

    def _page(self, cursor: str, base: str) -> StubResponse:
        key, _, start = cursor.partition("-")
        rows = self._pages[key]
        begin = int(start)
        end = begin + self.page_size
        body: dict[str, Any] = {"totalSize": len(rows), "done": end >= len(rows), "records": rows[begin:end]}
        if end < len(rows):
            body["nextRecordsUrl"] = f"{base}/{key}-{end}"
        return StubResponse(200, body)


def _matches(record: dict[str, Any], where: str | None) -> bool:
    for clause in (where.split(" AND ") if where else []):
        match = CONDITION.match(clause.strip())
        if not match:
            raise ValueError(f"the stub does not read the condition {clause!r}")
        field, op, raw = match["field"], match["op"], match["value"]
        if field == "SystemModstamp":
            left = datetime.fromisoformat(record[field].replace("+0000", "+00:00"))
            right = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if not (left >= right if op == ">=" else left > right if op == ">" else left == right):
                return False
        elif record.get(field, False) != json.loads(raw.replace("'", '"')):
            return False
    return True
