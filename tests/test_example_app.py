"""The example app at the test-client level: every route, every guard, the CLI and the settings."""

from __future__ import annotations

import os
import pathlib
import shutil
import stat
import time
import typing as t

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kit import bearer
from werkzeug.test import TestResponse

import example_app
from example_app import create_app
from example_app import db

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
BARE = ['Bearer realm="api"']


def invalid_token(message: str) -> list[str]:
    return [f'Bearer realm="api", error="invalid_token", error_description="{message}"']


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
        "Demo logins (username / password, roles):\n"
        "  admin  / admin-password  admin\n"
        "  alice  / alice-password  user\n"
        "  bob    / bob-password    user\n"
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
    assert (settings.access_expires, settings.token_locations) == (60.0, frozenset({"headers", "cookies"}))
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
