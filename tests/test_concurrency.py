"""Many concurrent requests against a real threaded server: each answer names its own caller.

The identity lives on the request (``g``), never on the app or a module
global; this proves it under real threads and sockets, with a user loader
that yields the CPU in the middle of a request.
"""

from __future__ import annotations

import collections.abc as cabc
import concurrent.futures
import threading
import time
import typing as t

import pytest
from conftest import make_app
from flask import Flask
from flask.typing import ResponseReturnValue
from kit import http_json
from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import make_server

from flask_authgate import Identity
from flask_authgate import current_identity
from flask_authgate import current_user
from flask_authgate import get_identity
from flask_authgate import login_required

USERS = [f"user-{i:02d}" for i in range(24)]
REQUESTS = 400
THREADS = 16


def concurrency_app(token_format: str) -> tuple[Flask, dict[str, str]]:
    app, gate = make_app({"AUTHGATE_TOKEN_FORMAT": token_format})

    @gate.user_loader
    def load_user(identity: Identity) -> dict[str, str]:
        time.sleep(0.001)  # let another request run in the middle of this one
        return {"name": identity.subject.upper()}

    @app.route("/me")
    @login_required
    def me() -> ResponseReturnValue:
        time.sleep(0.001)
        return {"sub": current_identity.subject, "user": current_user["name"]}

    @app.route("/me-async")
    @login_required
    async def me_async() -> ResponseReturnValue:
        return {"sub": current_identity.subject, "user": current_user["name"]}

    @app.route("/whoami")
    def whoami() -> ResponseReturnValue:
        identity = get_identity()
        return {"sub": identity.subject if identity is not None else None}

    with app.app_context():
        tokens = {user: gate.create_access_token(user) for user in USERS}
    return app, tokens


@pytest.fixture
def serve() -> cabc.Iterator[cabc.Callable[[Flask], str]]:
    """Serve an app from a real threaded server on 127.0.0.1; shut it down cleanly afterwards."""
    running: list[tuple[BaseWSGIServer, threading.Thread]] = []

    def start(app: Flask) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        assert not thread.is_alive()


def test_each_response_names_its_own_caller(token_format: str, serve: cabc.Callable[[Flask], str]) -> None:
    app, tokens = concurrency_app(token_format)
    base = serve(app)
    # (path, who): who is a user, None for no credentials, or "bad" for a garbage token.
    plan: list[tuple[str, str | None]] = []
    for i in range(REQUESTS):
        path = ("/me", "/me-async", "/whoami")[i % 3]
        who: str | None = USERS[i % len(USERS)] if i % 5 else (None if i % 2 else "bad")
        plan.append((path, who))

    def one(step: tuple[str, str | None]) -> tuple[tuple[str, str | None], int, dict[str, t.Any]]:
        path, who = step
        token = tokens[who] if who in tokens else ("x.y.z" if who == "bad" else None)
        status, body = http_json(base + path, token)
        return step, status, body

    with concurrent.futures.ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(one, plan))

    assert len(results) == REQUESTS
    for (path, who), status, body in results:
        if path == "/whoami":
            expected_sub = who if who in tokens else None
            assert (status, body) == (200, {"sub": expected_sub}), (path, who)
        elif who in tokens:
            assert who is not None
            assert (status, body) == (200, {"sub": who, "user": who.upper()}), (path, who)
        else:
            code = "token_invalid" if who == "bad" else "token_missing"
            assert (status, body["code"]) == (401, code), (path, who)
