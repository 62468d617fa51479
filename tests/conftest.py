"""Shared fixtures: app factory, token formats, a real redis-server on loopback."""

from __future__ import annotations

import collections.abc as cabc
import os
import shutil
import socket
import subprocess
import tempfile
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


class RedisServer:
    """A real ``redis-server`` on a free loopback port; can be stopped and started again."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="authgate-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def flush(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url)
        client.flushall()
        client.close()


@pytest.fixture(scope="session")
def redis_server() -> cabc.Iterator[RedisServer]:
    """A real redis-server. Outside CI a missing binary skips; in CI it fails."""
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if binary is None:
        if IN_CI:
            pytest.fail("redis-server is not installed; .ci/run must install it (apt-get install redis-server)")
        pytest.skip("redis-server is not installed")
    server = RedisServer(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> cabc.Iterator[str]:
    """The URL of a running, empty redis-server (restarted if a test stopped it)."""
    if redis_server.proc is None:
        redis_server.start()
    redis_server.flush()
    yield redis_server.url
    if redis_server.proc is None:
        redis_server.start()
