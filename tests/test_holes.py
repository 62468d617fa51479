"""The defects an outside review found (issue 9), each pinned by a test that failed before the fix."""

from __future__ import annotations

import logging
import time
import typing as t
import urllib.parse

import jwt
import pytest
from conftest import SECRET
from conftest import make_app
from flask import Blueprint
from flask import Flask
from kit import access_token
from kit import add_view
from kit import bearer
from kit import body
from kit import subject_json

from flask_authgate import AuthError
from flask_authgate import AuthGate
from flask_authgate import ConfigError
from flask_authgate import Identity
from flask_authgate import current_identity
from flask_authgate import login_required
from flask_authgate import public
from flask_authgate import roles_required
from flask_authgate import scopes_required

# -- item 2: static files are recognised by what they are, not by their name -------------------


@pytest.mark.parametrize("how", ["protect", "default-deny"])
def test_a_view_named_static_is_not_left_open(how: str, tmp_path: t.Any) -> None:
    (tmp_path / "app.css").write_text("body {}")
    app = Flask("holes", static_folder=str(tmp_path), static_url_path="/static")
    app.config.update(SECRET_KEY=SECRET, AUTHGATE_DEFAULT_DENY=how == "default-deny")
    gate = AuthGate(app)
    bp = Blueprint("files", __name__, url_prefix="/files")
    assets = Blueprint("assets", __name__, url_prefix="/assets", static_folder=str(tmp_path), static_url_path="/static")

    @bp.get("/secret")
    def static() -> str:  # an ordinary view that happens to be called "static"
        return "the crown jewels"

    if how == "protect":
        gate.protect(bp)
        gate.protect(assets)
    app.register_blueprint(bp)
    app.register_blueprint(assets)
    client = app.test_client()
    assert "files.static" in app.view_functions
    assert client.get("/files/secret").get_json() == body("token_missing")
    # Flask's own static views stay open: the app's, and a protected blueprint's.
    for path in ("/static/app.css", "/assets/static/app.css"):
        with client.get(path) as rv:
            assert (rv.status_code, rv.data) == (200, b"body {}")


def test_an_endpoint_called_static_is_guarded_under_default_deny() -> None:
    app = Flask("holes", static_folder=None)
    app.config.update(SECRET_KEY=SECRET, AUTHGATE_DEFAULT_DENY=True)
    AuthGate(app)

    @app.get("/static-looking", endpoint="static")
    def look() -> str:
        return "open?"

    assert app.test_client().get("/static-looking").status_code == 401


# -- item 5: cookie tossing ---------------------------------------------------------------------


def test_two_access_cookies_of_one_name_are_credentials_sent_twice() -> None:
    app, gate = make_app({"AUTHGATE_TOKEN_LOCATIONS": ["cookies"], "AUTHGATE_COOKIE_SECURE": False})

    add_view(app, "/me", login_required, returns=subject_json)

    victim = access_token(app, gate, "victim")
    attacker = access_token(app, gate, "attacker")
    cookie = f"authgate_access={attacker}; authgate_access={victim}"
    client = app.test_client(use_cookies=False)  # send the Cookie header exactly as written
    rv = client.get("/me", headers={"Cookie": cookie})
    assert rv.status_code == 400
    assert rv.get_json() == body("invalid_request")
    one = client.get("/me", headers={"Cookie": f"authgate_access={victim}"})
    assert one.get_json() == {"sub": "victim"}


def test_two_api_key_headers_are_credentials_sent_twice() -> None:
    app, gate = make_app()

    @gate.api_key_loader
    def load(key: str) -> Identity | None:
        return Identity("svc") if key == "good-key" else None

    add_view(app, "/svc", login_required, returns="ok")

    rv = app.test_client().get("/svc", headers=[("X-API-Key", "good-key"), ("X-API-Key", "good-key")])
    assert (rv.status_code, rv.get_json()["code"]) == (400, "invalid_request")


# -- item 6: one scope grammar for issuing and verifying ---------------------------------------------


@pytest.mark.parametrize("scope", ["read\tadmin", "read\nadmin", "read\u00a0admin", "read  admin", " admin", "admin "])
def test_whitespace_other_than_one_space_is_not_a_scope_separator(scope: str) -> None:
    app, _ = make_app()

    add_view(app, "/admin", scopes_required("admin"))

    token = jwt.encode({"sub": "mallory", "exp": int(time.time()) + 60, "scope": scope}, SECRET, algorithm="HS256")
    rv = app.test_client().get("/admin", headers=bearer(token))
    assert (rv.status_code, rv.get_json()["code"]) == (401, "token_invalid")


def test_issuing_a_scope_with_a_tab_is_refused() -> None:
    app, gate = make_app()
    with app.app_context(), pytest.raises(ValueError, match="scope-token"):
        gate.create_access_token("mallory", scopes=["read\tadmin"])


