"""The itsdangerous format (``AUTHGATE_TOKEN_FORMAT = "signed"``).

Forged tokens are built with a real :class:`itsdangerous.URLSafeTimedSerializer`
using the documented parameters (salt per token type, HMAC-SHA256), so these
tests also pin the wire format that docs/signed-tokens.md describes.
"""

from __future__ import annotations

import hashlib
import time
import typing as t

import pytest
from conftest import OTHER_SECRET
from conftest import SECRET
from conftest import make_app
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner
from itsdangerous import URLSafeTimedSerializer
from kit import add_view
from kit import bearer
from kit import body
from kit import subject_and_scheme

from flask_authgate import AuthGate
from flask_authgate import current_identity
from flask_authgate import login_required
from flask_authgate import refresh_token_required
from flask_authgate.errors import ERRORS

ACCESS_SALT = "flask-authgate.access"
REFRESH_SALT = "flask-authgate.refresh"
SIGNER_KWARGS: dict[str, t.Any] = {"digest_method": hashlib.sha256}
ROTATED = ["n" * 64, SECRET]  # the new key first: it signs; the old one still verifies


def challenge(code: str) -> list[str]:
    return [f'Bearer realm="api", error="invalid_token", error_description="{ERRORS[code].message}"']


def serializer(key: str | list[str], salt: str, offset: int = 0) -> URLSafeTimedSerializer:
    """A real itsdangerous serializer whose timestamps are ``offset`` seconds from now."""

    class SkewedSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) + offset

    return URLSafeTimedSerializer(key, salt=salt, signer=SkewedSigner, signer_kwargs=SIGNER_KWARGS)


def claims(token_type: str = "access", **extra: t.Any) -> dict[str, t.Any]:
    now = int(time.time())
    out: dict[str, t.Any] = {"sub": "alice", "iat": now, "nbf": now, "exp": now + 600, "jti": "j1", "type": token_type}
    out.update(extra)
    return out


def build(config: dict[str, t.Any] | None = None, *, token_format: str = "signed") -> tuple[Flask, AuthGate]:
    app, gate = make_app({"AUTHGATE_TOKEN_FORMAT": token_format, **(config or {})})

    add_view(app, "/private", login_required, returns=subject_and_scheme)

    @app.post("/refresh")
    @refresh_token_required
    def refresh() -> dict[str, t.Any]:
        return {"sub": current_identity.subject, "type": current_identity.token_type}

    return app, gate


@pytest.fixture
def signed_app() -> Flask:
    return build()[0]


@pytest.fixture
def signed_client(signed_app: Flask) -> FlaskClient:
    return signed_app.test_client()


def test_issued_token_is_an_itsdangerous_token(signed_app: Flask, signed_client: FlaskClient) -> None:
    with signed_app.app_context():
        token = signed_app.extensions["authgate"].tokens.issue("alice", "access")
    payload = serializer(SECRET, ACCESS_SALT).loads(token, max_age=60)
    assert payload["sub"] == "alice"
    assert payload["type"] == "access"
    rv = signed_client.get("/private", headers=bearer(token))
    assert rv.status_code == 200
    assert rv.get_json() == {"sub": "alice", "scheme": "signed"}


@pytest.mark.parametrize(
    ("path", "method", "make"),
    [
        pytest.param("/private", "GET", "refresh", id="refresh-as-access"),
        pytest.param("/refresh", "POST", "access", id="access-as-refresh"),
    ],
)
def test_token_types_are_mutually_exclusive(path: str, method: str, make: str) -> None:
    app, gate = build()
    with app.app_context():
        token = gate.create_refresh_token("alice") if make == "refresh" else gate.create_access_token("alice")
    rv = app.test_client().open(path, method=method, headers=bearer(token))
    assert rv.status_code == 401
    assert rv.get_json() == body("token_type_invalid")
    assert rv.headers.getlist("WWW-Authenticate") == challenge("token_type_invalid")


