"""Bugs found by the adversarial review, each pinned by a test that failed before its fix.

* A time claim that is an integer beyond a float's range (``exp: 10**400``)
  raised ``OverflowError``: a 500 instead of 401 ``token_invalid``.
* A deeply nested JWKS document raised ``RecursionError`` out of the JWKS
  client: a 500 instead of 503 ``auth_unavailable``.
* The HMAC fast path accepted a header or payload segment in non-canonical
  base64 (unused low bits set), which PyJWT refuses.
* Revocation entries expired at the token's ``exp``, but a token is accepted
  until ``exp + AUTHGATE_JWT_LEEWAY``: inside that window a revoked token, a
  used-up refresh token and a "log out everywhere" subject were let through.
* A token verified once stayed in the verified-token cache after its JWKS key
  was retired: the key set was only refreshed on a cache miss, so the cached
  token kept working past the key set's lifespan.
* ``AUTHGATE_LOGIN_VIEW`` with a CR/LF (or any non-printable byte) was
  accepted at ``init_app`` and made every browser 401 a 500; a login view
  naming no endpoint made every browser 401 a 500 too.
"""

from __future__ import annotations

import base64
import collections.abc as cabc
import hashlib
import hmac
import http.server
import json
import logging
import threading
import time
import typing as t

import pytest
from conftest import SECRET
from conftest import make_app
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from kit import bearer
from kit import body
from test_jwks import Provider
from test_jwks import assert_ok as assert_jwks_ok
from test_jwks import assert_refused as assert_jwks_refused
from test_jwks import build as build_jwks_app

from flask_authgate import AuthError
from flask_authgate import AuthGate
from flask_authgate import ConfigError
from flask_authgate import MemoryStore
from flask_authgate import TokenPair
from flask_authgate import login_required
from flask_authgate import refresh_token_required
from flask_authgate.errors import ERRORS
from flask_authgate.signed_tokens import SALTS
from flask_authgate.signed_tokens import SIGNER_KWARGS

