"""``flask authgate routes``: the route audit (issue 3)."""

from __future__ import annotations

import json
import pathlib
import typing as t

import pytest
from flask import Blueprint
from flask import Flask
from flask.views import MethodView
from kit import add_view
from kit import add_views
from kit import static_app

from flask_authgate import AuthGate
from flask_authgate import fresh_login_required
from flask_authgate import ip_allowed
from flask_authgate import login_required
from flask_authgate import public
from flask_authgate import refresh_token_required
from flask_authgate import roles_accepted
from flask_authgate import roles_required
from flask_authgate import scopes_required


def build(
    tmp_path: pathlib.Path, config: dict[str, t.Any] | None = None, *, with_unguarded: bool = True
) -> tuple[Flask, AuthGate]:
    app = static_app(tmp_path, config)
    gate = AuthGate(app)

    add_views(
        app,
        {
            "/health": public,
            "/me": login_required,
            "/edit": roles_accepted("editor", "owner"),
            "/read": scopes_required("notes:read"),
            "/office": ip_allowed("10.0.0.0/8", "2001:db8::/32"),
        },
    )
    add_view(app, "/admin", roles_required("admin", "staff"), methods=["GET", "POST"])
    add_views(app, {"/refresh": refresh_token_required, "/password": fresh_login_required}, methods=["POST"])

    class Notes(MethodView):
        decorators: t.ClassVar[list[t.Callable[..., t.Any]]] = [login_required]

        def get(self) -> str:
            return "notes"

        def delete(self) -> str:
            return "deleted"

    app.add_url_rule("/notes", view_func=Notes.as_view("notes"))

    bp = Blueprint("staff", __name__)
    add_views(bp, {"/tools": (), "/status": public})
    gate.protect(bp, roles=["staff"], any_roles=["ops", "dev"], scopes=["tools"])
    app.register_blueprint(bp, url_prefix="/staff")

    if with_unguarded:
        add_view(app, "/forgotten")

        class Mixed(MethodView):
            def get(self) -> str:
                return "list"

            @roles_required("admin")
            def post(self) -> str:
                return "created"

        app.add_url_rule("/mixed", view_func=Mixed.as_view("mixed"))

    return app, gate


TABLE = """\
RULE                     ENDPOINT      METHODS             GUARDS
/admin                   admin         GET,POST            roles all: admin, staff
/edit                    edit          GET                 roles any: editor, owner
/forgotten               forgotten     GET                 UNGUARDED
/health                  health        GET                 public
/me                      me            GET                 login
/mixed                   mixed         GET,POST            UNGUARDED; GET: none; POST: roles all: admin
/notes                   notes         DELETE,GET          login
/office                  office        GET                 ip 10.0.0.0/8,2001:db8::/32
/password                password      POST                fresh login
/read                    read          GET                 scopes: notes:read
/refresh                 refresh       POST                refresh token
/staff/status            staff.status  GET                 public
/staff/tools             staff.tools   GET                 blueprint staff: roles all: staff; blueprint staff: roles any: dev, ops; blueprint staff: scopes: tools
/static/<path:filename>  static        GET                 static files

14 endpoint(s), 2 unguarded
"""


def test_table_lists_every_endpoint_and_flags_the_unguarded(tmp_path: pathlib.Path) -> None:
    app, _ = build(tmp_path)
    result = app.test_cli_runner().invoke(args=["authgate", "routes"])
    assert result.exit_code == 0
    assert result.output == TABLE


def test_table_shows_default_deny_and_the_app_ip_allow_list(tmp_path: pathlib.Path) -> None:
    app, _ = build(tmp_path, {"AUTHGATE_DEFAULT_DENY": True, "AUTHGATE_IP_ALLOWLIST": ["10.0.0.0/8"]})
    result = app.test_cli_runner().invoke(args=["authgate", "routes"])
    assert result.exit_code == 0
    lines = {line.split()[1]: line.split(None, 3)[3] for line in result.output.splitlines()[1:-2]}
    assert lines["forgotten"] == "app ip allow list; default deny"
    assert lines["mixed"] == "app ip allow list; GET: none; POST: roles all: admin; default deny"
    assert lines["health"] == "app ip allow list; public"
    assert lines["static"] == "static files; app ip allow list"
    assert lines["staff.status"] == "app ip allow list; public"
    assert result.output.endswith("\n14 endpoint(s), 0 unguarded\n")


