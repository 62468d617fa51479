"""DPoP, RFC 9728 metadata and step-up, end to end through real apps (issue 12).

The proofs are made with joserfc, an implementation nobody here wrote. The
unit-level checks of each proof rule are in ``test_dpop.py``; these tests
prove the wiring: schemes, modes, challenges, replay across requests, and
every view kind.
"""

from __future__ import annotations

import time
import typing as t
import uuid

import pytest
from conftest import make_app
from flask import Flask
from flask.views import MethodView
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey
from kit import access_token
from kit import add_view
from kit import bearer
from kit import subject_json

from flask_authgate import AuthGate
from flask_authgate import login_required
from flask_authgate import scopes_accepted
from flask_authgate import scopes_required
from flask_authgate import step_up_required
from flask_authgate.dpop import access_token_hash
from flask_authgate.dpop import jwk_thumbprint

ALGS = 'algs="ES256 PS256 RS256 EdDSA"'
PROOF_INVALID = f'DPoP realm="api", {ALGS}, error="invalid_dpop_proof", error_description="The DPoP proof is invalid"'
TOKEN_INVALID_DPOP = f'DPoP realm="api", {ALGS}, error="invalid_token", error_description="The access token is invalid"'
TOKEN_INVALID_BEARER = 'Bearer realm="api", error="invalid_token", error_description="The access token is invalid"'
STEP_UP = "A stronger or more recent authentication is required"


class Client:
    """A DPoP client with its own P-256 key; proofs built by joserfc."""

    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256")
        self.jwk = self.key.as_dict(private=False)
        self.jkt = jwk_thumbprint(self.jwk)

    def proof(self, method: str, url: str, token: str | None = None, **overrides: t.Any) -> str:
        claims: dict[str, t.Any] = {"jti": str(uuid.uuid4()), "htm": method, "htu": url, "iat": int(time.time())}
        if token is not None:
            claims["ath"] = access_token_hash(token)
        claims.update(overrides)
        header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": self.jwk}
        return jose_jwt.encode(header, claims, self.key)


def build(mode: str = "allowed", **config: t.Any) -> tuple[Flask, AuthGate]:
    app, gate = make_app({"AUTHGATE_DPOP": mode, **config})

    add_view(app, "/sync", login_required, returns=subject_json)
    add_view(app, "/async", login_required, returns=subject_json, kind="async")

    class Resource(MethodView):
        decorators: t.ClassVar[list[t.Any]] = [login_required]

        def get(self) -> dict[str, str]:
            return subject_json()

    app.add_url_rule("/method", view_func=Resource.as_view("method"))
    return app, gate


def dpop_headers(client: Client, token: str, path: str, method: str = "GET", **overrides: t.Any) -> dict[str, str]:
    return {
        "Authorization": f"DPoP {token}",
        "DPoP": client.proof(method, f"http://localhost{path}", token, **overrides),
    }


class Bound(t.NamedTuple):
    app: Flask
    gate: AuthGate
    client: Client
    token: str


def bound(mode: str = "allowed", **config: t.Any) -> Bound:
    """``build()``'s app, a DPoP client, and an access token bound to the client's key."""
    app, gate = build(mode, **config)
    client = Client()
    return Bound(app, gate, client, access_token(app, gate, dpop_jkt=client.jkt))


def refusal(app: Flask, headers: t.Any) -> tuple[int, str, list[str]]:
    """``GET /sync`` with ``headers``: the status, the error code and the ``WWW-Authenticate`` lines."""
    rv = app.test_client().get("/sync", headers=headers)
    return rv.status_code, rv.get_json()["code"], rv.headers.getlist("WWW-Authenticate")


VIEWS = ["/sync", "/async", "/method"]


@pytest.mark.parametrize("path", VIEWS)
def test_a_bound_token_with_a_fresh_proof_is_accepted_once_per_proof(path: str) -> None:
    app, _, client, token = bound()
    http = app.test_client()
    headers = dpop_headers(client, token, path)
    assert http.get(path, headers=headers).get_json() == {"sub": "alice"}
    # The same proof again is a replay; a fresh proof is fine (the token itself is cached).
    replay = http.get(path, headers=headers)
    assert (replay.status_code, replay.get_json()["code"]) == (401, "dpop_proof_invalid")
    assert replay.headers.getlist("WWW-Authenticate") == ['Bearer realm="api"', PROOF_INVALID]
    assert http.get(path, headers=dpop_headers(client, token, path)).get_json() == {"sub": "alice"}


