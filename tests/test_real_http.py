"""The example app under gunicorn (two worker processes), talked to over real HTTP.

The workers share a real redis-server as their revocation store, so a token
revoked through one process is refused by the other, and by a third process
(the ``revoke-user`` CLI). Status codes, bodies and ``WWW-Authenticate``
are checked as they arrive on the wire.
"""

from __future__ import annotations

import collections.abc as cabc
import email.message
import importlib.util
import json
import os
import subprocess
import sys
import time
import typing as t
import urllib.error
import urllib.request
import uuid

import pytest
from conftest import IN_CI
from conftest import free_port
from conftest import wait_for_port
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey
from kit import ROOT
from kit import python_m
from redis_servers import RedisServer

from example_app import create_app
from example_app import gate
from flask_authgate.dpop import access_token_hash

SECRET = "real-http-test-secret-" + "q" * 48
DPOP_BARE = 'DPoP realm="api", algs="ES256 PS256 RS256 EdDSA"'
BARE = ['Bearer realm="api"', DPOP_BARE]
# Enough requests that both workers answer some of them.
ROUNDS = 8


def invalid_token(message: str) -> list[str]:
    return [f'Bearer realm="api", error="invalid_token", error_description="{message}"', DPOP_BARE]


def err(status: int, error: str, code: str, message: str) -> dict[str, t.Any]:
    return {"error": error, "code": code, "message": message, "status": status}


REVOKED = err(401, "Unauthorized", "token_revoked", "The access token was revoked")
REFRESH_REVOKED = err(401, "Unauthorized", "token_revoked", "The refresh token was revoked")
NOT_FOUND = err(404, "Not Found", "not_found", "The requested resource was not found")


class Reply(t.NamedTuple):
    status: int
    headers: email.message.Message
    body: t.Any

    @property
    def challenges(self) -> list[str]:
        return self.headers.get_all("WWW-Authenticate") or []


class Server(t.NamedTuple):
    url: str
    env: dict[str, str]


