"""Tokens in cookies: the cookie helpers, CSRF double submit, refresh through the cookie."""

from __future__ import annotations

import re
import typing as t

import pytest
from conftest import make_app
from flask import Flask
from flask import Response
from flask import jsonify
from flask.testing import FlaskClient
from kit import bearer
from kit import body

from flask_authgate import AuthGate
from flask_authgate import current_identity
from flask_authgate import login_required
from flask_authgate import refresh_token_required

COOKIES = {"AUTHGATE_TOKEN_LOCATIONS": ["headers", "cookies"]}
UNSAFE = ["POST", "PUT", "PATCH", "DELETE"]


def build(token_format: str, **config: t.Any) -> tuple[Flask, AuthGate]:
    app, gate = make_app({"AUTHGATE_TOKEN_FORMAT": token_format, **COOKIES, **config})

    @app.post("/login")
    def login() -> Response:
        pair = gate.create_token_pair("alice", roles=["member"], fresh=True)
        return gate.set_token_cookies(jsonify(logged_in=True), pair["access_token"], pair["refresh_token"])

    @app.post("/auth/refresh")
    @refresh_token_required
    def refresh() -> Response:
        pair = gate.rotate_refresh_token()
        return gate.set_token_cookies(jsonify(refreshed=True), pair["access_token"], pair["refresh_token"])

    @app.post("/logout")
    def logout() -> Response:
        return gate.unset_token_cookies(jsonify(logged_out=True))

    @app.route("/me", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
    @login_required
    def me() -> dict[str, str]:
        return {"sub": current_identity.subject}

    return app, gate


@pytest.fixture
def cookie_app(token_format: str) -> tuple[Flask, AuthGate]:
    return build(token_format)


@pytest.fixture
def browser(cookie_app: tuple[Flask, AuthGate]) -> FlaskClient:
    """A client that has logged in: it holds the three cookies."""
    client = cookie_app[0].test_client()
    assert client.post("/login").get_json() == {"logged_in": True}
    return client


def cookie(client: FlaskClient, name: str) -> str:
    found = client.get_cookie(name)
    assert found is not None, name
    return found.value


def without_expires(header: str) -> str:
    return re.sub(r"; Expires=[^;]+", "", header)


def test_set_token_cookies_headers(cookie_app: tuple[Flask, AuthGate]) -> None:
    rv = cookie_app[0].test_client().post("/login")
    lines = [without_expires(h) for h in rv.headers.getlist("Set-Cookie")]
    access, csrf, refresh = (h.split(";", 1)[0].split("=", 1)[1] for h in lines)
    assert lines == [
        f"authgate_access={access}; Max-Age=900; Secure; HttpOnly; Path=/; SameSite=Lax",
        f"authgate_csrf={csrf}; Max-Age=2592000; Secure; Path=/; SameSite=Lax",  # readable by the page's script
        f"authgate_refresh={refresh}; Max-Age=2592000; Secure; HttpOnly; Path=/; SameSite=Lax",
    ]
    with cookie_app[0].app_context():
        claims = cookie_app[0].extensions["authgate"].tokens.codec.peek(access)
    assert claims["csrf"] == csrf


def test_cookie_settings() -> None:
    app, _ = build(
        "jwt",
        AUTHGATE_COOKIE_SECURE=False,
        AUTHGATE_COOKIE_SAMESITE="Strict",
        AUTHGATE_COOKIE_PATH="/api",
        AUTHGATE_REFRESH_COOKIE_PATH="/auth/refresh",
        AUTHGATE_COOKIE_DOMAIN="example.test",
        AUTHGATE_ACCESS_COOKIE_NAME="at",
    )
    rv = app.test_client().post("/login")
    lines = [re.sub(r"=[^;]*;", "=…;", without_expires(h), count=1) for h in rv.headers.getlist("Set-Cookie")]
    assert lines == [
        "at=…; Domain=example.test; Max-Age=900; HttpOnly; Path=/api; SameSite=Strict",
        "authgate_csrf=…; Domain=example.test; Max-Age=2592000; Path=/; SameSite=Strict",
        "authgate_refresh=…; Domain=example.test; Max-Age=2592000; HttpOnly; Path=/auth/refresh; SameSite=Strict",
    ]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_safe_methods_need_no_csrf_token(browser: FlaskClient, method: str) -> None:
    rv = browser.open("/me", method=method)
    assert rv.status_code == 200
    assert rv.headers["Cache-Control"] == "private"
    assert rv.headers.getlist("Vary") == ["Cookie"]
    if method == "GET":
        assert rv.get_json() == {"sub": "alice"}


@pytest.mark.parametrize("method", UNSAFE)
@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("wrong-value", id="wrong"),
    ],
)
def test_unsafe_methods_need_the_csrf_token(browser: FlaskClient, method: str, sent: str | None) -> None:
    headers = {} if sent is None else {"X-CSRF-Token": sent}
    rv = browser.open("/me", method=method, headers=headers)
    assert rv.status_code == 403
    assert rv.get_json() == body("csrf_failed")
    assert "WWW-Authenticate" not in rv.headers
    assert rv.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("method", UNSAFE)
def test_unsafe_methods_with_the_csrf_token(browser: FlaskClient, method: str) -> None:
    rv = browser.open("/me", method=method, headers={"X-CSRF-Token": cookie(browser, "authgate_csrf")})
    assert rv.status_code == 200
    assert rv.get_json() == {"sub": "alice"}
    assert rv.headers["Cache-Control"] == "private"
    assert rv.headers.getlist("Vary") == ["Cookie"]