KEY = SECRET.encode()
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(head: str, body: str) -> str:
    """A JWT of these exact segments, signed with the test secret."""
    sig = hmac.new(KEY, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def jwt_token(header: dict[str, t.Any], payload: bytes) -> str:
    return hs256(b64(json.dumps(header).encode()), b64(payload))


def signed_token(payload: bytes) -> str:
    serializer = URLSafeTimedSerializer(KEY, salt=SALTS["access"], signer_kwargs=SIGNER_KWARGS)
    return serializer.dumps(json.loads(payload))


def error_body(code: str, token_type: str = "access") -> dict[str, t.Any]:
    return body(code, token_type)


def invalid_token_challenge(code: str) -> str:
    return f'Bearer realm="api", error="invalid_token", error_description="{ERRORS[code].message}"'


def guarded_app(config: dict[str, t.Any] | None = None) -> tuple[Flask, AuthGate]:
    app, gate = make_app(config)

    @app.get("/me")
    @login_required
    def me() -> str:
        return "ok"

    return app, gate


def assert_401(client: FlaskClient, token: str, code: str) -> None:
    rv = client.get("/me", headers=bearer(token))
    assert rv.status_code == 401
    assert rv.get_json() == error_body(code)
    assert rv.headers.getlist("WWW-Authenticate") == [invalid_token_challenge(code)]
    assert rv.headers.getlist("Cache-Control") == ["no-store"]


# -- huge integer time claims --------------------------------------------------------------


def _claims(claim: str, value: str) -> bytes:
    exp = int(time.time()) + 600
    base = f'"sub":"alice","jti":"j1","exp":{exp}'
    if claim == "exp":
        base = '"sub":"alice","jti":"j1"'
    return ("{" + base + f',"{claim}":{value}' + "}").encode()


HUGE = "1" + "0" * 400


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize(
    "sign",
    [
        pytest.param(lambda p: jwt_token({"alg": "HS256", "typ": "JWT"}, p), id="jwt-fast-path"),
        pytest.param(lambda p: jwt_token({"alg": "HS256", "typ": "JWT", "cty": "x"}, p), id="jwt-pyjwt"),
        pytest.param(signed_token, id="signed"),
    ],
)
@pytest.mark.parametrize("value", [pytest.param(HUGE, id="huge"), pytest.param("-" + HUGE, id="huge-negative")])
def test_time_claim_beyond_float_range_is_token_invalid(
    claim: str, sign: cabc.Callable[[bytes], str], value: str
) -> None:
    fmt = "signed" if sign is signed_token else "jwt"
    app, _ = guarded_app({"AUTHGATE_TOKEN_FORMAT": fmt})
    assert_401(app.test_client(), sign(_claims(claim, value)), "token_invalid")


def test_revoke_of_a_token_with_a_huge_exp_is_token_invalid() -> None:
    app, gate = guarded_app()
    token = jwt_token({"alg": "HS256"}, _claims("exp", HUGE))
    with app.app_context(), pytest.raises(AuthError) as info:
        gate.revoke(token)
    assert info.value.error_code == "token_invalid"


# -- a hostile JWKS document -----------------------------------------------------------------


class JwksServer:
    """A real HTTP server on 127.0.0.1 answering every GET with one fixed body."""

    def __init__(self, body: bytes) -> None:
        payload = body

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: t.Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def nested_jwks() -> cabc.Iterator[JwksServer]:
    server = JwksServer(b'{"keys":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    yield server
    server.stop()


def test_deeply_nested_jwks_document_is_auth_unavailable(nested_jwks: JwksServer) -> None:
    app, _ = guarded_app({"AUTHGATE_JWT_ALGORITHMS": ["RS256"], "AUTHGATE_JWKS_URL": nested_jwks.url})
    header = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k1"}).encode())
    body = b64(json.dumps({"sub": "alice", "exp": int(time.time()) + 60}).encode())
    rv = app.test_client().get("/me", headers=bearer(f"{header}.{body}.{b64(b'x' * 256)}"))
    assert rv.status_code == 503
    assert rv.get_json() == error_body("auth_unavailable")
    assert "WWW-Authenticate" not in rv.headers
    assert rv.headers.getlist("Cache-Control") == ["no-store"]
    assert rv.headers.getlist("Retry-After") == ["5"]


@pytest.fixture
def idp() -> cabc.Iterator[Provider]:
    provider = Provider([rsa.generate_private_key(public_exponent=65537, key_size=2048)])
    provider.add_key("k1")
    yield provider
    provider.stop()


def test_cached_token_of_a_retired_jwks_key_is_refused_after_the_lifespan(idp: Provider) -> None:
    app, _, clock = build_jwks_app(idp)
    client = app.test_client()
    old = idp.token("k1")
    assert_jwks_ok(client, old)
    del idp.keys["k1"]  # the provider retires the key; nobody presents a new kid
    clock.offset = 301  # the key set's lifespan (300 s) is over
    assert_jwks_refused(client, old)
    # The scheduled refresh (2), then the one refetch per cooldown an unknown kid may cause (3):
    # the scheduled refresh does not use up that allowance (DESIGN.md part two).
    assert idp.fetches == 3


# -- non-canonical base64 in the HMAC fast path ---------------------------------------------


def noncanonical(segment: str) -> str:
    """``segment`` with the unused low bits of its last character set (decodes to the same bytes)."""
    rem = len(segment) % 4
    assert rem in (2, 3), segment
    index = B64URL.index(segment[-1]) | (0xF if rem == 2 else 0x3)
    assert B64URL[index] != segment[-1]
    return segment[:-1] + B64URL[index]


def _segments() -> tuple[str, str]:
    header = {"alg": "HS256", "typ": "JWT"}
    claims: dict[str, t.Any] = {"sub": "alice", "exp": int(time.time()) + 600, "jti": "j1"}
    head, body = b64(json.dumps(header).encode()), b64(json.dumps(claims).encode())
    pad = 0
    while len(head) % 4 < 2:  # a segment with spare bits in its last character
        pad += 1
        head = b64(json.dumps({**header, "kid": "k" * pad}).encode())
    while len(body) % 4 < 2:
        claims["x"] = claims.get("x", "") + "y"
        body = b64(json.dumps(claims).encode())
    return head, body


@pytest.mark.parametrize("segment", ["header", "payload"])
def test_fast_path_refuses_noncanonical_segments(segment: str) -> None:
    app, _ = guarded_app()
    head, body = _segments()
    client = app.test_client()
    assert client.get("/me", headers=bearer(hs256(head, body))).status_code == 200
    token = hs256(noncanonical(head), body) if segment == "header" else hs256(head, noncanonical(body))
    assert_401(client, token, "token_invalid")


# -- revocation must outlive the leeway -----------------------------------------------------


class FakeClock:
    """Wall-clock time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


LEEWAY = {
    "AUTHGATE_JWT_LEEWAY": 30,
    "AUTHGATE_ACCESS_TOKEN_EXPIRES": 60,
    "AUTHGATE_REFRESH_TOKEN_EXPIRES": 60,
    "AUTHGATE_MAX_TOKEN_LIFETIME": 60,
}


def leeway_app(token_format: str) -> tuple[Flask, AuthGate, FakeClock]:
    clock = FakeClock()
    app, gate = guarded_app(
        {**LEEWAY, "AUTHGATE_TOKEN_FORMAT": token_format, "AUTHGATE_REVOCATION_STORE": MemoryStore(clock=clock)}
    )
    app.extensions["authgate"].tokens.clock = clock

    @app.post("/refresh")
    @refresh_token_required
    def refresh() -> TokenPair:
        return gate.rotate_refresh_token()

    return app, gate, clock


def test_revoked_token_stays_revoked_within_the_leeway(token_format: str) -> None:
    app, gate, clock = leeway_app(token_format)
    client = app.test_client()
    with app.app_context():
        token = gate.create_access_token("alice")
        gate.revoke(token)
    clock.offset = 70  # past exp (60 s), still inside exp + leeway (90 s)
    assert_401(client, token, "token_revoked")


def test_revoked_subject_stays_revoked_within_the_leeway(token_format: str) -> None:
    app, gate, clock = leeway_app(token_format)
    client = app.test_client()
    with app.app_context():
        token = gate.create_access_token("alice")
        gate.revoke_subject("alice")
    clock.offset = 70
    assert_401(client, token, "token_revoked")


def test_used_refresh_token_cannot_be_replayed_within_the_leeway(token_format: str) -> None:
    app, gate, clock = leeway_app(token_format)
    client = app.test_client()
    with app.app_context():
        refresh = gate.create_refresh_token("alice")
    assert client.post("/refresh", headers=bearer(refresh)).status_code == 200
    clock.offset = 70
    rv = client.post("/refresh", headers=bearer(refresh))
    assert rv.status_code == 401
    assert rv.get_json() == error_body("token_revoked", "refresh")


# -- AUTHGATE_LOGIN_VIEW --------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("/login\r\nX-Evil: 1", id="crlf"),
        pytest.param("/login\n", id="lf"),
        pytest.param("/log in", id="space"),
        pytest.param("/login\x00", id="nul"),
        pytest.param("/l\u00f6gin", id="non-ascii"),
    ],
)
def test_login_view_that_cannot_be_a_header_is_refused_at_init(value: str) -> None:
    with pytest.raises(ConfigError, match="AUTHGATE_LOGIN_VIEW"):
        make_app({"AUTHGATE_LOGIN_VIEW": value})


def test_login_view_naming_no_endpoint_answers_the_json_401(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = guarded_app({"AUTHGATE_LOGIN_VIEW": "no_such_endpoint"})
    with caplog.at_level(logging.ERROR, logger="flask_authgate"):
        rv = app.test_client().get("/me", headers={"Accept": "text/html"})
    assert rv.status_code == 401
    assert rv.get_json() == error_body("token_missing")
    assert rv.headers.getlist("WWW-Authenticate") == ['Bearer realm="api"']
    assert rv.headers.getlist("Cache-Control") == ["no-store"]
    assert any("AUTHGATE_LOGIN_VIEW" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "key",
    ["AUTHGATE_ACCESS_TOKEN_EXPIRES", "AUTHGATE_REFRESH_TOKEN_EXPIRES", "AUTHGATE_MAX_TOKEN_LIFETIME"],
)
def test_durations_beyond_ten_years_are_refused_at_init(key: str) -> None:
    # 1e15 s used to pass init_app and then break set_token_cookies at login (a 500).
    with pytest.raises(ConfigError, match=key):
        make_app(
            {key: 1e15, "AUTHGATE_MAX_TOKEN_LIFETIME": 1e15} if key != "AUTHGATE_MAX_TOKEN_LIFETIME" else {key: 1e15}
        )


def test_a_token_issued_for_longer_than_the_maximum_lifetime_is_invalid_even_near_its_end() -> None:
    # iat 40 days ago, exp in one day: its remaining life is short, but it was issued for 41 days,
    # beyond AUTHGATE_MAX_TOKEN_LIFETIME (30 days), so a revoke_subject() entry expiring cannot revive it.
    app, _gate = make_app()

    @app.get("/me")
    @login_required
    def me() -> dict[str, str]:
        return {"ok": "yes"}

    now = int(time.time())
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()).rstrip(b"=")
    for iat, status in ((now - 40 * 86400, 401), (now - 10 * 86400, 200)):
        claims = {"sub": "alice", "iat": iat, "exp": now + 86400, "jti": f"j{iat}"}
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
        signing_input = header + b"." + body
        sig = base64.urlsafe_b64encode(hmac.new(SECRET.encode(), signing_input, hashlib.sha256).digest()).rstrip(b"=")
        token = (signing_input + b"." + sig).decode()
        rv = app.test_client().get("/me", headers={"Authorization": f"Bearer {token}"})
        assert rv.status_code == status
        if status == 401:
            assert rv.get_json()["code"] == "token_invalid"