# -- item 8: claims are deeply immutable ----------------------------------------------------------------


def test_a_view_cannot_change_what_the_next_request_sees() -> None:
    app, gate = make_app()
    outcomes: list[str] = []

    @app.get("/grow")
    @login_required
    def grow() -> dict[str, t.Any]:
        try:
            current_identity.claims["groups"].append("admin")
        except AttributeError:
            outcomes.append("refused")
        return {"groups": list(current_identity.claims["groups"])}

    token = access_token(app, gate, claims={"groups": ["staff"], "org": {"ids": [1]}})
    client = app.test_client()
    assert client.get("/grow", headers=bearer(token)).get_json() == {"groups": ["staff"]}
    assert client.get("/grow", headers=bearer(token)).get_json() == {"groups": ["staff"]}
    assert outcomes == ["refused", "refused"]
    identity = Identity("x", claims={"org": {"ids": [1]}})
    with pytest.raises(TypeError):
        identity.claims["org"]["ids"] = []


# -- item 9: values that reach a challenge are validated where they enter ------------------------------


@pytest.mark.parametrize("scope", ['a"b', "a\\b", "a\r\nSet-Cookie: x=1", "a b", "", "caf\u00e9"])
def test_auth_error_refuses_scopes_that_could_break_the_challenge(scope: str) -> None:
    with pytest.raises(ValueError, match="scope-token"):
        AuthError("insufficient_scope", scopes=[scope])


def test_auth_error_refuses_one_string_as_scopes() -> None:
    with pytest.raises(TypeError):
        AuthError("insufficient_scope", scopes="read")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("AUTHGATE_REALM", "api\n"),
        ("AUTHGATE_API_KEY_HEADER", "X-API-Key\n"),
        ("AUTHGATE_CSRF_HEADER", "X-CSRF\n"),
        ("AUTHGATE_ROLES_CLAIM", "roles\n"),
    ],
)
def test_a_trailing_newline_in_a_header_value_setting_is_refused(key: str, value: str) -> None:
    # Sibling of item 9: "^...$" patterns matched before a final newline, which then reached a header.
    with pytest.raises(ConfigError, match=key):
        make_app({key: value})


# -- item 10: the login redirect keeps the query as sent ------------------------------------------------


def test_the_login_redirect_does_not_encode_the_query_twice() -> None:
    app, _ = make_app({"AUTHGATE_LOGIN_VIEW": "/login"})

    add_view(app, "/search", login_required, returns="results")

    rv = app.test_client().get("/search?q=a%26b&x=%E2%9C%93", headers={"Accept": "text/html"})
    assert rv.status_code == 302
    location = urllib.parse.urlsplit(rv.headers["Location"])
    assert urllib.parse.parse_qs(location.query)["next"] == ["/search?q=a%26b&x=%E2%9C%93"]


# -- item 11: a guard written above @app.route -------------------------------------------------------------


def test_a_guard_above_the_route_decorator_is_enforced_anyway(caplog: pytest.LogCaptureFixture) -> None:
    app, gate = make_app()

    @roles_required("admin")  # the trap: written above the route, it wraps after registration
    @app.get("/admin")
    def admin() -> str:
        return "admin area"

    @public
    @roles_required("admin")
    @app.get("/marked")
    def marked() -> str:
        return "still guarded"

    user = access_token(app, gate, "bob")
    boss = access_token(app, gate, roles=["admin"])
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="flask_authgate"):
        assert client.get("/admin").get_json() == body("token_missing")
    assert "admin" in caplog.text and "above its route" in caplog.text
    assert client.get("/admin", headers=bearer(user)).get_json()["code"] == "insufficient_role"
    assert client.get("/admin", headers=bearer(boss)).data == b"admin area"
    assert client.get("/marked").status_code == 401


def test_the_route_audit_reports_a_guard_above_the_route() -> None:
    app, _ = make_app()

    @login_required
    @app.get("/x")
    def x() -> str:
        return "x"

    result = app.test_cli_runner().invoke(args=["authgate", "routes", "--json", "--fail-on-unguarded"])
    assert result.exit_code == 0, result.output
    assert "guard above @route" in result.output


# -- item 15: a loader whose database is down fails closed ---------------------------------------------------


