"""The DESIGN.md error table, row by row: the one place the table appears in the suite.

Every row is run for both token formats and, where the row is about a guarded
view, for a sync view, an ``async def`` view and a ``MethodView`` whose guards
sit in ``decorators = [...]``. Each run asserts the status, the whole JSON body
(the message from :data:`flask_authgate.errors.ERRORS`), the exact
``WWW-Authenticate`` lines and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import pathlib
import time
import typing as t
from http import HTTPStatus

import pytest
from conftest import OTHER_SECRET
from conftest import free_port
from conftest import make_app
from flask import Flask
from flask import abort
from flask import make_response
from flask.testing import FlaskClient
from flask.typing import ResponseReturnValue
from kit import VIEW_KINDS
from kit import ViewKind
from kit import add_view
from kit import bearer
from kit import problem

from flask_authgate import AuthGate
from flask_authgate import Identity
from flask_authgate import RedisStore
from flask_authgate import authorize
from flask_authgate import current_identity
from flask_authgate import fresh_login_required
from flask_authgate import ip_allowed
from flask_authgate import login_required
from flask_authgate import refresh_token_required
from flask_authgate import require_owner
from flask_authgate import roles_required
from flask_authgate import scopes_required
from flask_authgate import step_up_required
from flask_authgate.errors import ERRORS

Guard = cabc.Callable[[t.Any], t.Any]
Body = cabc.Callable[[], ResponseReturnValue]

BARE = 'Bearer realm="api"'
API_KEY_BARE = 'ApiKey realm="api"'


def invalid(code: str) -> str:
    """The RFC 6750 ``invalid_token`` challenge of a 401 code."""
    return f'Bearer realm="api", error="invalid_token", error_description="{ERRORS[code].message}"'


def _me() -> ResponseReturnValue:
    return {"sub": current_identity.subject}


def _authorize_false() -> ResponseReturnValue:
    authorize(False)
    return {"unreachable": True}


def _authorize_hidden() -> ResponseReturnValue:
    authorize(False, hide=True)
    return {"unreachable": True}


def _owned_by_bob() -> ResponseReturnValue:
    require_owner("bob")
    return {"unreachable": True}


def _abort(status: int) -> Body:
    def body() -> ResponseReturnValue:
        abort(status)

    return body


def route(app: Flask, rule: str, kind: ViewKind, guards: list[Guard], body: Body) -> None:
    """Route ``rule`` (GET and POST) to a view of ``kind`` guarded by ``guards`` (outermost first)."""
    add_view(
        app, rule, *guards, kind=kind, returns=body, methods=("GET", "POST"), endpoint=rule.strip("/").replace("/", "_")
    )


def build_app(kind: ViewKind, token_format: str, config: dict[str, t.Any]) -> tuple[Flask, AuthGate]:
    app, gate = make_app({"AUTHGATE_TOKEN_FORMAT": token_format, **config})
    route(app, "/me", kind, [login_required], _me)
    route(app, "/refresh", kind, [refresh_token_required], _me)
    route(app, "/fresh", kind, [fresh_login_required], _me)
    route(app, "/admin", kind, [roles_required("admin")], _me)
    route(app, "/scoped", kind, [scopes_required("write", "read")], _me)
    route(app, "/owned", kind, [login_required], _owned_by_bob)
    route(app, "/forbid", kind, [login_required], _authorize_false)
    route(app, "/hidden", kind, [login_required], _authorize_hidden)
    route(app, "/ip", kind, [ip_allowed("10.0.0.0/8"), login_required], _me)
    route(app, "/stepped", kind, [step_up_required("mfa", max_age=300)], _me)
    for status in (401, 403, 404):
        route(app, f"/abort/{status}", kind, [], _abort(status))

    @app.route("/cookie-login")
    def cookie_login() -> ResponseReturnValue:
        return gate.set_token_cookies(make_response("ok"), gate.create_access_token("alice"))

    return app, gate


@dataclasses.dataclass
class Req:
    """One request to send."""

    path: str
    method: str = "GET"
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    environ: dict[str, t.Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Env:
    """What a row's request builder can use."""

    app: Flask
    gate: AuthGate
    client: FlaskClient
    token_format: str

    def access(self, subject: str = "alice", **kwargs: t.Any) -> str:
        with self.app.app_context():
            return self.gate.create_access_token(subject, **kwargs)

    def refresh(self, subject: str = "alice") -> str:
        with self.app.app_context():
            return self.gate.create_refresh_token(subject)

    def bearer(self, token: str) -> list[tuple[str, str]]:
        return [("Authorization", f"Bearer {token}")]


