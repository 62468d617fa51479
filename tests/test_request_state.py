"""Per-request state belongs to the request (issue 9 item 1, DESIGN.md part two).

Flask reuses an app context that is already pushed, and ``g`` with it. The
extension once kept the request's auth result on ``g``, so under ``with
app.app_context():`` (a common pytest fixture) or in a view that dispatches a
sub-request, the second request was answered as the first one's caller. Every
test here pushes one app context and sends several requests through it.
"""

from __future__ import annotations

import typing as t

import pytest
from conftest import make_app
from flask import Flask
from flask import g
from flask.views import MethodView
from kit import bearer

from flask_authgate import AuthGate
from flask_authgate import authorize
from flask_authgate import current_identity
from flask_authgate import current_user
from flask_authgate import get_identity
from flask_authgate import login_required
from flask_authgate import require_owner
from flask_authgate import roles_required


def build() -> tuple[Flask, AuthGate]:
    app, gate = make_app()

    @gate.user_loader
    def load_user(identity: t.Any) -> dict[str, str]:
        return {"name": identity.subject}

    @app.get("/sync")
    @roles_required("admin")
    def sync_view() -> dict[str, t.Any]:
        return {"sub": current_identity.subject, "user": current_user["name"]}

    @app.get("/async")
    @roles_required("admin")
    async def async_view() -> dict[str, t.Any]:
        return {"sub": current_identity.subject, "user": current_user["name"]}

    class Admin(MethodView):
        decorators: t.ClassVar[list[t.Any]] = [roles_required("admin")]

        def get(self) -> dict[str, t.Any]:
            return {"sub": current_identity.subject, "user": current_user["name"]}

    app.add_url_rule("/method", view_func=Admin.as_view("method"))

    @app.get("/open")
    def open_view() -> dict[str, t.Any]:
        identity = get_identity()
        return {"sub": identity.subject if identity else None, "user": current_user["name"] if current_user else None}

    @app.get("/owned/<owner>")
    def owned(owner: str) -> dict[str, str]:
        require_owner(owner)
        return {"owner": owner}

    @app.get("/allowed")
    def allowed() -> dict[str, str]:
        authorize(bool(current_identity) and "admin" in current_identity.roles)
        return {"ok": "yes"}

    return app, gate


@pytest.mark.parametrize("path", ["/sync", "/async", "/method"])
def test_a_second_request_in_one_app_context_is_never_the_first_caller(path: str) -> None:
    app, gate = build()
    with app.app_context():
        alice = gate.create_access_token("alice", roles=["admin"])
        bob = gate.create_access_token("bob", roles=["admin"])
        client = app.test_client()
        assert client.get(path, headers=bearer(alice)).get_json() == {"sub": "alice", "user": "alice"}
        assert client.get(path, headers=bearer(bob)).get_json() == {"sub": "bob", "user": "bob"}
        # A garbage token and no token at all are refused, not served as bob.
        assert client.get(path, headers=bearer("garbage.token.here")).status_code == 401
        assert client.get(path).status_code == 401
        assert client.get(path, headers=bearer(alice)).get_json() == {"sub": "alice", "user": "alice"}


def test_the_proxies_follow_each_request_in_one_app_context() -> None:
    app, gate = build()
    with app.app_context():
        alice = gate.create_access_token("alice")
        client = app.test_client()
        assert client.get("/open", headers=bearer(alice)).get_json() == {"sub": "alice", "user": "alice"}
        assert client.get("/open").get_json() == {"sub": None, "user": None}
        assert client.get("/open", headers=bearer("x.y.z")).get_json() == {"sub": None, "user": None}


def test_authorize_and_require_owner_in_one_app_context() -> None:
    app, gate = build()
    with app.app_context():
        alice = gate.create_access_token("alice", roles=["admin"])
        bob = gate.create_access_token("bob")
        client = app.test_client()
        assert client.get("/owned/alice", headers=bearer(alice)).status_code == 200
        assert client.get("/owned/alice", headers=bearer(bob)).get_json()["code"] == "not_owner"
        assert client.get("/owned/alice").get_json()["code"] == "token_missing"
        assert client.get("/allowed", headers=bearer(alice)).status_code == 200
        assert client.get("/allowed", headers=bearer(bob)).get_json()["code"] == "forbidden"
        assert client.get("/allowed").get_json()["code"] == "token_missing"


def test_nested_test_request_contexts_each_have_their_own_identity() -> None:
    app, gate = build()
    with app.app_context():
        alice = gate.create_access_token("alice")
        bob = gate.create_access_token("bob")
        with app.test_request_context(headers=bearer(alice)):
            assert current_identity.subject == "alice"
            with app.test_request_context(headers=bearer(bob)):
                assert current_identity.subject == "bob"
                assert current_user == {"name": "bob"}
            with app.test_request_context():
                assert not current_identity
                assert not current_user
            assert current_identity.subject == "alice"
            assert current_user == {"name": "alice"}


def test_a_sub_request_from_a_view_does_not_inherit_the_callers_identity() -> None:
    app, gate = build()

    @app.get("/outer")
    @login_required
    def outer() -> dict[str, t.Any]:
        # A view dispatching a request to the same app, with no credentials of its own.
        inner = app.test_client().get("/sync")
        return {"outer": current_identity.subject, "inner": inner.status_code}

    with app.app_context():
        alice = gate.create_access_token("alice", roles=["admin"])
    assert app.test_client().get("/outer", headers=bearer(alice)).get_json() == {"outer": "alice", "inner": 401}


def test_nothing_is_kept_on_g() -> None:
    app, gate = build()
    seen: list[list[str]] = []

    @app.after_request
    def look(response: t.Any) -> t.Any:
        seen.append([k for k in vars(g._get_current_object()) if "authgate" in k])
        return response

    with app.app_context():
        token = gate.create_access_token("alice", roles=["admin"])
    assert app.test_client().get("/sync", headers=bearer(token)).status_code == 200
    assert seen == [[]]
