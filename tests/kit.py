"""The test helper kit: token headers, the contract's error bodies, a frozen clock.

Import what a test needs (``from kit import bearer, body``) instead of writing
another copy in the test file.
"""

from __future__ import annotations

import base64
import collections.abc as cabc
import contextlib
import functools
import hashlib
import hmac
import json
import os
import pathlib
import socketserver
import subprocess
import sys
import threading
import time
import typing as t
import urllib.error
import urllib.request
from http import HTTPStatus

import pytest
from conftest import IN_CI
from conftest import SECRET
from conftest import make_app
from flask import Blueprint
from flask import Flask
from flask.testing import FlaskClient
from flask.typing import ResponseReturnValue
from flask.views import MethodView
from itsdangerous import URLSafeTimedSerializer

from flask_authgate import AuthGate
from flask_authgate import TokenPair
from flask_authgate import authorize
from flask_authgate import current_identity
from flask_authgate import login_required
from flask_authgate import refresh_token_required
from flask_authgate import roles_required
from flask_authgate.errors import ERRORS
from flask_authgate.errors import message_for
from flask_authgate.signed_tokens import SALTS
from flask_authgate.signed_tokens import SIGNER_KWARGS

if t.TYPE_CHECKING:
    from playwright.sync_api import Browser

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


def problem(status: int, code: str, detail: str) -> dict[str, t.Any]:
    """An RFC 9457 body as the extension sends it (``AUTHGATE_ERROR_FORMAT = "problem"``)."""
    return {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail, "code": code}


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
    assert rv.get_json() == body(code)
    assert rv.headers.getlist("WWW-Authenticate") == [invalid_token_challenge(code)]
    assert rv.headers.getlist("Cache-Control") == ["no-store"]


# -- guarded views and the tokens for them (the guard tests) -------------------------------------

#: A view decorator: ``login_required``, ``roles_required("admin")``, ``public``...
Guard = t.Callable[[t.Callable[..., t.Any]], t.Callable[..., t.Any]]


#: The three kinds of Flask view a guard must work on.
ViewKind = t.Literal["sync", "async", "methodview"]
VIEW_KINDS: tuple[ViewKind, ...] = ("sync", "async", "methodview")


def add_view(
    target: Flask | Blueprint,
    rule: str,
    *guards: Guard,
    methods: t.Sequence[str] = ("GET",),
    returns: t.Any = None,
    endpoint: str | None = None,
    kind: ViewKind = "sync",
) -> None:
    """Route ``rule`` on ``target`` to a view wrapped in ``guards`` (listed outermost first, as written).

    The view answers ``returns`` (called first if callable, e.g. :func:`subject`, :func:`whoami`),
    by default the rule's last segment (``/pages/inside-public`` answers ``inside-public``); its
    endpoint is that segment with ``_`` for ``-`` unless ``endpoint`` is given. ``kind`` is a
    plain function, an ``async def`` or a :class:`~flask.views.MethodView` (its ``decorators``
    are the guards, which MethodView applies innermost first).
    """
    name = rule.rstrip("/").rsplit("/", 1)[-1] or "index"
    reply = name if returns is None else returns
    endpoint = endpoint or name.replace("-", "_")

    def answer() -> t.Any:
        return reply() if callable(reply) else reply

    if kind == "methodview":
        handlers = {method.lower(): lambda self, **_: answer() for method in methods}
        view_class: type[MethodView] = type(
            "KitView", (MethodView,), {"decorators": list(reversed(guards)), **handlers}
        )
        target.add_url_rule(rule, view_func=view_class.as_view(endpoint), methods=list(methods))
        return
    view: t.Callable[..., t.Any]
    if kind == "async":

        async def async_view(**_: t.Any) -> t.Any:
            return answer()

        view = async_view
    else:

        def sync_view(**_: t.Any) -> t.Any:
            return answer()

        view = sync_view
    for guard in reversed(guards):
        view = guard(view)
    target.route(rule, methods=list(methods), endpoint=endpoint)(view)


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


# -- routes, clocks, threads and loopback servers many test files share (dups-b) ----------------