def test_csrf_value_is_bound_to_the_token(browser: FlaskClient) -> None:
    # A planted csrf cookie (from a sibling subdomain, say) does not help: the
    # header must match the value inside the signed token.
    browser.set_cookie("authgate_csrf", "planted")
    rv = browser.post("/me", headers={"X-CSRF-Token": "planted"})
    assert rv.status_code == 403
    assert rv.get_json() == body("csrf_failed")


def test_csrf_header_name_is_configurable(token_format: str) -> None:
    app, _ = build(token_format, AUTHGATE_CSRF_HEADER="X-XSRF-TOKEN")
    client = app.test_client()
    client.post("/login")
    csrf = cookie(client, "authgate_csrf")
    assert client.post("/me", headers={"X-CSRF-Token": csrf}).status_code == 403
    assert client.post("/me", headers={"X-XSRF-TOKEN": csrf}).status_code == 200


def test_header_and_cookie_at_once(browser: FlaskClient, cookie_app: tuple[Flask, AuthGate]) -> None:
    app, gate = cookie_app
    with app.app_context():
        token = gate.create_access_token("alice")
    rv = browser.get("/me", headers=bearer(token))
    assert rv.status_code == 400
    assert rv.get_json() == body("invalid_request")
    assert rv.headers.getlist("WWW-Authenticate") == ['Bearer realm="api", error="invalid_request"']


def test_header_alone_needs_no_csrf_token(cookie_app: tuple[Flask, AuthGate]) -> None:
    app, gate = cookie_app
    with app.app_context():
        token = gate.create_access_token("alice")
    rv = app.test_client().post("/me", headers=bearer(token))
    assert rv.status_code == 200
    assert "Cookie" not in rv.headers.getlist("Vary")


def test_unset_token_cookies(browser: FlaskClient) -> None:
    rv = browser.post("/logout")
    assert rv.headers.getlist("Set-Cookie") == [
        f"{name}=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Secure; Path=/; SameSite=Lax"
        for name in ("authgate_access", "authgate_refresh", "authgate_csrf")
    ]
    for name in ("authgate_access", "authgate_refresh", "authgate_csrf"):
        assert browser.get_cookie(name) is None
    rv = browser.get("/me")
    assert rv.status_code == 401
    assert rv.get_json() == body("token_missing")


def test_refresh_through_the_refresh_cookie(browser: FlaskClient) -> None:
    old_access = cookie(browser, "authgate_access")
    old_refresh = cookie(browser, "authgate_refresh")
    assert browser.post("/auth/refresh").get_json() == body("csrf_failed")
    rv = browser.post("/auth/refresh", headers={"X-CSRF-Token": cookie(browser, "authgate_csrf")})
    assert rv.get_json() == {"refreshed": True}
    assert rv.headers["Cache-Control"] == "private"
    assert cookie(browser, "authgate_access") != old_access
    assert cookie(browser, "authgate_refresh") != old_refresh
    csrf = cookie(browser, "authgate_csrf")
    assert browser.post("/me", headers={"X-CSRF-Token": csrf}).get_json() == {"sub": "alice"}
    # The used refresh cookie, replayed, ends the family.
    browser.set_cookie("authgate_refresh", old_refresh)
    rv = browser.post("/auth/refresh", headers={"X-CSRF-Token": csrf})
    assert rv.status_code == 401
    assert rv.get_json() == body("token_revoked", "refresh")
    assert browser.get("/me").get_json() == body("token_revoked")


def test_access_cookie_is_not_a_refresh_token(browser: FlaskClient) -> None:
    browser.delete_cookie("authgate_refresh")
    rv = browser.post("/auth/refresh", headers={"X-CSRF-Token": cookie(browser, "authgate_csrf")})
    assert rv.status_code == 401
    assert rv.get_json() == body("token_missing")


def test_refresh_cookie_is_not_an_access_token(browser: FlaskClient) -> None:
    browser.set_cookie("authgate_access", cookie(browser, "authgate_refresh"))
    rv = browser.get("/me")
    assert rv.status_code == 401
    assert rv.get_json() == body("token_type_invalid")


def test_token_without_csrf_claim_in_a_cookie(token_format: str) -> None:
    header_app, header_gate = make_app({"AUTHGATE_TOKEN_FORMAT": token_format})
    with header_app.app_context():
        token = header_gate.create_access_token("alice")  # issued without cookies: no csrf claim
    app, _ = build(token_format)
    client = app.test_client()
    client.set_cookie("authgate_access", token)
    assert client.get("/me").status_code == 200
    for sent in ("", "anything"):
        rv = client.post("/me", headers={"X-CSRF-Token": sent})
        assert rv.status_code == 403
        assert rv.get_json() == body("csrf_failed")


def test_set_token_cookies_needs_the_cookie_location() -> None:
    app, gate = make_app()
    with app.app_context():
        token = gate.create_access_token("alice")
        with pytest.raises(RuntimeError, match="AUTHGATE_TOKEN_LOCATIONS"):
            gate.set_token_cookies(Response(), token)


def test_cookies_only_ignores_the_authorization_header(token_format: str) -> None:
    app, gate = build(token_format, AUTHGATE_TOKEN_LOCATIONS=["cookies"])
    with app.app_context():
        token = gate.create_access_token("alice")
    rv = app.test_client().get("/me", headers=bearer(token))
    assert rv.status_code == 401
    assert rv.get_json() == body("token_missing")


@pytest.mark.parametrize("token", ["not-a-token", "a.b.c", "x" * 50])
def test_set_token_cookies_refuses_a_foreign_token(cookie_app: tuple[Flask, AuthGate], token: str) -> None:
    app, gate = cookie_app
    with app.test_request_context(), pytest.raises(ValueError, match="CSRF"):
        gate.set_token_cookies(Response(), token)