@pytest.mark.parametrize(
    ("salt", "path", "method"),
    [
        pytest.param(ACCESS_SALT, "/refresh", "POST", id="access-salt-refresh-claim"),
        pytest.param(REFRESH_SALT, "/private", "GET", id="refresh-salt-access-claim"),
    ],
)
def test_salt_decides_the_type_not_the_payload(signed_client: FlaskClient, salt: str, path: str, method: str) -> None:
    # The payload claims the type the route wants, but the salt says otherwise.
    wanted = "refresh" if path == "/refresh" else "access"
    token = serializer(SECRET, salt).dumps(claims(wanted))
    rv = signed_client.open(path, method=method, headers=bearer(token))
    assert rv.status_code == 401
    assert rv.get_json() == body("token_type_invalid")


def test_refresh_token_accepted_by_refresh_route(signed_client: FlaskClient) -> None:
    token = serializer(SECRET, REFRESH_SALT).dumps(claims("refresh"))
    rv = signed_client.post("/refresh", headers=bearer(token))
    assert rv.status_code == 200
    assert rv.get_json() == {"sub": "alice", "type": "refresh"}


def test_max_age_is_always_applied(signed_client: FlaskClient) -> None:
    # Signed 31 days ago (the longest lifetime is the 30-day refresh token) but
    # with an exp still in the future: itsdangerous without max_age would accept it.
    token = serializer(SECRET, ACCESS_SALT, offset=-31 * 86400).dumps(claims())
    rv = signed_client.get("/private", headers=bearer(token))
    assert rv.status_code == 401
    assert rv.get_json() == body("token_expired")


def test_timestamp_within_max_age_is_accepted(signed_client: FlaskClient) -> None:
    token = serializer(SECRET, ACCESS_SALT, offset=-60).dumps(claims())
    assert signed_client.get("/private", headers=bearer(token)).status_code == 200


def test_future_timestamp_is_invalid_not_expired(signed_client: FlaskClient) -> None:
    token = serializer(SECRET, ACCESS_SALT, offset=3600).dumps(claims())
    rv = signed_client.get("/private", headers=bearer(token))
    assert rv.status_code == 401
    assert rv.get_json() == body("token_invalid")
    assert rv.headers.getlist("WWW-Authenticate") == challenge("token_invalid")


def test_first_key_of_a_rotation_list_signs() -> None:
    app, gate = build({"AUTHGATE_JWT_SECRET": ROTATED})
    with app.app_context():
        token = gate.create_access_token("alice")
    assert serializer(ROTATED[0], ACCESS_SALT).loads(token, max_age=60)["sub"] == "alice"
    with pytest.raises(Exception, match="does not match"):
        serializer(ROTATED[1], ACCESS_SALT).loads(token, max_age=60)


@pytest.mark.parametrize("key", [pytest.param(k, id=f"key-{i}") for i, k in enumerate(ROTATED)])
def test_every_key_of_a_rotation_list_verifies(key: str) -> None:
    app, _gate = build({"AUTHGATE_JWT_SECRET": ROTATED})
    token = serializer(key, ACCESS_SALT).dumps(claims())
    assert app.test_client().get("/private", headers=bearer(token)).status_code == 200


def test_token_of_a_removed_key_is_invalid() -> None:
    app, _gate = build({"AUTHGATE_JWT_SECRET": ROTATED})
    token = serializer(OTHER_SECRET, ACCESS_SALT).dumps(claims())
    rv = app.test_client().get("/private", headers=bearer(token))
    assert rv.status_code == 401
    assert rv.get_json() == body("token_invalid")


def _swap(part: str, index: int) -> str:
    return part[:index] + ("A" if part[index] != "A" else "B") + part[index + 1 :]


def _tamper_payload(token: str) -> str:
    payload, ts, sig = token.rsplit(".", 2)  # a compressed payload starts with "."
    return f"{_swap(payload, 5)}.{ts}.{sig}"


def _tamper_signature(token: str) -> str:
    payload, ts, sig = token.rsplit(".", 2)
    return f"{payload}.{ts}.{_swap(sig, 0)}"