@pytest.mark.parametrize("kind", ["user", "roles"])
def test_a_loader_that_raises_answers_503_without_its_text(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    app, gate = make_app({"AUTHGATE_RETRY_AFTER": 7})

    def broken(identity: Identity) -> t.Any:
        raise ConnectionError("db at 10.0.0.5:5432 refused, password=hunter2")

    if kind == "user":
        gate.user_loader(broken)
    else:
        gate.roles_loader(broken)

    add_view(app, "/me", login_required)

    token = access_token(app, gate)
    with caplog.at_level(logging.ERROR, logger="flask_authgate"):
        rv = app.test_client().get("/me", headers=bearer(token))
    assert rv.status_code == 503
    assert rv.get_json() == body("auth_unavailable")
    assert rv.headers["Retry-After"] == "7"
    assert b"hunter2" not in rv.data and b"10.0.0.5" not in rv.data
    assert "ConnectionError" in caplog.text  # the traceback goes to the log


@pytest.mark.parametrize("async_loader", [False, True])
def test_a_loader_fails_closed_by_raising_auth_unavailable(async_loader: bool) -> None:
    app, gate = make_app()

    if async_loader:

        @gate.user_loader
        async def load_async(identity: Identity) -> t.Any:
            raise AuthError("auth_unavailable")

    else:

        @gate.user_loader
        def load(identity: Identity) -> t.Any:
            raise AuthError("auth_unavailable")

    add_view(app, "/me", login_required, kind="async")

    token = access_token(app, gate)
    rv = app.test_client().get("/me", headers=bearer(token))
    assert (rv.status_code, rv.headers["Retry-After"]) == (503, "5")
    assert rv.get_json() == body("auth_unavailable")


# -- item 18: messages name the token they are about ----------------------------------------------------------


def test_a_reused_refresh_token_says_refresh_token() -> None:
    from flask_authgate import refresh_token_required

    app, gate = make_app()

    add_view(app, "/refresh", refresh_token_required, methods=["POST"], returns=gate.rotate_refresh_token)

    with app.app_context():
        token = gate.create_refresh_token("alice")
    client = app.test_client()
    assert client.post("/refresh", headers=bearer(token)).status_code == 200
    rv = client.post("/refresh", headers=bearer(token))
    assert rv.get_json()["message"] == "The refresh token was revoked"
    assert rv.headers["WWW-Authenticate"].endswith('error_description="The refresh token was revoked"')


# -- item 13: verify-only configuration needs no secret --------------------------------------------------------


def test_a_jwks_url_alone_needs_no_secret_and_defaults_to_asymmetric_algorithms() -> None:
    app = Flask("verify_only")
    app.config.update(AUTHGATE_JWKS_URL="https://idp.example.com/.well-known/jwks.json", SECRET_KEY="short")
    AuthGate(app)
    settings = app.extensions["authgate"].settings
    assert settings.keys.secrets == ()  # SECRET_KEY (for sessions) never becomes a token key here
    assert "RS256" in settings.keys.algorithms and "ES256" in settings.keys.algorithms
    assert not any(a.startswith("HS") for a in settings.keys.algorithms)


def test_a_missing_secret_says_what_to_set_for_an_identity_provider() -> None:
    app = Flask("no_secret")
    with pytest.raises(ConfigError, match="AUTHGATE_OIDC_ISSUER or AUTHGATE_JWKS_URL"):
        AuthGate(app)


def test_a_jwks_url_with_an_hmac_algorithm_names_the_algorithms_key() -> None:
    app = Flask("mixed")
    app.config.update(AUTHGATE_JWKS_URL="https://idp.example.com/jwks", AUTHGATE_JWT_ALGORITHMS=["HS256"])
    with pytest.raises(ConfigError, match="AUTHGATE_JWT_ALGORITHMS"):
        AuthGate(app)


def test_a_secret_beside_an_identity_provider_is_never_ignored_silently() -> None:
    app = Flask("both")
    app.config.update(AUTHGATE_OIDC_ISSUER="https://idp.example.com", AUTHGATE_JWT_SECRET="s" * 64)
    with pytest.raises(ConfigError, match=r'AUTHGATE_JWT_ALGORITHMS = \["HS256"\]'):
        AuthGate(app)
    app = Flask("both_explicit")
    app.config.update(
        AUTHGATE_OIDC_ISSUER="https://idp.example.com",
        AUTHGATE_JWT_SECRET="s" * 64,
        AUTHGATE_JWT_ALGORITHMS=["HS256"],
    )
    gate = AuthGate(app)
    with app.app_context():
        token = gate.create_access_token("alice")  # this app's own tokens, beside the provider's
    assert token.count(".") == 2


def test_identity_replace_shares_the_frozen_claims_and_thaw_gives_plain_copies() -> None:
    from flask_authgate.identity import thaw

    identity = Identity("alice", roles=frozenset({"a"}), claims={"org": {"ids": [1, 2]}})
    other = identity.replace(roles=["b"], scheme="api_key")
    assert (other.roles, other.scheme, identity.roles) == (frozenset({"b"}), "api_key", frozenset({"a"}))
    assert other.claims is identity.claims
    with pytest.raises(TypeError):
        identity.replace(roles="admin")
    plain = thaw(identity.claims)
    assert plain == {"org": {"ids": [1, 2]}} and isinstance(plain["org"]["ids"], list)
    plain["org"]["ids"].append(3)  # a copy: the identity is untouched
    assert identity.claims["org"]["ids"] == (1, 2)
