"""The example app at the test-client level: every route, every guard, the CLI and the settings."""

from __future__ import annotations

import ast
import os
import pathlib
import shutil
import stat
import time
import typing as t
import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey
from kit import bearer
from werkzeug.test import TestResponse

import example_app
from example_app import create_app
from example_app import db
from flask_authgate.dpop import access_token_hash
from flask_authgate.dpop import jwk_thumbprint

SECRET = "example-test-secret-" + "x" * 48
TOKEN_MISSING = {
    "error": "Unauthorized",
    "code": "token_missing",
    "message": "No authentication token was provided",
    "status": 401,
}
NOT_FOUND = {
    "error": "Not Found",
    "code": "not_found",
    "message": "The requested resource was not found",
    "status": 404,
}
NOT_OWNER = {"error": "Forbidden", "code": "not_owner", "message": "You do not own this resource", "status": 403}
#: The example runs with AUTHGATE_DPOP = "allowed": every 401 names both schemes (RFC 9110 §11.6.1).
DPOP_BARE = 'DPoP realm="api", algs="ES256 PS256 RS256 EdDSA"'
BARE = ['Bearer realm="api"', DPOP_BARE]


def invalid_token(message: str) -> list[str]:
    return [f'Bearer realm="api", error="invalid_token", error_description="{message}"', DPOP_BARE]


def err(status: int, error: str, code: str, message: str) -> dict[str, t.Any]:
    return {"error": error, "code": code, "message": message, "status": status}


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The demo database, seeded once (password hashing is slow on purpose) and copied per test."""
    path = tmp_path_factory.mktemp("example-db") / "template.sqlite"
    db.seed(str(path))
    return path


@pytest.fixture
def db_path(tmp_path: pathlib.Path, seeded_template: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "example.sqlite"
    shutil.copy(seeded_template, path)
    return path


def build(db_path: pathlib.Path, **config: t.Any) -> Flask:
    return create_app({"TESTING": True, "DATABASE": str(db_path), "SECRET_KEY": SECRET, **config})


@pytest.fixture(params=["jwt", "signed"])
def app(request: pytest.FixtureRequest, db_path: pathlib.Path) -> Flask:
    """The example app, once per token format."""
    return build(db_path, AUTHGATE_TOKEN_FORMAT=request.param)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def login(client: FlaskClient, username: str) -> dict[str, t.Any]:
    rv = client.post("/auth/login", json={"username": username, "password": f"{username}-password"})
    assert rv.status_code == 200, rv.get_data(as_text=True)
    return t.cast(dict[str, t.Any], rv.get_json())


def as_user(client: FlaskClient, username: str) -> dict[str, str]:
    return bearer(login(client, username)["access_token"])


def advance_clock(app: Flask, seconds: float) -> None:
    """Move the app's token clock forward (issuing and checking), without sleeping."""
    app.extensions["authgate"].tokens.clock = lambda: time.time() + seconds


def assert_error(rv: TestResponse, status: int, body: dict[str, t.Any], challenges: list[str]) -> None:
    assert rv.status_code == status
    assert rv.get_json() == body
    assert rv.headers.getlist("WWW-Authenticate") == challenges
    assert rv.headers["Cache-Control"] == "no-store"


# -- the page -------------------------------------------------------------------


def test_page_is_public_and_locked_down(client: FlaskClient) -> None:
    rv = client.get("/")
    assert rv.status_code == 200
    assert rv.mimetype == "text/html"
    assert b"<title>flask-authgate demo</title>" in rv.data
    assert rv.headers["Content-Security-Policy"] == "default-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    assert rv.headers["X-Content-Type-Options"] == "nosniff"
    rv.close()


@pytest.mark.parametrize("name", ["app.js", "style.css"])
def test_static_files_need_no_token(client: FlaskClient, name: str) -> None:
    rv = client.get(f"/static/{name}")
    assert rv.status_code == 200
    rv.close()


# -- logging in -----------------------------------------------------------------


def test_login_returns_a_fresh_token_pair(client: FlaskClient) -> None:
    rv = client.post("/auth/login", json={"username": "alice", "password": "alice-password"})
    assert rv.status_code == 200
    assert rv.headers["Cache-Control"] == "no-store"
    data = rv.get_json()
    assert sorted(data) == ["access_token", "expires_in", "refresh_token", "token_type", "user"]
    assert (data["token_type"], data["expires_in"]) == ("Bearer", 900)
    assert data["user"] == {"id": "2", "username": "alice", "roles": ["user"]}
    me = client.get("/api/me", headers=bearer(data["access_token"]))
    assert me.get_json() == {"id": "2", "username": "alice", "roles": ["user"], "scopes": [], "fresh": True}


def test_admin_gets_the_reports_scope_at_login(client: FlaskClient) -> None:
    me = client.get("/api/me", headers=as_user(client, "admin"))
    assert me.get_json() == {
        "id": "1",
        "username": "admin",
        "roles": ["admin"],
        "scopes": ["reports:read"],
        "fresh": True,
    }


LOGIN_FAILED = err(401, "Unauthorized", "login_failed", "The username or the password is wrong")
BAD_INPUT = err(400, "Bad Request", "invalid_input", "Send a JSON body with a username and a password")


@pytest.mark.parametrize(
    ("body", "status", "expected", "challenges"),
    [
        pytest.param({"username": "alice", "password": "wrong"}, 401, LOGIN_FAILED, BARE, id="wrong-password"),
        pytest.param({"username": "nobody", "password": "x"}, 401, LOGIN_FAILED, BARE, id="unknown-user"),
        pytest.param({"username": "alice"}, 400, BAD_INPUT, [], id="no-password"),
        pytest.param({"username": 1, "password": "x"}, 400, BAD_INPUT, [], id="not-a-string"),
        pytest.param(["alice"], 400, BAD_INPUT, [], id="not-an-object"),
    ],
)
def test_login_refusals(
    client: FlaskClient, body: t.Any, status: int, expected: dict[str, t.Any], challenges: list[str]
) -> None:
    assert_error(client.post("/auth/login", json=body), status, expected, challenges)


