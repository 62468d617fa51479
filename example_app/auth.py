"""Logging in, refreshing and logging out; the extension and its callbacks.

``POST /auth/login`` and ``POST /auth/refresh`` are ``@public`` (the app runs
with ``AUTHGATE_DEFAULT_DENY``); everything else needs a token.
"""

from __future__ import annotations

import typing as t
from http import HTTPStatus

import click
from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify
from flask import request
from flask.cli import with_appcontext
from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

from flask_authgate import AuthError
from flask_authgate import Identity
from flask_authgate import TokenPair
from flask_authgate import current_identity
from flask_authgate import login_required
from flask_authgate import public
from flask_authgate import refresh_token_required

from . import db
from .extensions import gate

bp = Blueprint("auth", __name__, url_prefix="/auth")

#: Scopes granted at login, by role: the admin may read reports.
SCOPES_BY_ROLE: dict[str, tuple[str, ...]] = {"admin": ("reports:read",)}

# Compared against when the username is unknown, so a wrong username takes as
# long as a wrong password (no user enumeration by timing).
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def error(status: int, code: str, message: str, *, challenge: bool = False) -> Response:
    """The example's own errors, in the same JSON shape as the extension's."""
    response = jsonify({"error": HTTPStatus(status).phrase, "code": code, "message": message, "status": status})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    if challenge:
        # RFC 9110 §15.5.2: every 401 carries a challenge.
        realm = current_app.config.get("AUTHGATE_REALM", "api")
        response.headers["WWW-Authenticate"] = f'Bearer realm="{realm}"'
    return response


def json_body() -> dict[str, t.Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


def _cached_user(subject: str) -> db.User | None:
    # Kept with the request (its WSGI environ), never on g: g belongs to the app context,
    # which Flask reuses for a request pushed inside one, so it would outlive the request.
    cache: dict[str, db.User | None] = request.environ.setdefault("example_app.users", {})
    if subject not in cache:
        cache[subject] = db.user_by_id(int(subject)) if subject.isdigit() else None
    return cache[subject]


@gate.roles_loader
def load_roles(identity: Identity) -> frozenset[str]:
    """Roles come from the database, so a role change takes effect at once."""
    user = _cached_user(identity.subject)
    return user.roles if user is not None else frozenset()


@gate.user_loader
def load_user(identity: Identity) -> db.User | None:
    """A deleted user's tokens stop working (401 ``identity_not_found``)."""
    return _cached_user(identity.subject)


def _cookies_enabled() -> bool:
    return "cookies" in current_app.config.get("AUTHGATE_TOKEN_LOCATIONS", ["headers"])


def _session_response(pair: TokenPair, user: db.User | None, *, cookies: bool, status: int = 200) -> Response:
    if cookies:
        # The tokens travel only in HttpOnly cookies; the page reads the CSRF cookie.
        body: dict[str, t.Any] = {"token_type": "cookie", "expires_in": pair["expires_in"]}
    else:
        body = dict(pair)
    if user is not None:
        body["user"] = user.public()
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"  # RFC 6749 §5.1: token responses are never cached
    if cookies:
        gate.set_token_cookies(response, pair["access_token"], pair["refresh_token"])
    return response


@bp.post("/login")
@public
def login() -> Response:
    """Password -> a fresh access token and a refresh token (``{"cookies": true}``: as cookies)."""
    data = json_body()
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        return error(400, "invalid_input", "Send a JSON body with a username and a password")
    cookies = data.get("cookies") is True
    if cookies and not _cookies_enabled():
        return error(400, "cookies_disabled", "Cookie login is off: add 'cookies' to AUTHGATE_TOKEN_LOCATIONS")
    user = db.user_by_name(username)
    if not check_password_hash(user.password_hash if user is not None else _DUMMY_HASH, password) or user is None:
        return error(401, "login_failed", "The username or the password is wrong", challenge=True)
    scopes = sorted({s for role in user.roles for s in SCOPES_BY_ROLE.get(role, ())})
    pair = gate.create_token_pair(str(user.id), roles=sorted(user.roles), scopes=scopes, fresh=True)
    return _session_response(pair, user, cookies=cookies)


@bp.post("/refresh")
@public
@refresh_token_required
def refresh() -> Response:
    """A refresh token -> a new pair; the old refresh token is used up (reuse revokes the family)."""
    from_cookie = "Authorization" not in request.headers
    pair = gate.rotate_refresh_token()
    return _session_response(pair, None, cookies=from_cookie)


@bp.post("/logout")
@login_required
def logout() -> Response:
    """Revoke this access token and the refresh token sent in the body (or cookie).

    ``{"everywhere": true}`` revokes every token of the user instead.
    """
    data = json_body()
    if data.get("everywhere") is True:
        gate.revoke_subject(current_identity.subject)
    else:
        access = gate.current_token()
        if access is not None:
            gate.revoke(access)
        refresh_token = data.get("refresh_token")
        if not isinstance(refresh_token, str):
            refresh_token = gate.current_token("refresh")
        if isinstance(refresh_token, str) and refresh_token:
            try:
                gate.revoke(refresh_token)
            except AuthError as err:
                if err.code != 401:
                    raise  # the store is down: 503, fail closed
                # RFC 7009 §2.2: an invalid token is no reason to fail a logout.
    response = jsonify({"message": "Logged out"})
    response.headers["Cache-Control"] = "no-store"
    if _cookies_enabled():
        gate.unset_token_cookies(response)
    return response


@click.command("revoke-user")
@with_appcontext
@click.argument("username")
def revoke_user_command(username: str) -> None:
    """Revoke every token of USERNAME issued until now ("log out everywhere")."""
    if current_app.config.get("AUTHGATE_REVOCATION_STORE", "memory") == "memory":
        # This command is its own process: an in-memory revocation would reach no server.
        raise click.ClickException(
            "AUTHGATE_REVOCATION_STORE is 'memory', so no running server would see this revocation; "
            "run the example with a shared store (REDIS_URL=redis://...)"
        )
    user = db.user_by_name(username)
    if user is None:
        raise click.ClickException(f"no user named {username!r}")
    gate.revoke_subject(str(user.id))
    click.echo(f"Revoked every token of {username} (subject {user.id})")
