"""A recording HTTP stub on 127.0.0.1 for the destination tests: it records every request and answers
from a queue of scripted responses (to inject 429/5xx/per-row errors), else from a responder function.

It also reads each request as the destination's API would and records what it removes (``removals``: out of an
audience, the person kept) and deletes (``deletes``: the person gone), as ``(api, id)`` pairs."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class StubRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # names lowercased
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class StubResponse:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Responder = Callable[[StubRequest], StubResponse]


def deletions(request: StubRequest) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(removals, deletes) a request asks for, in each destination's API: Salesforce ``DELETE`` by external id,
    HubSpot GDPR delete and upserts that clear every property, Braze ``/users/delete`` and attributes set to null,
    Google Ads ``remove`` operations, webhook ``delete`` and ``erase`` batches."""
    body = request.json if request.body[:1] in (b"{", b"[") else None
    removals: list[tuple[str, str]] = []
    deletes: list[tuple[str, str]] = []
    if request.method == "DELETE":
        deletes.append(("salesforce", request.path.rsplit("/", 1)[-1]))
    elif not isinstance(body, dict):
        pass
    elif request.path.endswith("/gdpr-delete"):
        deletes.append(("hubspot", body["objectId"]))
    elif request.path.endswith("/batch/upsert"):
        removals += [("hubspot", i["id"]) for i in body["inputs"] if i["properties"] and not any(i["properties"].values())]
    elif request.path.endswith("/users/delete"):
        deletes += [("braze", e) for e in body["external_ids"]]
    elif request.path.endswith("/users/track"):
        removals += [("braze", a["external_id"]) for a in body["attributes"]
                     if len(a) > 1 and all(v is None for k, v in a.items() if k != "external_id")]
    elif request.path.endswith(":addOperations"):
        removals += [("google_ads", op["remove"]["userIdentifiers"][0].get("hashedEmail", ""))
                     for op in body["operations"] if "remove" in op]
    elif body.get("operation") in ("delete", "erase"):
        target = deletes if body["operation"] == "erase" else removals
        target += [("webhook", r["key"]) for r in body["records"]]
    return removals, deletes


class StubServer:
    """``url`` is where it listens; ``requests`` what it received; ``queue`` scripted answers, first in first out."""

    def __init__(self) -> None:
        self.requests: list[StubRequest] = []
        self.removals: list[tuple[str, str]] = []
        self.deletes: list[tuple[str, str]] = []
        self.queue: list[StubResponse] = []
        self.responder: Responder = lambda request: StubResponse(200, {})
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = StubRequest(self.command, parts.path, parts.query, {k.lower(): v for k, v in self.headers.items()}, body)
                removals, deletes = deletions(request)
                with stub.lock:
                    stub.requests.append(request)
                    stub.removals += removals
                    stub.deletes += deletes
                    scripted = stub.queue.pop(0) if stub.queue else None
                response = scripted or stub.responder(request)
                payload = b"" if response.body is None else (
                    response.body if isinstance(response.body, bytes) else json.dumps(response.body).encode())
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