def test_cookie_login_is_off_unless_configured(client: FlaskClient) -> None:
    rv = client.post("/auth/login", json={"username": "alice", "password": "alice-password", "cookies": True})
    expected = err(
        400, "Bad Request", "cookies_disabled", "Cookie login is off: add 'cookies' to AUTHGATE_TOKEN_LOCATIONS"
    )
    assert_error(rv, 400, expected, [])


# -- default deny: every route but the public ones needs a token ----------------

GUARDED = [
    ("POST", "/auth/logout"),
    ("GET", "/api/me"),
    ("POST", "/api/me/password"),
    ("GET", "/api/admin/users"),
    ("GET", "/api/reports"),
    ("GET", "/api/notes"),
    ("POST", "/api/notes"),
    ("GET", "/api/notes/1"),
    ("PUT", "/api/notes/1"),
    ("DELETE", "/api/notes/1"),
    ("GET", "/api/notes/999"),  # whether a note exists is never revealed to an anonymous caller
]


@pytest.mark.parametrize(("method", "path"), [pytest.param(m, p, id=f"{m} {p}") for m, p in GUARDED])
def test_every_guarded_route_needs_a_token(client: FlaskClient, method: str, path: str) -> None:
    assert_error(client.open(path, method=method), 401, TOKEN_MISSING, BARE)


def test_refresh_without_a_token(client: FlaskClient) -> None:
    assert_error(client.post("/auth/refresh"), 401, TOKEN_MISSING, BARE)


def test_a_garbage_token_is_401_token_invalid(client: FlaskClient) -> None:
    rv = client.get("/api/notes", headers=bearer("not.a.token"))
    body = err(401, "Unauthorized", "token_invalid", "The access token is invalid")
    assert_error(rv, 401, body, invalid_token("The access token is invalid"))


def test_unknown_method_is_json_with_allow(client: FlaskClient) -> None:
    rv = client.patch("/api/notes/1")
    assert rv.status_code == 405
    assert rv.get_json() == err(
        405, "Method Not Allowed", "method_not_allowed", "The method is not allowed for the requested URL."
    )
    assert sorted(rv.headers["Allow"].split(", ")) == ["DELETE", "GET", "HEAD", "OPTIONS", "PUT"]


# -- roles, scopes, IP ------------------------------------------------------------


def test_admin_users_needs_the_admin_role(client: FlaskClient) -> None:
    rv = client.get("/api/admin/users", headers=as_user(client, "alice"))
    body = err(403, "Forbidden", "insufficient_role", "You do not have a role this request requires")
    assert_error(rv, 403, body, [])
    rv = client.get("/api/admin/users", headers=as_user(client, "admin"))
    assert rv.status_code == 200
    assert rv.get_json() == {
        "users": [
            {"id": "1", "username": "admin", "roles": ["admin"], "notes": 1},
            {"id": "2", "username": "alice", "roles": ["user"], "notes": 2},
            {"id": "3", "username": "bob", "roles": ["user"], "notes": 1},
        ]
    }


def test_reports_need_the_reports_scope(client: FlaskClient) -> None:
    rv = client.get("/api/reports", headers=as_user(client, "alice"))
    body = err(403, "Forbidden", "insufficient_scope", "The access token lacks a scope this request requires")
    assert_error(rv, 403, body, ['Bearer realm="api", error="insufficient_scope", scope="reports:read"'])
    rv = client.get("/api/reports", headers=as_user(client, "admin"))
    assert (rv.status_code, rv.get_json()) == (200, {"report": {"users": 3, "notes": 4}})


IP_DENIED = err(403, "Forbidden", "ip_denied", "Your network address is not allowed to access this resource")


@pytest.mark.parametrize(
    ("remote", "status"),
    [
        pytest.param("127.0.0.1", 200, id="loopback-v4"),
        pytest.param("127.8.9.10", 200, id="loopback-net"),
        pytest.param("::1", 200, id="loopback-v6"),
        pytest.param("::ffff:127.0.0.1", 200, id="v4-mapped-loopback"),
        pytest.param("10.0.0.7", 403, id="private-net"),
        pytest.param("203.0.113.9", 403, id="internet"),
    ],
)
def test_health_is_loopback_only_without_a_token(client: FlaskClient, remote: str, status: int) -> None:
    rv = client.get("/api/internal/health", environ_base={"REMOTE_ADDR": remote})
    if status == 200:
        assert rv.get_json() == {"status": "ok"}
    else:
        assert_error(rv, 403, IP_DENIED, [])


def test_health_behind_a_proxy_uses_proxyfix(db_path: pathlib.Path) -> None:
    client = build(db_path, PROXY_FIX_X_FOR=1).test_client()
    local = {"REMOTE_ADDR": "127.0.0.1"}
    rv = client.get("/api/internal/health", environ_base=local, headers={"X-Forwarded-For": "203.0.113.9"})
    assert_error(rv, 403, IP_DENIED, [])
    rv = client.get("/api/internal/health", environ_base=local, headers={"X-Forwarded-For": "127.0.0.1"})
    assert rv.status_code == 200


def test_without_proxyfix_forwarded_for_is_ignored(client: FlaskClient) -> None:
    rv = client.get("/api/internal/health", headers={"X-Forwarded-For": "203.0.113.9"})
    assert rv.status_code == 200


def test_roles_come_from_the_database(app: Flask, client: FlaskClient) -> None:
    headers = as_user(client, "admin")
    assert client.get("/api/admin/users", headers=headers).status_code == 200
    with app.app_context():
        conn = db.get_db()
        conn.execute("DELETE FROM user_roles WHERE user_id = 1")
        conn.commit()
    assert client.get("/api/admin/users", headers=headers).status_code == 403


