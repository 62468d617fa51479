"""The refresh endpoint pattern: rotation, reuse detection, fresh tokens.

Runs for both token formats and both revocation stores (memory, real Redis).
"""

from __future__ import annotations

import threading
import typing as t

import pytest
from conftest import make_app
from flask import Flask
from flask.testing import FlaskClient
from kit import add_refresh_route
from kit import bearer
from kit import body
from kit import whoami

from flask_authgate import AuthGate
from flask_authgate import TokenPair
from flask_authgate import current_identity
from flask_authgate import fresh_login_required
from flask_authgate import login_required
from flask_authgate.errors import message_for


def challenge(code: str, token_type: str = "access") -> list[str]:
    return [f'Bearer realm="api", error="invalid_token", error_description="{message_for(code, token_type)}"']


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    """``AUTHGATE_REVOCATION_STORE``: in memory, or a real redis-server."""
    if request.param == "redis":
        return t.cast(str, request.getfixturevalue("redis_url"))
    return "memory"


def build(token_format: str, store: str) -> tuple[Flask, AuthGate]:
    app, gate = make_app({"AUTHGATE_TOKEN_FORMAT": token_format, "AUTHGATE_REVOCATION_STORE": store})

    @app.post("/login")
    def login() -> TokenPair:
        # The password was checked just now: the access token is fresh.
        return gate.create_token_pair("alice", roles=["admin"], scopes=["read"], fresh=True)

    add_refresh_route(app, gate)

    @app.get("/me")
    @login_required
    def me() -> dict[str, t.Any]:
        return whoami(fresh=current_identity.claims.get("fresh", False))

    @app.post("/password")
    @fresh_login_required
    def change_password() -> dict[str, bool]:
        return {"changed": True}

    return app, gate


@pytest.fixture
def client(token_format: str, store: str) -> FlaskClient:
    return build(token_format, store)[0].test_client()


def login(client: FlaskClient) -> TokenPair:
    rv = client.post("/login")
    assert rv.status_code == 200
    return t.cast(TokenPair, rv.get_json())


def refresh(client: FlaskClient, token: str) -> TokenPair:
    rv = client.post("/refresh", headers=bearer(token))
    assert rv.status_code == 200, rv.get_json()
    return t.cast(TokenPair, rv.get_json())


def assert_refused(client: FlaskClient, method: str, path: str, token: str, code: str) -> None:
    rv = client.open(path, method=method, headers=bearer(token))
    assert rv.status_code == 401
    token_type = "refresh" if path == "/refresh" else "access"
    assert rv.get_json() == body(code, token_type)
    assert rv.headers.getlist("WWW-Authenticate") == challenge(code, token_type)
    assert rv.headers["Cache-Control"] == "no-store"


def test_login_returns_a_fresh_pair(client: FlaskClient) -> None:
    pair = login(client)
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert pair["token_type"] == "Bearer"
    assert pair["expires_in"] == 900
    rv = client.get("/me", headers=bearer(pair["access_token"]))
    assert rv.get_json() == {"sub": "alice", "roles": ["admin"], "scopes": ["read"], "fresh": True}
    assert client.post("/password", headers=bearer(pair["access_token"])).get_json() == {"changed": True}