@pytest.mark.parametrize(
    ("case", "overrides"),
    [
        pytest.param("wrong-method", {"htm": "POST"}, id="htm"),
        pytest.param("other-path", {"htu": "http://localhost/elsewhere"}, id="htu-path"),
        pytest.param("other-host", {"htu": "http://evil.example/sync"}, id="htu-host"),
        pytest.param("stale", {"iat": int(time.time()) - 3600}, id="iat-stale"),
        pytest.param("future", {"iat": int(time.time()) + 3600}, id="iat-future"),
        pytest.param("wrong-ath", {"ath": access_token_hash("another token")}, id="ath"),
    ],
)
def test_a_proof_that_fails_a_check_is_401_dpop_proof_invalid(case: str, overrides: dict[str, t.Any]) -> None:
    app, _, client, token = bound()
    refused = refusal(app, dpop_headers(client, token, "/sync", **overrides))
    assert refused == (401, "dpop_proof_invalid", ['Bearer realm="api"', PROOF_INVALID])


def test_scheme_and_host_case_and_the_default_port_normalise_equal() -> None:
    app, _, client, token = bound()
    headers = dpop_headers(client, token, "/sync", htu="HTTP://LocalHost:80/sync")
    assert app.test_client().get("/sync", headers=headers).get_json() == {"sub": "alice"}


def test_a_token_bound_to_another_key_is_token_invalid_on_the_dpop_challenge() -> None:
    app, _, _owner, token = bound()
    thief = Client()
    refused = refusal(app, dpop_headers(thief, token, "/sync"))
    assert refused == (401, "token_invalid", ['Bearer realm="api"', TOKEN_INVALID_DPOP])


def test_a_bound_token_sent_as_bearer_is_refused() -> None:
    app, _, _, token = bound()
    refused = refusal(app, bearer(token))
    assert refused == (401, "token_invalid", [TOKEN_INVALID_BEARER, f'DPoP realm="api", {ALGS}'])


def test_an_unbound_token_sent_with_the_dpop_scheme_is_refused() -> None:
    app, gate, client, _ = bound()
    refused = refusal(app, dpop_headers(client, access_token(app, gate), "/sync"))
    assert refused == (401, "token_invalid", ['Bearer realm="api"', TOKEN_INVALID_DPOP])


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        pytest.param(lambda token: {"Authorization": f"DPoP {token}"}, "dpop_proof_invalid", id="no-proof"),
        pytest.param(
            lambda token: [("Authorization", f"DPoP {token}"), ("DPoP", "a.b.c"), ("DPoP", "a.b.c")],
            "dpop_proof_invalid",
            id="two-proofs",
        ),
        pytest.param(
            lambda token: {"Authorization": f"DPoP {token}", "DPoP": "x" * 100_000}, "dpop_proof_invalid", id="huge"
        ),
        pytest.param(
            lambda token: {"Authorization": f"DPoP {token}", "DPoP": "e30.e30."}, "dpop_proof_invalid", id="alg-none"
        ),
    ],
)
def test_malformed_proofs_are_clean_401s(headers: t.Callable[[str], t.Any], code: str) -> None:
    app, _, _, token = bound()
    rv = app.test_client().get("/sync", headers=headers(token))
    assert (rv.status_code, rv.get_json()["code"]) == (401, code)
    assert all("x" * 50 not in v and "a.b.c" not in v for v in rv.headers.values())  # never an echo


def test_required_mode_speaks_only_dpop() -> None:
    app, gate = build("required")
    client = Client()
    plain = access_token(app, gate)
    bound = access_token(app, gate, dpop_jkt=client.jkt)
    http = app.test_client()
    rv = http.get("/sync", headers=bearer(plain))
    assert (rv.status_code, rv.get_json()["code"]) == (401, "token_missing")
    assert rv.headers.getlist("WWW-Authenticate") == [f'DPoP realm="api", {ALGS}']
    assert http.get("/sync", headers=dpop_headers(client, bound, "/sync")).get_json() == {"sub": "alice"}


def test_a_proof_behind_proxy_fix_matches_the_public_url() -> None:
    from werkzeug.middleware.proxy_fix import ProxyFix

    app, _, client, token = bound()
    app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_host=1)  # type: ignore[method-assign]
    headers = {
        "Authorization": f"DPoP {token}",
        "DPoP": client.proof("GET", "https://api.example.com/sync", token),
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "api.example.com",
    }
    assert app.test_client().get("/sync", headers=headers).get_json() == {"sub": "alice"}


