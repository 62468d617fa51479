"""The testing kit (flask_authgate.testing) and its pytest plugin, against real apps."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import pathlib
import sys
import time
import typing as t
import urllib.request

import pytest
from conftest import make_app
from flask import Flask
from flask import request
from kit import add_view
from kit import add_views
from kit import bearer
from kit import subject
from kit import whoami

from flask_authgate import current_identity
from flask_authgate import fresh_login_required
from flask_authgate import login_required
from flask_authgate import public
from flask_authgate import refresh_token_required
from flask_authgate import roles_required
from flask_authgate import scopes_required
from flask_authgate.testing import AuthGateClient
from flask_authgate.testing import FakeIdentityProvider
from flask_authgate.testing import make_token

pytest_plugins = ["pytester"]

ROOT = pathlib.Path(__file__).resolve().parent.parent


def kit_views(app: Flask) -> Flask:
    def me() -> dict[str, t.Any]:
        return whoami(tenant=current_identity.claims.get("tenant"), scheme=current_identity.scheme)

    def sent() -> dict[str, t.Any]:
        return {"authorization": "Authorization" in request.headers, "cookies": sorted(request.cookies)}

    add_view(app, "/me", login_required, methods=["GET", "POST"], returns=me)
    add_views(app, {"/admin": roles_required("admin"), "/write": scopes_required("write")})
    add_view(app, "/fresh", fresh_login_required)
    add_view(app, "/refresh", refresh_token_required, methods=["POST"], returns=subject)
    add_view(app, "/sent", public, returns=sent)
    app.test_client_class = AuthGateClient
    return app


@pytest.fixture
def kit_app(token_format: str) -> Flask:
    app, _ = make_app({"AUTHGATE_TOKEN_FORMAT": token_format})
    return kit_views(app)


def code(rv: t.Any) -> tuple[int, str]:
    return rv.status_code, rv.get_json()["code"]


# -- AuthGateClient ----------------------------------------------------------


def test_client_sends_the_identity_on_every_request(kit_app: Flask, token_format: str) -> None:
    client = kit_app.test_client(subject="alice", roles=["admin"], scopes=["write"], claims={"tenant": "t1"})
    for _ in range(2):
        rv = client.get("/me")
        assert rv.status_code == 200
        assert rv.get_json() == {
            "sub": "alice",
            "roles": ["admin"],
            "scopes": ["write"],
            "tenant": "t1",
            "scheme": token_format,
        }
    assert client.get("/admin").status_code == 200
    assert client.get("/write").status_code == 200
    assert client.post("/me").status_code == 200


def test_client_without_subject_sends_nothing(kit_app: Flask) -> None:
    client = t.cast(AuthGateClient, kit_app.test_client())
    assert client.get("/sent").get_json() == {"authorization": False, "cookies": []}
    assert code(client.get("/me")) == (401, "token_missing")
    assert client.access_token is None


def test_client_roles_and_scopes_are_checked(kit_app: Flask) -> None:
    client = kit_app.test_client(subject="bob")
    assert code(client.get("/admin")) == (403, "insufficient_role")
    assert code(client.get("/write")) == (403, "insufficient_scope")


def test_client_fresh(kit_app: Flask) -> None:
    assert code(kit_app.test_client(subject="alice").get("/fresh")) == (401, "fresh_token_required")
    assert kit_app.test_client(subject="alice", fresh=True).get("/fresh").status_code == 200


def test_a_header_of_the_request_wins(kit_app: Flask) -> None:
    client = kit_app.test_client(subject="alice")
    assert code(client.get("/me", headers={"Authorization": "Bearer x.y.z"})) == (401, "token_invalid")
    assert client.get("/me").status_code == 200  # the next request is alice again


def test_client_token_can_be_revoked() -> None:
    kit_app, gate = make_app()
    kit_views(kit_app)
    client = t.cast(AuthGateClient, kit_app.test_client(subject="alice"))
    assert client.get("/me").status_code == 200
    with kit_app.app_context():
        token = client.access_token
        assert token is not None
        gate.revoke(token)
    assert code(client.get("/me")) == (401, "token_revoked")


def test_client_renews_its_token_when_the_app_clock_passes_its_expiry(kit_app: Flask) -> None:
    client = t.cast(AuthGateClient, kit_app.test_client(subject="alice"))
    assert client.get("/me").status_code == 200
    first = client.access_token
    tokens = kit_app.extensions["authgate"].tokens
    tokens.clock = lambda: time.time() + 20 * 60  # past the 15 minutes of the first token
    assert client.get("/me").status_code == 200
    assert client.access_token != first
    assert code(kit_app.test_client().get("/me", headers={"Authorization": f"Bearer {first}"})) == (
        401,
        "token_expired",
    )


def test_client_identity_can_change_between_requests(kit_app: Flask) -> None:
    client = t.cast(AuthGateClient, kit_app.test_client(subject="alice"))
    assert client.get("/me").get_json()["sub"] == "alice"
    client.subject = "bob"
    assert client.get("/me").get_json()["sub"] == "bob"
    client.roles = ("admin",)
    assert code(client.get("/admin")) == (403, "insufficient_role")  # the token is still bob's old one
    client.renew()
    assert client.get("/admin").status_code == 200
    client.subject = None  # signed out: nothing is sent any more
    assert client.get("/sent").get_json() == {"authorization": False, "cookies": []}


def test_client_refuses_bad_arguments(kit_app: Flask) -> None:
    with pytest.raises(TypeError):
        kit_app.test_client(subject="alice", roles="admin")
    with pytest.raises(TypeError):
        kit_app.test_client(subject="alice", scopes=[""])
    with pytest.raises(TypeError):
        kit_app.test_client(subject="")


@pytest.fixture
def cookie_app(token_format: str) -> Flask:
    app, _ = make_app({"AUTHGATE_TOKEN_FORMAT": token_format, "AUTHGATE_TOKEN_LOCATIONS": ["cookies"]})
    return kit_views(app)


def test_cookie_only_app_gets_cookies_and_the_csrf_header(cookie_app: Flask) -> None:
    client = cookie_app.test_client(subject="alice", roles=["admin"])
    assert client.get("/sent").get_json() == {"authorization": False, "cookies": ["authgate_access", "authgate_csrf"]}
    rv = client.get("/me")
    assert rv.status_code == 200
    assert rv.headers["Cache-Control"] == "private"  # a cookie-authenticated answer
    assert client.post("/me").status_code == 200  # an unsafe method: the CSRF header went with it
    assert code(client.post("/me", headers={"X-CSRF-Token": "wrong"})) == (403, "csrf_failed")


def test_cookie_path_is_the_apps(token_format: str) -> None:
    app, _ = make_app(
        {"AUTHGATE_TOKEN_FORMAT": token_format, "AUTHGATE_TOKEN_LOCATIONS": ["cookies"], "AUTHGATE_COOKIE_PATH": "/api"}
    )
    add_view(app, "/api/me", login_required, returns=subject, endpoint="api_me")
    kit_views(app)
    client = app.test_client(subject="alice")
    assert client.get("/api/me").text == "alice"
    # Outside the cookie's path a browser would not send it, and neither does the client.
    assert code(client.get("/me")) == (401, "token_missing")


def test_cookie_only_app_needs_a_cookie_jar(cookie_app: Flask) -> None:
    with pytest.raises(ValueError, match="use_cookies=True"):
        cookie_app.test_client(use_cookies=False, subject="alice")


# -- make_token --------------------------------------------------------------


def test_make_token_valid(kit_app: Flask) -> None:
    client = kit_app.test_client()
    token = make_token(kit_app, "alice", roles=["admin"], claims={"tenant": "t2"}, expires_in=60)
    rv = client.get("/me", headers=bearer(token))
    assert rv.status_code == 200
    assert rv.get_json()["tenant"] == "t2"
    assert client.get("/admin", headers=bearer(token)).status_code == 200
    fresh = make_token(kit_app, "alice", fresh=True)
    assert client.get("/fresh", headers=bearer(fresh)).status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({"expires_in": -5}, (401, "token_expired"), id="expired"),
        pytest.param({"expires_in": 0}, (401, "token_expired"), id="zero-lifetime"),
        pytest.param({"expires_in": datetime.timedelta(seconds=-1)}, (401, "token_expired"), id="timedelta"),
        pytest.param({"issued_at": time.time() - 3600, "expires_in": 60}, (401, "token_expired"), id="issued-long-ago"),
        pytest.param({"issued_at": time.time() + 600}, (401, "token_invalid"), id="not-yet-valid"),
        pytest.param(
            {"issued_at": datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=10)},
            (401, "token_invalid"),
            id="not-yet-valid-datetime",
        ),
        pytest.param({"expires_in": 365 * 86400}, (401, "token_invalid"), id="longer-than-the-max-lifetime"),
        pytest.param({"token_type": "refresh"}, (401, "token_type_invalid"), id="refresh-as-access"),
    ],
)
def test_make_token_refused(kit_app: Flask, kwargs: dict[str, t.Any], expected: tuple[int, str]) -> None:
    token = make_token(kit_app, "alice", **kwargs)
    assert code(kit_app.test_client().get("/me", headers=bearer(token))) == expected


def test_make_token_refresh(kit_app: Flask) -> None:
    client = kit_app.test_client()
    refresh = make_token(kit_app, "alice", token_type="refresh")
    rv = client.post("/refresh", headers=bearer(refresh))
    assert (rv.status_code, rv.text) == (200, "alice")
    expired = make_token(kit_app, "alice", token_type="refresh", expires_in=-1)
    assert code(client.post("/refresh", headers=bearer(expired))) == (401, "token_expired")


def test_make_token_follows_the_app_clock(kit_app: Flask) -> None:
    kit_app.extensions["authgate"].tokens.clock = lambda: time.time() - 3600
    token = make_token(kit_app, "alice", expires_in=60)  # issued an hour ago by the app's clock
    kit_app.extensions["authgate"].tokens.clock = time.time
    assert code(kit_app.test_client().get("/me", headers=bearer(token))) == (401, "token_expired")


def test_make_token_issuer_and_audience() -> None:
    app, _ = make_app({"AUTHGATE_JWT_ISSUER": "https://api.example", "AUTHGATE_JWT_AUDIENCE": "shop"})
    kit_views(app)
    client = app.test_client()
    assert client.get("/me", headers=bearer(make_token(app, "alice"))).status_code == 200
    other_aud = make_token(app, "alice", claims={"aud": "elsewhere"})
    assert code(client.get("/me", headers=bearer(other_aud))) == (401, "token_invalid")
    other_iss = make_token(app, "alice", claims={"iss": "https://evil.example"})
    assert code(client.get("/me", headers=bearer(other_iss))) == (401, "token_invalid")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        pytest.param({"claims": {"exp": 1}}, ValueError, id="reserved-claim"),
        pytest.param({"claims": {"roles": ["admin"]}}, ValueError, id="roles-claim"),
        pytest.param({"token_type": "id"}, ValueError, id="token-type"),
        pytest.param({"roles": "admin"}, TypeError, id="roles-string"),
        pytest.param({"scopes": ["a b"]}, TypeError, id="scope-with-space"),
        pytest.param({"expires_in": float("nan")}, TypeError, id="nan"),
        pytest.param({"expires_in": True}, TypeError, id="bool"),
        pytest.param({"issued_at": datetime.datetime(2030, 1, 1)}, ValueError, id="naive-datetime"),
        pytest.param({"issued_at": "now"}, TypeError, id="issued-at-string"),
    ],
)
def test_make_token_bad_arguments(kit_app: Flask, kwargs: dict[str, t.Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        make_token(kit_app, "alice", **kwargs)


def test_make_token_needs_the_extension() -> None:
    with pytest.raises(RuntimeError, match="not set up"):
        make_token(Flask("bare"), "alice")


@pytest.mark.parametrize("subject", ["", None, 5])
def test_make_token_needs_a_subject(kit_app: Flask, subject: t.Any) -> None:
    with pytest.raises(TypeError):
        make_token(kit_app, subject)


# -- FakeIdentityProvider ----------------------------------------------------


@pytest.fixture
def idp() -> t.Iterator[FakeIdentityProvider]:
    pytest.importorskip("cryptography")
    with FakeIdentityProvider() as provider:
        yield provider


def provider_app(idp: FakeIdentityProvider) -> Flask:
    app, _ = make_app(
        {
            "AUTHGATE_JWKS_URL": idp.jwks_url,
            "AUTHGATE_JWT_ALGORITHMS": ["RS256"],
            "AUTHGATE_JWT_ISSUER": idp.issuer,
            "AUTHGATE_JWKS_COOLDOWN": 0,  # let a rotation be picked up at once
        }
    )
    return kit_views(app)


def fetch(url: str) -> t.Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a loopback http URL
        assert response.headers["Content-Type"] == "application/json"
        return json.loads(response.read())


def test_provider_serves_discovery_and_jwks_over_http(idp: FakeIdentityProvider) -> None:
    assert idp.issuer.startswith("http://127.0.0.1:")
    discovery = fetch(idp.discovery_url)
    assert discovery["issuer"] == idp.issuer
    assert discovery["jwks_uri"] == idp.jwks_url
    assert discovery["id_token_signing_alg_values_supported"] == ["RS256"]
    jwks = fetch(idp.jwks_url)
    assert [(k["kid"], k["kty"], k["alg"], k["use"]) for k in jwks["keys"]] == [(idp.kid, "RSA", "RS256", "sig")]
    assert "d" not in jwks["keys"][0]  # public keys only
    with pytest.raises(urllib.error.HTTPError) as info:
        fetch(idp.issuer + "/nothing")
    assert info.value.code == 404
    info.value.close()


def test_provider_tokens_verify_in_the_app(idp: FakeIdentityProvider) -> None:
    app = provider_app(idp)
    client = app.test_client()
    rv = client.get("/me", headers=bearer(idp.token("alice", roles=["admin"], scope="write")))
    assert rv.status_code == 200
    assert rv.get_json() == {"sub": "alice", "roles": ["admin"], "scopes": ["write"], "tenant": None, "scheme": "jwt"}
    assert idp.requests["/jwks.json"] == 1
    expired = idp.token("alice", exp=int(time.time()) - 5)
    assert code(client.get("/me", headers=bearer(expired))) == (401, "token_expired")
    wrong_issuer = idp.token("alice", iss="https://elsewhere.example")
    assert code(client.get("/me", headers=bearer(wrong_issuer))) == (401, "token_invalid")


def test_provider_rotate_keys(idp: FakeIdentityProvider) -> None:
    app = provider_app(idp)
    client = app.test_client()
    old = idp.token("alice")
    assert client.get("/me", headers=bearer(old)).status_code == 200
    old_kid = idp.kid
    new_kid = idp.rotate_keys()
    assert new_kid == idp.kid != old_kid
    new = idp.token("alice")
    assert client.get("/me", headers=bearer(new)).status_code == 200  # unknown kid: the app fetched again
    assert code(client.get("/me", headers=bearer(old))) == (401, "token_invalid")  # the old key is gone
    idp.rotate_keys(keep_old=True)
    assert [k["kid"] for k in idp.jwks()["keys"]] == [idp.kid, new_kid]
    assert client.get("/me", headers=bearer(new)).status_code == 200
    assert client.get("/me", headers=bearer(idp.token("alice"))).status_code == 200


def test_provider_counts_requests_without_growing(idp: FakeIdentityProvider) -> None:
    for i in range(5):
        with pytest.raises(urllib.error.HTTPError) as info:
            fetch(f"{idp.issuer}/probe-{i}")
        info.value.close()
    fetch(idp.discovery_url)
    assert idp.requests == {"other": 5, "/.well-known/openid-configuration": 1}


def test_provider_audience_and_arguments() -> None:
    pytest.importorskip("cryptography")
    import jwt

    with FakeIdentityProvider(audience="orders-api", lifetime=60) as provider:
        claims = jwt.decode(provider.token("alice"), options={"verify_signature": False})
        assert claims["aud"] == "orders-api"
        assert claims["exp"] - claims["iat"] == 60
        assert jwt.get_unverified_header(provider.token("alice"))["kid"] == provider.kid
        with pytest.raises(TypeError):
            provider.token("")
        with pytest.raises(RuntimeError, match="already running"):
            provider.start()


def test_provider_stops(idp: FakeIdentityProvider) -> None:
    url = idp.jwks_url
    idp.stop()
    with pytest.raises(RuntimeError, match="not running"):
        _ = idp.issuer
    with pytest.raises(OSError):
        fetch(url)


# -- the pytest plugin ---------------------------------------------------------

CONFTEST = """
import pytest
from flask import Flask
from flask_authgate import AuthGate, current_identity, roles_required


