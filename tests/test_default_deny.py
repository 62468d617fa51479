"""``AUTHGATE_DEFAULT_DENY``: every endpoint needs an identity unless ``@public`` (issue 3).

Static files and Flask's automatic ``OPTIONS`` answers stay open; a URL that
matches no route still answers 404 and a wrong method 405, exactly as
without the extension.
"""

from __future__ import annotations

import pathlib
import typing as t

import pytest
from flask import Blueprint
from flask import Flask
from flask.testing import FlaskClient
from flask.views import MethodView
from kit import add_view
from kit import add_views
from kit import body
from kit import login
from kit import noted
from kit import static_app

from flask_authgate import AuthGate
from flask_authgate import current_identity
from flask_authgate import get_identity
from flask_authgate import ip_allowed
from flask_authgate import public
from flask_authgate import roles_required

TOKEN_MISSING = body("token_missing")
NOT_FOUND = body("not_found")
PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}


class Env(t.NamedTuple):
    app: Flask
    gate: AuthGate
    client: FlaskClient
    ran: list[str]


def build(tmp_path: pathlib.Path, token_format: str, *, default_deny: bool = True) -> Env:
    app = static_app(tmp_path, {"AUTHGATE_DEFAULT_DENY": default_deny, "AUTHGATE_TOKEN_FORMAT": token_format})
    gate = AuthGate(app)
    ran: list[str] = []

    def whose() -> dict[str, str | None]:
        identity = get_identity()
        return {"subject": identity.subject if identity is not None else None, "anonymous": str(not current_identity)}

    def mine() -> dict[str, str]:
        return {"subject": current_identity.subject}

    add_view(app, "/private", returns=noted(ran, "private", mine))
    add_view(app, "/async-private", returns=noted(ran, "async-private", mine), kind="async")
    add_view(app, "/public", public, returns=noted(ran, "public", whose), endpoint="public_view")
    add_views(
        app,
        {
            "/public-admin": (public, roles_required("admin")),
            "/admin-public": (roles_required("admin"), public),
            "/office": ip_allowed("10.0.0.0/8"),
        },
    )
    add_view(app, "/explicit", methods=["GET", "POST", "OPTIONS"], returns=noted(ran, "explicit"))
    add_view(app, "/explicit-public", public, methods=["GET", "OPTIONS"], returns=noted(ran, "explicit-public"))

    @public
    class PublicClass(MethodView):
        def get(self) -> str:
            ran.append("public-class")
            return "public-class"

    class PublicDecorators(MethodView):
        decorators: t.ClassVar[list[t.Callable[..., t.Any]]] = [public]

        def get(self) -> str:
            ran.append("public-decorators")
            return "public-decorators"

    class Closed(MethodView):
        def get(self) -> str:
            ran.append("closed")
            return "closed"

    app.add_url_rule("/mv/public-class", view_func=PublicClass.as_view("public_class"))
    app.add_url_rule("/mv/public-decorators", view_func=PublicDecorators.as_view("public_decorators"))
    app.add_url_rule("/mv/closed", view_func=Closed.as_view("closed"))

    bp = Blueprint("pages", __name__)
    add_view(bp, "/inside", returns=noted(ran, "inside"))
    add_view(bp, "/inside-public", public)

    app.register_blueprint(bp, url_prefix="/pages")
    return Env(app, gate, app.test_client(), ran)


@pytest.fixture
def env(tmp_path: pathlib.Path, token_format: str) -> Env:
    return build(tmp_path, token_format)


def login_as(env: Env, subject: str = "alice", roles: t.Sequence[str] = ()) -> dict[str, str]:
    return login(env.app, env.gate, subject, roles=roles)


CLOSED = [
    pytest.param("/private", id="plain-view"),
    pytest.param("/async-private", id="async-view"),
    pytest.param("/mv/closed", id="methodview"),
    pytest.param("/explicit", id="explicit-options-route"),
    pytest.param("/pages/inside", id="blueprint-view"),
]


@pytest.mark.parametrize("path", CLOSED)
def test_every_endpoint_needs_an_identity(env: Env, path: str) -> None:
    rv = env.client.get(path)
    assert rv.status_code == 401
    assert rv.get_json() == TOKEN_MISSING
    assert rv.headers.getlist("WWW-Authenticate") == ['Bearer realm="api"']
    assert rv.headers["Cache-Control"] == "no-store"
    assert env.ran == []
    assert env.client.head(path).status_code == 401
    assert env.client.get(path, headers=login_as(env)).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/mv/public-class", id="methodview-class-decorated"),
        pytest.param("/mv/public-decorators", id="methodview-decorators-list"),
        pytest.param("/pages/inside-public", id="blueprint-view"),
    ],
)
def test_public_views_stay_open(env: Env, path: str) -> None:
    rv = env.client.get(path)
    assert rv.status_code == 200
    assert rv.get_data(as_text=True) == path.rsplit("/", 1)[-1]  # each view answers its own name


def test_a_public_view_sees_a_valid_identity(env: Env) -> None:
    rv = env.client.get("/public", headers=login_as(env, "alice"))
    assert rv.status_code == 200
    assert rv.get_json() == {"subject": "alice", "anonymous": "False"}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-credentials"),
        pytest.param({"Authorization": "Bearer not.a.token"}, id="bad-token"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="other-scheme"),
    ],
)
def test_a_public_view_is_anonymous_without_a_valid_token(env: Env, headers: dict[str, str]) -> None:
    rv = env.client.get("/public", headers=headers)
    assert rv.status_code == 200
    assert rv.get_json() == {"subject": None, "anonymous": "True"}