def test_a_deleted_user_is_401_identity_not_found(app: Flask, client: FlaskClient) -> None:
    headers = as_user(client, "bob")
    with app.app_context():
        conn = db.get_db()
        conn.execute("DELETE FROM users WHERE id = 3")
        conn.commit()
    rv = client.get("/api/me", headers=headers)
    body = err(401, "Unauthorized", "identity_not_found", "The identity of the token no longer exists")
    assert_error(rv, 401, body, invalid_token("The identity of the token no longer exists"))


# -- notes and ownership ----------------------------------------------------------


def test_my_notes(client: FlaskClient) -> None:
    rv = client.get("/api/notes", headers=as_user(client, "alice"))
    notes = rv.get_json()["notes"]
    assert [(n["id"], n["owner_id"], n["title"], n["body"]) for n in notes] == [
        (1, "2", "Shopping list", "Milk, eggs, coffee"),
        (2, "2", "Ideas", "A Flask extension that gets 401 and 403 right"),
    ]


def test_reading_someone_elses_note_is_hidden(client: FlaskClient) -> None:
    headers = as_user(client, "alice")
    assert client.get("/api/notes/1", headers=headers).get_json()["title"] == "Shopping list"
    hidden = client.get("/api/notes/3", headers=headers)
    missing = client.get("/api/notes/999", headers=headers)
    assert_error(hidden, 404, NOT_FOUND, [])
    # Indistinguishable from a note that does not exist.
    assert hidden.get_data() == missing.get_data()
    assert sorted(hidden.headers.items()) == sorted(missing.headers.items())
    # The owner sees it.
    assert client.get("/api/notes/3", headers=as_user(client, "bob")).status_code == 200


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_changing_someone_elses_note_is_the_same_404_as_a_missing_one(client: FlaskClient, method: str) -> None:
    # Issue 9 item 12: a 403 here would tell that note 3 exists; every refusal on a hidden
    # resource is the same 404, byte for byte.
    headers = as_user(client, "alice")
    theirs = client.open("/api/notes/3", method=method, headers=headers, json={"title": "mine now"})
    missing = client.open("/api/notes/999", method=method, headers=headers, json={"title": "x"})
    assert_error(theirs, 404, NOT_FOUND, [])
    assert (theirs.status_code, theirs.data, sorted(theirs.headers.items())) == (
        missing.status_code,
        missing.data,
        sorted(missing.headers.items()),
    )
    assert client.get("/api/notes/3", headers=as_user(client, "bob")).get_json()["title"] == "Bob's plans"


def test_create_update_delete_my_note(client: FlaskClient) -> None:
    headers = as_user(client, "alice")
    rv = client.post("/api/notes", headers=headers, json={"title": "  New  ", "body": "text"})
    assert rv.status_code == 201
    note = rv.get_json()
    assert rv.headers["Location"] == f"/api/notes/{note['id']}"
    assert (note["id"], note["owner_id"], note["title"], note["body"]) == (5, "2", "New", "text")
    rv = client.put("/api/notes/5", headers=headers, json={"title": "Renamed", "body": "more"})
    assert (rv.status_code, rv.get_json()["title"], rv.get_json()["body"]) == (200, "Renamed", "more")
    rv = client.delete("/api/notes/5", headers=headers)
    assert (rv.status_code, rv.data) == (204, b"")
    assert_error(client.get("/api/notes/5", headers=headers), 404, NOT_FOUND, [])


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-title"),
        pytest.param({"title": "   "}, id="blank-title"),
        pytest.param({"title": "x" * 201}, id="long-title"),
        pytest.param({"title": "ok", "body": 5}, id="body-not-text"),
    ],
)
def test_note_input_is_checked(client: FlaskClient, body: dict[str, t.Any]) -> None:
    rv = client.post("/api/notes", headers=as_user(client, "alice"), json=body)
    assert rv.status_code == 400
    assert rv.get_json()["code"] == "invalid_input"


# -- refresh, expiry, logout, freshness ----------------------------------------------


def test_refresh_rotates_and_detects_reuse(client: FlaskClient) -> None:
    first = login(client, "alice")
    rv = client.post("/auth/refresh", headers=bearer(first["refresh_token"]))
    assert rv.status_code == 200
    second = rv.get_json()
    assert sorted(second) == ["access_token", "expires_in", "refresh_token", "token_type"]
    assert client.get("/api/me", headers=bearer(second["access_token"])).get_json()["fresh"] is False
    # The used refresh token again: theft suspected, the whole family ends.
    reused = client.post("/auth/refresh", headers=bearer(first["refresh_token"]))
    # Issue 9 item 18: the message names the token it is about.
    revoked = err(401, "Unauthorized", "token_revoked", "The refresh token was revoked")
    assert_error(reused, 401, revoked, invalid_token("The refresh token was revoked"))
    assert client.get("/api/me", headers=bearer(second["access_token"])).status_code == 401
    assert client.post("/auth/refresh", headers=bearer(second["refresh_token"])).status_code == 401


def test_token_types_do_not_mix(client: FlaskClient) -> None:
    pair = login(client, "alice")
    wrong = err(401, "Unauthorized", "token_type_invalid", "The token is of the wrong type for this request")
    challenge = invalid_token("The token is of the wrong type for this request")
    assert_error(client.post("/auth/refresh", headers=bearer(pair["access_token"])), 401, wrong, challenge)
    assert_error(client.get("/api/me", headers=bearer(pair["refresh_token"])), 401, wrong, challenge)


