"""A tiny RFC 7662 introspection endpoint on 127.0.0.1, run in its own process by ``outside.py``.

``POST /introspect`` (form ``token=...``, HTTP Basic ``bench:bench-secret``)
answers ``{"active": true, "sub", "scope", "roles", "exp", "client_id"}``
(RFC 7662 §2.2) for a token starting with ``opaque-``, ``{"active": false}``
otherwise, and 401 without the right credentials (§2.1). ``GET /count``
answers how many introspection requests it has served, so the bench can prove
that a first-seen case asks every time and a cached one does not. Its own
process, so it does not take the interpreter lock from the timed one. Prints
its port on stdout, then serves until stdin closes.
"""

from __future__ import annotations

import base64
import http.server
import json
import sys
import threading
import time
import typing as t
import urllib.parse

CLIENT_ID = "bench"
CLIENT_SECRET = "bench-secret"
BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
EXPIRES = int(time.time()) + 7200


class Handler(http.server.BaseHTTPRequestHandler):
    server: Server

    def _send(self, status: int, document: dict[str, t.Any]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(min(length, 65536)).decode("ascii", "replace"))
        with self.server.lock:
            self.server.posts += 1
        if self.path != "/introspect" or self.headers.get("Authorization") != BASIC:
            self._send(401, {"error": "invalid_client"})
            return
        token = form.get("token", [""])[0]
        if not token.startswith("opaque-"):
            self._send(200, {"active": False})
            return
        self._send(
            200,
            {"active": True, "sub": "alice", "scope": "orders:read", "roles": ["admin"], "exp": EXPIRES,
             "client_id": CLIENT_ID, "token_type": "Bearer"},
        )  # fmt: skip

    def do_GET(self) -> None:
        with self.server.lock:
            posts = self.server.posts
        self._send(200, {"posts": posts})

    def log_message(self, format: str, *args: t.Any) -> None:
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.posts = 0


def main() -> None:
    server = Server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()  # until the parent closes the pipe (or exits)
    server.shutdown()


if __name__ == "__main__":
    main()
