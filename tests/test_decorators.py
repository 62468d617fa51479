"""The guards as decorators: both forms, misuse at decoration time, stacking, async, OPTIONS, HEAD."""

from __future__ import annotations

import collections.abc as cabc
import functools
import itertools
import typing as t

import pytest
from conftest import make_app
from flask import Flask
from flask.typing import ResponseReturnValue
from flask.views import MethodView
from kit import add_view
from kit import bearer
from kit import subject_json

from flask_authgate import AuthGate
from flask_authgate import Identity
from flask_authgate import current_identity
from flask_authgate import current_user
from flask_authgate import ip_allowed
from flask_authgate import login_required
from flask_authgate import roles_accepted
from flask_authgate import roles_required
from flask_authgate import scopes_required

Guard = cabc.Callable[[t.Any], t.Any]
BARE = ['Bearer realm="api"']
OUTSIDE = {"REMOTE_ADDR": "192.0.2.9"}
INSIDE = {"REMOTE_ADDR": "10.1.2.3"}


def token(app: Flask, gate: AuthGate, subject: str = "alice", **kwargs: t.Any) -> dict[str, str]:
    with app.app_context():
        return bearer(gate.create_access_token(subject, **kwargs))


def code_of(rv: t.Any) -> str | None:
    return None if rv.status_code == 200 else t.cast(str, rv.get_json()["code"])


# -- forms and misuse --------------------------------------------------------


def test_login_required_bare_and_called(token_format: str) -> None:
    app, gate = make_app({"AUTHGATE_TOKEN_FORMAT": token_format})

    @app.route("/bare")
    @login_required
    def bare() -> ResponseReturnValue:
        return {"sub": current_identity.subject}

    @app.route("/called")
    @login_required()
    def called() -> ResponseReturnValue:
        return {"sub": current_identity.subject}

    client = app.test_client()
    auth = token(app, gate)
    for path in ("/bare", "/called"):
        rv = client.get(path)
        assert (rv.status_code, code_of(rv), rv.headers.getlist("WWW-Authenticate")) == (401, "token_missing", BARE)
        assert client.get(path, headers=auth).get_json() == {"sub": "alice"}
    assert bare.__name__ == "bare"
    assert called.__name__ == "called"


def _view() -> str:
    return "x"


@pytest.mark.parametrize("decorator", [roles_required, roles_accepted, scopes_required])
def test_argument_decorators_refuse_a_function(decorator: t.Any) -> None:
    with pytest.raises(TypeError, match="not a function"):
        decorator(_view)


@pytest.mark.parametrize("decorator", [roles_required, roles_accepted, scopes_required, ip_allowed])
def test_argument_decorators_refuse_nothing(decorator: t.Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        decorator()


@pytest.mark.parametrize("decorator", [roles_required, roles_accepted, scopes_required])
@pytest.mark.parametrize("bad", ["", "  ", 5, None, b"admin"])
def test_argument_decorators_refuse_bad_names(decorator: t.Any, bad: t.Any) -> None:
    with pytest.raises(TypeError):
        decorator(bad)


def test_ip_allowed_refuses_a_function_and_a_bad_network() -> None:
    with pytest.raises(TypeError):
        ip_allowed(_view)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"10\.0\.0\.1/8"):
        ip_allowed("10.0.0.1/8")


def test_scopes_required_refuses_a_quote() -> None:
    with pytest.raises(ValueError, match="valid scope"):
        scopes_required('read"write')


def test_scopes_from_a_space_separated_string() -> None:
    app, gate = make_app()

    add_view(app, "/s", scopes_required("read write"), returns="ok")

    client = app.test_client()
    assert client.get("/s", headers=token(app, gate, scopes=["read", "write"])).status_code == 200
    rv = client.get("/s", headers=token(app, gate, scopes=["read"]))
    assert rv.headers.getlist("WWW-Authenticate") == [
        'Bearer realm="api", error="insufficient_scope", scope="read write"'
    ]


# -- stacking ----------------------------------------------------------------

GUARDS: dict[str, Guard] = {
    "ip": ip_allowed("10.0.0.0/8"),
    "roles": roles_required("admin"),
    "any": roles_accepted("admin", "owner"),
    "scopes": scopes_required("read"),
}