def test_an_expired_access_token_is_refreshed(app: Flask, client: FlaskClient) -> None:
    pair = login(client, "alice")
    advance_clock(app, 16 * 60)
    rv = client.get("/api/notes", headers=bearer(pair["access_token"]))
    expired = err(401, "Unauthorized", "token_expired", "The access token expired")
    assert_error(rv, 401, expired, invalid_token("The access token expired"))
    new = client.post("/auth/refresh", headers=bearer(pair["refresh_token"])).get_json()
    assert client.get("/api/notes", headers=bearer(new["access_token"])).status_code == 200


def test_logout_revokes_both_tokens(client: FlaskClient) -> None:
    pair = login(client, "alice")
    rv = client.post(
        "/auth/logout", headers=bearer(pair["access_token"]), json={"refresh_token": pair["refresh_token"]}
    )
    assert (rv.status_code, rv.get_json()) == (200, {"message": "Logged out"})
    revoked = err(401, "Unauthorized", "token_revoked", "The access token was revoked")
    assert_error(
        client.get("/api/me", headers=bearer(pair["access_token"])), 401, revoked, invalid_token(revoked["message"])
    )
    refresh_revoked = err(401, "Unauthorized", "token_revoked", "The refresh token was revoked")
    assert_error(
        client.post("/auth/refresh", headers=bearer(pair["refresh_token"])),
        401,
        refresh_revoked,
        invalid_token(refresh_revoked["message"]),
    )


def test_logout_ignores_a_bad_refresh_token(client: FlaskClient) -> None:
    pair = login(client, "alice")
    rv = client.post("/auth/logout", headers=bearer(pair["access_token"]), json={"refresh_token": "garbage"})
    assert rv.status_code == 200
    assert client.get("/api/me", headers=bearer(pair["access_token"])).status_code == 401


def test_logout_everywhere(client: FlaskClient) -> None:
    laptop, phone = login(client, "alice"), login(client, "alice")
    bob = login(client, "bob")
    rv = client.post("/auth/logout", headers=bearer(laptop["access_token"]), json={"everywhere": True})
    assert rv.status_code == 200
    for token in (laptop["access_token"], phone["access_token"]):
        assert client.get("/api/me", headers=bearer(token)).get_json()["code"] == "token_revoked"
    assert client.post("/auth/refresh", headers=bearer(phone["refresh_token"])).status_code == 401
    assert client.get("/api/me", headers=bearer(bob["access_token"])).status_code == 200


def test_changing_the_password_needs_a_fresh_login(client: FlaskClient) -> None:
    pair = login(client, "alice")
    refreshed = client.post("/auth/refresh", headers=bearer(pair["refresh_token"])).get_json()
    rv = client.post("/api/me/password", headers=bearer(refreshed["access_token"]), json={"new_password": "n" * 12})
    stale = err(401, "Unauthorized", "fresh_token_required", "This request needs a token from a fresh login")
    assert_error(rv, 401, stale, invalid_token(stale["message"]))
    rv = client.post("/api/me/password", headers=bearer(pair["access_token"]), json={"new_password": "short"})
    assert (rv.status_code, rv.get_json()["code"]) == (400, "invalid_input")
    rv = client.post("/api/me/password", headers=bearer(pair["access_token"]), json={"new_password": "n" * 12})
    assert (rv.status_code, rv.get_json()) == (200, {"message": "Password changed"})
    assert client.post("/auth/login", json={"username": "alice", "password": "alice-password"}).status_code == 401
    assert client.post("/auth/login", json={"username": "alice", "password": "n" * 12}).status_code == 200


# -- cookies ---------------------------------------------------------------------


@pytest.fixture
def cookie_client(db_path: pathlib.Path) -> FlaskClient:
    app = build(db_path, AUTHGATE_TOKEN_LOCATIONS=["headers", "cookies"], AUTHGATE_COOKIE_SECURE=False)
    return app.test_client()


def test_cookie_login_flow(cookie_client: FlaskClient) -> None:
    client = cookie_client
    rv = client.post("/auth/login", json={"username": "alice", "password": "alice-password", "cookies": True})
    assert rv.status_code == 200
    assert rv.get_json() == {
        "token_type": "cookie",
        "expires_in": 900,
        "user": {"id": "2", "username": "alice", "roles": ["user"]},
    }
    set_cookies = rv.headers.getlist("Set-Cookie")
    assert sorted(c.split("=", 1)[0] for c in set_cookies) == ["authgate_access", "authgate_csrf", "authgate_refresh"]
    assert all("HttpOnly" in c for c in set_cookies if not c.startswith("authgate_csrf="))

    me = client.get("/api/me")
    assert me.status_code == 200
    assert (me.headers["Cache-Control"], me.headers["Vary"]) == ("private", "Cookie")

    no_csrf = client.post("/api/notes", json={"title": "x"})
    csrf_failed = err(403, "Forbidden", "csrf_failed", "The CSRF token is missing or does not match")
    assert_error(no_csrf, 403, csrf_failed, [])
    csrf_cookie = client.get_cookie("authgate_csrf")
    assert csrf_cookie is not None
    csrf = {"X-CSRF-Token": csrf_cookie.value}
    assert client.post("/api/notes", json={"title": "x"}, headers=csrf).status_code == 201

    old_access = client.get_cookie("authgate_access")
    assert old_access is not None
    rv = client.post("/auth/refresh", headers=csrf)
    assert (rv.status_code, rv.get_json()) == (200, {"token_type": "cookie", "expires_in": 900})
    new_csrf_cookie = client.get_cookie("authgate_csrf")
    assert new_csrf_cookie is not None
    new_csrf = {"X-CSRF-Token": new_csrf_cookie.value}

    rv = client.post("/auth/logout", headers=new_csrf)
    assert rv.status_code == 200
    assert client.get_cookie("authgate_access") is None
    assert_error(client.get("/api/me"), 401, TOKEN_MISSING, BARE)