def test_json_has_every_field(tmp_path: pathlib.Path) -> None:
    app, _ = build(tmp_path)
    result = app.test_cli_runner().invoke(args=["authgate", "routes", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert [r["endpoint"] for r in rows] == [
        "admin", "edit", "forgotten", "health", "me", "mixed", "notes", "office",
        "password", "read", "refresh", "staff.status", "staff.tools", "static",
    ]  # fmt: skip
    for row in rows:
        assert set(row) == {"endpoint", "rule", "methods", "guards", "unguarded"}
    by_endpoint = {r["endpoint"]: r for r in rows}
    assert by_endpoint["admin"] == {
        "endpoint": "admin",
        "rule": "/admin",
        "methods": ["GET", "POST"],
        "guards": ["roles all: admin, staff"],
        "unguarded": False,
    }
    assert by_endpoint["forgotten"] == {
        "endpoint": "forgotten",
        "rule": "/forgotten",
        "methods": ["GET"],
        "guards": [],
        "unguarded": True,
    }
    assert by_endpoint["mixed"]["unguarded"] is True
    assert by_endpoint["staff.tools"]["guards"] == [
        "blueprint staff: roles all: staff",
        "blueprint staff: roles any: dev, ops",
        "blueprint staff: scopes: tools",
    ]
    assert by_endpoint["static"]["guards"] == ["static files"]
    assert [r["endpoint"] for r in rows if r["unguarded"]] == ["forgotten", "mixed"]


@pytest.mark.parametrize(
    ("args", "with_unguarded", "exit_code"),
    [
        pytest.param([], True, 1, id="table-unguarded"),
        pytest.param([], False, 0, id="table-clean"),
        pytest.param(["--json"], True, 1, id="json-unguarded"),
        pytest.param(["--json"], False, 0, id="json-clean"),
    ],
)
def test_fail_on_unguarded(tmp_path: pathlib.Path, args: list[str], with_unguarded: bool, exit_code: int) -> None:
    app, _ = build(tmp_path, with_unguarded=with_unguarded)
    result = app.test_cli_runner().invoke(args=["authgate", "routes", "--fail-on-unguarded", *args])
    assert result.exit_code == exit_code
    if "--json" in args:
        json.loads(result.stdout)  # still machine-readable when failing
    elif exit_code:
        assert "error: unguarded endpoints found" in result.stderr
        assert result.stdout.endswith("\n14 endpoint(s), 2 unguarded\n")
    else:
        assert result.stdout.endswith("\n12 endpoint(s), 0 unguarded\n")


def test_default_deny_makes_an_app_pass(tmp_path: pathlib.Path) -> None:
    app, _ = build(tmp_path, {"AUTHGATE_DEFAULT_DENY": True})
    result = app.test_cli_runner().invoke(args=["authgate", "routes", "--fail-on-unguarded"])
    assert result.exit_code == 0


def test_the_audit_matches_what_the_app_enforces(tmp_path: pathlib.Path) -> None:
    # Every endpoint the audit calls unguarded really answers an anonymous GET.
    app, _ = build(tmp_path)
    result = app.test_cli_runner().invoke(args=["authgate", "routes", "--json"])
    client = app.test_client()
    for row in json.loads(result.output):
        if "GET" not in row["methods"] or "<" in row["rule"]:
            continue
        rv = client.get(row["rule"], environ_base={"REMOTE_ADDR": "203.0.113.9"})
        assert (rv.status_code == 200) == (row["unguarded"] or "public" in row["guards"]), row
