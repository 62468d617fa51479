"""Audit hooks: the blinker signals and the ``flask_authgate`` logger (issue 3)."""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import logging
import typing as t

import pytest
from blinker import Signal
from conftest import SECRET
from conftest import make_app
from flask import Flask
from kit import access_token
from kit import add_view
from kit import add_views
from kit import bearer
from kit import login
from kit import subject

from flask_authgate import AuthError
from flask_authgate import AuthGate
from flask_authgate import Identity
from flask_authgate import access_denied
from flask_authgate import authentication_failed
from flask_authgate import authorize
from flask_authgate import current_identity
from flask_authgate import identity_loaded
from flask_authgate import ip_allowed
from flask_authgate import login_required
from flask_authgate import public
from flask_authgate import require_owner
from flask_authgate import roles_required
from flask_authgate import scopes_required

Event = tuple[str, t.Any, dict[str, t.Any]]


@pytest.fixture
def events() -> cabc.Iterator[list[Event]]:
    """Every signal sent during the test: (signal name, sender, keyword arguments)."""
    seen: list[Event] = []
    receivers: list[tuple[Signal, t.Callable[..., None]]] = []
    signals: list[tuple[str, Signal]] = [
        ("identity_loaded", identity_loaded),
        ("authentication_failed", authentication_failed),
        ("access_denied", access_denied),
    ]
    for name, signal in signals:

        def receiver(sender: t.Any, _name: str = name, **kwargs: t.Any) -> None:
            seen.append((_name, sender, kwargs))

        signal.connect(receiver)
        receivers.append((signal, receiver))
    yield seen
    for connected, receiver in receivers:
        connected.disconnect(receiver)


@pytest.fixture
def signal_app(token_format: str) -> tuple[Flask, AuthGate]:
    app, gate = make_app({"AUTHGATE_TOKEN_FORMAT": token_format})

    add_view(app, "/me", login_required, returns=subject)
    add_view(app, "/async-me", login_required, returns=subject, kind="async")
    add_views(app, {"/admin": roles_required("admin"), "/write": scopes_required("write")})

    @app.get("/notes/<owner>")
    @login_required
    def note(owner: str) -> str:
        require_owner(owner)
        return owner

    @app.get("/hidden/<owner>")
    @login_required
    def hidden(owner: str) -> str:
        require_owner(owner, hide=True)
        return owner

    add_view(app, "/office", ip_allowed("10.0.0.0/8"))
    add_view(app, "/public", public, returns=lambda: {"anonymous": not current_identity}, endpoint="public_view")
    return app, gate


def refresh_token(app: Flask, gate: AuthGate) -> str:
    with app.app_context():
        return gate.create_refresh_token("alice")


@pytest.mark.parametrize("path", ["/me", "/async-me"])
def test_identity_loaded(signal_app: tuple[Flask, AuthGate], events: list[Event], path: str) -> None:
    app, gate = signal_app
    headers = login(app, gate, roles=["viewer"])
    assert app.test_client().get(path, headers=headers).status_code == 200
    assert len(events) == 1
    name, sender, kwargs = events[0]
    assert name == "identity_loaded"
    assert sender is app
    assert set(kwargs) == {"identity", "endpoint"}
    assert isinstance(kwargs["identity"], Identity)
    assert kwargs["identity"].subject == "alice"
    assert kwargs["identity"].roles == frozenset({"viewer"})
    assert kwargs["endpoint"] == path.strip("/").replace("-", "_")