def test_header_and_cookie_at_once_is_400(cookie_client: FlaskClient) -> None:
    client = cookie_client
    client.post("/auth/login", json={"username": "alice", "password": "alice-password", "cookies": True})
    header = as_user(client, "alice")
    rv = client.get("/api/me", headers=header)
    body = err(400, "Bad Request", "invalid_request", "The request sent credentials more than once")
    assert_error(rv, 400, body, ['Bearer realm="api", error="invalid_request"'])


# -- the CLI and the settings ---------------------------------------------------------


def test_seed_command_prints_the_logins(tmp_path: pathlib.Path) -> None:
    app = build(tmp_path / "fresh.sqlite")
    result = app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"Seeded the demo database at {tmp_path / 'fresh.sqlite'}\n"
        "Demo logins (username / password, roles, second-factor code for the step-up login):\n"
        "  admin  / admin-password  admin  314159\n"
        "  alice  / alice-password  user   271828\n"
        "  bob    / bob-password    user   161803\n"
    )
    client = app.test_client()
    assert client.post("/auth/login", json={"username": "bob", "password": "bob-password"}).status_code == 200


def test_revoke_user_command_refuses_the_memory_store(app: Flask, client: FlaskClient) -> None:
    # Issue 9 item 16: the command is its own process; an in-memory revocation reaches no server.
    headers = as_user(client, "alice")
    result = app.test_cli_runner().invoke(args=["revoke-user", "alice"])
    assert result.exit_code == 1
    assert "AUTHGATE_REVOCATION_STORE is 'memory'" in result.output
    assert client.get("/api/me", headers=headers).status_code == 200


@pytest.mark.redis
def test_revoke_user_command(db_path: pathlib.Path, redis_url: str) -> None:
    app = build(db_path, AUTHGATE_REVOCATION_STORE=redis_url)
    client = app.test_client()
    headers = as_user(client, "alice")
    result = app.test_cli_runner().invoke(args=["revoke-user", "alice"])
    assert (result.exit_code, result.output) == (0, "Revoked every token of alice (subject 2)\n")
    assert client.get("/api/me", headers=headers).get_json()["code"] == "token_revoked"
    result = app.test_cli_runner().invoke(args=["revoke-user", "nobody"])
    assert (result.exit_code, result.output) == (1, "Error: no user named 'nobody'\n")


def test_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, db_path: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    monkeypatch.setenv("FLASK_DATABASE", str(db_path))
    monkeypatch.setenv("FLASK_SECRET_KEY", SECRET)
    monkeypatch.setenv("FLASK_AUTHGATE_ACCESS_TOKEN_EXPIRES", "60")
    monkeypatch.setenv("FLASK_AUTHGATE_TOKEN_LOCATIONS", '["headers", "cookies"]')
    app = create_app()
    assert app.config["DATABASE"] == str(db_path)
    assert app.config["AUTHGATE_DEFAULT_DENY"] is True
    settings = app.extensions["authgate"].settings
    assert (settings.tokens.access_expires, settings.tokens.locations) == (60.0, frozenset({"headers", "cookies"}))
    assert login(app.test_client(), "alice")["expires_in"] == 60
    # The mapping given to create_app wins over the environment.
    assert create_app({"DATABASE": "other.sqlite"}).config["DATABASE"] == "other.sqlite"


