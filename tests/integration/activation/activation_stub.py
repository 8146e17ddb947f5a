"""A recording HTTP stub on 127.0.0.1 for the destination tests: it records every request and answers
from a queue of scripted responses (to inject 429/5xx/per-row errors), else from a responder function."""

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


class StubServer:
    """``url`` is where it listens; ``requests`` what it received; ``queue`` scripted answers, first in first out."""

    def __init__(self) -> None:
        self.requests: list[StubRequest] = []
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
                with stub.lock:
                    stub.requests.append(request)
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
