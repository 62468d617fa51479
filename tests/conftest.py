"""Shared fixtures: app factory, token formats; the plugins below add real servers on loopback."""

from __future__ import annotations

import collections.abc as cabc
import os
import socket
import time
import typing as t

import pytest
from flask import Flask
from flask.globals import _cv_app
from flask.testing import FlaskClient

from flask_authgate import AuthGate

#: real Redis topologies (AOF, Sentinel, Cluster), and a real OAuth 2.0 / OpenID provider (``idp``)
pytest_plugins = ["redis_servers", "idp_server"]

SECRET = "s" * 64
OTHER_SECRET = "o" * 64
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def make_app(config: dict[str, t.Any] | None = None, *, gate: AuthGate | None = None) -> tuple[Flask, AuthGate]:
    """A fresh app with flask-authgate set up; ``config`` overrides the defaults."""
    app = Flask("authgate_test")
    app.config.update(TESTING=True, SECRET_KEY=SECRET)
    app.config.update(config or {})
    gate = gate if gate is not None else AuthGate()
    gate.init_app(app)
    return app, gate


@pytest.fixture(params=["jwt", "signed"])
def token_format(request: pytest.FixtureRequest) -> str:
    """Run a test for both token formats."""
    return t.cast(str, request.param)


@pytest.fixture
def app_and_gate(token_format: str) -> tuple[Flask, AuthGate]:
    return make_app({"AUTHGATE_TOKEN_FORMAT": token_format})


@pytest.fixture
def app(app_and_gate: tuple[Flask, AuthGate]) -> Flask:
    return app_and_gate[0]


@pytest.fixture
def gate(app_and_gate: tuple[Flask, AuthGate]) -> AuthGate:
    return app_and_gate[1]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(autouse=True)
def leak_detector() -> cabc.Iterator[None]:
    """Fail a test that leaves an app context (and a stale ``g._authgate``) pushed."""
    yield
    leaked = 0
    while _cv_app.get(None) is not None:
        _cv_app.get().pop()
        leaked += 1
    assert leaked == 0, "a test left an app context pushed"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return t.cast(int, s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")