class OffsetClock:
    """``base()`` (wall-clock time by default, ``time.monotonic`` for caches) plus ``offset``,
    which the test moves forward (``clock.offset = 70``)."""

    def __init__(self, base: cabc.Callable[[], float] = time.time) -> None:
        self.base = base
        self.offset = 0.0

    def __call__(self) -> float:
        return self.base() + self.offset


def add_refresh_route(app: Flask, gate: AuthGate, path: str = "/refresh") -> None:
    """``POST path``: the refresh endpoint pattern, answering with ``gate.rotate_refresh_token()``."""

    @refresh_token_required
    def rotate() -> TokenPair:
        return gate.rotate_refresh_token()

    app.add_url_rule(path, endpoint=f"kit-refresh:{path}", view_func=rotate, methods=["POST"])


def in_threads(n: int, work: cabc.Callable[[int], t.Any]) -> list[t.Any]:
    """``work(i)`` for ``i`` in ``range(n)``, on ``n`` threads released together; each result or exception."""
    barrier = threading.Barrier(n)
    results: list[t.Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # returned, for the test to check
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    return results


def http_json(
    url: str, token: str | None = None, *, method: str = "GET", timeout: float = 30
) -> tuple[int, dict[str, t.Any]]:
    """A real HTTP request (``token`` as a bearer token): the status and the JSON body, error or not."""
    request = urllib.request.Request(url, method=method, headers=bearer(token) if token is not None else {})  # noqa: S310 - a loopback URL built by the test
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


#: The repository's root: the working directory of the subprocesses below.
ROOT = pathlib.Path(__file__).resolve().parent.parent


def python_m(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``python -m <args>`` with this interpreter, in :data:`ROOT`, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=check
    )


@contextlib.contextmanager
def in_background(target: cabc.Callable[[], object], stop: cabc.Callable[[], object]) -> cabc.Iterator[None]:
    """``target()`` on a daemon thread for the ``with`` block; then ``stop()``, and the thread joined."""
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop()
        thread.join(timeout=10)


@contextlib.contextmanager
def serving(server: socketserver.TCPServer) -> cabc.Iterator[str]:
    """``server`` answering on a thread for the ``with`` block, then shut down and closed; yields its base URL."""

    def stop() -> None:
        server.shutdown()
        server.server_close()

    with in_background(functools.partial(server.serve_forever, poll_interval=0.05), stop):
        yield f"http://127.0.0.1:{server.server_address[1]}"


def chromium() -> cabc.Iterator[Browser]:
    """Debian's Chromium through Playwright, for a module's ``browser`` fixture (``yield from chromium()``).

    A missing binary skips the test outside CI and fails it in CI.
    """
    if not os.path.exists(CHROMIUM):
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing; .ci/run must install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def add_admin_and_doc_views(app: Flask, admin_methods: cabc.Sequence[str] = ("GET",)) -> None:
    """The views of a decision-hook test (audit log, metrics): ``/admin`` behind ``roles_required("admin")``
    (endpoint ``admin``, answering ``{"ok": True}``) and ``/doc/<owner>`` behind ``login_required`` (endpoint
    ``doc``), where only alice's document exists: anyone else's is a 404 (``authorize(..., hide=True)``)."""

    @app.route("/admin", methods=list(admin_methods))
    @roles_required("admin")
    def admin() -> ResponseReturnValue:
        return {"ok": True}

    @app.get("/doc/<owner>")
    @login_required
    def doc(owner: str) -> ResponseReturnValue:
        authorize(owner == "alice", hide=True)
        return {"owner": owner}


def subject_and_scheme() -> dict[str, t.Any]:
    """Who got in, and how: ``{"sub": ..., "scheme": ...}`` of the current identity."""
    return {"sub": current_identity.subject, "scheme": current_identity.scheme}


def seeded_example_db(folder: pathlib.Path) -> pathlib.Path:
    """``folder/template.sqlite``: the example app's demo database, seeded (slow: the passwords are hashed)."""
    from example_app import db

    path = folder / "template.sqlite"
    db.seed(str(path))
    return path
