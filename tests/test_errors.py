"""The AuthError family, plain aborts, the app's own handlers, error_renderer and the login redirect."""

from __future__ import annotations

import pickle
import typing as t
import urllib.parse

import pytest
from conftest import make_app
from flask import Blueprint
from flask import Flask
from flask import abort
from flask import request
from flask.typing import ResponseReturnValue
from kit import add_view
from kit import body
from kit import login
from werkzeug.exceptions import BadRequest
from werkzeug.exceptions import Forbidden
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import NotFound
from werkzeug.exceptions import ServiceUnavailable
from werkzeug.exceptions import Unauthorized

from flask_authgate import AuthError
from flask_authgate import AuthGate
from flask_authgate import current_identity
from flask_authgate import login_required
from flask_authgate import scopes_required
from flask_authgate.errors import ERRORS

PLAIN = {401: body("unauthorized"), 403: body("forbidden"), 404: body("not_found")}
MISSING = 'Bearer realm="api"'


# -- plain aborts everywhere ---------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 404])
def test_plain_abort_anywhere_gets_the_same_body(status: int) -> None:
    app, _gate = make_app()
    bp = Blueprint("bp", __name__, url_prefix="/bp")

    @bp.route("/abort")
    def bp_abort() -> ResponseReturnValue:
        abort(status)

    @app.route("/abort")
    def app_abort() -> ResponseReturnValue:
        abort(status)

    @app.route("/raise")
    def app_raise() -> ResponseReturnValue:
        raise {401: Unauthorized, 403: Forbidden, 404: NotFound}[status]()

    add_view(app, "/hook", returns="unreachable", endpoint="hooked")

    @app.before_request
    def hook() -> None:
        if request.path == "/hook":
            abort(status)

    app.register_blueprint(bp)
    client = app.test_client()
    for path in ("/abort", "/bp/abort", "/raise", "/hook"):
        rv = client.get(path)
        assert rv.status_code == status, path
        assert rv.mimetype == "application/json"
        assert rv.get_json() == PLAIN[status], path
        assert rv.headers.getlist("WWW-Authenticate") == ([MISSING] if status == 401 else []), path
        assert rv.headers.getlist("Cache-Control") == ["no-store"], path


def test_a_hidden_404_looks_like_the_apps_own_404() -> None:
    from flask_authgate import authorize

    app, gate = make_app()

    @app.route("/records/<int:rid>")
    @login_required
    def record(rid: int) -> ResponseReturnValue:
        if rid == 1:
            abort(404)  # really missing
        authorize(False, hide=True)  # exists, but not yours
        return "unreachable"

    client = app.test_client()
    auth = login(app, gate)
    missing = client.get("/records/1", headers=auth)
    hidden = client.get("/records/2", headers=auth)
    unknown = client.get("/nowhere", headers=auth)
    for rv in (missing, hidden, unknown):
        assert (rv.status_code, rv.get_data()) == (404, missing.get_data())
        assert sorted(rv.headers.items()) == sorted(missing.headers.items())


# -- the app's own handlers ------------------------------------------------------


def test_apps_own_401_handler_sees_auth_errors() -> None:
    app, gate = make_app()
    seen: list[HTTPException] = []

    @app.errorhandler(401)
    def own_401(err: HTTPException) -> ResponseReturnValue:
        seen.append(err)
        return {"mine": True}, 401

    @app.errorhandler(403)
    def own_403(err: HTTPException) -> ResponseReturnValue:
        seen.append(err)
        return {"mine": True}, 403

    add_view(app, "/me", login_required)
    add_view(app, "/scoped", scopes_required("write"))

    client = app.test_client()
    assert client.get("/me").get_json() == {"mine": True}
    assert client.get("/scoped", headers=login(app, gate)).get_json() == {"mine": True}
    first, second = seen
    assert isinstance(first, AuthError)
    assert isinstance(first, Unauthorized)
    assert (first.code, first.error_code) == (401, "token_missing")
    assert isinstance(second, AuthError)
    assert isinstance(second, Forbidden)
    assert (second.code, second.error_code, second.scopes) == (403, "insufficient_scope", ("write",))


def test_a_blueprints_own_handler_sees_auth_errors() -> None:
    app, _gate = make_app()
    bp = Blueprint("bp", __name__)
    seen: list[str] = []

    @bp.errorhandler(401)
    def own(err: HTTPException) -> ResponseReturnValue:
        seen.append(t.cast(AuthError, err).error_code)
        return "custom", 401

    add_view(bp, "/inside", login_required)
    add_view(app, "/outside", login_required)

    app.register_blueprint(bp)
    client = app.test_client()
    assert client.get("/inside").get_data() == b"custom"
    assert client.get("/outside").get_json()["code"] == "token_missing"
    assert seen == ["token_missing"]


