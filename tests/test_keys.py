"""Keys: HMAC rotation lists, asymmetric keys by ``kid``, and ``gate.jwks()``."""

from __future__ import annotations

import collections.abc as cabc
import threading
import time
import typing as t

import jwt
import pytest
from conftest import OTHER_SECRET
from conftest import SECRET
from conftest import free_port
from conftest import make_app
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient
from kit import bearer
from kit import body
from werkzeug.serving import make_server

from flask_authgate import AuthGate
from flask_authgate import current_identity
from flask_authgate import login_required

NEW_SECRET = "n" * 64
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def pem_private(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def pem_public(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def rsa_keys() -> dict[str, rsa.RSAPrivateKey]:
    return {name: rsa.generate_private_key(public_exponent=65537, key_size=2048) for name in ("new", "old", "rogue")}


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def build(config: dict[str, t.Any]) -> tuple[Flask, AuthGate]:
    app, gate = make_app(config)

    @app.get("/me")
    @login_required
    def me() -> dict[str, str]:
        return {"sub": current_identity.subject}

    return app, gate


def issue(app: Flask, gate: AuthGate, subject: str = "alice") -> str:
    with app.app_context():
        return gate.create_access_token(subject)


def claims(**extra: t.Any) -> dict[str, t.Any]:
    now = int(time.time())
    return {"sub": "alice", "iat": now, "exp": now + 300, "jti": "j1", **extra}


def assert_invalid(client: FlaskClient, token: str) -> None:
    rv = client.get("/me", headers=bearer(token))
    assert rv.status_code == 401
    assert rv.get_json() == body("token_invalid")


# -- HMAC rotation ------------------------------------------------------------------


def test_first_hmac_key_signs() -> None:
    app, gate = build({"AUTHGATE_JWT_SECRET": [NEW_SECRET, SECRET]})
    token = issue(app, gate)
    assert jwt.decode(token, NEW_SECRET, algorithms=["HS256"])["sub"] == "alice"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, SECRET, algorithms=["HS256"])


def test_rotation_keeps_old_tokens_until_the_key_is_removed(token_format: str) -> None:
    before, before_gate = build({"AUTHGATE_JWT_SECRET": SECRET, "AUTHGATE_TOKEN_FORMAT": token_format})
    during, during_gate = build({"AUTHGATE_JWT_SECRET": [NEW_SECRET, SECRET], "AUTHGATE_TOKEN_FORMAT": token_format})
    after, _ = build({"AUTHGATE_JWT_SECRET": [NEW_SECRET], "AUTHGATE_TOKEN_FORMAT": token_format})
    old_token = issue(before, before_gate)
    new_token = issue(during, during_gate)
    # Step 1: the new key signs, the old one still verifies.
    assert during.test_client().get("/me", headers=bearer(old_token)).get_json() == {"sub": "alice"}
    assert during.test_client().get("/me", headers=bearer(new_token)).get_json() == {"sub": "alice"}
    # Step 2 (after the longest token lifetime): the old key is removed.
    assert after.test_client().get("/me", headers=bearer(new_token)).get_json() == {"sub": "alice"}
    assert_invalid(after.test_client(), old_token)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(None, id="no-kid"),
        pytest.param({"kid": "somebody-elses"}, id="unknown-kid"),
    ],
)
def test_hmac_tokens_are_tried_against_every_key(headers: dict[str, str] | None) -> None:
    app, _ = build({"AUTHGATE_JWT_SECRET": [NEW_SECRET, SECRET]})
    client = app.test_client()
    for key in (NEW_SECRET, SECRET):
        assert client.get("/me", headers=bearer(jwt.encode(claims(), key, headers=headers))).status_code == 200
    assert_invalid(client, jwt.encode(claims(), OTHER_SECRET, headers=headers))


def test_hmac_jwks_is_empty(token_format: str) -> None:
    app, gate = build({"AUTHGATE_TOKEN_FORMAT": token_format})
    with app.app_context():
        assert gate.jwks() == {"keys": []}


# -- asymmetric keys ------------------------------------------------------------------


@pytest.fixture
def rsa_app(rsa_keys: dict[str, rsa.RSAPrivateKey]) -> tuple[Flask, AuthGate]:
    return build(
        {
            "AUTHGATE_JWT_ALGORITHMS": ["RS256"],
            "AUTHGATE_JWT_PRIVATE_KEY": pem_private(rsa_keys["new"]),
            "AUTHGATE_JWT_KID": "2025-06",
            "AUTHGATE_JWT_PUBLIC_KEYS": {"2025-01": pem_public(rsa_keys["old"])},
        }
    )


