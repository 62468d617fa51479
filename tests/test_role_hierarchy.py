"""``AUTHGATE_ROLE_HIERARCHY``: a role satisfies every role it includes (issue 3)."""

from __future__ import annotations

import collections.abc as cabc
import typing as t

import pytest
from conftest import make_app
from flask import Blueprint
from flask import Flask
from kit import add_view
from kit import add_views
from kit import login

from flask_authgate import AuthGate
from flask_authgate import ConfigError
from flask_authgate import Identity
from flask_authgate import current_identity
from flask_authgate import roles_accepted
from flask_authgate import roles_required
from flask_authgate import scopes_required

HIERARCHY = {"admin": ["editor"], "editor": ["viewer"]}


@pytest.fixture
def app_gate(token_format: str) -> tuple[Flask, AuthGate]:
    app, gate = make_app({"AUTHGATE_TOKEN_FORMAT": token_format, "AUTHGATE_ROLE_HIERARCHY": HIERARCHY})
    add_views(
        app,
        {
            "/view": roles_required("viewer"),
            "/edit": roles_required("editor"),
            "/admin": roles_required("admin"),
            "/view-and-audit": roles_required("viewer", "auditor"),
            "/edit-or-own": roles_accepted("editor", "owner"),
            "/scoped": scopes_required("admin"),
        },
    )
    add_view(app, "/async-view", roles_required("viewer"), kind="async")
    add_view(app, "/roles", roles_required("viewer"), returns=lambda: {"roles": sorted(current_identity.roles)})
    return app, gate


def status(app: Flask, gate: AuthGate, path: str, roles: t.Sequence[str], scopes: t.Sequence[str] = ()) -> int:
    return app.test_client().get(path, headers=login(app, gate, roles=roles, scopes=scopes)).status_code


@pytest.mark.parametrize(
    ("roles", "path", "expected"),
    [
        pytest.param(["admin"], "/view", 200, id="admin-is-viewer-transitively"),
        pytest.param(["admin"], "/edit", 200, id="admin-is-editor"),
        pytest.param(["admin"], "/admin", 200, id="admin-is-admin"),
        pytest.param(["admin"], "/async-view", 200, id="async"),
        pytest.param(["editor"], "/view", 200, id="editor-is-viewer"),
        pytest.param(["editor"], "/admin", 403, id="editor-is-not-admin"),
        pytest.param(["viewer"], "/view", 200, id="viewer-is-viewer"),
        pytest.param(["viewer"], "/edit", 403, id="viewer-is-not-editor"),
        pytest.param(["viewer"], "/admin", 403, id="viewer-is-not-admin"),
        pytest.param(["editor"], "/view-and-audit", 403, id="all-of-still-needs-auditor"),
        pytest.param(["admin", "auditor"], "/view-and-audit", 200, id="all-of-with-hierarchy"),
        pytest.param(["admin"], "/edit-or-own", 200, id="accepted-via-hierarchy"),
        pytest.param(["viewer"], "/edit-or-own", 403, id="accepted-below"),
        pytest.param(["owner"], "/edit-or-own", 200, id="accepted-other-role"),
        pytest.param(["unknown"], "/view", 403, id="role-outside-hierarchy"),
        pytest.param([], "/view", 403, id="no-roles"),
    ],
)
def test_hierarchy_in_guards(app_gate: tuple[Flask, AuthGate], roles: list[str], path: str, expected: int) -> None:
    app, gate = app_gate
    assert status(app, gate, path, roles) == expected


def test_identity_roles_stay_as_issued(app_gate: tuple[Flask, AuthGate]) -> None:
    # The hierarchy is applied by the guards; current_identity.roles is what the token says.
    app, gate = app_gate
    rv = app.test_client().get("/roles", headers=login(app, gate, roles=["admin"]))
    assert rv.get_json() == {"roles": ["admin"]}