@pytest.mark.parametrize(
    ("path", "headers", "code", "reason"),
    [
        pytest.param("/me", {}, "token_missing", "no_credentials", id="missing"),
        pytest.param("/me", {"Authorization": "Bearer not.a.token"}, "token_invalid", "malformed", id="invalid"),
        pytest.param(
            "/async-me", {"Authorization": "Bearer not.a.token"}, "token_invalid", "malformed", id="async-invalid"
        ),
        pytest.param("/admin", {}, "token_missing", "no_credentials", id="guarded-missing"),
        pytest.param("/me", {"Authorization": "Bearer a", "X-Other": "1"}, "token_invalid", "malformed", id="short"),
    ],
)
def test_authentication_failed(
    signal_app: tuple[Flask, AuthGate],
    events: list[Event],
    path: str,
    headers: dict[str, str],
    code: str,
    reason: str,
) -> None:
    app, _ = signal_app
    assert app.test_client().get(path, headers=headers).status_code == 401
    assert events == [
        (
            "authentication_failed",
            app,
            {"identity": None, "error_code": code, "endpoint": path.strip("/").replace("-", "_"), "reason": reason},
        )
    ]


def test_authentication_failed_for_a_refresh_token(signal_app: tuple[Flask, AuthGate], events: list[Event]) -> None:
    app, gate = signal_app
    headers = bearer(refresh_token(app, gate))
    assert app.test_client().get("/me", headers=headers).status_code == 401
    assert events == [
        (
            "authentication_failed",
            app,
            {"identity": None, "error_code": "token_type_invalid", "endpoint": "me", "reason": "token_type"},
        )
    ]


@pytest.mark.parametrize(
    ("path", "endpoint", "code", "status"),
    [
        pytest.param("/admin", "admin", "insufficient_role", 403, id="role"),
        pytest.param("/write", "write", "insufficient_scope", 403, id="scope"),
        pytest.param("/notes/bob", "note", "not_owner", 403, id="owner"),
        pytest.param("/hidden/bob", "hidden", "not_found", 404, id="hidden"),
    ],
)
def test_access_denied_carries_the_identity(
    signal_app: tuple[Flask, AuthGate], events: list[Event], path: str, endpoint: str, code: str, status: int
) -> None:
    app, gate = signal_app
    headers = login(app, gate, roles=["viewer"])
    assert app.test_client().get(path, headers=headers).status_code == status
    assert [e[0] for e in events] == ["identity_loaded", "access_denied"]
    _, sender, kwargs = events[1]
    assert sender is app
    assert set(kwargs) == {"identity", "error_code", "endpoint", "reason"}
    assert kwargs["reason"] in ("role", "scope", "owner", "authorize")
    assert kwargs["identity"] is events[0][2]["identity"]
    assert kwargs["identity"].subject == "alice"
    assert kwargs["error_code"] == code
    assert kwargs["endpoint"] == endpoint


def test_access_denied_for_ip_has_no_identity(signal_app: tuple[Flask, AuthGate], events: list[Event]) -> None:
    app, gate = signal_app
    headers = login(app, gate)
    rv = app.test_client().get("/office", headers=headers, environ_base={"REMOTE_ADDR": "8.8.8.8"})
    assert rv.status_code == 403
    assert events == [
        ("access_denied", app, {"identity": None, "error_code": "ip_denied", "endpoint": "office", "reason": "ip"})
    ]


def test_app_wide_ip_denial_on_an_unknown_url(events: list[Event]) -> None:
    app, _ = make_app({"AUTHGATE_IP_ALLOWLIST": ["10.0.0.0/8"]})
    rv = app.test_client().get("/nowhere", environ_base={"REMOTE_ADDR": "8.8.8.8"})
    assert rv.status_code == 403
    assert events == [
        ("access_denied", app, {"identity": None, "error_code": "ip_denied", "endpoint": None, "reason": "ip"})
    ]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-credentials"),
        pytest.param({"Authorization": "Bearer not.a.token"}, id="bad-token"),
    ],
)
def test_a_public_view_reading_the_identity_is_not_a_failure(
    signal_app: tuple[Flask, AuthGate], events: list[Event], caplog: pytest.LogCaptureFixture, headers: dict[str, str]
) -> None:
    app, _ = signal_app
    caplog.set_level(logging.DEBUG, logger="flask_authgate")
    rv = app.test_client().get("/public", headers=headers)
    assert rv.get_json() == {"anonymous": True}
    assert events == []
    assert caplog.records == []