def test_private_key_signs_with_its_kid(
    rsa_app: tuple[Flask, AuthGate], rsa_keys: dict[str, rsa.RSAPrivateKey]
) -> None:
    app, gate = rsa_app
    token = issue(app, gate)
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": "2025-06", "typ": "JWT"}
    assert jwt.decode(token, rsa_keys["new"].public_key(), algorithms=["RS256"])["sub"] == "alice"
    assert app.test_client().get("/me", headers=bearer(token)).get_json() == {"sub": "alice"}


def test_every_published_kid_verifies(rsa_app: tuple[Flask, AuthGate], rsa_keys: dict[str, rsa.RSAPrivateKey]) -> None:
    app, _ = rsa_app
    old = jwt.encode(claims(), rsa_keys["old"], algorithm="RS256", headers={"kid": "2025-01"})
    assert app.test_client().get("/me", headers=bearer(old)).get_json() == {"sub": "alice"}


@pytest.mark.parametrize(
    ("signer", "headers"),
    [
        pytest.param("rogue", {"kid": "unknown"}, id="unknown-kid"),
        pytest.param("old", {"kid": "unknown"}, id="unknown-kid-good-key"),
        pytest.param("old", None, id="no-kid"),
        pytest.param("rogue", {"kid": "2025-01"}, id="known-kid-wrong-key"),
        pytest.param("old", {"kid": "2025-06"}, id="kid-of-another-key"),
    ],
)
def test_kid_selects_exactly_one_key(
    rsa_app: tuple[Flask, AuthGate],
    rsa_keys: dict[str, rsa.RSAPrivateKey],
    signer: str,
    headers: dict[str, str] | None,
) -> None:
    app, _ = rsa_app
    token = jwt.encode(claims(), rsa_keys[signer], algorithm="RS256", headers=headers)
    assert_invalid(app.test_client(), token)


def test_hmac_signed_with_the_public_key_is_refused(
    rsa_app: tuple[Flask, AuthGate], rsa_keys: dict[str, rsa.RSAPrivateKey]
) -> None:
    # The classic algorithm confusion: HS256 keyed with the published public key.
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "kid": "2025-06", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims()).encode())
    signing_input = f"{head}.{payload}".encode()
    sig = hmac.new(pem_public(rsa_keys["new"]), signing_input, hashlib.sha256).digest()
    app, _ = rsa_app
    assert_invalid(app.test_client(), f"{head}.{payload}.{b64(sig)}")


def test_verify_only_app_cannot_issue(rsa_keys: dict[str, rsa.RSAPrivateKey]) -> None:
    app, gate = build(
        {"AUTHGATE_JWT_ALGORITHMS": ["RS256"], "AUTHGATE_JWT_PUBLIC_KEYS": {"k1": pem_public(rsa_keys["new"])}}
    )
    with app.app_context(), pytest.raises(RuntimeError, match="AUTHGATE_JWT_PRIVATE_KEY"):
        gate.create_access_token("alice")
    token = jwt.encode(claims(), rsa_keys["new"], algorithm="RS256", headers={"kid": "k1"})
    assert app.test_client().get("/me", headers=bearer(token)).get_json() == {"sub": "alice"}


def test_ec_key_signs_when_listed_second(ec_key: ec.EllipticCurvePrivateKey) -> None:
    app, gate = build(
        {
            "AUTHGATE_JWT_ALGORITHMS": ["RS256", "ES256"],
            "AUTHGATE_JWT_PRIVATE_KEY": pem_private(ec_key),
            "AUTHGATE_JWT_KID": "ec-1",
        }
    )
    token = issue(app, gate)
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    assert app.test_client().get("/me", headers=bearer(token)).get_json() == {"sub": "alice"}


# -- gate.jwks() ------------------------------------------------------------------------


@pytest.fixture
def mixed_app(rsa_keys: dict[str, rsa.RSAPrivateKey], ec_key: ec.EllipticCurvePrivateKey) -> tuple[Flask, AuthGate]:
    return build(
        {
            "AUTHGATE_JWT_ALGORITHMS": ["RS256", "ES256"],
            "AUTHGATE_JWT_PRIVATE_KEY": pem_private(rsa_keys["new"]),
            "AUTHGATE_JWT_KID": "rsa-2",
            "AUTHGATE_JWT_PUBLIC_KEYS": {"ec-1": pem_public(ec_key), "rsa-1": pem_public(rsa_keys["old"])},
        }
    )


PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}


def test_jwks_publishes_public_keys_only(mixed_app: tuple[Flask, AuthGate]) -> None:
    app, gate = mixed_app
    with app.app_context():
        jwks = gate.jwks()
    by_kid = {k["kid"]: k for k in jwks["keys"]}
    assert sorted(by_kid) == ["ec-1", "rsa-1", "rsa-2"]
    assert {k: (v["kty"], v["alg"], v["use"]) for k, v in by_kid.items()} == {
        "ec-1": ("EC", "ES256", "sig"),
        "rsa-1": ("RSA", "RS256", "sig"),
        "rsa-2": ("RSA", "RS256", "sig"),
    }
    assert by_kid["ec-1"]["crv"] == "P-256"
    assert all(not PRIVATE_MEMBERS & set(k) for k in jwks["keys"])


def test_jwks_lists_a_key_configured_twice_once(rsa_keys: dict[str, rsa.RSAPrivateKey]) -> None:
    # The private key (with its kid) and the same key as AUTHGATE_JWT_PUBLIC_KEY: one entry, with the kid.
    app, gate = build(
        {
            "AUTHGATE_JWT_ALGORITHMS": ["RS256"],
            "AUTHGATE_JWT_PRIVATE_KEY": pem_private(rsa_keys["new"]),
            "AUTHGATE_JWT_KID": "rsa-2",
            "AUTHGATE_JWT_PUBLIC_KEY": pem_public(rsa_keys["new"]),
        }
    )
    with app.app_context():
        keys = gate.jwks()["keys"]
    assert [k.get("kid") for k in keys] == ["rsa-2"]


def test_pyjwkset_verifies_tokens_with_the_published_set(
    mixed_app: tuple[Flask, AuthGate],
    rsa_keys: dict[str, rsa.RSAPrivateKey],
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    app, gate = mixed_app
    with app.app_context():
        jwk_set = jwt.PyJWKSet.from_dict(gate.jwks())
    tokens = {
        "rsa-2": issue(app, gate),
        "rsa-1": jwt.encode(claims(), rsa_keys["old"], algorithm="RS256", headers={"kid": "rsa-1"}),
        "ec-1": jwt.encode(claims(), ec_key, algorithm="ES256", headers={"kid": "ec-1"}),
    }
    for kid, token in tokens.items():
        assert jwt.get_unverified_header(token)["kid"] == kid
        key = jwk_set[kid]
        assert jwt.decode(token, key, algorithms=[key.algorithm_name])["sub"] == "alice"
        assert app.test_client().get("/me", headers=bearer(token)).status_code == 200


# -- publishing at /.well-known/jwks.json (the docs/keys.md example) ------------------


@pytest.fixture
def issuer_server(rsa_keys: dict[str, rsa.RSAPrivateKey]) -> cabc.Iterator[tuple[str, Flask, AuthGate]]:
    app, gate = build(
        {
            "AUTHGATE_JWT_ALGORITHMS": ["RS256"],
            "AUTHGATE_JWT_PRIVATE_KEY": pem_private(rsa_keys["new"]),
            "AUTHGATE_JWT_KID": "2025-06",
        }
    )

    @app.get("/.well-known/jwks.json")
    def jwks() -> tuple[dict[str, t.Any], dict[str, str]]:
        return gate.jwks(), {"Cache-Control": "public, max-age=300"}

    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", app, gate
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def test_jwks_endpoint_serves_a_resource_server(issuer_server: tuple[str, Flask, AuthGate]) -> None:
    base, issuer, issuer_gate = issuer_server
    rv = issuer.test_client().get("/.well-known/jwks.json")
    assert rv.status_code == 200
    assert rv.headers["Cache-Control"] == "public, max-age=300"
    assert [k["kid"] for k in rv.get_json()["keys"]] == ["2025-06"]
    # Another app verifies the issuer's tokens through the published set.
    api, _ = build({"AUTHGATE_JWT_ALGORITHMS": ["RS256"], "AUTHGATE_JWKS_URL": f"{base}/.well-known/jwks.json"})
    token = issue(issuer, issuer_gate, "bob")
    assert api.test_client().get("/me", headers=bearer(token)).get_json() == {"sub": "bob"}