@pytest.mark.parametrize("path", ["/public-admin", "/admin-public"])
def test_public_keeps_the_views_own_guards(env: Env, path: str) -> None:
    assert env.client.get(path).status_code == 401
    assert env.client.get(path, headers=login_as(env, roles=["viewer"])).status_code == 403
    assert env.client.get(path, headers=login_as(env, roles=["admin"])).status_code == 200


def test_a_views_ip_guard_answers_before_default_deny(env: Env) -> None:
    rv = env.client.get("/office", environ_base={"REMOTE_ADDR": "8.8.8.8"})
    assert rv.status_code == 403
    assert rv.get_json()["code"] == "ip_denied"
    rv = env.client.get("/office", environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert rv.status_code == 401
    rv = env.client.get("/office", headers=login_as(env), environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert rv.status_code == 200


def test_static_files_stay_open(env: Env) -> None:
    rv = env.client.get("/static/app.css")
    assert rv.status_code == 200
    assert rv.get_data(as_text=True) == "body {}\n"
    rv.close()


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="bare"),
        pytest.param(PREFLIGHT, id="cors-preflight"),
        pytest.param({**PREFLIGHT, "Authorization": "Bearer not.a.token"}, id="with-bad-token"),
    ],
)
@pytest.mark.parametrize(
    ("path", "allow"),
    [
        pytest.param("/private", {"GET", "HEAD", "OPTIONS"}, id="plain-view"),
        pytest.param("/async-private", {"GET", "HEAD", "OPTIONS"}, id="async-view"),
        pytest.param("/mv/closed", {"GET", "HEAD", "OPTIONS"}, id="methodview"),
        pytest.param("/pages/inside", {"GET", "HEAD", "OPTIONS"}, id="blueprint-view"),
    ],
)
def test_automatic_options_answers_stay_open(env: Env, headers: dict[str, str], path: str, allow: set[str]) -> None:
    rv = env.client.options(path, headers=headers)
    assert rv.status_code == 200
    assert set(rv.allow) == allow
    assert rv.data == b""
    assert env.ran == []


def test_explicit_options_route_answers_a_preflight_without_running_the_view(env: Env) -> None:
    rv = env.client.options("/explicit", headers=PREFLIGHT)
    assert rv.status_code == 200
    assert rv.data == b""
    assert set(rv.allow) == {"GET", "HEAD", "POST", "OPTIONS"}
    assert env.ran == []


def test_a_public_explicit_options_view_answers_its_own_preflight(env: Env) -> None:
    # @public: nothing to protect, so the view's own OPTIONS handling (e.g. CORS headers) runs.
    rv = env.client.options("/explicit-public", headers=PREFLIGHT)
    assert rv.status_code == 200
    assert rv.get_data(as_text=True) == "explicit-public"
    assert env.ran == ["explicit-public"]


def test_explicit_options_with_credentials_runs_the_checks(env: Env) -> None:
    rv = env.client.options("/explicit", headers={**PREFLIGHT, "Authorization": "Bearer not.a.token"})
    assert rv.status_code == 401
    assert rv.get_json()["code"] == "token_invalid"
    assert env.ran == []
    rv = env.client.options("/explicit", headers={**PREFLIGHT, **login_as(env)})
    assert rv.status_code == 200
    assert rv.get_data(as_text=True) == "explicit"
    assert env.ran == ["explicit"]


@pytest.mark.parametrize("default_deny", [pytest.param(True, id="default-deny"), pytest.param(False, id="off")])
def test_unknown_url_is_404_and_wrong_method_405(tmp_path: pathlib.Path, token_format: str, default_deny: bool) -> None:
    env = build(tmp_path, token_format, default_deny=default_deny)
    rv = env.client.get("/no/such/url")
    assert rv.status_code == 404
    assert rv.get_json() == NOT_FOUND
    assert rv.headers["Cache-Control"] == "no-store"
    rv = env.client.get("/no/such/url", headers={"Authorization": "Bearer not.a.token"})
    assert rv.status_code == 404
    rv = env.client.delete("/private")
    assert rv.status_code == 405
    assert set(rv.allow) == {"GET", "HEAD", "OPTIONS"}
    assert env.ran == []


def test_wrong_method_answer_is_unchanged_by_default_deny(tmp_path: pathlib.Path, token_format: str) -> None:
    (tmp_path / "on").mkdir()
    (tmp_path / "off").mkdir()
    on = build(tmp_path / "on", token_format, default_deny=True)
    off = build(tmp_path / "off", token_format, default_deny=False)
    for path in ("/private", "/no/such/url", "/static/missing.css"):
        a = on.client.delete(path)
        b = off.client.delete(path)
        assert (a.status_code, a.data, list(a.headers)) == (b.status_code, b.data, list(b.headers))
        a = on.client.get(path if path != "/private" else "/nothing")
        b = off.client.get(path if path != "/private" else "/nothing")
        assert (a.status_code, a.data, list(a.headers)) == (b.status_code, b.data, list(b.headers))


def test_off_by_default(tmp_path: pathlib.Path, token_format: str) -> None:
    env = build(tmp_path, token_format, default_deny=False)
    rv = env.client.get("/pages/inside")
    assert rv.status_code == 200
    assert rv.get_data(as_text=True) == "inside"