def passthrough(view: t.Any) -> t.Any:
    """A decorator that is not ours, written the usual way (functools.wraps)."""

    @functools.wraps(view)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        return view(*args, **kwargs)

    return wrapper


def outcomes(app: Flask, gate: AuthGate) -> dict[str, tuple[int, str | None]]:
    """What the stacked route answers for each kind of caller."""
    client = app.test_client()
    callers = {
        "anonymous-outside": ({}, OUTSIDE),
        "anonymous-inside": ({}, INSIDE),
        "garbage-outside": ({"Authorization": "Bearer x.y.z"}, OUTSIDE),
        "garbage-inside": ({"Authorization": "Bearer x.y.z"}, INSIDE),
        "plain-outside": (token(app, gate), OUTSIDE),
        "plain-inside": (token(app, gate), INSIDE),
        "admin-no-scope-inside": (token(app, gate, roles=["admin"]), INSIDE),
        "admin-scope-outside": (token(app, gate, roles=["admin"], scopes=["read"]), OUTSIDE),
        "admin-scope-inside": (token(app, gate, roles=["admin"], scopes=["read"]), INSIDE),
    }
    out = {}
    for name, (headers, environ) in callers.items():
        rv = client.get("/stacked", headers=headers, environ_base=environ)
        out[name] = (rv.status_code, code_of(rv))
    return out


EXPECTED = {
    "anonymous-outside": (403, "ip_denied"),
    "anonymous-inside": (401, "token_missing"),
    "garbage-outside": (403, "ip_denied"),
    "garbage-inside": (401, "token_invalid"),
    "plain-outside": (403, "ip_denied"),
    "plain-inside": (403, "insufficient_role"),
    "admin-no-scope-inside": (403, "insufficient_scope"),
    "admin-scope-outside": (403, "ip_denied"),
    "admin-scope-inside": (200, None),
}


@pytest.mark.parametrize(
    "order", [pytest.param(p, id="-".join(p)) for p in itertools.permutations(["ip", "roles", "any", "scopes"])]
)
def test_stacking_in_any_order_gives_the_same_answer(order: tuple[str, ...]) -> None:
    app, gate = make_app()

    def stacked() -> ResponseReturnValue:
        return "ok"

    view: t.Any = stacked
    for name in reversed(order):
        view = GUARDS[name](view)
    app.add_url_rule("/stacked", "stacked", view)
    assert outcomes(app, gate) == EXPECTED


@pytest.mark.parametrize(
    "layout",
    [
        pytest.param(("roles", "passthrough", "ip", "scopes", "any"), id="roles-foreign-ip"),
        pytest.param(("ip", "passthrough", "roles", "scopes", "any"), id="ip-foreign-roles"),
        pytest.param(("scopes", "any", "passthrough", "passthrough", "roles", "ip"), id="two-foreign"),
    ],
)
def test_stacked_guards_around_a_foreign_decorator(layout: tuple[str, ...]) -> None:
    app, gate = make_app()
    calls: list[str] = []

    def stacked() -> ResponseReturnValue:
        calls.append("view")
        return "ok"

    view: t.Any = stacked
    for name in reversed(layout):
        view = passthrough(view) if name == "passthrough" else GUARDS[name](view)
    app.add_url_rule("/stacked", "stacked", view)
    assert outcomes(app, gate) == EXPECTED
    assert calls == ["view"]


# -- MethodView --------------------------------------------------------------


def test_methodview_guards_on_the_class_and_on_a_method() -> None:
    app, gate = make_app()

    class Items(MethodView):
        decorators: t.ClassVar[list[Guard]] = [login_required]

        def get(self) -> ResponseReturnValue:
            return {"sub": current_identity.subject}

        @roles_required("admin")
        def post(self) -> ResponseReturnValue:
            return {"created": True}

    app.add_url_rule("/items", view_func=Items.as_view("items"))
    client = app.test_client()
    assert code_of(client.get("/items")) == "token_missing"
    assert client.get("/items", headers=token(app, gate)).get_json() == {"sub": "alice"}
    assert code_of(client.post("/items", headers=token(app, gate))) == "insufficient_role"
    assert client.post("/items", headers=token(app, gate, roles=["admin"])).get_json() == {"created": True}


# -- async -------------------------------------------------------------------