def test_refresh_rotates_and_keeps_roles_and_scopes(client: FlaskClient) -> None:
    first = login(client)
    second = refresh(client, first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    rv = client.get("/me", headers=bearer(second["access_token"]))
    assert rv.get_json() == {"sub": "alice", "roles": ["admin"], "scopes": ["read"], "fresh": False}
    # The chain goes on: the new refresh token works once too.
    third = refresh(client, second["refresh_token"])
    assert client.get("/me", headers=bearer(third["access_token"])).status_code == 200


def test_a_used_refresh_token_is_revoked(client: FlaskClient) -> None:
    first = login(client)
    refresh(client, first["refresh_token"])
    assert_refused(client, "POST", "/refresh", first["refresh_token"], "token_revoked")


def test_reuse_revokes_the_whole_family(client: FlaskClient) -> None:
    first = login(client)
    second = refresh(client, first["refresh_token"])
    third = refresh(client, second["refresh_token"])
    assert client.get("/me", headers=bearer(third["access_token"])).status_code == 200
    # An attacker (or the victim) presents an already used refresh token:
    assert_refused(client, "POST", "/refresh", first["refresh_token"], "token_revoked")
    # every token of the family is now refused, the newest pair included.
    for pair in (first, second, third):
        assert_refused(client, "GET", "/me", pair["access_token"], "token_revoked")
    assert_refused(client, "POST", "/refresh", third["refresh_token"], "token_revoked")


def test_reuse_leaves_other_families_alone(client: FlaskClient) -> None:
    stolen = login(client)
    other_device = login(client)
    refresh(client, stolen["refresh_token"])
    assert_refused(client, "POST", "/refresh", stolen["refresh_token"], "token_revoked")
    assert client.get("/me", headers=bearer(other_device["access_token"])).status_code == 200
    assert refresh(client, other_device["refresh_token"])["token_type"] == "Bearer"


def test_rotated_access_token_is_not_fresh(client: FlaskClient) -> None:
    rotated = refresh(client, login(client)["refresh_token"])
    assert client.get("/me", headers=bearer(rotated["access_token"])).status_code == 200
    assert_refused(client, "POST", "/password", rotated["access_token"], "fresh_token_required")


@pytest.mark.parametrize(
    ("fresh", "status"),
    [pytest.param(True, 200, id="fresh"), pytest.param(False, 401, id="not-fresh")],
)
def test_fresh_flag_at_login(token_format: str, fresh: bool, status: int) -> None:
    app, gate = build(token_format, "memory")
    with app.app_context():
        token = gate.create_access_token("alice", fresh=fresh)
    rv = app.test_client().post("/password", headers=bearer(token))
    assert rv.status_code == status
    if not fresh:
        assert rv.get_json() == body("fresh_token_required")


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        pytest.param("GET", "/me", "refresh_token", id="refresh-as-access"),
        pytest.param("POST", "/password", "refresh_token", id="refresh-as-fresh-access"),
        pytest.param("POST", "/refresh", "access_token", id="access-as-refresh"),
    ],
)
def test_token_types_do_not_mix(client: FlaskClient, method: str, path: str, kind: str) -> None:
    pair = login(client)
    token = pair["refresh_token"] if kind == "refresh_token" else pair["access_token"]
    assert_refused(client, method, path, token, "token_type_invalid")


def test_refresh_without_a_token(client: FlaskClient) -> None:
    rv = client.post("/refresh")
    assert rv.status_code == 401
    assert rv.get_json() == body("token_missing")
    assert rv.headers.getlist("WWW-Authenticate") == ['Bearer realm="api"']


def test_standalone_refresh_token_starts_a_family(token_format: str, store: str) -> None:
    app, gate = build(token_format, store)
    client = app.test_client()
    with app.app_context():
        token = gate.create_refresh_token("bob", roles=["viewer"])
    pair = refresh(client, token)
    me = client.get("/me", headers=bearer(pair["access_token"])).get_json()
    assert me == {"sub": "bob", "roles": ["viewer"], "scopes": [], "fresh": False}
    assert_refused(client, "POST", "/refresh", token, "token_revoked")
    assert_refused(client, "GET", "/me", pair["access_token"], "token_revoked")


def test_concurrent_use_of_one_refresh_token(token_format: str, store: str) -> None:
    """Marking a refresh token used is atomic: of simultaneous uses, exactly one wins."""
    app, gate = build(token_format, store)
    with app.app_context():
        token = gate.create_refresh_token("alice")
    start = threading.Barrier(8)
    statuses: list[int] = []
    lock = threading.Lock()

    def use() -> None:
        client = app.test_client()
        start.wait()
        status = client.post("/refresh", headers=bearer(token)).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200] + [401] * 7