# No proxy from the environment: the server is on loopback.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(
    server: Server,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: t.Any = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    headers = {"Accept": "application/json", **(headers or {})}
    data = None
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    # Always http://127.0.0.1:<port> (S310 guards against file: URLs).
    request = urllib.request.Request(server.url + path, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with _opener.open(request, timeout=10) as response:
            raw, status, reply_headers = response.read(), response.status, response.headers
    except urllib.error.HTTPError as exc:
        raw, status, reply_headers = exc.read(), exc.code, exc.headers
        exc.close()
    content_type = reply_headers.get("Content-Type", "")
    return Reply(status, reply_headers, json.loads(raw) if "json" in content_type and raw else raw)


def flask_cli(env: dict[str, str], *args: str) -> str:
    return python_m("flask", "--app", "example_app", *args, env=env).stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> cabc.Iterator[Server]:
    """``gunicorn -w 2`` serving ``example_app:create_app()`` on a free loopback port.

    One server for the module (each test logs in its own users and tokens).
    Without gunicorn installed the module skips at once (outside CI) instead of
    waiting for a port that no process will open.
    """
    if importlib.util.find_spec("gunicorn") is None:
        if IN_CI:
            pytest.fail("gunicorn is not installed; CI must run the real-HTTP tests")
        pytest.skip("gunicorn is not installed")
    if redis_server.proc is None:
        redis_server.start()
    redis_server.flush()
    tmp_path = tmp_path_factory.mktemp("real-http")
    env = {
        **os.environ,
        "FLASK_DATABASE": str(tmp_path / "example.sqlite"),
        "FLASK_SECRET_KEY": SECRET,
        "FLASK_AUTHGATE_REVOCATION_STORE": redis_server.url,
    }
    env.pop("FLASK_APP", None)
    seeded = flask_cli(env, "seed")
    assert "alice  / alice-password  user" in seeded
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn",
                "-w", "2",
                "-b", f"127.0.0.1:{port}",
                "--graceful-timeout", "5",
                "example_app:create_app()",
            ],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                wait_for_port(port, timeout=0.5)
                break
            except RuntimeError:  # not listening yet
                continue
        if proc.poll() is not None:  # gunicorn exited (a bad app, a missing module): say so now
            pytest.fail(f"gunicorn exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        wait_for_port(port, timeout=1)
        served = Server(f"http://127.0.0.1:{port}", env)
        for _ in range(4):  # let both workers finish booting
            assert call(served, "GET", "/api/internal/health").status == 200
        yield served
    finally:
        proc.terminate()  # SIGTERM: gunicorn's graceful shutdown
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - only when gunicorn hangs
            proc.kill()
            proc.wait()
            raise
    output = log_path.read_text()
    assert code == 0, output
    assert "Traceback" not in output, output


def login(server: Server, username: str) -> dict[str, t.Any]:
    reply = call(server, "POST", "/auth/login", body={"username": username, "password": f"{username}-password"})
    assert reply.status == 200, reply.body
    return t.cast(dict[str, t.Any], reply.body)


def assert_refused(reply: Reply, status: int, body: dict[str, t.Any], challenges: list[str]) -> None:
    assert (reply.status, reply.body, reply.challenges) == (status, body, challenges)
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.headers["Cache-Control"] == "no-store"


def test_the_whole_loop_over_http(server: Server) -> None:
    page = call(server, "GET", "/")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert b"flask-authgate demo" in page.body

    missing = err(401, "Unauthorized", "token_missing", "No authentication token was provided")
    assert_refused(call(server, "GET", "/api/me"), 401, missing, BARE)
    wrong = call(server, "POST", "/auth/login", body={"username": "alice", "password": "nope"})
    login_failed = err(401, "Unauthorized", "login_failed", "The username or the password is wrong")
    assert_refused(wrong, 401, login_failed, BARE)

    pair = login(server, "alice")
    access = pair["access_token"]
    assert (pair["token_type"], pair["expires_in"]) == ("Bearer", 900)
    me = call(server, "GET", "/api/me", token=access)
    assert (me.status, me.body) == (
        200,
        {"id": "2", "username": "alice", "roles": ["user"], "scopes": [], "fresh": True},
    )
    assert me.challenges == []

    notes = call(server, "GET", "/api/notes", token=access)
    assert [n["title"] for n in notes.body["notes"]] == ["Shopping list", "Ideas"]

    role = err(403, "Forbidden", "insufficient_role", "You do not have a role this request requires")
    assert_refused(call(server, "GET", "/api/admin/users", token=access), 403, role, [])
    scope = err(403, "Forbidden", "insufficient_scope", "The access token lacks a scope this request requires")
    scope_challenge = ['Bearer realm="api", error="insufficient_scope", scope="reports:read"']
    assert_refused(call(server, "GET", "/api/reports", token=access), 403, scope, scope_challenge)

    hidden = call(server, "GET", "/api/notes/3", token=access)
    absent = call(server, "GET", "/api/notes/999", token=access)
    assert_refused(hidden, 404, NOT_FOUND, [])
    assert_refused(absent, 404, NOT_FOUND, [])
    assert_refused(call(server, "DELETE", "/api/notes/3", token=access), 404, NOT_FOUND, [])

    health = call(server, "GET", "/api/internal/health")
    assert (health.status, health.body) == (200, {"status": "ok"})

    admin = login(server, "admin")["access_token"]
    users = call(server, "GET", "/api/admin/users", token=admin)
    assert [u["username"] for u in users.body["users"]] == ["admin", "alice", "bob"]
    report = call(server, "GET", "/api/reports", token=admin)
    assert (report.status, report.body) == (200, {"report": {"users": 3, "notes": 4}})


def test_an_expired_token_then_a_refresh(server: Server) -> None:
    # A token of this deployment (same key), issued an hour ago.
    app = create_app({"DATABASE": "unused.sqlite", "SECRET_KEY": SECRET})
    app.extensions["authgate"].tokens.clock = lambda: time.time() - 3600
    with app.app_context():
        old = gate.create_access_token("2")
    expired = err(401, "Unauthorized", "token_expired", "The access token expired")
    assert_refused(call(server, "GET", "/api/notes", token=old), 401, expired, invalid_token(expired["message"]))

    pair = login(server, "alice")
    new = call(server, "POST", "/auth/refresh", token=pair["refresh_token"])
    assert new.status == 200
    assert sorted(new.body) == ["access_token", "expires_in", "refresh_token", "token_type"]
    assert new.headers["Cache-Control"] == "no-store"
    assert call(server, "GET", "/api/notes", token=new.body["access_token"]).status == 200

    # The used refresh token again, whichever worker gets it: reuse, the whole family ends.
    reused = call(server, "POST", "/auth/refresh", token=pair["refresh_token"])
    assert_refused(reused, 401, REFRESH_REVOKED, invalid_token(REFRESH_REVOKED["message"]))
    for _ in range(ROUNDS):
        assert call(server, "GET", "/api/notes", token=new.body["access_token"]).body == REVOKED


def test_logout_is_seen_by_every_worker(server: Server) -> None:
    pair = login(server, "alice")
    out = call(
        server, "POST", "/auth/logout", token=pair["access_token"], body={"refresh_token": pair["refresh_token"]}
    )
    assert (out.status, out.body) == (200, {"message": "Logged out"})
    for _ in range(ROUNDS):
        assert_refused(
            call(server, "GET", "/api/me", token=pair["access_token"]), 401, REVOKED, invalid_token(REVOKED["message"])
        )
    refresh = call(server, "POST", "/auth/refresh", token=pair["refresh_token"])
    assert_refused(refresh, 401, REFRESH_REVOKED, invalid_token(REFRESH_REVOKED["message"]))


def test_revoking_a_user_from_another_process(server: Server) -> None:
    bob, alice = login(server, "bob"), login(server, "alice")
    assert flask_cli(server.env, "revoke-user", "bob") == "Revoked every token of bob (subject 3)\n"
    for _ in range(ROUNDS):
        assert call(server, "GET", "/api/me", token=bob["access_token"]).body == REVOKED
    assert call(server, "GET", "/api/me", token=alice["access_token"]).status == 200


def test_fresh_login_over_http(server: Server) -> None:
    pair = login(server, "alice")
    refreshed = call(server, "POST", "/auth/refresh", token=pair["refresh_token"]).body
    stale = call(server, "POST", "/api/me/password", token=refreshed["access_token"], body={"new_password": "x" * 12})
    fresh_needed = err(401, "Unauthorized", "fresh_token_required", "This request needs a token from a fresh login")
    assert_refused(stale, 401, fresh_needed, invalid_token(fresh_needed["message"]))


def test_dpop_over_http_and_replay_caught_by_every_worker(server: Server) -> None:
    # The example's token endpoints keep their proof records in the same Redis as the
    # extension's, so a captured login proof is refused by both workers.
    key = ECKey.generate_key("P-256")
    jwk = key.as_dict(private=False)

    def proof(method: str, path: str, token: str | None = None) -> str:
        claims: dict[str, t.Any] = {"jti": str(uuid.uuid4()), "htm": method, "htu": server.url + path}
        claims["iat"] = int(time.time())
        if token is not None:
            claims["ath"] = access_token_hash(token)
        return jose_jwt.encode({"alg": "ES256", "typ": "dpop+jwt", "jwk": jwk}, claims, key)

    login_proof = {"DPoP": proof("POST", "/auth/login")}
    body = {"username": "bob", "password": "bob-password"}
    pair = call(server, "POST", "/auth/login", body=body, headers=login_proof)
    assert (pair.status, pair.body["token_type"]) == (200, "DPoP")
    access = pair.body["access_token"]
    proof_invalid = err(401, "Unauthorized", "dpop_proof_invalid", "The DPoP proof is invalid")
    invalid_challenges = [
        'Bearer realm="api"',
        f'{DPOP_BARE}, error="invalid_dpop_proof", error_description="The DPoP proof is invalid"',
    ]
    for _ in range(ROUNDS):
        assert_refused(
            call(server, "POST", "/auth/login", body=body, headers=login_proof), 401, proof_invalid, invalid_challenges
        )
    notes_headers = {"Authorization": f"DPoP {access}", "DPoP": proof("GET", "/api/notes", access)}
    assert call(server, "GET", "/api/notes", headers=notes_headers).status == 200
    for _ in range(ROUNDS):
        assert_refused(call(server, "GET", "/api/notes", headers=notes_headers), 401, proof_invalid, invalid_challenges)
    for _ in range(ROUNDS):
        fresh = {"Authorization": f"DPoP {access}", "DPoP": proof("GET", "/api/me", access)}
        assert call(server, "GET", "/api/me", headers=fresh).status == 200
    bearer_reply = call(server, "GET", "/api/me", token=access)
    assert_refused(
        bearer_reply,
        401,
        err(401, "Unauthorized", "token_invalid", "The access token is invalid"),
        invalid_token("The access token is invalid"),
    )
