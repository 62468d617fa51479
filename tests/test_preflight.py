"""CORS preflight on every guard kind: never runs the view, never 401s (issue 3).

A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``)
never carries credentials (Fetch §3.3.3). On a route where Flask answers
``OPTIONS`` itself, the view is never called; on a route that lists
``OPTIONS``, the guard answers with Flask's default ``OPTIONS`` response.
"""

from __future__ import annotations

import typing as t

import pytest
from conftest import make_app
from flask import Blueprint
from flask import Response
from flask import g
from flask.views import MethodView
from kit import bearer

from flask_authgate import fresh_login_required
from flask_authgate import ip_allowed
from flask_authgate import login_required
from flask_authgate import refresh_token_required
from flask_authgate import roles_accepted
from flask_authgate import roles_required
from flask_authgate import scopes_required

PREFLIGHT = {
    "Origin": "https://app.example",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}

Decorator = t.Callable[[t.Callable[..., t.Any]], t.Callable[..., t.Any]]

GUARDS: dict[str, Decorator] = {
    "login_required": login_required,
    "login_required_called": login_required(),
    "roles_required": roles_required("admin"),
    "roles_accepted": roles_accepted("admin", "editor"),
    "scopes_required": scopes_required("write"),
    "ip_allowed": ip_allowed("127.0.0.0/8"),
    "refresh_token_required": refresh_token_required,
    "fresh_login_required": fresh_login_required,
}


def stacked(view: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    return ip_allowed("127.0.0.0/8")(roles_required("admin")(scopes_required("write")(view)))


GUARDS["stacked"] = stacked
GUARD_IDS = list(GUARDS)


def _view(kind: str, guard: Decorator, ran: list[str], explicit: bool) -> t.Callable[..., t.Any]:
    if kind == "sync":

        def sync_view() -> str:
            ran.append("sync")
            return "ran"

        return guard(sync_view)
    if kind == "async":

        async def async_view() -> str:
            ran.append("async")
            return "ran"

        return guard(async_view)

    def get(self: MethodView) -> str:
        ran.append("get")
        return "ran"

    def post(self: MethodView) -> str:
        ran.append("post")
        return "ran"

    def options(self: MethodView) -> str:
        ran.append("options")
        return "ran"

    body: dict[str, t.Any] = {"get": get, "post": post}
    if kind == "methodview":
        body["decorators"] = [guard]
        if explicit:
            body["options"] = options
    else:  # "methodview-methods": each method guarded on its own
        body = {"get": guard(get), "post": guard(post)}
        if explicit:
            body["options"] = guard(options)
    cls = t.cast(type[MethodView], type("Guarded", (MethodView,), body))
    return t.cast(t.Callable[..., t.Any], cls.as_view(f"mv_{kind}_{int(explicit)}"))


VIEW_KINDS = ["sync", "async", "methodview", "methodview-methods"]


@pytest.mark.parametrize("explicit", [pytest.param(False, id="automatic"), pytest.param(True, id="explicit")])
@pytest.mark.parametrize("kind", VIEW_KINDS)
@pytest.mark.parametrize("guard", GUARD_IDS)
def test_preflight_never_runs_the_view(guard: str, kind: str, explicit: bool) -> None:
    app, _ = make_app()
    ran: list[str] = []
    methods = ["GET", "POST", "OPTIONS"] if explicit else ["GET", "POST"]
    app.add_url_rule("/r", view_func=_view(kind, GUARDS[guard], ran, explicit), methods=methods)
    rv = app.test_client().options("/r", headers=PREFLIGHT)
    assert rv.status_code == 200
    assert rv.data == b""
    assert set(rv.allow) == {"GET", "HEAD", "POST", "OPTIONS"}
    assert ran == []


@pytest.mark.parametrize("explicit", [pytest.param(False, id="automatic"), pytest.param(True, id="explicit")])
@pytest.mark.parametrize("kind", VIEW_KINDS)
def test_preflight_from_a_denied_network_is_403_not_401(kind: str, explicit: bool) -> None:
    app, _ = make_app()
    ran: list[str] = []
    methods = ["GET", "POST", "OPTIONS"] if explicit else ["GET", "POST"]
    app.add_url_rule("/r", view_func=_view(kind, stacked, ran, explicit), methods=methods)
    rv = app.test_client().options("/r", headers=PREFLIGHT, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert ran == []
    if explicit:
        assert rv.status_code == 403
        assert rv.get_json()["code"] == "ip_denied"
    else:
        # Flask answers an automatic OPTIONS itself; nothing of the view runs.
        assert rv.status_code == 200


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param({"AUTHGATE_DEFAULT_DENY": True}, id="default-deny"),
        pytest.param({}, id="protected-blueprint"),
        pytest.param({"AUTHGATE_IP_ALLOWLIST": ["127.0.0.0/8"], "AUTHGATE_DEFAULT_DENY": True}, id="app-ip-list"),
    ],
)
@pytest.mark.parametrize("explicit", [pytest.param(False, id="automatic"), pytest.param(True, id="explicit")])
def test_preflight_with_app_wide_rules(rule: dict[str, t.Any], explicit: bool) -> None:
    app, gate = make_app(rule)
    ran: list[str] = []
    bp = Blueprint("api", __name__)
    methods = ["GET", "POST", "OPTIONS"] if explicit else ["GET", "POST"]

    def unguarded() -> str:
        ran.append("unguarded")
        return "ran"

    def admin() -> str:
        ran.append("admin")
        return "ran"

    bp.add_url_rule("/unguarded", view_func=unguarded, methods=methods)
    bp.add_url_rule("/admin", view_func=roles_required("admin")(admin), methods=methods)
    if not rule:
        gate.protect(bp, roles=["staff"])
    app.register_blueprint(bp, url_prefix="/api")
    client = app.test_client()
    for path in ("/api/unguarded", "/api/admin"):
        rv = client.options(path, headers=PREFLIGHT)
        assert rv.status_code == 200, path
        assert rv.data == b""
        assert set(rv.allow) == {"GET", "HEAD", "POST", "OPTIONS"}
    assert ran == []
    # The actual request after the preflight still needs credentials.
    assert client.post("/api/unguarded", headers={"Origin": "https://app.example"}).status_code == 401