@dataclasses.dataclass(frozen=True)
class Row:
    """One situation of the DESIGN.md table."""

    status: int
    code: str
    challenges: tuple[str, ...]
    request: cabc.Callable[[Env], Req]
    config: dict[str, t.Any] = dataclasses.field(default_factory=dict)
    #: Run on the three view kinds (the row is about a view).
    guarded: bool = True


# -- the row builders -------------------------------------------------------


def _bad_signature(env: Env) -> Req:
    other, other_gate = make_app({"AUTHGATE_TOKEN_FORMAT": env.token_format, "SECRET_KEY": OTHER_SECRET})
    with other.app_context():
        token = other_gate.create_access_token("alice")
    return Req("/me", headers=env.bearer(token))


def _expired(env: Env) -> Req:
    token = env.access(expires_in=60)
    env.app.extensions["authgate"].tokens.clock = lambda: time.time() + 3600
    return Req("/me", headers=env.bearer(token))


def _revoked(env: Env) -> Req:
    token = env.access()
    with env.app.app_context():
        env.gate.revoke(token)
    return Req("/me", headers=env.bearer(token))


def _unknown_api_key(env: Env) -> Req:
    @env.gate.api_key_loader
    def load(key: str) -> Identity | None:
        return Identity("service") if key == "the-right-key" else None

    return Req("/me", headers=[("X-API-Key", "not-a-key-we-know")])


def _missing_with_api_keys(env: Env) -> Req:
    env.gate.api_key_loader(lambda key: None)
    return Req("/me")


def _user_gone(env: Env) -> Req:
    env.gate.user_loader(lambda identity: None)
    return Req("/me", headers=env.bearer(env.access()))


def _cookie_without_csrf(env: Env) -> Req:
    env.client.get("/cookie-login")
    return Req("/me", method="POST")


def _header_and_cookie(env: Env) -> Req:
    env.client.get("/cookie-login")
    return Req("/me", headers=env.bearer(env.access()))


def _bearing(path: str, token: cabc.Callable[[Env], str] = Env.access) -> cabc.Callable[[Env], Req]:
    """A row's request: ``GET path`` with the bearer token ``token(env)`` (by default alice's access token)."""
    return lambda e: Req(path, headers=e.bearer(token(e)))


def _invalid_token(code: str, request: cabc.Callable[[Env], Req]) -> Row:
    """A 401 row whose one challenge is the RFC 6750 ``invalid_token`` of ``code``."""
    return Row(401, code, (invalid(code),), request)


COOKIES = {"AUTHGATE_TOKEN_LOCATIONS": ["headers", "cookies"]}