def test_replay_is_caught_by_another_app_sharing_the_store(redis_url: str) -> None:
    one, gate = build(AUTHGATE_REVOCATION_STORE=redis_url)
    two, _ = build(AUTHGATE_REVOCATION_STORE=redis_url)
    client = Client()
    token = access_token(one, gate, dpop_jkt=client.jkt)
    headers = dpop_headers(client, token, "/sync")
    assert one.test_client().get("/sync", headers=headers).status_code == 200
    assert two.test_client().get("/sync", headers=headers).get_json()["code"] == "dpop_proof_invalid"


def test_create_access_token_refuses_a_bad_thumbprint() -> None:
    app, gate = build()
    with app.app_context(), pytest.raises(ValueError, match="thumbprint"):
        gate.create_access_token("alice", dpop_jkt="not-a-thumbprint")


# -- RFC 9728 --------------------------------------------------------------------------------------------


def test_protected_resource_metadata_is_served_public_cacheable_and_cross_origin() -> None:
    app, _ = make_app(
        {
            "AUTHGATE_RESOURCE": "https://api.example.com/v1",
            "AUTHGATE_DEFAULT_DENY": True,
            "AUTHGATE_DPOP": "allowed",
            "AUTHGATE_JWT_ISSUER": "https://login.example.com",
            "AUTHGATE_RESOURCE_METADATA": {"resource_name": "Notes API"},
        }
    )

    add_view(app, "/notes", scopes_required("notes:read"))
    add_view(
        app,
        "/notes",
        scopes_accepted("notes:write", "notes:admin"),
        methods=["POST"],
        returns="added",
        endpoint="add_note",
    )

    rv = app.test_client().get("/.well-known/oauth-protected-resource/v1")
    assert rv.status_code == 200
    assert rv.get_json() == {
        "resource": "https://api.example.com/v1",
        "authorization_servers": ["https://login.example.com"],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["notes:admin", "notes:read", "notes:write"],
        "dpop_signing_alg_values_supported": ["ES256", "PS256", "RS256", "EdDSA"],
        "dpop_bound_access_tokens_required": False,
        "resource_name": "Notes API",
    }
    assert rv.headers["Access-Control-Allow-Origin"] == "*"
    assert rv.headers["Cache-Control"] == "public, max-age=300"
    # Every challenge names the metadata, and the audience defaults to the resource.
    refused = app.test_client().get("/notes")
    meta = 'resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/v1"'
    assert refused.headers.getlist("WWW-Authenticate") == [
        f'Bearer realm="api", {meta}',
        f'DPoP realm="api", {ALGS}, {meta}',
    ]
    assert app.extensions["authgate"].settings.tokens.audience == ("https://api.example.com/v1",)


def test_scopes_accepted_refuses_with_the_accepted_scopes_in_the_challenge() -> None:
    app, gate = make_app()

    add_view(app, "/write", scopes_accepted("notes:write", "notes:admin"), returns="ok")

    reader = access_token(app, gate, "bob", scopes=["notes:read"])
    admin = access_token(app, gate, scopes=["notes:admin"])
    http = app.test_client()
    rv = http.get("/write", headers=bearer(reader))
    assert (rv.status_code, rv.get_json()["code"]) == (403, "insufficient_scope")
    assert (
        rv.headers["WWW-Authenticate"]
        == 'Bearer realm="api", error="insufficient_scope", scope="notes:admin notes:write"'
    )
    assert http.get("/write", headers=bearer(admin)).data == b"ok"


# -- RFC 9470 --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_step_up_asks_for_a_stronger_login(kind: str) -> None:
    app, gate = make_app()

    add_view(
        app,
        "/transfer",
        step_up_required("mfa", "hwk", max_age=300),
        methods=["POST"],
        returns="sent",
        kind="async" if kind == "async" else "sync",
    )

    now = time.time()
    weak = access_token(app, gate, claims={"acr": "pwd", "auth_time": int(now)})
    old = access_token(app, gate, claims={"acr": "mfa", "auth_time": int(now) - 3600})
    strong = access_token(app, gate, claims={"acr": "mfa", "auth_time": int(now)})
    http = app.test_client()
    challenge = (
        f'Bearer realm="api", error="insufficient_user_authentication", error_description="{STEP_UP}", '
        'acr_values="mfa hwk", max_age="300"'
    )
    for token in (weak, old):
        rv = http.post("/transfer", headers=bearer(token))
        assert (rv.status_code, rv.get_json()["code"]) == (401, "insufficient_user_authentication")
        assert rv.headers.getlist("WWW-Authenticate") == [challenge]
    assert http.post("/transfer", headers=bearer(strong)).data == b"sent"