def test_apps_handler_for_a_class_sees_auth_errors() -> None:
    # Class handlers (AuthError, HTTPException) see the 400 and 503 refusals; for 401/403/404
    # the extension's own handlers for those codes come first (Flask looks up codes before
    # classes), so an app customises those with errorhandler(401) or error_renderer.
    app, _gate = make_app()
    seen: list[str] = []

    @app.errorhandler(AuthError)
    def own(err: AuthError) -> ResponseReturnValue:
        seen.append(err.error_code)
        return {"mine": err.error_code}, t.cast(int, err.code)

    add_view(app, "/me", login_required)

    @app.route("/busy")
    def busy() -> ResponseReturnValue:
        raise AuthError("auth_unavailable")

    client = app.test_client()
    rv = client.get("/me", headers={"Authorization": "Bearer a, Bearer b"})
    assert (rv.status_code, rv.get_json()) == (400, {"mine": "invalid_request"})
    rv = client.get("/busy")
    assert (rv.status_code, rv.get_json()) == (503, {"mine": "auth_unavailable"})
    assert seen == ["invalid_request", "auth_unavailable"]


def test_apps_generic_http_exception_handler_does_not_replace_ours() -> None:
    # Flask picks the most specific class: the extension's AuthError handler beats HTTPException.
    app, _gate = make_app()

    @app.errorhandler(HTTPException)
    def own(err: HTTPException) -> ResponseReturnValue:
        return {"generic": err.code}, t.cast(int, err.code)

    add_view(app, "/me", login_required)

    client = app.test_client()
    rv = client.get("/me", headers={"Authorization": "Bearer a, Bearer b"})
    assert (rv.status_code, rv.get_json()["code"]) == (400, "invalid_request")
    rv = client.get("/me")
    assert (rv.status_code, rv.get_json()["code"]) == (401, "token_missing")
    assert client.get("/nowhere").get_json()["code"] == "not_found"


# -- error_renderer ------------------------------------------------------------------


def test_error_renderer_changes_the_body_but_not_the_headers() -> None:
    app, gate = make_app()

    @gate.error_renderer
    def render(err: AuthError) -> ResponseReturnValue:
        # Even a renderer that picks another status and sets its own caching cannot weaken the answer.
        return {"oops": err.error_code}, 200, {"Cache-Control": "public, max-age=600"}

    add_view(app, "/me", login_required)
    add_view(app, "/scoped", scopes_required("write"))

    @app.route("/abort")
    def plain() -> ResponseReturnValue:
        abort(401)

    client = app.test_client()
    rv = client.get("/me", headers={"Authorization": "Bearer x.y.z"})
    assert (rv.status_code, rv.get_json()) == (401, {"oops": "token_invalid"})
    assert rv.headers.getlist("WWW-Authenticate") == [
        f'Bearer realm="api", error="invalid_token", error_description="{ERRORS["token_invalid"].message}"'
    ]
    assert rv.headers.getlist("Cache-Control") == ["no-store"]
    rv = client.get("/scoped", headers=login(app, gate))
    assert (rv.status_code, rv.get_json()) == (403, {"oops": "insufficient_scope"})
    assert rv.headers.getlist("WWW-Authenticate") == ['Bearer realm="api", error="insufficient_scope", scope="write"']
    assert rv.headers.getlist("Cache-Control") == ["no-store"]
    rv = client.get("/abort")
    assert (rv.status_code, rv.get_json()) == (401, {"oops": "unauthorized"})
    assert rv.headers.getlist("WWW-Authenticate") == [MISSING]


@pytest.mark.parametrize("view_is_async", [False, True], ids=["sync", "async"])
def test_async_error_renderer(view_is_async: bool) -> None:
    app, gate = make_app()

    @gate.error_renderer
    async def render(err: AuthError) -> ResponseReturnValue:
        return f"no: {err.error_code}"

    add_view(app, "/me", login_required, kind="async" if view_is_async else "sync")

    rv = app.test_client().get("/me")
    assert (rv.status_code, rv.get_data()) == (401, b"no: token_missing")
    assert rv.headers.getlist("WWW-Authenticate") == [MISSING]


# -- the login redirect -----------------------------------------------------------


@pytest.fixture
def login_app() -> tuple[Flask, AuthGate]:
    app, gate = make_app({"AUTHGATE_LOGIN_VIEW": "login"})

    add_view(app, "/login", returns="login page")

    @app.route("/<path:anything>")
    @login_required
    def page(anything: str) -> ResponseReturnValue:
        return {"sub": current_identity.subject}

    return app, gate


BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def test_browser_is_redirected_with_next(login_app: tuple[Flask, AuthGate]) -> None:
    app, _gate = login_app
    rv = app.test_client().get("/reports/2024?x=1", headers={"Accept": BROWSER})
    assert rv.status_code == 302
    assert rv.headers["Location"] == "/login?next=%2Freports%2F2024%3Fx%3D1"
    assert rv.headers.getlist("Cache-Control") == ["no-store"]


def test_redirect_next_keeps_the_script_root(login_app: tuple[Flask, AuthGate]) -> None:
    # Mounted under /app (SCRIPT_NAME): next= must point back inside the app.
    app, _gate = login_app
    rv = app.test_client().get("/reports/2024", headers={"Accept": BROWSER}, base_url="http://localhost/app/")
    assert rv.status_code == 302
    assert rv.headers["Location"] == "/app/login?next=%2Fapp%2Freports%2F2024"