ROWS = [
    pytest.param(Row(401, "token_missing", (BARE,), lambda e: Req("/me")), id="token_missing-no-header"),
    pytest.param(
        Row(401, "token_missing", (BARE,), lambda e: Req("/me", headers=[("Authorization", "Basic YTpi")])),
        id="token_missing-basic-scheme",
    ),
    pytest.param(
        Row(401, "token_missing", (BARE, API_KEY_BARE), _missing_with_api_keys),
        id="token_missing-api-keys-on",
    ),
    pytest.param(
        Row(
            400,
            "invalid_request",
            ('Bearer realm="api", error="invalid_request"',),
            lambda e: Req("/me", headers=[("Authorization", "Bearer a, Bearer b")]),
        ),
        id="invalid_request-two-authorization-values",
    ),
    pytest.param(
        Row(400, "invalid_request", ('Bearer realm="api", error="invalid_request"',), _header_and_cookie, COOKIES),
        id="invalid_request-header-and-cookie",
    ),
    pytest.param(
        _invalid_token("token_invalid", lambda e: Req("/me", headers=e.bearer("x.y.z"))),
        id="token_invalid-garbage",
    ),
    pytest.param(_invalid_token("token_invalid", _bad_signature), id="token_invalid-bad-signature"),
    pytest.param(_invalid_token("token_expired", _expired), id="token_expired"),
    pytest.param(_invalid_token("token_revoked", _revoked), id="token_revoked"),
    pytest.param(
        _invalid_token("token_type_invalid", _bearing("/me", Env.refresh)),
        id="token_type_invalid-refresh-at-access-route",
    ),
    pytest.param(
        _invalid_token("token_type_invalid", _bearing("/refresh")),
        id="token_type_invalid-access-at-refresh-route",
    ),
    pytest.param(
        Row(
            401,
            "api_key_invalid",
            (BARE, f'ApiKey realm="api", error="invalid_key", error_description="{ERRORS["api_key_invalid"].message}"'),
            _unknown_api_key,
        ),
        id="api_key_invalid",
    ),
    pytest.param(_invalid_token("identity_not_found", _user_gone), id="identity_not_found"),
    pytest.param(_invalid_token("fresh_token_required", _bearing("/fresh")), id="fresh_token_required"),
    pytest.param(
        Row(
            401,
            "insufficient_user_authentication",
            (
                'Bearer realm="api", error="insufficient_user_authentication", error_description="'
                + ERRORS["insufficient_user_authentication"].message
                + '", acr_values="mfa", max_age="300"',
            ),
            _bearing("/stepped", lambda e: e.access(claims={"acr": "pwd"})),
        ),
        id="insufficient_user_authentication",
    ),
    pytest.param(
        Row(
            401,
            "dpop_proof_invalid",
            (
                BARE,
                'DPoP realm="api", algs="ES256 PS256 RS256 EdDSA", error="invalid_dpop_proof", '
                'error_description="The DPoP proof is invalid"',
            ),
            lambda e: Req("/me", headers=[("Authorization", f"DPoP {e.access()}")]),
            config={"AUTHGATE_DPOP": "allowed"},
        ),
        id="dpop_proof_invalid-no-proof",
    ),
    pytest.param(
        Row(403, "insufficient_role", (), _bearing("/admin", lambda e: e.access(roles=["editor"]))),
        id="insufficient_role",
    ),
    pytest.param(
        Row(
            403,
            "insufficient_scope",
            ('Bearer realm="api", error="insufficient_scope", scope="read write"',),
            _bearing("/scoped", lambda e: e.access(scopes=["read"])),
        ),
        id="insufficient_scope",
    ),
    pytest.param(Row(403, "not_owner", (), _bearing("/owned")), id="not_owner"),
    pytest.param(Row(403, "forbidden", (), _bearing("/forbid")), id="forbidden-authorize-false"),
    pytest.param(Row(403, "forbidden", (), lambda e: Req("/abort/403")), id="forbidden-plain-abort"),
    pytest.param(Row(401, "unauthorized", (BARE,), lambda e: Req("/abort/401")), id="unauthorized-plain-abort"),
    pytest.param(Row(404, "not_found", (), _bearing("/hidden")), id="not_found-hide"),
    pytest.param(Row(404, "not_found", (), lambda e: Req("/abort/404")), id="not_found-plain-abort"),
    pytest.param(Row(404, "not_found", (), lambda e: Req("/no/such/url"), guarded=False), id="not_found-unknown-url"),
    pytest.param(
        Row(403, "ip_denied", (), lambda e: Req("/ip", environ={"REMOTE_ADDR": "192.0.2.7"})),
        id="ip_denied-anonymous",
    ),
    pytest.param(
        Row(
            403,
            "ip_denied",
            (),
            lambda e: Req("/ip", headers=e.bearer(e.access()), environ={"REMOTE_ADDR": "192.0.2.7"}),
        ),
        id="ip_denied-with-token",
    ),
    pytest.param(Row(403, "csrf_failed", (), _cookie_without_csrf, COOKIES), id="csrf_failed"),
    pytest.param(
        Row(503, "auth_unavailable", (), _bearing("/me"), {"AUTHGATE_REVOCATION_STORE": "<down>"}),
        id="auth_unavailable-revocation-store-down",
    ),
]


