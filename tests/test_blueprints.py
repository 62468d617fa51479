"""``AuthGate.protect(blueprint, roles=..., any_roles=..., scopes=...)`` (issue 3)."""

from __future__ import annotations

import typing as t

import pytest
from conftest import OTHER_SECRET
from conftest import make_app
from flask import Blueprint
from flask import Flask
from flask.testing import FlaskClient
from flask.views import MethodView
from kit import add_view
from kit import add_views
from kit import body
from kit import login

from flask_authgate import AuthGate
from flask_authgate import current_identity
from flask_authgate import ip_allowed
from flask_authgate import public
from flask_authgate import roles_required
from flask_authgate import scopes_required

TOKEN_MISSING = body("token_missing")
INSUFFICIENT_ROLE = body("insufficient_role")
INSUFFICIENT_SCOPE = body("insufficient_scope")


def admin_blueprint(ran: list[str] | None = None) -> Blueprint:
    bp = Blueprint("admin", __name__)

    @bp.before_request
    def blueprint_hook() -> None:
        if ran is not None:
            ran.append("blueprint-hook")

    def subject() -> dict[str, str]:
        return {"subject": current_identity.subject}

    add_view(bp, "/users", returns=subject)
    add_view(bp, "/async-users", returns=subject, kind="async")
    add_view(bp, "/health", public, returns="ok")
    add_view(bp, "/danger", roles_required("superuser"))
    add_view(bp, "/write", scopes_required("users:write"))
    add_view(bp, "/office", ip_allowed("10.0.0.0/8"))

    class Report(MethodView):
        def get(self) -> str:
            return "report"

    bp.add_url_rule("/report", view_func=Report.as_view("report"))
    return bp


def protected(app: Flask, gate: AuthGate, bp: Blueprint | None = None, **rule: t.Any) -> FlaskClient:
    """``bp`` (an ``admin_blueprint()``) under ``gate.protect(bp, **rule)``, registered at /admin; a client of ``app``."""
    bp = bp if bp is not None else admin_blueprint()
    gate.protect(bp, **rule)
    app.register_blueprint(bp, url_prefix="/admin")
    return app.test_client()


@pytest.fixture
def app_gate(token_format: str) -> tuple[Flask, AuthGate]:
    return make_app({"AUTHGATE_TOKEN_FORMAT": token_format})


@pytest.mark.parametrize(
    "when", [pytest.param("before", id="protect-then-register"), pytest.param("after", id="register-then-protect")]
)
@pytest.mark.parametrize("path", ["/admin/users", "/admin/async-users", "/admin/report"])
def test_every_view_of_a_protected_blueprint_needs_the_rule(
    app_gate: tuple[Flask, AuthGate], when: str, path: str
) -> None:
    app, gate = app_gate
    ran: list[str] = []
    bp = admin_blueprint(ran)
    if when == "before":
        gate.protect(bp, roles=["admin"])
    app.register_blueprint(bp, url_prefix="/admin")
    if when == "after":
        gate.protect(bp, roles=["admin"])
    client = app.test_client()

    rv = client.get(path)
    assert rv.status_code == 401
    assert rv.get_json() == TOKEN_MISSING
    assert rv.headers.getlist("WWW-Authenticate") == ['Bearer realm="api"']
    rv = client.get(path, headers=login(app, gate, roles=["viewer"]))
    assert rv.status_code == 403
    assert rv.get_json() == INSUFFICIENT_ROLE
    assert ran == []  # the blueprint's own hooks never see a refused request
    rv = client.get(path, headers=login(app, gate, roles=["admin"]))
    assert rv.status_code == 200
    assert ran == ["blueprint-hook"]


def test_public_view_inside_a_protected_blueprint_opts_out(app_gate: tuple[Flask, AuthGate]) -> None:
    app, gate = app_gate
    rv = protected(app, gate, roles=["admin"]).get("/admin/health")
    assert rv.status_code == 200
    assert rv.get_data(as_text=True) == "ok"


@pytest.mark.parametrize(
    ("roles", "status"),
    [
        pytest.param(["admin"], 403, id="blueprint-rule-only"),
        pytest.param(["superuser"], 403, id="view-rule-only"),
        pytest.param(["admin", "superuser"], 200, id="both"),
    ],
)
def test_a_views_own_guard_adds_to_the_blueprint_rule(
    app_gate: tuple[Flask, AuthGate], roles: list[str], status: int
) -> None:
    app, gate = app_gate
    rv = protected(app, gate, roles=["admin"]).get("/admin/danger", headers=login(app, gate, roles=roles))
    assert rv.status_code == status
    if status == 403:
        assert rv.get_json() == INSUFFICIENT_ROLE


