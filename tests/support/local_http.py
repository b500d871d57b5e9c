"""A real HTTP server on 127.0.0.1, in a thread, that records every request and answers
with what the test's `answer` function returns: the stand-in for FCM, Google's token
endpoint or Twilio. Keep-alive (HTTP/1.1) like the real services."""

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


Answer = Callable[[Request], tuple[int, dict | str]]


@dataclass
class LocalServer:
    answer: Answer
    requests: list[Request] = field(default_factory=list)
    connections: set[tuple[str, int]] = field(default_factory=set)

    def __enter__(self) -> "LocalServer":
        server_state = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = Request("POST", self.path, dict(self.headers), body)
                server_state.requests.append(request)
                server_state.connections.add(self.client_address)
                status, payload = server_state.answer(request)
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