def test_step_up_on_a_dpop_request_challenges_on_dpop() -> None:
    app, gate = build()

    add_view(app, "/stepped", step_up_required("mfa"), returns="ok")

    client = Client()
    token = access_token(app, gate, dpop_jkt=client.jkt, claims={"acr": "pwd"})
    rv = app.test_client().get("/stepped", headers=dpop_headers(client, token, "/stepped"))
    assert rv.headers.getlist("WWW-Authenticate") == [
        'Bearer realm="api"',
        f'DPoP realm="api", {ALGS}, error="insufficient_user_authentication", error_description="{STEP_UP}", '
        'acr_values="mfa"',
    ]


def test_step_up_refuses_values_that_could_not_be_sent() -> None:
    with pytest.raises(ValueError):
        step_up_required('mfa"')
    with pytest.raises(TypeError):
        step_up_required()


# -- the token endpoint: bound refresh tokens and gate.dpop_thumbprint() -------------------------------


def token_endpoint_app(mode: str = "allowed") -> tuple[Flask, AuthGate]:
    from flask_authgate import refresh_token_required

    app, gate = build(mode)

    add_view(
        app,
        "/login",
        methods=["POST"],
        returns=lambda: gate.create_token_pair("alice", dpop_jkt=gate.dpop_thumbprint()),
    )
    add_view(app, "/refresh", refresh_token_required, methods=["POST"], returns=gate.rotate_refresh_token)

    return app, gate


@pytest.mark.parametrize("mode", ["allowed", "required"])
def test_a_login_proof_binds_both_tokens_and_rotation_keeps_the_key(mode: str) -> None:
    app, _ = token_endpoint_app(mode)
    client, thief = Client(), Client()
    http = app.test_client()
    pair = http.post("/login", headers={"DPoP": client.proof("POST", "http://localhost/login")}).get_json()
    assert pair["token_type"] == "DPoP"
    # At the token endpoint the refresh token travels as Bearer, with a proof and no ath (RFC 9449 §5).
    missing = http.post("/refresh", headers=bearer(pair["refresh_token"]))
    assert missing.get_json()["code"] == "dpop_proof_invalid"
    stolen = http.post(
        "/refresh", headers={**bearer(pair["refresh_token"]), "DPoP": thief.proof("POST", "http://localhost/refresh")}
    )
    assert (stolen.get_json()["code"], stolen.get_json()["message"]) == (
        "token_invalid",
        "The refresh token is invalid",
    )
    ok = http.post(
        "/refresh", headers={**bearer(pair["refresh_token"]), "DPoP": client.proof("POST", "http://localhost/refresh")}
    )
    new = ok.get_json()
    assert (ok.status_code, new["token_type"]) == (200, "DPoP")
    assert http.get("/sync", headers=dpop_headers(client, new["access_token"], "/sync")).get_json() == {"sub": "alice"}
    assert http.get("/sync", headers=dpop_headers(thief, new["access_token"], "/sync")).status_code == 401


def test_a_login_without_a_proof_gets_bearer_tokens_and_a_replayed_login_proof_is_refused() -> None:
    app, _ = token_endpoint_app()
    client = Client()
    http = app.test_client()
    assert http.post("/login").get_json()["token_type"] == "Bearer"
    proof = client.proof("POST", "http://localhost/login")
    assert http.post("/login", headers={"DPoP": proof}).status_code == 200
    assert http.post("/login", headers={"DPoP": proof}).get_json()["code"] == "dpop_proof_invalid"


def test_current_token_reads_the_dpop_scheme() -> None:
    app, gate, client, token = bound()
    with app.test_request_context(headers=dpop_headers(client, token, "/sync")):
        assert gate.current_token() == token


def test_a_dpop_bound_token_from_an_outside_issuer() -> None:
    from flask_authgate.testing import FakeIdentityProvider

    client, thief = Client(), Client()
    with FakeIdentityProvider() as idp:
        app = Flask("outside_dpop")
        app.config.update(
            AUTHGATE_DPOP="allowed",
            AUTHGATE_TRUSTED_ISSUERS=[{"issuer": idp.issuer, "jwks_url": idp.jwks_url, "audience": None}],
        )
        AuthGate(app)

        add_view(app, "/sync", login_required, returns=subject_json)

        token = idp.token("user-1", cnf={"jkt": client.jkt})
        http = app.test_client()
        assert http.get("/sync", headers=dpop_headers(client, token, "/sync")).get_json() == {"sub": "user-1"}
        assert http.get("/sync", headers=dpop_headers(thief, token, "/sync")).get_json()["code"] == "token_invalid"
        assert http.get("/sync", headers=bearer(token)).get_json()["code"] == "token_invalid"