def test_options_with_credentials_runs_the_checks_then_the_view() -> None:
    app, gate = make_app()
    ran: list[str] = []

    @app.route("/r", methods=["GET", "OPTIONS"])
    @roles_required("admin")
    def r() -> str:
        ran.append("r")
        return "ran"

    client = app.test_client()
    with app.app_context():
        viewer = gate.create_access_token("alice", roles=["viewer"])
        admin = gate.create_access_token("alice", roles=["admin"])
    rv = client.options("/r", headers={"Authorization": "Bearer not.a.token"})
    assert rv.status_code == 401
    assert rv.get_json()["code"] == "token_invalid"
    rv = client.options("/r", headers=bearer(viewer))
    assert rv.status_code == 403
    assert ran == []
    rv = client.options("/r", headers=bearer(admin))
    assert rv.status_code == 200
    assert rv.get_data(as_text=True) == "ran"
    assert ran == ["r"]


def test_preflight_answer_equals_flasks_own() -> None:
    # The guarded explicit-OPTIONS answer is byte-for-byte Flask's automatic one.
    app, _ = make_app()

    @app.route("/guarded", methods=["GET", "POST", "OPTIONS"])
    @login_required
    def guarded() -> str:
        return "ran"

    @app.route("/plain", methods=["GET", "POST"])
    def plain() -> str:
        return "ran"

    client = app.test_client()
    a = client.options("/guarded", headers=PREFLIGHT)
    b = client.options("/plain", headers=PREFLIGHT)
    assert (a.status_code, a.data) == (b.status_code, b.data)
    assert sorted(a.headers.items()) == sorted(b.headers.items())


def test_no_credential_is_looked_at_during_a_preflight() -> None:
    app, _ = make_app()

    @app.route("/r", methods=["GET", "OPTIONS"])
    @login_required
    def r() -> str:
        return "ran"

    seen: list[bool] = []

    @app.after_request
    def after(response: Response) -> Response:
        seen.append("_authgate" in g.__dict__ and bool(g._authgate.results))
        return response

    assert app.test_client().options("/r", headers=PREFLIGHT).status_code == 200
    assert seen == [False]  # no credential was even looked at
