"""The test helper kit: token headers, the contract's error bodies, a frozen clock.

Import what a test needs (``from kit import bearer, body``) instead of writing
another copy in the test file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import pathlib
import typing as t
from http import HTTPStatus

from conftest import SECRET
from conftest import make_app
from flask import Blueprint
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer

from flask_authgate import AuthGate
from flask_authgate import current_identity
from flask_authgate import login_required
from flask_authgate.errors import ERRORS
from flask_authgate.errors import message_for
from flask_authgate.signed_tokens import SALTS
from flask_authgate.signed_tokens import SIGNER_KWARGS

#: Debian's Chromium and the flags it needs here (Playwright's own download does not work offline).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header that sends ``token``."""
    return {"Authorization": f"Bearer {token}"}


def body(code: str, token_type: str = "access") -> dict[str, t.Any]:
    """The contract's JSON body for ``code`` (its message naming ``token_type``)."""
    info = ERRORS[code]
    return {
        "error": HTTPStatus(info.status).phrase,
        "code": code,
        "message": message_for(code, token_type),
        "status": info.status,
    }


class FakeClock:
    """A clock that stands still until moved: ``clock()`` is the time, ``clock.advance(s)`` moves it."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- hand-made tokens and a guarded app (the review tests) --------------------------------------

KEY = SECRET.encode()
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(head: str, payload: str) -> str:
    """A JWT of these exact segments, signed with the test secret."""
    sig = hmac.new(KEY, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return f"{head}.{payload}.{b64(sig)}"


def jwt_token(header: dict[str, t.Any], payload: bytes) -> str:
    return hs256(b64(json.dumps(header).encode()), b64(payload))


def signed_token(payload: bytes) -> str:
    serializer = URLSafeTimedSerializer(KEY, salt=SALTS["access"], signer_kwargs=SIGNER_KWARGS)
    return serializer.dumps(json.loads(payload))


def error_body(code: str, token_type: str = "access") -> dict[str, t.Any]:
    return body(code, token_type)


def invalid_token_challenge(code: str) -> str:
    return f'Bearer realm="api", error="invalid_token", error_description="{ERRORS[code].message}"'


def guarded_app(config: dict[str, t.Any] | None = None) -> tuple[Flask, AuthGate]:
    app, gate = make_app(config)

    @app.get("/me")
    @login_required
    def me() -> str:
        return "ok"

    return app, gate


def assert_401(client: FlaskClient, token: str, code: str) -> None:
    rv = client.get("/me", headers=bearer(token))
    assert rv.status_code == 401
    assert rv.get_json() == error_body(code)
    assert rv.headers.getlist("WWW-Authenticate") == [invalid_token_challenge(code)]
    assert rv.headers.getlist("Cache-Control") == ["no-store"]


# -- guarded views and the tokens for them (the guard tests) -------------------------------------

#: A view decorator: ``login_required``, ``roles_required("admin")``, ``public``...
Guard = t.Callable[[t.Callable[..., t.Any]], t.Callable[..., t.Any]]


def add_view(
    target: Flask | Blueprint,
    rule: str,
    *guards: Guard,
    methods: t.Sequence[str] = ("GET",),
    returns: t.Any = None,
    endpoint: str | None = None,
    is_async: bool = False,
) -> None:
    """Route ``rule`` on ``target`` to a view wrapped in ``guards`` (listed outermost first, as written).

    The view answers ``returns`` (called first if callable, e.g. :func:`subject`, :func:`whoami`),
    by default the rule's last segment (``/pages/inside-public`` answers ``inside-public``); its
    endpoint is that segment with ``_`` for ``-`` unless ``endpoint`` is given.
    """
    name = rule.rstrip("/").rsplit("/", 1)[-1] or "index"
    reply = name if returns is None else returns

    def answer() -> t.Any:
        return reply() if callable(reply) else reply

    view: t.Callable[..., t.Any]
    if is_async:

        async def async_view(**_: t.Any) -> t.Any:
            return answer()

        view = async_view
    else:

        def sync_view(**_: t.Any) -> t.Any:
            return answer()

        view = sync_view
    for guard in reversed(guards):
        view = guard(view)
    target.route(rule, methods=list(methods), endpoint=endpoint or name.replace("-", "_"))(view)


def add_views(target: Flask | Blueprint, routes: t.Mapping[str, Guard | t.Sequence[Guard]], **options: t.Any) -> None:
    """:func:`add_view` for each ``rule: guard`` (or ``rule: (guard, ...)``) of ``routes``."""
    for rule, guards in routes.items():
        add_view(target, rule, *(guards if isinstance(guards, t.Sequence) else (guards,)), **options)


def access_token(app: Flask, gate: AuthGate, subject: str = "alice", **claims: t.Any) -> str:
    """``gate.create_access_token(subject, **claims)``, in an app context of ``app``."""
    with app.app_context():
        return gate.create_access_token(subject, **claims)


def login(app: Flask, gate: AuthGate, subject: str = "alice", **claims: t.Any) -> dict[str, str]:
    """The ``Authorization`` header of a fresh :func:`access_token`."""
    return bearer(access_token(app, gate, subject, **claims))


def whoami(**more: t.Any) -> dict[str, t.Any]:
    """A view's JSON body naming the current identity: ``sub``, sorted ``roles`` and ``scopes``, and ``more``."""
    identity = current_identity
    return {"sub": identity.subject, "roles": sorted(identity.roles), "scopes": sorted(identity.scopes), **more}


def subject() -> str:
    """A view's body: the current identity's subject (``add_view(app, "/me", login_required, returns=subject)``)."""
    return current_identity.subject


def static_app(tmp_path: pathlib.Path, config: dict[str, t.Any] | None = None) -> Flask:
    """A test app (``make_app``'s settings and ``config``) serving ``static/app.css`` from ``tmp_path``.

    flask-authgate is not set up on it yet: the caller does (``AuthGate(app)``), after any hook of its own.
    """
    static = tmp_path / "static"
    static.mkdir(exist_ok=True)
    (static / "app.css").write_text("body {}\n")
    app = Flask("authgate_test", static_folder=str(static))
    app.config.update(TESTING=True, SECRET_KEY=SECRET)
    app.config.update(config or {})
    return app


def noted(ran: list[str], name: str, reply: t.Callable[[], t.Any] | None = None) -> t.Callable[[], t.Any]:
    """A view body (``add_view(..., returns=noted(ran, "x"))``) that appends ``name`` to ``ran``, then answers
    ``reply()`` (by default ``name``): a test can see which views ran."""

    def answer() -> t.Any:
        ran.append(name)
        return name if reply is None else reply()

    return answer


def subject_json() -> dict[str, str]:
    """A view's JSON body: ``{"sub": <the current identity's subject>}``."""
    return {"sub": current_identity.subject}
