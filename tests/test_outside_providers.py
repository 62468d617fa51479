"""Outside identity providers through real apps and a real provider on loopback (issue 11).

The unit behaviour of discovery, trusted issuers, claim mapping and
introspection is in their own test files; these tests prove the wiring: an
app configured with ``AUTHGATE_OIDC_ISSUER`` / ``AUTHGATE_TRUSTED_ISSUERS`` /
introspection answers sync, async and MethodView views as the contract says.
"""

from __future__ import annotations

import collections.abc as cabc
import logging
import typing as t

import pytest
from flask import Flask
from flask.views import MethodView
from idp_server import RS_CLIENT_ID
from idp_server import RS_CLIENT_SECRET
from idp_server import IdentityProvider
from idp_server import Override
from kit import bearer

from flask_authgate import AuthGate
from flask_authgate import authentication_failed
from flask_authgate import current_identity
from flask_authgate import login_required
from flask_authgate import roles_required
from flask_authgate import scopes_required

VIEWS = ["/sync", "/async", "/method"]


@pytest.fixture(scope="module")
def idps() -> cabc.Iterator[tuple[IdentityProvider, IdentityProvider, IdentityProvider]]:
    with (
        IdentityProvider(issuer_path="/realms/acme") as one,
        IdentityProvider(issuer_path="/tenant-b") as two,
        IdentityProvider(issuer_path="/tenant-c") as three,
    ):
        for n, idp in enumerate((one, two, three)):
            idp.add_key(f"key-{n}")
        yield one, two, three


@pytest.fixture(autouse=True)
def _healthy(idps: tuple[IdentityProvider, ...]) -> cabc.Iterator[None]:
    yield
    for idp in idps:
        idp.overrides.clear()
        idp.reset_counts()


def build(**config: t.Any) -> Flask:
    app = Flask("outside")
    app.config.update(TESTING=True, **config)
    AuthGate(app)

    @app.get("/sync")
    @roles_required("buyer")
    def sync_view() -> dict[str, t.Any]:
        return {"sub": current_identity.subject, "scheme": current_identity.scheme}

    @app.get("/async")
    @roles_required("buyer")
    async def async_view() -> dict[str, t.Any]:
        return {"sub": current_identity.subject, "scheme": current_identity.scheme}

    class Resource(MethodView):
        decorators: t.ClassVar[list[t.Any]] = [roles_required("buyer")]

        def get(self) -> dict[str, t.Any]:
            return {"sub": current_identity.subject, "scheme": current_identity.scheme}

    app.add_url_rule("/method", view_func=Resource.as_view("method"))

    @app.get("/orders")
    @scopes_required("orders:read")
    def orders() -> dict[str, t.Any]:
        return {"sub": current_identity.subject, "scopes": sorted(current_identity.scopes)}

    return app


@pytest.mark.parametrize("path", VIEWS)
def test_a_discovered_issuer_with_keycloak_roles(idps: tuple[IdentityProvider, ...], path: str) -> None:
    idp = idps[0]
    app = build(
        AUTHGATE_OIDC_ISSUER=idp.issuer,
        AUTHGATE_JWT_AUDIENCE="orders-api",
        AUTHGATE_ROLES_CLAIM=["realm_access.roles", "resource_access.orders-api.roles"],
    )
    assert idp.count(idp.oidc_path) == 0  # nothing fetched at init_app
    token = idp.token({"aud": "orders-api", "realm_access": {"roles": ["viewer"]},
                       "resource_access": {"orders-api": {"roles": ["buyer"]}}})  # fmt: skip
    http = app.test_client()
    assert http.get(path, headers=bearer(token)).get_json() == {"sub": "user-1", "scheme": "jwt"}
    # Another audience, a role that is not there: refused, 401 then 403.
    wrong_aud = idp.token({"aud": "billing", "realm_access": {"roles": ["buyer"]}})
    assert http.get(path, headers=bearer(wrong_aud)).get_json()["code"] == "token_invalid"
    viewer = idp.token({"aud": "orders-api", "realm_access": {"roles": ["viewer"]}})
    assert http.get(path, headers=bearer(viewer)).get_json()["code"] == "insufficient_role"


def test_three_trusted_issuers_each_with_its_own_keys_and_mapping(idps: tuple[IdentityProvider, ...]) -> None:
    one, two, three = idps
    app = build(
        AUTHGATE_TRUSTED_ISSUERS=[
            {"issuer": one.issuer, "audience": "orders-api", "roles_claim": "realm_access.roles"},
            {"issuer": two.issuer, "audience": "api://orders", "roles_claim": "groups"},
            {"issuer": three.issuer, "audience": None, "jwks_url": three.jwks_url, "roles_claim": "cognito:groups",
             "client_id": "app-client"},
        ]
    )  # fmt: skip
    http = app.test_client()
    ok_one = one.token({"aud": "orders-api", "realm_access": {"roles": ["buyer"]}})
    ok_two = two.token({"aud": "api://orders", "groups": ["buyer"]})
    ok_three = three.token({"client_id": "app-client", "cognito:groups": ["buyer"]})
    for token in (ok_one, ok_two, ok_three):
        assert http.get("/sync", headers=bearer(token)).status_code == 200
    # One issuer's keys never verify another issuer's tokens: signed by two, claiming to be one.
    forged = two.token({"iss": one.issuer, "aud": "orders-api", "realm_access": {"roles": ["buyer"]}})
    assert http.get("/sync", headers=bearer(forged)).get_json()["code"] == "token_invalid"
    stranger = one.token({"iss": "https://evil.example", "aud": "orders-api"})
    assert http.get("/sync", headers=bearer(stranger)).get_json()["code"] == "token_invalid"