def _cases() -> list[t.Any]:
    out = []
    for param in ROWS:
        row = t.cast(Row, param.values[0])
        for kind in VIEW_KINDS if row.guarded else ("sync",):
            out.append(pytest.param(row, kind, id=f"{param.id}-{kind}"))
    return out


def _send(row: Row, kind: ViewKind, token_format: str, config: dict[str, t.Any]) -> t.Any:
    config = {**row.config, **config}
    store: RedisStore | None = None
    if config.get("AUTHGATE_REVOCATION_STORE") == "<down>":
        # A real Redis client pointed at a loopback port nothing listens on.
        store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2)
        config["AUTHGATE_REVOCATION_STORE"] = store
        config["AUTHGATE_TOKEN_CACHE_SIZE"] = 0
    app, gate = build_app(kind, token_format, config)
    client = app.test_client()
    req = row.request(Env(app, gate, client, token_format))
    try:
        return client.open(req.path, method=req.method, headers=req.headers, environ_base=req.environ)
    finally:
        if store is not None:
            store.close()


def _expected_headers(rv: t.Any, row: Row) -> None:
    assert rv.headers.getlist("WWW-Authenticate") == list(row.challenges)
    assert rv.headers.getlist("Cache-Control") == ["no-store"]
    if row.status == 503:
        assert rv.headers.getlist("Retry-After") == ["5"]
    else:
        assert "Retry-After" not in rv.headers


@pytest.mark.parametrize(("row", "kind"), _cases())
def test_error_table(row: Row, kind: ViewKind, token_format: str) -> None:
    rv = _send(row, kind, token_format, {})
    assert rv.status_code == row.status
    assert rv.mimetype == "application/json"
    assert rv.get_json() == {
        "error": HTTPStatus(row.status).phrase,
        "code": row.code,
        "message": ERRORS[row.code].message,
        "status": row.status,
    }
    _expected_headers(rv, row)


@pytest.mark.parametrize("row", ROWS)
def test_error_table_problem_format(row: Row, token_format: str) -> None:
    rv = _send(row, "sync", token_format, {"AUTHGATE_ERROR_FORMAT": "problem"})
    assert rv.status_code == row.status
    assert rv.mimetype == "application/problem+json"
    assert rv.get_json() == problem(row.status, row.code, ERRORS[row.code].message)
    _expected_headers(rv, row)


def test_every_code_has_a_row() -> None:
    covered = {t.cast(Row, param.values[0]).code for param in ROWS}
    assert covered == set(ERRORS)


def test_the_published_table_has_every_message_as_sent() -> None:
    # docs/errors.md is the contract a client reads: its codes, statuses and messages are ERRORS to the letter,
    # so the tests elsewhere can build bodies from ERRORS (kit.body) and still pin the published wording.
    text = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "errors.md").read_text()
    table = text.split("## The codes", 1)[1].split("\n\n")[2]
    published = {}
    for line in table.splitlines()[2:]:
        code, status, _challenge, message = (cell.strip() for cell in line.strip("|").split(" | "))
        published[code.strip("`")] = (int(status), message)
    for code, row in published.items():
        assert row == (ERRORS[code].status, ERRORS[code].message), code
    assert set(published) == set(ERRORS)
    assert published["token_missing"] == (401, "No authentication token was provided")


def test_success_on_every_view_kind(token_format: str) -> None:
    for kind in VIEW_KINDS:
        app, gate = build_app(kind, token_format, {})
        with app.app_context():
            token = gate.create_access_token("alice", roles=["admin"])
        rv = app.test_client().get("/admin", headers=bearer(token))
        assert rv.status_code == 200, kind
        assert rv.get_json() == {"sub": "alice"}
        assert "WWW-Authenticate" not in rv.headers