def test_hierarchy_does_not_touch_scopes(app_gate: tuple[Flask, AuthGate]) -> None:
    app, gate = app_gate
    assert status(app, gate, "/scoped", ["admin"]) == 403
    assert status(app, gate, "/scoped", [], ["admin"]) == 200


def test_hierarchy_applies_to_roles_from_the_roles_loader(app_gate: tuple[Flask, AuthGate]) -> None:
    app, gate = app_gate
    database = {"alice": ["admin"]}

    @gate.roles_loader
    def load_roles(identity: Identity) -> cabc.Iterable[str]:
        return database.get(identity.subject, [])

    assert status(app, gate, "/view", []) == 200
    database["alice"] = ["viewer"]
    assert status(app, gate, "/edit", ["admin"]) == 403  # the loader replaces the token's roles


def test_hierarchy_applies_to_protected_blueprints(token_format: str) -> None:
    app, gate = make_app({"AUTHGATE_TOKEN_FORMAT": token_format, "AUTHGATE_ROLE_HIERARCHY": HIERARCHY})
    bp = Blueprint("reports", __name__)
    add_view(bp, "/r")
    gate.protect(bp, roles=["viewer"], any_roles=["editor", "auditor"])
    app.register_blueprint(bp, url_prefix="/reports")
    assert status(app, gate, "/reports/r", ["admin"]) == 200
    assert status(app, gate, "/reports/r", ["viewer"]) == 403


def test_without_a_hierarchy_roles_are_flat() -> None:
    app, gate = make_app()
    add_view(app, "/view", roles_required("viewer"))
    assert status(app, gate, "/view", ["admin"]) == 403
    assert status(app, gate, "/view", ["viewer"]) == 200


@pytest.mark.parametrize(
    ("hierarchy", "message"),
    [
        pytest.param({"a": ["a"]}, "AUTHGATE_ROLE_HIERARCHY has a cycle: a -> a", id="self"),
        pytest.param({"a": ["b"], "b": ["a"]}, "AUTHGATE_ROLE_HIERARCHY has a cycle: a -> b -> a", id="two"),
        pytest.param(
            {"admin": ["editor"], "editor": ["viewer"], "viewer": ["admin"]},
            "AUTHGATE_ROLE_HIERARCHY has a cycle: admin -> editor -> viewer -> admin",
            id="three",
        ),
        pytest.param(
            {"root": ["a"], "a": ["b"], "b": ["c"], "c": ["a"]},
            "AUTHGATE_ROLE_HIERARCHY has a cycle: a -> b -> c -> a",
            id="cycle-below-root",
        ),
    ],
)
def test_cycles_are_refused_at_init_app(hierarchy: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_app({"AUTHGATE_ROLE_HIERARCHY": hierarchy})
    assert str(info.value) == message


@pytest.mark.parametrize(
    "hierarchy",
    [
        pytest.param(["admin", "editor"], id="list"),
        pytest.param("admin>editor", id="string"),
        pytest.param({"admin": "editor"}, id="string-value"),
        pytest.param({"admin": {"editor": True}}, id="mapping-value"),
        pytest.param({"admin": [1]}, id="non-string-child"),
        pytest.param({"admin": [""]}, id="empty-child"),
        pytest.param({"": ["viewer"]}, id="empty-role"),
        pytest.param({1: ["viewer"]}, id="non-string-role"),
        pytest.param({"admin": None}, id="none-value"),
    ],
)
def test_bad_shapes_are_refused_at_init_app(hierarchy: t.Any) -> None:
    with pytest.raises(ConfigError) as info:
        make_app({"AUTHGATE_ROLE_HIERARCHY": hierarchy})
    assert str(info.value).startswith("AUTHGATE_ROLE_HIERARCHY")


@pytest.mark.parametrize("hierarchy", [pytest.param(None, id="none"), pytest.param({}, id="empty")])
def test_an_empty_hierarchy_is_accepted(hierarchy: t.Any) -> None:
    make_app({"AUTHGATE_ROLE_HIERARCHY": hierarchy})