def test_a_views_scopes_add_to_the_blueprint_scopes(app_gate: tuple[Flask, AuthGate]) -> None:
    app, gate = app_gate
    client = protected(app, gate, scopes=["users:read"])
    rv = client.get("/admin/write", headers=login(app, gate, scopes=["users:write"]))
    assert rv.status_code == 403
    assert rv.get_json() == INSUFFICIENT_SCOPE
    assert rv.headers.getlist("WWW-Authenticate") == [
        'Bearer realm="api", error="insufficient_scope", scope="users:read users:write"'
    ]
    assert client.get("/admin/write", headers=login(app, gate, scopes=["users:read", "users:write"])).status_code == 200
    assert client.get("/admin/users", headers=login(app, gate, scopes=["users:read"])).status_code == 200


def test_a_views_ip_guard_answers_before_the_blueprints_401(app_gate: tuple[Flask, AuthGate]) -> None:
    app, gate = app_gate
    client = protected(app, gate, roles=["admin"])
    rv = client.get("/admin/office", environ_base={"REMOTE_ADDR": "8.8.8.8"})
    assert rv.status_code == 403
    assert rv.get_json()["code"] == "ip_denied"
    assert client.get("/admin/office", environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 401


@pytest.mark.parametrize(
    ("roles", "status"),
    [
        pytest.param([], 403, id="none"),
        pytest.param(["editor"], 200, id="editor"),
        pytest.param(["admin"], 200, id="admin"),
        pytest.param(["viewer"], 403, id="other"),
    ],
)
def test_any_roles(app_gate: tuple[Flask, AuthGate], roles: list[str], status: int) -> None:
    app, gate = app_gate
    rv = protected(app, gate, any_roles=["editor", "admin"]).get("/admin/users", headers=login(app, gate, roles=roles))
    assert rv.status_code == status


def test_roles_and_any_roles_and_scopes_together(app_gate: tuple[Flask, AuthGate]) -> None:
    app, gate = app_gate
    client = protected(app, gate, roles=["staff"], any_roles=["editor", "admin"], scopes=["users:read"])

    def status(roles: list[str], scopes: list[str]) -> int:
        return client.get("/admin/users", headers=login(app, gate, roles=roles, scopes=scopes)).status_code

    assert status(["staff", "editor"], ["users:read"]) == 200
    assert status(["staff"], ["users:read"]) == 403
    assert status(["editor"], ["users:read"]) == 403
    assert status(["staff", "admin"], []) == 403


def test_protect_only_covers_that_blueprint(app_gate: tuple[Flask, AuthGate]) -> None:
    app, gate = app_gate
    bp = admin_blueprint()
    other = Blueprint("other", __name__)
    add_view(other, "/open")
    add_view(app, "/root")
    gate.protect(bp)
    app.register_blueprint(bp, url_prefix="/admin")
    app.register_blueprint(other, url_prefix="/other")
    client = app.test_client()
    assert client.get("/other/open").status_code == 200
    assert client.get("/root").status_code == 200
    assert client.get("/admin/users").status_code == 401
    assert client.get("/admin/users", headers=login(app, gate)).status_code == 200


def test_nested_blueprints(app_gate: tuple[Flask, AuthGate]) -> None:
    app, gate = app_gate
    api = Blueprint("api", __name__)
    v1 = Blueprint("v1", __name__)
    staff = Blueprint("staff", __name__)
    add_view(api, "/ping")
    add_views(v1, {"/items": (), "/public-items": public})
    add_view(staff, "/tools")
    gate.protect(api)
    gate.protect(staff, roles=["staff"])
    v1.register_blueprint(staff, url_prefix="/staff")
    api.register_blueprint(v1, url_prefix="/v1")
    app.register_blueprint(api, url_prefix="/api")
    client = app.test_client()
    user_login = login(app, gate)
    staff_login = login(app, gate, roles=["staff"])

    # The parent's rule reaches every nested view.
    for path in ("/api/ping", "/api/v1/items", "/api/v1/staff/tools"):
        assert client.get(path).status_code == 401, path
    assert client.get("/api/v1/public-items").status_code == 200
    assert client.get("/api/v1/items", headers=user_login).status_code == 200
    # The child's rule adds to the parent's.
    rv = client.get("/api/v1/staff/tools", headers=user_login)
    assert rv.status_code == 403
    assert rv.get_json() == INSUFFICIENT_ROLE
    assert client.get("/api/v1/staff/tools", headers=staff_login).status_code == 200


def test_nested_child_protected_alone(app_gate: tuple[Flask, AuthGate]) -> None:
    app, gate = app_gate
    parent = Blueprint("parent", __name__)
    child = Blueprint("child", __name__)
    add_view(parent, "/p")
    add_view(child, "/c")
    parent.register_blueprint(child, url_prefix="/child")
    app.register_blueprint(parent, url_prefix="/parent")
    gate.protect(child)
    client = app.test_client()
    assert client.get("/parent/p").status_code == 200
    assert client.get("/parent/child/c").status_code == 401


def test_a_blueprint_registered_twice_is_protected_under_both_names(app_gate: tuple[Flask, AuthGate]) -> None:
    app, gate = app_gate
    bp = admin_blueprint()
    gate.protect(bp, roles=["admin"])
    app.register_blueprint(bp, url_prefix="/admin")
    app.register_blueprint(bp, url_prefix="/v2/admin", name="admin_v2")
    client = app.test_client()
    for path in ("/admin/users", "/v2/admin/users"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers=login(app, gate, roles=["viewer"])).status_code == 403, path
        assert client.get(path, headers=login(app, gate, roles=["admin"])).status_code == 200, path
    assert client.get("/v2/admin/health").status_code == 200


def test_protect_again_replaces_the_rule(app_gate: tuple[Flask, AuthGate]) -> None:
    app, gate = app_gate
    bp = admin_blueprint()
    client = protected(app, gate, bp, roles=["admin"])
    headers = login(app, gate, roles=["editor"])
    assert client.get("/admin/users", headers=headers).status_code == 403
    gate.protect(bp, roles=["editor"])
    assert client.get("/admin/users", headers=headers).status_code == 200


def test_automatic_options_on_a_protected_blueprint_stays_open(app_gate: tuple[Flask, AuthGate]) -> None:
    app, gate = app_gate
    rv = protected(app, gate, roles=["admin"]).options(
        "/admin/users", headers={"Origin": "https://x.example", "Access-Control-Request-Method": "GET"}
    )
    assert rv.status_code == 200
    assert set(rv.allow) == {"GET", "HEAD", "OPTIONS"}


def test_one_gate_two_apps() -> None:
    gate = AuthGate()
    bp = admin_blueprint()
    gate.protect(bp, roles=["admin"])
    app1, _ = make_app(gate=gate)
    app2, _ = make_app({"SECRET_KEY": OTHER_SECRET}, gate=gate)
    app1.register_blueprint(bp, url_prefix="/admin")
    app2.register_blueprint(bp, url_prefix="/admin")
    for app in (app1, app2):
        client = app.test_client()
        assert client.get("/admin/users").status_code == 401
        assert client.get("/admin/users", headers=login(app, gate, roles=["viewer"])).status_code == 403
        assert client.get("/admin/users", headers=login(app, gate, roles=["admin"])).status_code == 200
        assert client.get("/admin/health").status_code == 200
    # Each app keeps its own keys: a token of one is not valid on the other.
    rv = app2.test_client().get("/admin/users", headers=login(app1, gate, roles=["admin"]))
    assert rv.status_code == 401
    assert rv.get_json()["code"] == "token_invalid"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        pytest.param({"roles": "admin"}, TypeError, id="roles-string"),
        pytest.param({"any_roles": "admin"}, TypeError, id="any-roles-string"),
        pytest.param({"scopes": "a b"}, TypeError, id="scopes-string"),
        pytest.param({"roles": [""]}, TypeError, id="empty-role"),
        pytest.param({"scopes": ['bad"scope']}, ValueError, id="bad-scope"),
    ],
)
def test_protect_refuses_bad_arguments(kwargs: dict[str, t.Any], error: type[Exception]) -> None:
    gate = AuthGate()
    with pytest.raises(error):
        gate.protect(Blueprint("x", __name__), **kwargs)