@pytest.mark.parametrize(
    "accept",
    [
        pytest.param(None, id="no-accept"),
        pytest.param("*/*", id="any"),
        pytest.param("application/json", id="json"),
        pytest.param("application/json, text/html", id="json-and-html"),
        pytest.param("text/html;q=0.5, application/json", id="prefers-json"),
        pytest.param("text/plain", id="plain"),
    ],
)
def test_non_browsers_get_the_json_401(login_app: tuple[Flask, AuthGate], accept: str | None) -> None:
    app, _gate = login_app
    headers = {"Accept": accept} if accept is not None else {}
    rv = app.test_client().get("/reports", headers=headers)
    assert rv.status_code == 401
    assert rv.get_json()["code"] == "token_missing"
    assert rv.headers.getlist("WWW-Authenticate") == [MISSING]


def test_only_401s_redirect(login_app: tuple[Flask, AuthGate]) -> None:
    app, gate = login_app

    add_view(app, "/admin-only", scopes_required("admin"))

    rv = app.test_client().get("/admin-only", headers={"Accept": BROWSER, **login(app, gate)})
    assert rv.status_code == 403


@pytest.mark.parametrize(
    "path",
    ["//evil.example/x", "/\\evil.example/x", "/%2F%2Fevil.example", "/https://evil.example/", "/a\u00e9b"],
)
def test_next_cannot_point_off_site(login_app: tuple[Flask, AuthGate], path: str) -> None:
    app, _gate = login_app
    rv = app.test_client().get("/", headers={"Accept": BROWSER}, environ_overrides={"PATH_INFO": path})
    if rv.status_code != 302:
        assert rv.status_code in (301, 308)  # Werkzeug merged the slashes first: no auth decision yet
        return
    location = rv.headers["Location"]
    assert location.startswith("/login?next=")
    target = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["next"][0]
    assert target.startswith("/")
    assert not target.startswith("//")
    assert "\\" not in target
    assert urllib.parse.urlsplit(target).netloc == ""
    assert all(0x21 <= ord(c) <= 0x7E for c in location)


def test_login_view_as_a_path() -> None:
    app, _gate = make_app({"AUTHGATE_LOGIN_VIEW": "/auth/sign-in?src=api"})

    add_view(app, "/me", login_required)

    rv = app.test_client().get("/me", headers={"Accept": BROWSER})
    assert rv.headers["Location"] == "/auth/sign-in?src=api&next=%2Fme"


# -- the AuthError family -----------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "base"),
    [
        ("invalid_request", BadRequest),
        ("token_expired", Unauthorized),
        ("insufficient_role", Forbidden),
        ("not_found", NotFound),
        ("auth_unavailable", ServiceUnavailable),
    ],
)
def test_each_status_is_werkzeugs_exception(code: t.Any, base: type[HTTPException]) -> None:
    err = AuthError(code)
    assert isinstance(err, AuthError)
    assert isinstance(err, base)
    assert err.code == ERRORS[code].status
    assert err.error_code == code
    assert err.description == ERRORS[code].message
    assert repr(err) == f"<{type(err).__name__} {err.code} {code!r}>"


@pytest.mark.parametrize("code", sorted(ERRORS))
def test_auth_error_pickles(code: t.Any) -> None:
    err = AuthError(code, scopes=("a", "b"), retry_after=7)
    copy = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own object
    assert type(copy) is type(err)
    assert (copy.code, copy.error_code, copy.scopes, copy.retry_after) == (err.code, code, ("a", "b"), 7)


def test_unknown_code_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="bogus"):
        AuthError("bogus")  # type: ignore[arg-type]


def test_raising_auth_error_in_a_view() -> None:
    app, _gate = make_app()

    @app.route("/busy")
    def busy() -> ResponseReturnValue:
        raise AuthError("auth_unavailable", retry_after=9)

    rv = app.test_client().get("/busy")
    assert rv.status_code == 503
    assert rv.get_json() == body("auth_unavailable")
    assert rv.headers.getlist("Retry-After") == ["9"]
    assert rv.headers.getlist("Cache-Control") == ["no-store"]


def test_auth_error_renders_without_any_app() -> None:
    rv = AuthError("token_expired").get_response()
    assert rv.status_code == 401
    assert rv.headers.getlist("WWW-Authenticate") == [
        f'Bearer realm="api", error="invalid_token", error_description="{ERRORS["token_expired"].message}"'
    ]
    assert rv.headers.getlist("Cache-Control") == ["no-store"]


def test_werkzeug_app_without_handler_renders_auth_error() -> None:
    # An app that never called init_app (a sub-app, say) still renders a raised AuthError properly.
    app = Flask("plain")

    @app.route("/x")
    def x() -> ResponseReturnValue:
        raise AuthError("forbidden")

    rv = app.test_client().get("/x")
    assert rv.status_code == 403
    assert rv.get_json()["code"] == "forbidden"