@pytest.mark.parametrize("view_is_async", [True, False], ids=["async-view", "sync-view"])
def test_async_loaders(token_format: str, view_is_async: bool) -> None:
    pytest.importorskip("asgiref")
    app, gate = make_app({"AUTHGATE_TOKEN_FORMAT": token_format})
    users = {"alice": {"name": "Alice"}}
    roles = {"alice": ["admin"], "bob": []}

    @gate.user_loader
    async def load_user(identity: Identity) -> dict[str, str] | None:
        return users.get(identity.subject)

    @gate.roles_loader
    async def load_roles(identity: Identity) -> list[str]:
        return roles.get(identity.subject, [])

    add_view(
        app,
        "/admin",
        roles_required("admin"),
        returns=lambda: {"sub": current_identity.subject, "user": current_user["name"]},
        kind="async" if view_is_async else "sync",
    )

    client = app.test_client()
    # The token carries no roles: they come from the roles loader.
    assert client.get("/admin", headers=token(app, gate)).get_json() == {"sub": "alice", "user": "Alice"}
    users["bob"] = {"name": "Bob"}
    assert code_of(client.get("/admin", headers=token(app, gate, "bob", roles=["admin"]))) == "insufficient_role"
    assert code_of(client.get("/admin", headers=token(app, gate, "carol"))) == "identity_not_found"
    assert code_of(client.get("/admin")) == "token_missing"


# -- OPTIONS and HEAD ---------------------------------------------------------


@pytest.mark.parametrize("view_is_async", [False, True], ids=["sync", "async"])
def test_options_listed_by_the_route(view_is_async: bool) -> None:
    app, gate = make_app()
    ran: list[str] = []

    if view_is_async:

        @app.route("/thing", methods=["GET", "POST", "OPTIONS"])
        @roles_required("admin")
        async def thing() -> ResponseReturnValue:
            ran.append("view")
            return {"view": True}

    else:

        @app.route("/thing", methods=["GET", "POST", "OPTIONS"])
        @roles_required("admin")
        def thing_sync() -> ResponseReturnValue:
            ran.append("view")
            return {"view": True}

    client = app.test_client()
    # A CORS preflight carries no credentials: Flask's default answer, the view never runs.
    rv = client.options("/thing", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert rv.status_code == 200
    assert set(rv.allow) == {"GET", "HEAD", "POST", "OPTIONS"}
    assert rv.get_data() == b""
    assert ran == []
    # With credentials it is an ordinary request: the guard decides.
    rv = client.options("/thing", headers={"Authorization": "Bearer x.y.z"})
    assert (rv.status_code, code_of(rv)) == (401, "token_invalid")
    rv = client.options("/thing", headers=token(app, gate))
    assert (rv.status_code, code_of(rv)) == (403, "insufficient_role")
    assert ran == []
    rv = client.options("/thing", headers=token(app, gate, roles=["admin"]))
    assert rv.get_json() == {"view": True}
    assert ran == ["view"]


def test_options_preflight_still_checks_the_ip() -> None:
    app, _gate = make_app()

    add_view(app, "/thing", ip_allowed("10.0.0.0/8"), login_required, methods=["GET", "OPTIONS"], returns="ran")

    rv = app.test_client().options("/thing", environ_base=OUTSIDE)
    assert (rv.status_code, code_of(rv)) == (403, "ip_denied")
    rv = app.test_client().options("/thing", environ_base=INSIDE)
    assert (rv.status_code, rv.get_data()) == (200, b"")


def test_automatic_options_is_untouched() -> None:
    app, _gate = make_app()
    ran: list[str] = []

    @app.route("/auto")
    @login_required
    def auto() -> ResponseReturnValue:
        ran.append("view")
        return "ran"

    rv = app.test_client().options("/auto")
    assert rv.status_code == 200
    assert set(rv.allow) == {"GET", "HEAD", "OPTIONS"}
    assert ran == []


def test_head_on_a_guarded_route() -> None:
    app, gate = make_app()

    add_view(app, "/me", login_required, returns=subject_json)

    client = app.test_client()
    rv = client.head("/me")
    assert rv.status_code == 401
    assert rv.headers.getlist("WWW-Authenticate") == BARE
    assert rv.headers.getlist("Cache-Control") == ["no-store"]
    assert rv.get_data() == b""
    rv = client.head("/me", headers=token(app, gate))
    assert (rv.status_code, rv.get_data()) == (200, b"")