def test_a_failure_seen_first_by_current_identity_is_still_reported_by_the_guard(events: list[Event]) -> None:
    app, _ = make_app()

    @app.before_request
    def peek() -> None:
        assert not current_identity  # resolves (and caches) the failure without reporting it

    add_view(app, "/me", login_required)
    rv = app.test_client().get("/me", headers={"Authorization": "Bearer not.a.token"})
    assert rv.status_code == 401
    assert rv.get_json()["code"] == "token_invalid"
    assert events == [
        (
            "authentication_failed",
            app,
            {"identity": None, "error_code": "token_invalid", "endpoint": "me", "reason": "malformed"},
        )
    ]


def test_each_failure_is_reported_once_per_request(events: list[Event]) -> None:
    app, _ = make_app()

    @app.get("/manual")
    def manual() -> str:
        # Two checks in one request: the stored failure is raised twice, and reported once.
        with contextlib.suppress(AuthError):
            authorize(True)
        authorize(True)
        return "never"

    assert app.test_client().get("/manual").status_code == 401
    assert [e[2]["error_code"] for e in events] == ["token_missing"]


def test_receivers_are_per_app_by_sender(events: list[Event]) -> None:
    gate = AuthGate()
    app1, _ = make_app(gate=gate)
    app2, _ = make_app(gate=gate)
    for app in (app1, app2):
        add_view(app, "/me", login_required)

    only_app1: list[str] = []

    def receiver(sender: Flask, **kwargs: t.Any) -> None:
        only_app1.append(kwargs["error_code"])

    authentication_failed.connect(receiver, sender=app1)
    try:
        app1.test_client().get("/me")
        app2.test_client().get("/me")
    finally:
        authentication_failed.disconnect(receiver, sender=app1)
    assert only_app1 == ["token_missing"]
    assert [e[1] for e in events] == [app1, app2]


# -- logging ------------------------------------------------------------------


def test_log_lines_name_code_and_endpoint_never_the_token(
    signal_app: tuple[Flask, AuthGate], caplog: pytest.LogCaptureFixture
) -> None:
    app, gate = signal_app
    caplog.set_level(logging.DEBUG, logger="flask_authgate")
    client = app.test_client()
    token = access_token(app, gate, roles=["viewer"])
    headers = bearer(token)
    refresh = refresh_token(app, gate)
    refresh_headers = bearer(refresh)
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    # The reason is precise: a changed JWT signature fails its check; itsdangerous's
    # compact signature does not even decode.
    tampered_reason = "signature" if app.config["AUTHGATE_TOKEN_FORMAT"] == "jwt" else "malformed"

    assert client.get("/admin", headers=headers).status_code == 403
    assert client.get("/me", headers=bearer(tampered)).status_code == 401
    assert client.get("/me", headers=refresh_headers).status_code == 401
    assert client.get("/notes/bob", headers=headers).status_code == 403
    assert client.get("/office", environ_base={"REMOTE_ADDR": "8.8.8.8"}).status_code == 403
    assert client.get("/me", headers=headers).status_code == 200

    records = [r for r in caplog.records if r.name == "flask_authgate"]
    assert [r.getMessage() for r in records] == [
        "authgate: 403 insufficient_role (role) on endpoint admin",
        f"authgate: 401 token_invalid ({tampered_reason}) on endpoint me",
        "authgate: 401 token_type_invalid (token_type) on endpoint me",
        "authgate: 403 not_owner (owner) on endpoint note",
        "authgate: 403 ip_denied (ip) on endpoint office",
    ]
    assert all(r.levelno == logging.INFO for r in records)
    everything = caplog.text + "".join(repr(r.args) + repr(r.__dict__) for r in records)
    for secret in (token, tampered, refresh, SECRET, token.split(".")[-1]):
        assert secret not in everything