@pytest.fixture
def app():
    app = Flask("user_app")
    app.config["AUTHGATE_JWT_SECRET"] = "k" * 32
    AuthGate(app)

    @app.get("/admin")
    @roles_required("admin")
    def admin():
        return {"hello": current_identity.subject}

    return app
"""

USER_TESTS = """
def test_admin(authgate_client_factory):
    client = authgate_client_factory("alice", roles=["admin"])
    assert client.get("/admin").get_json() == {"hello": "alice"}


def test_anonymous(authgate_client_factory):
    assert authgate_client_factory().get("/admin").get_json()["code"] == "token_missing"


def test_expired(app, authgate_make_token):
    token = authgate_make_token("alice", roles=["admin"], expires_in=-5)
    rv = app.test_client().get("/admin", headers={"Authorization": "Bearer " + token})
    assert rv.get_json()["code"] == "token_expired"


def test_provider(fake_identity_provider):
    from flask import Flask
    from flask_authgate import AuthGate, current_identity, login_required

    app = Flask("idp_app")
    app.config.update(
        AUTHGATE_JWKS_URL=fake_identity_provider.jwks_url,
        AUTHGATE_JWT_ALGORITHMS=["RS256"],
        AUTHGATE_JWT_ISSUER=fake_identity_provider.issuer,
    )
    AuthGate(app)

    @app.get("/me")
    @login_required
    def me():
        return current_identity.subject

    token = fake_identity_provider.token("carol")
    assert app.test_client().get("/me", headers={"Authorization": "Bearer " + token}).text == "carol"
"""


def plugin_args() -> list[str]:
    """``-p`` the plugin only when its entry point is not installed (a checkout not reinstalled)."""
    installed = any(ep.name == "flask_authgate" for ep in importlib.metadata.entry_points(group="pytest11"))
    return [] if installed else ["-p", "flask_authgate.pytest_plugin"]


def test_pyproject_registers_the_plugin() -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        tomllib = pytest.importorskip("tomli")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"flask_authgate": "flask_authgate.pytest_plugin"}


def test_plugin_fixtures_work_in_a_user_conftest(pytester: pytest.Pytester) -> None:
    pytest.importorskip("cryptography")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest(*plugin_args(), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_plugin_needs_an_app_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="def test_it(authgate_client_factory):\n    authgate_client_factory('alice')\n")
    result = pytester.runpytest(*plugin_args(), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*need an 'app' fixture*"])


def test_plugin_is_inert_in_other_projects(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # this checkout's flask_authgate in the subprocess
    pytester.makepyfile(
        test_other="""
import sys

def test_nothing_imported():
    assert "flask_authgate.testing" not in sys.modules
"""
    )
    result = pytester.runpytest_subprocess(*plugin_args(), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