def _tamper_timestamp(token: str) -> str:
    payload, ts, sig = token.rsplit(".", 2)
    return f"{payload}.{_swap(ts, len(ts) - 1)}.{sig}"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_tamper_payload, id="payload"),
        pytest.param(_tamper_signature, id="signature"),
        pytest.param(_tamper_timestamp, id="timestamp"),
        pytest.param(lambda tok: tok.rsplit(".", 1)[0], id="no-signature"),
        pytest.param(lambda tok: tok.rsplit(".", 2)[1] + "." + tok.rsplit(".", 1)[1], id="no-payload"),
        pytest.param(lambda tok: tok + "x", id="extra-character"),
        pytest.param(lambda tok: "garbage", id="garbage"),
    ],
)
def test_tampered_token_is_invalid(
    signed_app: Flask, signed_client: FlaskClient, tamper: t.Callable[[str], str]
) -> None:
    with signed_app.app_context():
        token = signed_app.extensions["authgate"].tokens.issue("alice", "access")
    assert signed_client.get("/private", headers=bearer(token)).status_code == 200
    rv = signed_client.get("/private", headers=bearer(tamper(token)))
    assert rv.status_code == 401
    assert rv.get_json() == body("token_invalid")
    assert rv.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(["alice"], id="list"),
        pytest.param("alice", id="string"),
        pytest.param({"sub": "alice"}, id="no-exp"),
        pytest.param(claims(sub=""), id="empty-sub"),
        pytest.param(claims(exp="9999999999"), id="string-exp"),
    ],
)
def test_validly_signed_but_malformed_payload_is_invalid(signed_client: FlaskClient, payload: t.Any) -> None:
    token = serializer(SECRET, ACCESS_SALT).dumps(payload)
    rv = signed_client.get("/private", headers=bearer(token))
    assert rv.status_code == 401
    assert rv.get_json() == body("token_invalid")


def test_validly_signed_garbage_is_invalid(signed_client: FlaskClient) -> None:
    signer = serializer(SECRET, ACCESS_SALT).make_signer(ACCESS_SALT)
    token = signer.sign(b"aGVsbG8").decode()  # base64url of "hello": not JSON
    rv = signed_client.get("/private", headers=bearer(token))
    assert rv.status_code == 401
    assert rv.get_json() == body("token_invalid")


def test_exp_in_the_payload_is_checked(signed_client: FlaskClient) -> None:
    now = int(time.time())
    token = serializer(SECRET, ACCESS_SALT, offset=-120).dumps(claims(iat=now - 120, nbf=now - 120, exp=now - 60))
    rv = signed_client.get("/private", headers=bearer(token))
    assert rv.status_code == 401
    assert rv.get_json() == body("token_expired")


def test_padded_copy_of_a_revoked_token_is_still_revoked(token_format: str) -> None:
    app, gate = build(token_format=token_format)
    client = app.test_client()
    with app.app_context():
        token = gate.create_access_token("alice")
    padded = token + "="
    if token_format == "jwt":  # JWS segments carry no padding (RFC 7515 §2): refused outright
        assert client.get("/private", headers=bearer(padded)).get_json() == body("token_invalid")
        return
    # itsdangerous accepts the altered copy as the same token ...
    assert client.get("/private", headers=bearer(padded)).status_code == 200
    with app.app_context():
        gate.revoke(token)
    # ... so revocation keys on jti, and the copy is refused too.
    for presented in (token, padded):
        rv = client.get("/private", headers=bearer(presented))
        assert rv.status_code == 401
        assert rv.get_json() == body("token_revoked")


def test_revoking_the_padded_copy_revokes_the_original() -> None:
    app, gate = build(token_format="signed")  # a padded JWT is not a token at all (see above)
    with app.app_context():
        token = gate.create_access_token("alice")
        gate.revoke(token + "=")
    rv = app.test_client().get("/private", headers=bearer(token))
    assert rv.get_json() == body("token_revoked")
