"""What a second adversarial review of version 0.2 found, each pinned by a test that failed before its fix."""

from __future__ import annotations

import functools
import json
import threading
import time
import typing as t
from http.server import BaseHTTPRequestHandler
from http.server import HTTPServer

import pytest
from conftest import SECRET
from conftest import make_app
from flask import Flask
from kit import access_token
from kit import add_view
from kit import bearer
from kit import body

from flask_authgate import AuthGate
from flask_authgate import ConfigError
from flask_authgate import Identity
from flask_authgate import current_identity
from flask_authgate import fresh_login_required
from flask_authgate import login_required
from flask_authgate import roles_required
from flask_authgate import step_up_required

# -- a guard above @route, wherever it sits in the stack ------------------------------------------


def test_a_guard_above_the_route_over_a_guard_below_it_is_enforced() -> None:
    app, gate = make_app()

    @roles_required("admin")  # above the route: the route serves the wrapper of "user" only
    @app.get("/split")
    @roles_required("user")
    def split() -> str:
        return "admin area"

    user = access_token(app, gate, "bob", roles=["user"])
    both = access_token(app, gate, roles=["user", "admin"])
    client = app.test_client()
    assert client.get("/split", headers=bearer(user)).get_json()["code"] == "insufficient_role"
    assert client.get("/split", headers=bearer(both)).data == b"admin area"


def test_a_guard_above_a_foreign_decorator_above_the_route_is_enforced() -> None:
    app, _ = make_app()

    def logged(view: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        @functools.wraps(view)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            return view(*args, **kwargs)

        return wrapper

    @login_required
    @logged
    @app.get("/wrapped")
    def wrapped() -> str:
        return "secret"

    assert app.test_client().get("/wrapped").get_json() == body("token_missing")


def test_stacked_step_up_guards_with_no_common_acr_accept_no_token() -> None:
    app, gate = make_app()

    add_view(app, "/both", step_up_required("hwk"), step_up_required("mfa"), returns="ran")

    token = access_token(app, gate, claims={"acr": "mfa"})
    rv = app.test_client().get("/both", headers=bearer(token))
    assert rv.get_json()["code"] == "insufficient_user_authentication"


# -- DPoP required: nothing but DPoP ----------------------------------------------------------------


def test_dpop_required_refuses_cookies_at_init() -> None:
    with pytest.raises(ConfigError, match="AUTHGATE_DPOP"):
        make_app({"AUTHGATE_DPOP": "required", "AUTHGATE_TOKEN_LOCATIONS": ["headers", "cookies"]})


def test_a_dpop_proof_lifetime_the_replay_records_cannot_cover_is_refused_at_init() -> None:
    with pytest.raises(ConfigError, match="AUTHGATE_DPOP_PROOF_LIFETIME"):
        make_app(
            {
                "AUTHGATE_DPOP": "allowed",
                "AUTHGATE_ACCESS_TOKEN_EXPIRES": 30,
                "AUTHGATE_REFRESH_TOKEN_EXPIRES": 30,
                "AUTHGATE_MAX_TOKEN_LIFETIME": 30,
            }
        )


# -- outside keys and secrets -----------------------------------------------------------------------------


def test_secret_key_is_never_the_hmac_key_beside_an_identity_provider() -> None:
    app = Flask("outside_hs")
    app.config.update(
        SECRET_KEY=SECRET,
        AUTHGATE_OIDC_ISSUER="https://idp.example.com",
        AUTHGATE_JWT_ALGORITHMS=["HS256"],
    )
    with pytest.raises(ConfigError, match="AUTHGATE_JWT_SECRET set explicitly"):
        AuthGate(app)


def test_an_outside_issuers_fresh_claim_means_nothing() -> None:
    identity = Identity("user-1", claims={"fresh": True}, issuer="https://idp.example.com")
    assert not identity.fresh
    assert Identity("alice", claims={"fresh": True}).fresh


def test_fresh_login_required_refuses_an_outside_token(tmp_path: t.Any) -> None:
    from flask_authgate.testing import FakeIdentityProvider

    with FakeIdentityProvider() as idp:
        app = Flask("fresh_outside")
        app.config.update(AUTHGATE_TRUSTED_ISSUERS=[{"issuer": idp.issuer, "jwks_url": idp.jwks_url, "audience": None}])
        AuthGate(app)

        add_view(app, "/password", fresh_login_required, returns="changed")

        rv = app.test_client().get("/password", headers=bearer(idp.token("user-1", fresh=True)))
        assert rv.get_json()["code"] == "fresh_token_required"


# -- introspection -------------------------------------------------------------------------------------------


class Endpoint:
    """A real RFC 7662 endpoint on loopback answering one fixed answer and counting calls."""

    def __init__(self, answer: dict[str, t.Any]) -> None:
        endpoint = self
        self.calls = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                endpoint.calls += 1
                self.rfile.read(int(self.headers["Content-Length"]))
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: t.Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Endpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/introspect"


def test_a_revoked_introspected_token_without_exp_stays_revoked() -> None:
    with Endpoint({"active": True, "sub": "alice", "jti": "opaque-1"}) as endpoint:
        app = Flask("introspected")
        app.config.update(
            AUTHGATE_INTROSPECTION_URL=endpoint.url,
            AUTHGATE_INTROSPECTION_CLIENT_ID="rs",
            AUTHGATE_INTROSPECTION_CLIENT_SECRET="pw",
        )
        gate = AuthGate(app)

        add_view(
            app,
            "/me",
            login_required,
            returns=lambda: {"sub": current_identity.subject, "issuer": str(current_identity.issuer)},
        )

        client = app.test_client()
        token = bearer("opaque-token-abc")
        assert client.get("/me", headers=token).get_json() == {"sub": "alice", "issuer": "introspection"}
        with app.test_request_context(headers=token):
            gate.revoke("opaque-token-abc")
        state = app.extensions["authgate"]
        state.tokens.clock = lambda: time.time() + 120  # long after the old "exp = now + 1" guess
        assert client.get("/me", headers=token).get_json()["code"] == "token_revoked"


def test_the_apps_own_signed_tokens_are_never_sent_to_the_introspection_endpoint() -> None:
    with Endpoint({"active": False}) as endpoint:
        app, gate = make_app(
            {
                "AUTHGATE_TOKEN_FORMAT": "signed",
                "AUTHGATE_JWT_SECRET": SECRET,
                "AUTHGATE_INTROSPECTION_URL": endpoint.url,
                "AUTHGATE_INTROSPECTION_CLIENT_ID": "rs",
                "AUTHGATE_INTROSPECTION_CLIENT_SECRET": "pw",
            }
        )

        add_view(app, "/me", login_required)

        with app.app_context():
            token = gate.create_access_token("alice", claims={"big": "x" * 200})  # compressed: starts with "."
        assert app.test_client().get("/me", headers=bearer(token)).data == b"me"
        assert endpoint.calls == 0


# -- callbacks -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("async_view", [False, True])
def test_an_async_loader_reading_current_identity_does_not_deadlock(async_view: bool) -> None:
    app, gate = make_app()
    seen: list[bool] = []

    @gate.user_loader
    async def load(identity: Identity) -> dict[str, str]:
        seen.append(bool(current_identity))  # not established yet: None, not a deadlock
        return {"name": identity.subject}

    add_view(app, "/me", login_required, kind="async" if async_view else "sync")
    token = access_token(app, gate)
    done: list[int] = []
    worker = threading.Thread(
        target=lambda: done.append(app.test_client().get("/me", headers=bearer(token)).status_code)
    )
    worker.start()
    worker.join(10)
    assert done == [200]
    assert seen == [False]
