"""Logging in, refreshing, stepping up and logging out; the extension and its callbacks.

``POST /auth/login`` and ``POST /auth/refresh`` are ``@public`` (the app runs
with ``AUTHGATE_DEFAULT_DENY``); everything else needs a token.

DPoP (RFC 9449 §5): a login that carries a ``DPoP`` proof gets an access
token bound to the proof's key (``cnf.jkt``, ``token_type: "DPoP"``) and a
refresh token bound to the same key (``gate.create_token_pair(..., dpop_jkt=...)``), so
a refresh needs a proof of that key too. A login without a proof gets bearer
tokens, as before (curl, scripts), unless ``AUTHGATE_DPOP`` is ``"required"``.

Step-up (RFC 9470): every login records how and when the user authenticated
(``acr`` :data:`ACR_PASSWORD`, ``auth_time``). ``POST /auth/step-up`` checks
the password again *and* the user's second factor, and issues an access token
with ``acr`` :data:`ACR_SECOND_FACTOR` and a new ``auth_time``, which is what
``@step_up_required`` routes ask for.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import time
import typing as t

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
from flask_authgate import current_user
from flask_authgate import login_required
from flask_authgate import public
from flask_authgate import refresh_token_required

from . import db
from . import dpop
from .extensions import gate

bp = Blueprint("auth", __name__, url_prefix="/auth")

#: Scopes granted at login, by role: the admin may read reports.
SCOPES_BY_ROLE: dict[str, tuple[str, ...]] = {"admin": ("reports:read",)}

# Compared against when the username is unknown, so a wrong username takes as
# long as a wrong password (no user enumeration by timing).
_DUMMY_HASH = generate_password_hash("not-a-real-password")

#: ``acr`` of a password login (RFC 9470 §4: the authentication context class).
ACR_PASSWORD = "pwd"
#: ``acr`` of a step-up login: the password and the second factor (what ``@step_up_required`` asks for).
ACR_SECOND_FACTOR = "mfa"


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


def _access_expires() -> int:
    """``AUTHGATE_ACCESS_TOKEN_EXPIRES`` in seconds (what a token response states as ``expires_in``)."""
    value = current_app.config.get("AUTHGATE_ACCESS_TOKEN_EXPIRES", 900)
    return int(value.total_seconds() if isinstance(value, datetime.timedelta) else value)


def _login_claims(acr: str) -> dict[str, t.Any]:
    # RFC 9470 §4 / OpenID Connect Core §2: how (acr) and when (auth_time) the user authenticated.
    return {"acr": acr, "auth_time": int(time.time())}


def _password_matches(user: db.User | None, password: str) -> bool:
    # A wrong username takes as long as a wrong password (no user enumeration by timing).
    ok = check_password_hash(user.password_hash if user is not None else _DUMMY_HASH, password)
    return ok and user is not None


@bp.post("/login")
@public
def login() -> Response:
    """Password -> a fresh access token and a refresh token (``{"cookies": true}``: as cookies).

    With a ``DPoP`` proof (RFC 9449 §5) both are bound to the proof's key and
    ``token_type`` is ``"DPoP"``. A proof that fails a check is 401
    ``dpop_proof_invalid``, before the password is looked at.
    """
    data = json_body()
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        return gate.error_response(400, "invalid_input", "Send a JSON body with a username and a password")
    cookies = data.get("cookies") is True
    if cookies and not _cookies_enabled():
        return gate.error_response(
            400, "cookies_disabled", "Cookie login is off: add 'cookies' to AUTHGATE_TOKEN_LOCATIONS"
        )
    # A token in a cookie cannot travel with the DPoP scheme: cookie logins are bearer sessions.
    jkt = None if cookies else dpop.proven_key()
    user = db.user_by_name(username)
    if not _password_matches(user, password) or user is None:
        return gate.error_response(401, "login_failed", "The username or the password is wrong")
    scopes = sorted({s for role in user.roles for s in SCOPES_BY_ROLE.get(role, ())})
    roles, claims = sorted(user.roles), _login_claims(ACR_PASSWORD)
    # With a proven key (jkt), both tokens are bound to it and token_type is "DPoP".
    pair = gate.create_token_pair(str(user.id), roles=roles, scopes=scopes, claims=claims, fresh=True, dpop_jkt=jkt)
    return _session_response(pair, user, cookies=cookies)


@bp.post("/refresh")
@public
@refresh_token_required
def refresh() -> Response:
    """A refresh token -> a new pair; the old refresh token is used up (reuse revokes the family).

    A refresh token of a DPoP session needs a proof of the session's key
    (RFC 9449 §5: a stolen refresh token is useless without the private key),
    and the new access token is bound to that key again.
    """
    from_cookie = "Authorization" not in request.headers
    # A refresh token bound to a DPoP key came with a proof of it (the guard checked it):
    # the new pair is bound to the same key.
    return _session_response(gate.rotate_refresh_token(), None, cookies=from_cookie)


def presented_access_token() -> str | None:
    """The access token of this request, ``Bearer`` or ``DPoP`` (already verified by the guard)."""
    return gate.current_token()


def _session_key() -> str | None:
    """The thumbprint the current access token is bound to (its ``cnf.jkt``), or ``None``."""
    cnf = current_identity.claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, cabc.Mapping) else None
    return jkt if isinstance(jkt, str) else None


@bp.post("/step-up")
@login_required
def step_up() -> Response:
    """The password and the second-factor code again -> an access token with ``acr`` ``"mfa"``.

    For routes with ``@step_up_required``: the page calls this after a 401
    ``insufficient_user_authentication`` and retries. The new token is bound
    to the same DPoP key as the one presented (the guard verified its proof),
    and the presented token is revoked. The refresh token is unchanged, so a
    refreshed token is a password-strength one again: the elevation lasts one
    access-token lifetime at most. A wrong password or code is 401
    ``step_up_failed``; the session itself stays valid.
    """
    data = json_body()
    password, code = data.get("password"), data.get("code")
    if not isinstance(password, str) or not isinstance(code, str) or not password or not code:
        return gate.error_response(
            400, "invalid_input", "Send a JSON body with the password and the second-factor code"
        )
    user = t.cast(db.User, current_user._get_current_object())
    # Both hashes are always checked, so the time taken tells nothing about which one was wrong.
    password_ok = _password_matches(user, password)
    code_ok = check_password_hash(db.second_factor_hash(user.id) or _DUMMY_HASH, code)
    if not (password_ok and code_ok):
        return gate.error_response(401, "step_up_failed", "The password or the second-factor code is wrong")
    jkt, expires_in = _session_key(), _access_expires()
    access = gate.create_access_token(
        current_identity.subject,
        roles=current_identity.roles,
        scopes=current_identity.scopes,
        claims=_login_claims(ACR_SECOND_FACTOR),
        fresh=True,
        dpop_jkt=jkt,
        expires_in=expires_in,
    )
    old = presented_access_token()
    if old is not None:
        gate.revoke(old)
    response = jsonify({"access_token": access, "token_type": "DPoP" if jkt else "Bearer", "expires_in": expires_in})
    response.headers["Cache-Control"] = "no-store"
    return response


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
        access = presented_access_token()
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