def test_the_refusal_reason_reaches_the_log_and_the_signal_never_the_response(
    idps: tuple[IdentityProvider, ...], caplog: pytest.LogCaptureFixture
) -> None:
    idp = idps[0]
    app = build(AUTHGATE_OIDC_ISSUER=idp.issuer, AUTHGATE_JWT_AUDIENCE="orders-api")
    reasons: list[str] = []

    def receive(sender: t.Any, **kwargs: t.Any) -> None:
        reasons.append(kwargs["reason"])

    token = idp.token({"aud": "billing"})
    with authentication_failed.connected_to(receive, app), caplog.at_level(logging.INFO, logger="flask_authgate"):
        rv = app.test_client().get("/sync", headers=bearer(token))
    assert reasons == ["audience"]
    assert "(audience)" in caplog.text
    assert b"audience" not in rv.data and "audience" not in str(rv.headers)


def test_a_provider_that_is_down_is_503_and_recovers_by_itself(idps: tuple[IdentityProvider, ...]) -> None:
    idp = idps[1]
    app = build(AUTHGATE_OIDC_ISSUER=idp.issuer, AUTHGATE_JWT_AUDIENCE="orders-api", AUTHGATE_JWKS_COOLDOWN=0)
    token = idp.token({"aud": "orders-api", "roles": ["buyer"]})
    idp.override(idp.oidc_path, Override(status=500, body=b"down"))
    idp.override(idp.oauth_path, Override(status=500, body=b"down"))
    rv = app.test_client().get("/sync", headers=bearer(token))
    assert (rv.status_code, rv.get_json()["code"], rv.headers["Retry-After"]) == (503, "auth_unavailable", "5")
    idp.overrides.clear()
    assert app.test_client().get("/sync", headers=bearer(token)).get_json() == {"sub": "user-1", "scheme": "jwt"}


@pytest.mark.parametrize("path", ["/orders"])
def test_opaque_tokens_are_introspected_and_cached(idps: tuple[IdentityProvider, ...], path: str) -> None:
    idp = idps[0]
    app = build(
        AUTHGATE_OIDC_ISSUER=idp.issuer,
        AUTHGATE_INTROSPECTION_CLIENT_ID=RS_CLIENT_ID,
        AUTHGATE_INTROSPECTION_CLIENT_SECRET=RS_CLIENT_SECRET,
    )
    opaque = idp.opaque_token(scope="orders:read orders:write")
    http = app.test_client()
    first = http.get(path, headers=bearer(opaque))
    assert first.get_json() == {"sub": "user-1", "scopes": ["orders:read", "orders:write"]}
    assert idp.count("/introspect") == 1
    assert http.get(path, headers=bearer(opaque)).status_code == 200
    assert idp.count("/introspect") == 1  # the second answer came from the cache
    unknown = http.get(path, headers=bearer("not-a-known-opaque-token-value"))
    assert (unknown.status_code, unknown.get_json()["code"]) == (401, "token_invalid")


def test_an_introspection_endpoint_that_lies_is_503(idps: tuple[IdentityProvider, ...]) -> None:
    idp = idps[2]
    app = build(
        AUTHGATE_JWT_ALGORITHMS=["RS256"],
        AUTHGATE_JWKS_URL=idp.jwks_url,
        AUTHGATE_INTROSPECTION_URL=idp.introspection_url,
        AUTHGATE_INTROSPECTION_CLIENT_ID=RS_CLIENT_ID,
        AUTHGATE_INTROSPECTION_CLIENT_SECRET=RS_CLIENT_SECRET,
    )
    idp.override(
        "/introspect",
        Override(body=b'{"active": "true", "sub": "user-1"}', headers={"Content-Type": "application/json"}),
    )
    rv = app.test_client().get("/orders", headers=bearer(idp.opaque_token()))
    assert (rv.status_code, rv.get_json()["code"]) == (503, "auth_unavailable")


def test_a_verify_only_app_starts_while_the_provider_is_down() -> None:
    app = build(AUTHGATE_OIDC_ISSUER="http://127.0.0.1:9/realms/nowhere", AUTHGATE_JWKS_TIMEOUT=0.2)
    # A token naming that issuer (a kid, so the keys are needed): the keys cannot be had, 503.
    header = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0"  # {"alg":"RS256","kid":"k1"}
    payload = "eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xOjkvcmVhbG1zL25vd2hlcmUifQ"  # {"iss": that issuer}
    rv = app.test_client().get("/sync", headers=bearer(f"{header}.{payload}.c2ln"))
    assert (rv.status_code, rv.get_json()["code"]) == (503, "auth_unavailable")


def test_login_required_with_a_google_style_issuer_list(idps: tuple[IdentityProvider, ...]) -> None:
    idp = idps[0]
    app = Flask("google")
    app.config.update(
        AUTHGATE_JWKS_URL=idp.jwks_url,
        AUTHGATE_JWT_ISSUER=["accounts.google.com", "https://accounts.google.com"],
        AUTHGATE_JWT_AUDIENCE="my-client-id.apps.googleusercontent.com",
    )
    AuthGate(app)

    @app.get("/me")
    @login_required
    def me() -> dict[str, str]:
        return {"sub": current_identity.subject}

    http = app.test_client()
    for iss in ("accounts.google.com", "https://accounts.google.com"):
        token = idp.token({"iss": iss, "aud": "my-client-id.apps.googleusercontent.com"})
        assert http.get("/me", headers=bearer(token)).get_json() == {"sub": "user-1"}
    other = idp.token({"iss": "https://accounts.example.com", "aud": "my-client-id.apps.googleusercontent.com"})
    assert http.get("/me", headers=bearer(other)).get_json()["code"] == "token_invalid"