def test_the_development_secret_key_is_random_and_kept(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "instance"
    first = example_app._dev_secret_key(str(folder))
    assert len(first) >= 64
    assert example_app._dev_secret_key(str(folder)) == first
    assert stat.S_IMODE(os.stat(folder / "dev-secret-key").st_mode) == 0o600
    assert os.listdir(folder) == ["dev-secret-key"]
    assert example_app._dev_secret_key(str(tmp_path / "other")) != first


def test_the_gate_serves_many_apps(db_path: pathlib.Path) -> None:
    one, two = build(db_path), build(db_path, SECRET_KEY="another-secret-" + "y" * 48)
    assert one.extensions["authgate"] is not two.extensions["authgate"]
    token = login(one.test_client(), "alice")["access_token"]
    assert two.test_client().get("/api/me", headers=bearer(token)).get_json()["code"] == "token_invalid"


# -- DPoP (RFC 9449): the example binds the tokens of a login that proves a key ----------------

PROOF_INVALID = err(401, "Unauthorized", "dpop_proof_invalid", "The DPoP proof is invalid")
PROOF_INVALID_CHALLENGES = [
    'Bearer realm="api"',
    f'{DPOP_BARE}, error="invalid_dpop_proof", error_description="The DPoP proof is invalid"',
]
TOKEN_INVALID = err(401, "Unauthorized", "token_invalid", "The access token is invalid")
STEP_UP = err(
    401,
    "Unauthorized",
    "insufficient_user_authentication",
    "A stronger or more recent authentication is required",
)
STEP_UP_PARAMS = f'error="insufficient_user_authentication", error_description="{STEP_UP["message"]}", acr_values="mfa", max_age="300"'


class DpopClient:
    """A DPoP client with its own P-256 key; its proofs are made by joserfc (code nobody here wrote)."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.key = ECKey.generate_key("P-256")
        self.jwk = self.key.as_dict(private=False)
        self.jkt = jwk_thumbprint(self.jwk)

    def proof(self, method: str, path: str, token: str | None = None, **overrides: t.Any) -> str:
        claims: dict[str, t.Any] = {
            "jti": str(uuid.uuid4()),
            "htm": method,
            "htu": f"http://localhost{path}",
            "iat": int(time.time()),
        }
        if token is not None:
            claims["ath"] = access_token_hash(token)
        claims.update(overrides)
        return jose_jwt.encode({"alg": "ES256", "typ": "dpop+jwt", "jwk": self.jwk}, claims, self.key)

    def login(self, username: str, password: str | None = None) -> dict[str, t.Any]:
        rv = self.client.post(
            "/auth/login",
            json={"username": username, "password": password or f"{username}-password"},
            headers={"DPoP": self.proof("POST", "/auth/login")},
        )
        assert rv.status_code == 200, rv.get_data(as_text=True)
        return t.cast(dict[str, t.Any], rv.get_json())

    def headers(self, method: str, path: str, token: str) -> dict[str, str]:
        return {"Authorization": f"DPoP {token}", "DPoP": self.proof(method, path, token)}

    def call(self, method: str, path: str, token: str, **kwargs: t.Any) -> TestResponse:
        return self.client.open(path, method=method, headers=self.headers(method, path, token), **kwargs)

    def refresh(self, refresh_token: str, *, proof: bool = True) -> TestResponse:
        headers = bearer(refresh_token)
        if proof:
            headers["DPoP"] = self.proof("POST", "/auth/refresh")  # no ath at a token endpoint (RFC 9449 §5)
        return self.client.post("/auth/refresh", headers=headers)

    def step_up(self, token: str, password: str, code: str) -> TestResponse:
        return self.call("POST", "/auth/step-up", token, json={"password": password, "code": code})


@pytest.fixture
def dpop_client(client: FlaskClient) -> DpopClient:
    return DpopClient(client)


def test_a_login_with_a_proof_gets_tokens_bound_to_its_key(dpop_client: DpopClient) -> None:
    pair = dpop_client.login("alice")
    assert sorted(pair) == ["access_token", "expires_in", "refresh_token", "token_type", "user"]
    assert (pair["token_type"], pair["expires_in"]) == ("DPoP", 900)
    me = dpop_client.call("GET", "/api/me", pair["access_token"])
    assert me.status_code == 200
    assert me.get_json() == {"id": "2", "username": "alice", "roles": ["user"], "scopes": [], "fresh": True}
    # Every request needs its own proof: the same proof twice is a replay.
    headers = dpop_client.headers("GET", "/api/notes", pair["access_token"])
    assert dpop_client.client.get("/api/notes", headers=headers).status_code == 200
    replayed = dpop_client.client.get("/api/notes", headers=headers)
    assert_error(replayed, 401, PROOF_INVALID, PROOF_INVALID_CHALLENGES)


def test_a_bound_token_is_refused_as_bearer_and_with_another_key(dpop_client: DpopClient) -> None:
    token = dpop_client.login("alice")["access_token"]
    client = dpop_client.client
    as_bearer = client.get("/api/me", headers=bearer(token))
    assert_error(as_bearer, 401, TOKEN_INVALID, invalid_token("The access token is invalid"))
    thief = DpopClient(client)  # a stolen token, proofs signed with the thief's own key
    stolen = thief.call("GET", "/api/me", token)
    bad_binding = f'{DPOP_BARE}, error="invalid_token", error_description="The access token is invalid"'
    assert_error(stolen, 401, TOKEN_INVALID, ['Bearer realm="api"', bad_binding])


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda c: {"DPoP": c.proof("POST", "/auth/refresh")}, id="htu-of-another-path"),
        pytest.param(lambda c: {"DPoP": c.proof("GET", "/auth/login")}, id="wrong-method"),
        pytest.param(lambda c: {"DPoP": c.proof("POST", "/auth/login", iat=int(time.time()) - 600)}, id="stale"),
        pytest.param(lambda c: {"DPoP": "not.a.proof"}, id="garbage"),
        pytest.param(lambda c: {"DPoP": "x" * 100_000}, id="100-kb"),
        pytest.param(
            lambda c: [("DPoP", c.proof("POST", "/auth/login")), ("DPoP", c.proof("POST", "/auth/login"))],
            id="two-headers",
        ),
    ],
)
def test_a_login_proof_that_fails_a_check_is_refused_before_the_password(
    dpop_client: DpopClient, make: t.Callable[[DpopClient], t.Any]
) -> None:
    rv = dpop_client.client.post(
        "/auth/login", json={"username": "alice", "password": "alice-password"}, headers=make(dpop_client)
    )
    assert_error(rv, 401, PROOF_INVALID, PROOF_INVALID_CHALLENGES)


def test_a_login_proof_cannot_be_replayed(dpop_client: DpopClient) -> None:
    headers = {"DPoP": dpop_client.proof("POST", "/auth/login")}
    body = {"username": "alice", "password": "alice-password"}
    assert dpop_client.client.post("/auth/login", json=body, headers=headers).status_code == 200
    again = dpop_client.client.post("/auth/login", json=body, headers=headers)
    assert_error(again, 401, PROOF_INVALID, PROOF_INVALID_CHALLENGES)


def test_a_login_failure_names_both_schemes(dpop_client: DpopClient) -> None:
    rv = dpop_client.client.post(
        "/auth/login",
        json={"username": "alice", "password": "wrong"},
        headers={"DPoP": dpop_client.proof("POST", "/auth/login")},
    )
    assert_error(rv, 401, LOGIN_FAILED, BARE)


def test_required_mode_refuses_a_login_without_a_proof(db_path: pathlib.Path) -> None:
    client = build(db_path, AUTHGATE_DPOP="required").test_client()
    rv = client.post("/auth/login", json={"username": "alice", "password": "alice-password"})
    proof_invalid = f'{DPOP_BARE}, error="invalid_dpop_proof", error_description="The DPoP proof is invalid"'
    assert_error(rv, 401, PROOF_INVALID, [proof_invalid])
    dpop_client = DpopClient(client)
    token = dpop_client.login("alice")["access_token"]
    assert dpop_client.call("GET", "/api/me", token).status_code == 200
    wrong = client.post("/auth/login", json={"username": "alice", "password": "wrong"})
    assert_error(wrong, 401, PROOF_INVALID, [proof_invalid])


def test_with_dpop_off_a_proof_is_ignored(db_path: pathlib.Path) -> None:
    # RFC 9449 §5: a server that does not speak DPoP answers token_type Bearer; the client follows.
    client = build(db_path, AUTHGATE_DPOP=False).test_client()
    pair = DpopClient(client).login("alice")
    assert pair["token_type"] == "Bearer"
    assert client.get("/api/me", headers=bearer(pair["access_token"])).status_code == 200
    assert_error(client.get("/api/me"), 401, TOKEN_MISSING, ['Bearer realm="api"'])


def test_a_cookie_login_is_a_bearer_session(db_path: pathlib.Path) -> None:
    app = build(db_path, AUTHGATE_TOKEN_LOCATIONS=["headers", "cookies"], AUTHGATE_COOKIE_SECURE=False)
    dpop_client = DpopClient(app.test_client())
    rv = dpop_client.client.post(
        "/auth/login",
        json={"username": "alice", "password": "alice-password", "cookies": True},
        headers={"DPoP": dpop_client.proof("POST", "/auth/login")},
    )
    assert rv.get_json()["token_type"] == "cookie"
    assert dpop_client.client.get("/api/me").status_code == 200  # a bound token in a cookie could not work


def test_a_dpop_session_refreshes_only_with_a_proof_of_its_key(dpop_client: DpopClient) -> None:
    pair = dpop_client.login("alice")
    client = dpop_client.client
    refresh_invalid = err(401, "Unauthorized", "token_invalid", "The refresh token is invalid")
    # No proof, or a proof of another key: refused, and the refresh token is not used up.
    assert_error(dpop_client.refresh(pair["refresh_token"], proof=False), 401, PROOF_INVALID, PROOF_INVALID_CHALLENGES)
    thief = DpopClient(client)
    assert_error(
        thief.refresh(pair["refresh_token"]),
        401,
        refresh_invalid,
        invalid_token("The refresh token is invalid"),
    )
    rv = dpop_client.refresh(pair["refresh_token"])
    assert rv.status_code == 200
    new = rv.get_json()
    assert (sorted(new), new["token_type"], new["expires_in"]) == (
        ["access_token", "expires_in", "refresh_token", "token_type"],
        "DPoP",
        900,
    )
    me = dpop_client.call("GET", "/api/me", new["access_token"])
    assert (me.status_code, me.get_json()["fresh"]) == (200, False)
    assert client.get("/api/me", headers=bearer(new["access_token"])).get_json()["code"] == "token_invalid"
    assert thief.call("GET", "/api/me", new["access_token"]).get_json()["code"] == "token_invalid"
    # Rotation and reuse detection still hold.
    assert dpop_client.refresh(new["refresh_token"]).status_code == 200
    reused = dpop_client.refresh(pair["refresh_token"])
    assert reused.get_json()["code"] == "token_revoked"


def test_logout_revokes_a_bound_access_token(dpop_client: DpopClient) -> None:
    pair = dpop_client.login("alice")
    rv = dpop_client.call("POST", "/auth/logout", pair["access_token"], json={"refresh_token": pair["refresh_token"]})
    assert (rv.status_code, rv.get_json()) == (200, {"message": "Logged out"})
    assert dpop_client.call("GET", "/api/me", pair["access_token"]).get_json()["code"] == "token_revoked"
    assert dpop_client.refresh(pair["refresh_token"]).get_json()["code"] == "token_revoked"


# -- step-up (RFC 9470): DELETE /api/notes needs a second-factor login of the last 5 minutes ----


def test_deleting_all_notes_asks_a_password_login_to_step_up(dpop_client: DpopClient, client: FlaskClient) -> None:
    token = dpop_client.login("alice")["access_token"]
    rv = dpop_client.call("DELETE", "/api/notes", token)
    # On the DPoP challenge: the scheme the request used.
    assert_error(rv, 401, STEP_UP, ['Bearer realm="api"', f"{DPOP_BARE}, {STEP_UP_PARAMS}"])
    # A bearer session is asked on the Bearer challenge.
    rv = client.delete("/api/notes", headers=as_user(client, "alice"))
    assert_error(rv, 401, STEP_UP, [f'Bearer realm="api", {STEP_UP_PARAMS}', DPOP_BARE])
    assert len(client.get("/api/notes", headers=as_user(client, "alice")).get_json()["notes"]) == 2


def test_a_step_up_login_allows_it_for_five_minutes(app: Flask, dpop_client: DpopClient) -> None:
    token = dpop_client.login("alice")["access_token"]
    rv = dpop_client.step_up(token, "alice-password", "271828")
    assert rv.status_code == 200
    assert rv.headers["Cache-Control"] == "no-store"
    stepped = rv.get_json()
    assert (sorted(stepped), stepped["token_type"], stepped["expires_in"]) == (
        ["access_token", "expires_in", "token_type"],
        "DPoP",
        900,
    )
    # The weaker token is revoked; the new one is bound to the same key.
    assert dpop_client.call("GET", "/api/me", token).get_json()["code"] == "token_revoked"
    assert dpop_client.client.get("/api/me", headers=bearer(stepped["access_token"])).status_code == 401
    rv = dpop_client.call("DELETE", "/api/notes", stepped["access_token"])
    assert (rv.status_code, rv.get_json()) == (200, {"deleted": 2})
    assert dpop_client.call("GET", "/api/notes", stepped["access_token"]).get_json() == {"notes": []}
    # Bob's note is untouched.
    bob = DpopClient(dpop_client.client)
    assert len(bob.call("GET", "/api/notes", bob.login("bob")["access_token"]).get_json()["notes"]) == 1
    # Five minutes and a second later the same token must step up again (max_age=300).
    advance_clock(app, 301)
    rv = dpop_client.call("DELETE", "/api/notes", stepped["access_token"])
    assert rv.get_json()["code"] == "insufficient_user_authentication"


def test_a_refreshed_token_is_a_password_login_again(dpop_client: DpopClient) -> None:
    pair = dpop_client.login("alice")
    stepped = dpop_client.step_up(pair["access_token"], "alice-password", "271828").get_json()["access_token"]
    assert dpop_client.call("GET", "/api/me", stepped).status_code == 200
    refreshed = dpop_client.refresh(pair["refresh_token"]).get_json()["access_token"]
    rv = dpop_client.call("DELETE", "/api/notes", refreshed)
    assert rv.get_json()["code"] == "insufficient_user_authentication"


@pytest.mark.parametrize(
    ("password", "code"),
    [
        pytest.param("alice-password", "000000", id="wrong-code"),
        pytest.param("wrong", "271828", id="wrong-password"),
        pytest.param("alice-password", "161803", id="another-users-code"),
    ],
)
def test_a_failed_step_up_keeps_the_session(dpop_client: DpopClient, password: str, code: str) -> None:
    token = dpop_client.login("alice")["access_token"]
    rv = dpop_client.step_up(token, password, code)
    failed = err(401, "Unauthorized", "step_up_failed", "The password or the second-factor code is wrong")
    assert_error(rv, 401, failed, BARE)
    assert dpop_client.call("GET", "/api/me", token).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"password": "alice-password"}, id="no-code"),
        pytest.param({"password": "alice-password", "code": 271828}, id="code-not-a-string"),
        pytest.param(["alice-password"], id="not-an-object"),
    ],
)
def test_step_up_input_is_checked(dpop_client: DpopClient, body: t.Any) -> None:
    token = dpop_client.login("alice")["access_token"]
    rv = dpop_client.call("POST", "/auth/step-up", token, json=body)
    bad = err(400, "Bad Request", "invalid_input", "Send a JSON body with the password and the second-factor code")
    assert_error(rv, 400, bad, [])


def test_step_up_needs_a_session(client: FlaskClient) -> None:
    rv = client.post("/auth/step-up", json={"password": "alice-password", "code": "271828"})
    assert_error(rv, 401, TOKEN_MISSING, BARE)


def test_a_bearer_session_steps_up_too(client: FlaskClient) -> None:
    # What docs/example.md shows with curl: no proof, bearer tokens all the way.
    token = login(client, "alice")["access_token"]
    rv = client.post("/auth/step-up", headers=bearer(token), json={"password": "alice-password", "code": "271828"})
    stepped = rv.get_json()
    assert (rv.status_code, stepped["token_type"], stepped["expires_in"]) == (200, "Bearer", 900)
    rv = client.delete("/api/notes", headers=bearer(stepped["access_token"]))
    assert (rv.status_code, rv.get_json()) == (200, {"deleted": 2})
    assert client.get("/api/me", headers=bearer(token)).get_json()["code"] == "token_revoked"


def test_required_mode_refresh(db_path: pathlib.Path) -> None:
    # A refresh token goes to a token endpoint, where Bearer is spoken in every DPoP mode: the
    # proof beside it (no ath, RFC 9449 §5) is what binds it.
    dpop_client = DpopClient(build(db_path, AUTHGATE_DPOP="required").test_client())
    pair = dpop_client.login("alice")
    assert dpop_client.refresh(pair["refresh_token"]).status_code == 200


# -- a model to copy: public API only (issue: no hand-built error JSON, no hand-built challenge) --

EXAMPLE_SOURCES = sorted(pathlib.Path(example_app.__file__).parent.glob("*.py"))


def hand_built_errors(source: str) -> list[str]:
    """Where ``source`` builds an error body or a ``WWW-Authenticate`` challenge itself.

    An error body: a dict display with an ``"error"`` key, or an ``error=``
    keyword (``jsonify(error=...)``, ``dict(error=...)``). A challenge: any
    string (f-strings included) naming ``WWW-Authenticate`` or holding
    ``realm=``. Docstrings are prose, not code, and are left out.
    """
    tree = ast.parse(source)
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    found: list[str] = []
    for node in ast.walk(tree):
        where = f"line {getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Dict):
            if any(isinstance(key, ast.Constant) and key.value == "error" for key in node.keys):
                found.append(f"{where}: a dict with an 'error' key")
        elif isinstance(node, ast.Call):
            if any(keyword.arg == "error" for keyword in node.keywords):
                found.append(f"{where}: a call with error=")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value.lower()
            if "www-authenticate" in text or "realm=" in text:
                found.append(f"{where}: a hand-written challenge {node.value!r}")
    return found


def test_the_checker_finds_hand_built_errors() -> None:
    # What example_app/auth.py did before gate.error_response: each form must be caught.
    samples = [
        'jsonify({"error": "Unauthorized", "code": code, "message": message, "status": 401})',
        'jsonify(error="Unauthorized", code="login_failed")',
        'response.headers.add("WWW-Authenticate", "Bearer")',
        'response.headers["www-authenticate"] = value',
        'line = f\'DPoP realm="{realm}", algs="{algs}"\'',
    ]
    for sample in samples:
        assert hand_built_errors(sample), sample
    assert hand_built_errors('"""Docstring: a 401 carries WWW-Authenticate."""') == []
    assert hand_built_errors('gate.error_response(401, "login_failed", "Wrong")') == []


@pytest.mark.parametrize("path", EXAMPLE_SOURCES, ids=lambda p: p.name)
def test_the_example_builds_no_error_body_and_no_challenge_by_hand(path: pathlib.Path) -> None:
    assert hand_built_errors(path.read_text()) == [], f"{path.name}: use gate.error_response"


def test_every_example_module_is_checked() -> None:
    assert {p.name for p in EXAMPLE_SOURCES} >= {"__init__.py", "api.py", "auth.py", "dpop.py"}
