"""A quiet HTTP handler base for the creative tests' stand-ins of Vertex AI endpoints: read a JSON body, answer JSON."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any


class JsonStub(BaseHTTPRequestHandler):
    def json_body(self) -> Any:
        return json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))

    def answer(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass
