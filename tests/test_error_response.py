"""``AuthGate.error_response``: the app's own errors, rendered as the extension renders its own."""

from __future__ import annotations

import pickle
import typing as t
from http import HTTPStatus

import pytest
from conftest import make_app
from flask import Flask
from flask import request
from flask.typing import ResponseReturnValue
from kit import problem
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.wrappers import Response as WerkzeugResponse

from flask_authgate import AuthError
from flask_authgate import AuthGate
from flask_authgate import Identity
from flask_authgate import login_required
from flask_authgate import responses
from flask_authgate.errors import ERRORS
from flask_authgate.errors import MAX_APP_MESSAGE
from flask_authgate.integrations import too_many_requests

LOGIN_FAILED = {
    "error": "Unauthorized",
    "code": "login_failed",
    "message": "The username or the password is wrong",
    "status": 401,
}
DPOP_BARE = 'DPoP realm="api", algs="ES256 PS256 RS256 EdDSA"'


def login_app(config: dict[str, t.Any] | None = None, *, api_keys: bool = False) -> tuple[Flask, AuthGate]:
    """An app whose login view answers a wrong password with ``gate.error_response``."""
    app, gate = make_app(config)
    if api_keys:

        @gate.api_key_loader
        def load_key(key: str) -> Identity | None:
            return None

    @app.post("/login")
    def login() -> ResponseReturnValue:
        return gate.error_response(401, "login_failed", "The username or the password is wrong")

    @app.get("/me")
    @login_required
    def me() -> str:
        return "me"

    return app, gate


def challenges_of(rv: WerkzeugResponse) -> list[str]:
    return rv.headers.getlist("WWW-Authenticate")


# -- the body ---------------------------------------------------------------------


def test_json_body_and_headers() -> None:
    app, _gate = login_app()
    rv = app.test_client().post("/login")
    assert rv.status_code == 401
    assert rv.mimetype == "application/json"
    assert rv.get_json() == LOGIN_FAILED
    assert challenges_of(rv) == ['Bearer realm="api"']
    assert rv.headers["Cache-Control"] == "no-store"
    assert "Retry-After" not in rv.headers


def test_problem_body() -> None:
    app, _gate = login_app({"AUTHGATE_ERROR_FORMAT": "problem"})
    rv = app.test_client().post("/login")
    assert rv.status_code == 401
    assert rv.mimetype == "application/problem+json"
    assert rv.get_json() == problem(401, "login_failed", "The username or the password is wrong")
    assert challenges_of(rv) == ['Bearer realm="api"']
    assert rv.headers["Cache-Control"] == "no-store"


def test_the_bytes_match_the_extensions_own_errors() -> None:
    # One encoder: the same key order and separators as a token_missing body.
    app, _gate = login_app()
    client = app.test_client()
    own, ours = client.get("/me"), client.post("/login")
    assert ours.data == own.data.replace(b"token_missing", b"login_failed").replace(
        ERRORS["token_missing"].message.encode(), b"The username or the password is wrong"
    )
    assert [k for k, _v in ours.headers if k != "Content-Length"] == [
        k for k, _v in own.headers if k != "Content-Length"
    ]


# -- the challenges: those a 401 token_missing of the same app carries -------------


@pytest.mark.parametrize(
    ("config", "api_keys", "expected"),
    [
        pytest.param({}, False, ['Bearer realm="api"'], id="bearer-only"),
        pytest.param({"AUTHGATE_REALM": "notes"}, False, ['Bearer realm="notes"'], id="realm"),
        pytest.param({"AUTHGATE_DPOP": "allowed"}, False, ['Bearer realm="api"', DPOP_BARE], id="dpop-allowed"),
        pytest.param({"AUTHGATE_DPOP": "required"}, False, [DPOP_BARE], id="dpop-required"),
        pytest.param(
            {"AUTHGATE_DPOP": "required", "AUTHGATE_DPOP_ALGORITHMS": ["ES256"]},
            False,
            ['DPoP realm="api", algs="ES256"'],
            id="dpop-algs",
        ),
        pytest.param({}, True, ['Bearer realm="api"', 'ApiKey realm="api"'], id="api-keys"),
        pytest.param(
            {"AUTHGATE_DPOP": "allowed", "AUTHGATE_REALM": "notes"},
            True,
            ['Bearer realm="notes"', 'DPoP realm="notes", algs="ES256 PS256 RS256 EdDSA"', 'ApiKey realm="notes"'],
            id="everything",
        ),
    ],
)
def test_a_401_carries_the_apps_challenges(config: dict[str, t.Any], api_keys: bool, expected: list[str]) -> None:
    app, _gate = login_app(config, api_keys=api_keys)
    client = app.test_client()
    rv = client.post("/login")
    assert rv.get_json() == LOGIN_FAILED
    assert challenges_of(rv) == expected
    assert challenges_of(client.get("/me")) == expected  # what the extension itself sends


def test_a_401_names_the_resource_metadata() -> None:
    app, _gate = login_app({"AUTHGATE_RESOURCE": "https://api.example.com", "AUTHGATE_ISSUERS": []})
    client = app.test_client()
    rv = client.post("/login")
    assert challenges_of(rv) == [
        'Bearer realm="api", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource"'
    ]
    assert challenges_of(rv) == challenges_of(client.get("/me"))


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422, 429, 500, 503])
def test_other_statuses_carry_no_challenge(status: int) -> None:
    app, gate = make_app({"AUTHGATE_DPOP": "allowed"})
    with app.test_request_context():
        rv = gate.error_response(status, "app_error", "Something the app decided")
    assert rv.status_code == status
    assert rv.get_json() == {
        "error": HTTPStatus(status).phrase,
        "code": "app_error",
        "message": "Something the app decided",
        "status": status,
    }
    assert "WWW-Authenticate" not in rv.headers
    assert rv.headers["Cache-Control"] == "no-store"


def test_an_unknown_status_is_called_error() -> None:
    app, gate = make_app()
    with app.app_context():
        rv = gate.error_response(499, "client_closed", "The client went away")
    assert rv.status_code == 499
    assert rv.get_json()["error"] == "Error"


# -- Retry-After and the app's own headers ------------------------------------------


def test_a_503_says_when_to_come_back() -> None:
    app, gate = make_app({"AUTHGATE_RETRY_AFTER": 7})
    with app.app_context():
        rv = gate.error_response(503, "database_down", "The database is down")
    assert rv.headers["Retry-After"] == "7"
    with app.app_context():
        rv = gate.error_response(503, "database_down", "The database is down", headers={"Retry-After": "30"})
    assert rv.headers.getlist("Retry-After") == ["30"]


def test_a_429_takes_its_retry_after() -> None:
    app, gate = make_app()
    with app.app_context():
        rv = gate.error_response(429, "slow_down", "Too many logins", headers=[("Retry-After", "60")])
    assert rv.headers.getlist("Retry-After") == ["60"]
    with app.app_context():
        assert "Retry-After" not in gate.error_response(429, "slow_down", "Too many logins").headers


def test_an_http_exception_keeps_its_allow_header() -> None:
    app, gate = make_app()

    @app.errorhandler(405)
    def method_not_allowed(err: HTTPException) -> ResponseReturnValue:
        assert err.code is not None and err.description is not None
        return gate.error_response(err.code, "method_not_allowed", err.description, headers=err.get_headers())

    @app.get("/thing")
    def thing() -> str:
        return "thing"

    rv = app.test_client().post("/thing")
    assert rv.status_code == 405
    assert rv.get_json() == {
        "error": "Method Not Allowed",
        "code": "method_not_allowed",
        "message": MethodNotAllowed.description,
        "status": 405,
    }
    assert sorted(rv.headers["Allow"].split(", ")) == ["GET", "HEAD", "OPTIONS"]
    # The exception's own Content-Type (text/html) is dropped: the body is ours.
    assert rv.headers.getlist("Content-Type") == ["application/json"]
    assert rv.headers["Content-Length"] == str(len(rv.data))
    assert rv.headers["Cache-Control"] == "no-store"


# -- the error_renderer ---------------------------------------------------------------


def test_the_error_renderer_renders_app_errors_too() -> None:
    app, gate = login_app({"AUTHGATE_DPOP": "allowed"})
    seen: list[AuthError] = []

    @gate.error_renderer
    def render(err: AuthError) -> ResponseReturnValue:
        seen.append(err)
        return {"ok": False, "why": err.error_code, "text": err.message, "status": err.code}

    client = app.test_client()
    rv = client.post("/login")
    assert rv.status_code == 401
    assert rv.get_json() == {
        "ok": False,
        "why": "login_failed",
        "text": "The username or the password is wrong",
        "status": 401,
    }
    # The status-specific headers stay the extension's, as for its own errors.
    assert challenges_of(rv) == ['Bearer realm="api"', DPOP_BARE]
    assert rv.headers["Cache-Control"] == "no-store"
    assert isinstance(seen[0], AuthError)
    assert client.get("/me").get_json() == {
        "ok": False,
        "why": "token_missing",
        "text": ERRORS["token_missing"].message,
        "status": 401,
    }


def test_an_async_error_renderer_in_an_async_view() -> None:
    pytest.importorskip("asgiref")
    app, gate = make_app()

    @gate.error_renderer
    async def render(err: AuthError) -> ResponseReturnValue:
        return {"why": err.error_code}

    @app.post("/login")
    async def login() -> ResponseReturnValue:
        return gate.error_response(401, "login_failed", "The username or the password is wrong")

    rv = app.test_client().post("/login")
    assert rv.status_code == 401
    assert rv.get_json() == {"why": "login_failed"}
    assert challenges_of(rv) == ['Bearer realm="api"']


def test_a_401_is_not_turned_into_the_login_redirect() -> None:
    app, _gate = login_app({"AUTHGATE_LOGIN_VIEW": "/login-page"})
    client = app.test_client()
    browser = {"Accept": "text/html"}
    assert client.get("/me", headers=browser).status_code == 302  # the extension's own 401 redirects
    rv = client.post("/login", headers=browser)
    assert rv.status_code == 401
    assert rv.get_json() == LOGIN_FAILED


# -- where it is called --------------------------------------------------------------


def test_in_an_error_handler_for_an_exception_of_the_app() -> None:
    app, gate = make_app()

    class OutOfStock(Exception):
        pass

    @app.errorhandler(OutOfStock)
    def out_of_stock(err: OutOfStock) -> ResponseReturnValue:
        return gate.error_response(409, "out_of_stock", "The item is out of stock")

    @app.post("/buy")
    def buy() -> str:
        raise OutOfStock

    rv = app.test_client().post("/buy")
    assert rv.status_code == 409
    assert rv.get_json() == {
        "error": "Conflict",
        "code": "out_of_stock",
        "message": "The item is out of stock",
        "status": 409,
    }
    assert rv.headers["Cache-Control"] == "no-store"


def test_in_an_error_handler_for_500() -> None:
    app, gate = make_app()

    @app.errorhandler(500)
    def internal(err: HTTPException) -> ResponseReturnValue:
        return gate.error_response(500, "internal_server_error", "Something went wrong on our side")

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret detail")

    app.config["TESTING"] = False  # let Flask turn the exception into a 500 for the handler
    rv = app.test_client().get("/boom")
    assert rv.status_code == 500
    assert rv.get_json()["code"] == "internal_server_error"
    assert b"secret detail" not in rv.data


def test_each_app_of_one_gate_renders_with_its_own_settings() -> None:
    gate = AuthGate()
    one, _gate = make_app({"AUTHGATE_REALM": "one"}, gate=gate)
    two, _gate = make_app({"AUTHGATE_REALM": "two", "AUTHGATE_ERROR_FORMAT": "problem"}, gate=gate)
    with one.app_context():
        first = gate.error_response(401, "login_failed", "Wrong")
    with two.app_context():
        second = gate.error_response(401, "login_failed", "Wrong")
    assert challenges_of(first) == ['Bearer realm="one"']
    assert challenges_of(second) == ['Bearer realm="two"']
    assert (first.mimetype, second.mimetype) == ("application/json", "application/problem+json")


def test_outside_an_app_or_without_the_extension() -> None:
    gate = AuthGate()
    with pytest.raises(RuntimeError):
        gate.error_response(401, "login_failed", "Wrong")
    with Flask("bare").app_context(), pytest.raises(RuntimeError, match="init_app"):
        gate.error_response(401, "login_failed", "Wrong")


def test_the_error_pickles() -> None:
    from flask_authgate.errors import app_error

    err = app_error(409, "out_of_stock", "The item is out of stock")
    again = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own bytes
    assert (again.code, again.error_code, again.message) == (409, "out_of_stock", "The item is out of stock")


def test_without_an_app_the_error_still_renders_as_the_contract() -> None:
    from flask_authgate.errors import app_error

    err = app_error(401, "login_failed", "Wrong")
    rv = err.get_response()
    assert rv.status_code == 401
    assert rv.headers.getlist("WWW-Authenticate") == ['Bearer realm="api"']
    assert rv.headers["Cache-Control"] == "no-store"
    assert err.get_body() == ('{"error": "Unauthorized", "code": "login_failed", "message": "Wrong", "status": 401}')


# -- the arguments are checked at the call -------------------------------------------

GOOD = {"status": 401, "code": "login_failed", "message": "Wrong"}


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        pytest.param({"status": 200}, ValueError, id="status-200"),
        pytest.param({"status": 302}, ValueError, id="status-302"),
        pytest.param({"status": 600}, ValueError, id="status-600"),
        pytest.param({"status": 399}, ValueError, id="status-399"),
        pytest.param({"status": "401"}, TypeError, id="status-str"),
        pytest.param({"status": 401.0}, TypeError, id="status-float"),
        pytest.param({"status": True}, TypeError, id="status-bool"),
        pytest.param({"code": None}, TypeError, id="code-none"),
        pytest.param({"code": ""}, ValueError, id="code-empty"),
        pytest.param({"code": "Login_Failed"}, ValueError, id="code-upper"),
        pytest.param({"code": "login-failed"}, ValueError, id="code-dash"),
        pytest.param({"code": "1login"}, ValueError, id="code-digit-first"),
        pytest.param({"code": "_login"}, ValueError, id="code-underscore-first"),
        pytest.param({"code": "login failed"}, ValueError, id="code-space"),
        pytest.param({"code": "login_failed\n"}, ValueError, id="code-newline"),
        pytest.param({"code": "a" * 65}, ValueError, id="code-too-long"),
        pytest.param({"code": "logín"}, ValueError, id="code-non-ascii"),
        pytest.param({"message": None}, TypeError, id="message-none"),
        pytest.param({"message": b"Wrong"}, TypeError, id="message-bytes"),
        pytest.param({"message": ""}, ValueError, id="message-empty"),
        pytest.param({"message": "Wrong\r\nSet-Cookie: x=y"}, ValueError, id="message-crlf"),
        pytest.param({"message": "Wrong\n"}, ValueError, id="message-lf"),
        pytest.param({"message": "Wrong\x00"}, ValueError, id="message-nul"),
        pytest.param({"message": "Wrong\x7f"}, ValueError, id="message-del"),
        pytest.param({"message": "Wrong\x85"}, ValueError, id="message-c1-nel"),
        pytest.param({"message": "Wrong\u2028again"}, ValueError, id="message-line-separator"),
        pytest.param({"message": "Wrong\tagain"}, ValueError, id="message-tab"),
    ],
)
def test_bad_arguments_raise_at_the_call(changes: dict[str, t.Any], error: type[Exception]) -> None:
    app, gate = make_app()
    with app.test_request_context(), pytest.raises(error):
        gate.error_response(**{**GOOD, **changes})


@pytest.mark.parametrize("code", sorted(ERRORS))
def test_the_extensions_own_codes_cannot_be_forged(code: str) -> None:
    app, gate = make_app()
    with app.test_request_context(), pytest.raises(ValueError, match="own codes"):
        gate.error_response(ERRORS[code].status, code, "Forged")


def test_the_429_code_of_the_rate_limit_integration_cannot_be_taken_either() -> None:
    app, gate = make_app()
    with app.test_request_context(), pytest.raises(ValueError, match="own codes"):
        gate.error_response(401, "rate_limited", "Forged")


def test_a_message_is_a_sentence_not_a_report() -> None:
    app, gate = make_app()
    with app.test_request_context():
        assert gate.error_response(400, "too_long", "x" * MAX_APP_MESSAGE).status_code == 400
        with pytest.raises(ValueError, match="1 to 500"):
            gate.error_response(400, "too_long", "x" * (MAX_APP_MESSAGE + 1))


def test_messages_that_vary_per_request_are_not_cached() -> None:
    # Only the challenge lines are cached (per app and status): a message built from the request
    # (say, the name of an unknown field) must not fill a cache with one body per request.
    app, gate = make_app()

    @app.post("/notes")
    def notes() -> ResponseReturnValue:
        field = str(request.get_json()["field"])[:400]
        return gate.error_response(400, "invalid_input", f"Unknown field {field}")

    client = app.test_client()
    before = responses._app_headers.cache_info().currsize
    for i in range(300):
        rv = client.post("/notes", json={"field": f"f{i}" + "x" * 300})
        assert rv.get_json()["message"].startswith(f"Unknown field f{i}x")
    assert responses._app_headers.cache_info().currsize - before <= 1


def test_arguments_are_checked_before_the_app_is_looked_up() -> None:
    with pytest.raises(ValueError):
        AuthGate().error_response(401, "token_expired", "Forged")  # no app context: still ValueError


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("a", "A"),
        ("a" * 64, "x"),
        ("login_failed_2", "Le mot de passe est faux: réessayez"),
        ("x9", 'Quotes " and \\ backslashes are fine in a JSON body'),
    ],
)
def test_good_codes_and_messages(code: str, message: str) -> None:
    app, gate = make_app()
    with app.test_request_context():
        rv = gate.error_response(HTTPStatus.BAD_REQUEST, code, message)
    assert rv.status_code == 400
    assert rv.get_json() == {"error": "Bad Request", "code": code, "message": message, "status": 400}


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        pytest.param({"WWW-Authenticate": 'Basic realm="x"'}, ValueError, id="www-authenticate"),
        pytest.param([("www-authenticate", 'Bearer realm="x"')], ValueError, id="www-authenticate-lower"),
        pytest.param({"Cache-Control": "public, max-age=3600"}, ValueError, id="cache-control"),
        pytest.param({"X-Note": "a\r\nSet-Cookie: x=y"}, ValueError, id="value-crlf"),
        pytest.param({"X-Note": "a\nb"}, ValueError, id="value-lf"),
        pytest.param({"X-Note": "a\x00"}, ValueError, id="value-nul"),
        pytest.param({"X-Note": "\u20ac"}, ValueError, id="value-not-latin-1"),
        pytest.param({"X-Note\r\nSet-Cookie": "x"}, ValueError, id="name-crlf"),
        pytest.param({"X Note": "x"}, ValueError, id="name-space"),
        pytest.param({"X-Note:": "x"}, ValueError, id="name-colon"),
        pytest.param({"": "x"}, ValueError, id="name-empty"),
        pytest.param("Allow: GET", TypeError, id="a-string"),
        pytest.param([("Allow",)], TypeError, id="not-a-pair"),
        pytest.param([("Allow", 1)], TypeError, id="value-int"),
        pytest.param([["Allow", "GET"]], TypeError, id="a-list-pair"),
        # Framing and hop-by-hop headers: a second framing beside Content-Length (RFC 9112 §6.1),
        # and PEP 3333 servers refuse hop-by-hop headers from an app with a 500.
        *(
            pytest.param({name: "x"}, ValueError, id=name.lower())
            for name in ("Transfer-Encoding", "Connection", "Keep-Alive", "TE", "Trailer", "Upgrade")
        ),
        pytest.param({"Content-Encoding": "gzip"}, ValueError, id="content-encoding"),
        pytest.param({"Proxy-Authenticate": 'Basic realm="x"'}, ValueError, id="proxy-authenticate"),
    ],
)
def test_bad_headers_raise_at_the_call(headers: t.Any, error: type[Exception]) -> None:
    app, gate = make_app()
    with app.test_request_context(), pytest.raises(error):
        gate.error_response(405, "method_not_allowed", "No", headers=headers)


def test_the_message_never_reaches_a_header() -> None:
    app, gate = make_app({"AUTHGATE_DPOP": "allowed"})
    message = 'Wrong "password" for realm="evil", error="invalid_token"'
    with app.test_request_context():
        rv = gate.error_response(401, "login_failed", message)
    assert rv.get_json()["message"] == message
    assert all("evil" not in value and "password" not in value for _name, value in rv.headers)
    assert challenges_of(rv) == ['Bearer realm="api"', DPOP_BARE]


# -- the 429 of the rate-limiting integration ---------------------------------------

RATE_LIMITED = {"code": "rate_limited", "status": 429}


@pytest.mark.parametrize("error_format", ["json", "problem"])
def test_too_many_requests_follows_the_apps_error_format(error_format: str) -> None:
    # The ready-made 429 handler goes through the one renderer: the app's format, no second body builder.
    app, _gate = make_app({"AUTHGATE_ERROR_FORMAT": error_format})

    @app.get("/limited")
    def limited() -> ResponseReturnValue:
        return too_many_requests()

    rv = app.test_client().get("/limited")
    assert rv.status_code == 429
    assert rv.headers["Cache-Control"] == "no-store"
    data = rv.get_json()
    assert {k: data[k] for k in RATE_LIMITED} == RATE_LIMITED
    if error_format == "problem":
        assert rv.mimetype == "application/problem+json"
        assert (data["title"], data["detail"]) == ("Too Many Requests", "Too many requests; try again later")
    else:
        assert rv.mimetype == "application/json"
        assert (data["error"], data["message"]) == ("Too Many Requests", "Too many requests; try again later")


def test_too_many_requests_goes_through_the_error_renderer() -> None:
    app, gate = make_app()
    seen: list[tuple[int | None, str]] = []

    @gate.error_renderer
    def render(err: AuthError) -> ResponseReturnValue:
        seen.append((err.code, err.error_code))
        return {"oops": err.error_code}

    @app.get("/limited")
    def limited() -> ResponseReturnValue:
        return too_many_requests()

    rv = app.test_client().get("/limited")
    assert (rv.status_code, rv.get_json(), seen) == (429, {"oops": "rate_limited"}, [(429, "rate_limited")])
    assert rv.headers["Cache-Control"] == "no-store"


def test_too_many_requests_problem_argument_chooses_the_format_outside_the_app_format() -> None:
    app, _gate = make_app({"AUTHGATE_ERROR_FORMAT": "problem"})
    with app.test_request_context():
        assert too_many_requests(problem=False).mimetype == "application/json"
    with Flask("no_gate").test_request_context():
        rv = too_many_requests()
        assert (rv.status_code, rv.mimetype, rv.headers["Cache-Control"]) == (429, "application/json", "no-store")
        assert too_many_requests(problem=True).mimetype == "application/problem+json"
