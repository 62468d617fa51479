"""Issued JWTs, verification options, public-key algorithms and the verified-token cache."""

from __future__ import annotations

import collections.abc as cabc
import re
import time
import typing as t

import jwt
import pytest
from conftest import SECRET
from conftest import make_app
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from kit import FakeClock
from kit import access_token
from kit import add_view
from kit import assert_401
from kit import bearer
from kit import guarded_app
from kit import jwt_token
from kit import signed_token

from flask_authgate import AuthError
from flask_authgate import AuthGate
from flask_authgate import ConfigError
from flask_authgate import current_identity
from flask_authgate import login_required
from flask_authgate import refresh_token_required
from flask_authgate.tokens import TokenService

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def pem_pair(key: PrivateKey) -> tuple[bytes, bytes]:
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[bytes, bytes]]:
    return {
        "RS256": pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "ES256": pem_pair(ec.generate_private_key(ec.SECP256R1())),
        "EdDSA": pem_pair(ed25519.Ed25519PrivateKey.generate()),
        "other-RS256": pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    }


def with_me(app: Flask) -> Flask:
    add_view(
        app,
        "/me",
        login_required,
        returns=lambda: {"sub": current_identity.subject, "roles": sorted(current_identity.roles)},
    )

    return app


def get_me(app: Flask, token: str) -> tuple[int, t.Any]:
    rv = app.test_client().get("/me", headers=bearer(token))
    return rv.status_code, rv.get_json()


def tokens_of(app: Flask) -> TokenService:
    return t.cast(TokenService, app.extensions["authgate"].tokens)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(float(int(time.time())))


def unverified(token: str) -> dict[str, t.Any]:
    claims: dict[str, t.Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


# -- issued claims ------------------------------------------------------------


def test_access_token_claims(clock: FakeClock) -> None:
    app, gate = make_app()
    tokens_of(app).clock = clock
    token = access_token(app, gate, roles=["b", "a", "a"], scopes=["write", "read"], claims={"org": 7})
    again = access_token(app, gate)
    fresh = access_token(app, gate, fresh=True, expires_in=60)
    now = int(clock.now)
    claims = unverified(token)
    jti = claims.pop("jti")
    assert claims == {
        "sub": "alice",
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "type": "access",
        "roles": ["a", "b"],
        "scope": "read write",
        "org": 7,
    }
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", jti)
    assert unverified(again)["jti"] != jti
    assert unverified(fresh)["fresh"] is True
    assert unverified(fresh)["exp"] == now + 60
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    assert re.fullmatch(r"hs-[0-9a-f]{12}", header["kid"])
    assert SECRET[:8] not in header["kid"]


def test_refresh_token_claims(clock: FakeClock) -> None:
    app, gate = make_app()
    tokens_of(app).clock = clock
    with app.app_context():
        token = gate.create_refresh_token("alice")
    claims = unverified(token)
    assert claims["type"] == "refresh"
    assert claims["exp"] == int(clock.now) + 30 * 86400
    assert isinstance(claims["fam"], str)
    assert "fresh" not in claims


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        pytest.param({"claims": {"sub": "bob"}}, ValueError, id="reserved-claim"),
        pytest.param({"claims": {"roles": ["admin"]}}, ValueError, id="roles-claim"),
        pytest.param({"roles": "admin"}, TypeError, id="roles-string"),
        # Issue 9 item 6: issuing refuses anything outside RFC 6749 §3.3 scope-token.
        pytest.param({"scopes": ["read write"]}, ValueError, id="scope-with-space"),
        pytest.param({"scopes": ["read\tadmin"]}, ValueError, id="scope-with-tab"),
        pytest.param({"scopes": ["read\nadmin"]}, ValueError, id="scope-with-newline"),
        pytest.param({"scopes": ["read\u00a0admin"]}, ValueError, id="scope-with-nbsp"),
        pytest.param({"scopes": ['say"hi']}, ValueError, id="scope-with-quote"),
        pytest.param({"scopes": [""]}, ValueError, id="scope-empty"),
        pytest.param({"scopes": [5]}, TypeError, id="scope-not-a-string"),
        pytest.param({"expires_in": 0}, ValueError, id="expires-zero"),
        pytest.param({"expires_in": 31 * 86400}, ValueError, id="expires-beyond-max"),
    ],
)
def test_issuing_refuses_bad_arguments(kwargs: dict[str, t.Any], error: type[Exception]) -> None:
    app, gate = make_app()
    with app.app_context(), pytest.raises(error):
        gate.create_access_token("alice", **kwargs)


@pytest.mark.parametrize("subject", ["", 5, None])
def test_issuing_refuses_a_bad_subject(subject: t.Any) -> None:
    app, gate = make_app()
    with app.app_context(), pytest.raises(TypeError):
        gate.create_access_token(subject)


# -- verification options -----------------------------------------------------------


def test_required_claims() -> None:
    app, _gate = make_app({"AUTHGATE_JWT_REQUIRED_CLAIMS": ["exp", "sub", "iat"]})
    with_me(app)
    now = int(time.time())
    base = {"sub": "alice", "exp": now + 60}
    assert get_me(app, jwt.encode(base, SECRET, algorithm="HS256"))[1]["code"] == "token_invalid"
    assert get_me(app, jwt.encode({**base, "iat": now}, SECRET, algorithm="HS256"))[0] == 200
    default, _ = make_app()
    with_me(default)
    assert get_me(default, jwt.encode(base, SECRET, algorithm="HS256"))[0] == 200


def test_leeway(clock: FakeClock) -> None:
    app, gate = make_app({"AUTHGATE_JWT_LEEWAY": 30})
    with_me(app)
    tokens_of(app).clock = clock
    with app.app_context():
        token = gate.create_access_token("alice", expires_in=60)
        early = jwt.encode(
            {"sub": "alice", "exp": int(clock.now) + 600, "nbf": int(clock.now) + 20}, SECRET, algorithm="HS256"
        )
    clock.now += 60 + 20
    assert get_me(app, token)[0] == 200
    clock.now += 15
    assert get_me(app, token)[1]["code"] == "token_expired"
    clock.now -= 95  # back at issue time: nbf 20 s ahead is within the leeway
    assert get_me(app, early)[0] == 200


def test_nbf_beyond_leeway_is_invalid() -> None:
    app, _gate = make_app({"AUTHGATE_JWT_LEEWAY": 10})
    with_me(app)
    now = int(time.time())
    token = jwt.encode({"sub": "alice", "exp": now + 600, "nbf": now + 60}, SECRET, algorithm="HS256")
    assert get_me(app, token)[1]["code"] == "token_invalid"


def test_audience_and_issuer_when_configured() -> None:
    config = {"AUTHGATE_JWT_AUDIENCE": ["api", "admin-api"], "AUTHGATE_JWT_ISSUER": "https://auth.example"}
    app, gate = make_app(config)
    with_me(app)
    token = access_token(app, gate)
    claims = unverified(token)
    assert (claims["aud"], claims["iss"]) == ("api", "https://auth.example")
    assert get_me(app, token)[0] == 200
    now = int(time.time())
    base = {"sub": "alice", "exp": now + 60, "iss": "https://auth.example"}
    for aud in ("admin-api", ["other", "admin-api"]):
        assert get_me(app, jwt.encode({**base, "aud": aud}, SECRET, algorithm="HS256"))[0] == 200
    # The same token at an app without audience and issuer: an aud it cannot check is refused.
    plain, _ = make_app()
    with_me(plain)
    assert get_me(plain, token)[1]["code"] == "token_invalid"


def test_key_rotation_first_signs_all_verify() -> None:
    new, old = "n" * 64, "o" * 64
    rotated, gate = make_app({"AUTHGATE_JWT_SECRET": [new, old]})
    with_me(rotated)
    before, before_gate = make_app({"AUTHGATE_JWT_SECRET": old})
    old_token = access_token(before, before_gate)
    new_token = access_token(rotated, gate)
    jwt.decode(new_token, new, algorithms=["HS256"])  # the first key signed it
    assert get_me(rotated, old_token)[0] == 200
    assert get_me(rotated, new_token)[0] == 200
    dropped, _ = make_app({"AUTHGATE_JWT_SECRET": new})
    with_me(dropped)
    assert get_me(dropped, old_token)[1]["code"] == "token_invalid"


# -- public-key algorithms -------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
def test_public_key_algorithms(alg: str, keys: dict[str, tuple[bytes, bytes]]) -> None:
    private, public = keys["RS256" if alg == "PS256" else alg]
    app, gate = make_app(
        {
            "AUTHGATE_JWT_ALGORITHMS": [alg],
            "AUTHGATE_JWT_PRIVATE_KEY": private,
            "AUTHGATE_JWT_KID": "key-1",
        }
    )
    with_me(app)
    with app.app_context():
        token = gate.create_access_token("alice", roles=["admin"])
        published = gate.jwks()
    assert jwt.get_unverified_header(token) == {"alg": alg, "kid": "key-1", "typ": "JWT"}
    jwt.decode(token, public, algorithms=[alg])
    assert get_me(app, token) == (200, {"sub": "alice", "roles": ["admin"]})
    assert [(k["kid"], k["alg"], k["use"]) for k in published["keys"]] == [("key-1", alg, "sig")]
    assert all("d" not in k for k in published["keys"])  # never the private part


def test_verify_only_app_with_public_key(keys: dict[str, tuple[bytes, bytes]]) -> None:
    private, public = keys["RS256"]
    issuer, issuer_gate = make_app({"AUTHGATE_JWT_ALGORITHMS": ["RS256"], "AUTHGATE_JWT_PRIVATE_KEY": private})
    verifier, verifier_gate = make_app({"AUTHGATE_JWT_ALGORITHMS": ["RS256"], "AUTHGATE_JWT_PUBLIC_KEY": public})
    with_me(verifier)
    token = access_token(issuer, issuer_gate)
    assert get_me(verifier, token)[0] == 200
    other = jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, keys["other-RS256"][0], algorithm="RS256")
    assert get_me(verifier, other)[1]["code"] == "token_invalid"
    with verifier.app_context(), pytest.raises(RuntimeError, match="AUTHGATE_JWT_PRIVATE_KEY"):
        verifier_gate.create_access_token("alice")


def test_several_public_keys_by_kid(keys: dict[str, tuple[bytes, bytes]]) -> None:
    app, _gate = make_app(
        {
            "AUTHGATE_JWT_ALGORITHMS": ["RS256"],
            "AUTHGATE_JWT_PUBLIC_KEYS": {"a": keys["RS256"][1], "b": keys["other-RS256"][1]},
        }
    )
    with_me(app)
    claims = {"sub": "alice", "exp": int(time.time()) + 60}
    for kid, private in (("a", keys["RS256"][0]), ("b", keys["other-RS256"][0])):
        assert get_me(app, jwt.encode(claims, private, algorithm="RS256", headers={"kid": kid}))[0] == 200
    swapped = jwt.encode(claims, keys["RS256"][0], algorithm="RS256", headers={"kid": "b"})
    assert get_me(app, swapped)[1]["code"] == "token_invalid"


@pytest.mark.parametrize("which", ["AUTHGATE_JWT_PUBLIC_KEY", "AUTHGATE_JWT_PRIVATE_KEY"])
def test_short_rsa_key_is_refused_at_init_app(which: str) -> None:
    private, public = pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=1024))  # noqa: S505 - the weak key under test
    value = public if which.endswith("PUBLIC_KEY") else private
    with pytest.raises(ConfigError, match=f"{which} is a 1024-bit RSA key"):
        make_app({"AUTHGATE_JWT_ALGORITHMS": ["RS256"], which: value})


def test_public_key_given_as_private_key_is_refused(keys: dict[str, tuple[bytes, bytes]]) -> None:
    with pytest.raises(ConfigError, match="AUTHGATE_JWT_PRIVATE_KEY"):
        make_app({"AUTHGATE_JWT_ALGORITHMS": ["RS256"], "AUTHGATE_JWT_PRIVATE_KEY": keys["RS256"][1]})


def test_key_of_another_family_is_refused(keys: dict[str, tuple[bytes, bytes]]) -> None:
    with pytest.raises(ConfigError, match="AUTHGATE_JWT_PUBLIC_KEY"):
        make_app({"AUTHGATE_JWT_ALGORITHMS": ["RS256"], "AUTHGATE_JWT_PUBLIC_KEY": keys["ES256"][1]})


# -- the verified-token cache ------------------------------------------------------------


@pytest.fixture
def cached(token_format: str, clock: FakeClock) -> cabc.Iterator[tuple[Flask, AuthGate, TokenService]]:
    app, gate = make_app({"AUTHGATE_TOKEN_FORMAT": token_format, "AUTHGATE_TOKEN_CACHE_SIZE": 3})
    with_me(app)
    service = tokens_of(app)
    service.clock = clock
    yield app, gate, service


def test_cached_token_still_expires(cached: tuple[Flask, AuthGate, TokenService], clock: FakeClock) -> None:
    app, gate, service = cached
    token = access_token(app, gate, expires_in=60)
    assert get_me(app, token)[0] == 200
    assert service.cache.get(token) is not None
    clock.now += 59
    assert get_me(app, token)[0] == 200
    clock.now += 1
    assert get_me(app, token)[1]["code"] == "token_expired"
    assert service.cache.get(token) is None


def test_cache_hit_still_sees_revocation(cached: tuple[Flask, AuthGate, TokenService]) -> None:
    app, gate, service = cached
    token = access_token(app, gate)
    other = access_token(app, gate)
    assert get_me(app, token)[0] == 200
    assert get_me(app, other)[0] == 200
    assert service.cache.get(token) is not None
    entry = service.cache.get(token)
    assert entry is not None and entry.identity.token_id is not None
    # Revoked by jti in the store only: the cache entry stays, and a hit still sees the revocation.
    service.revocations.revoke_token(entry.identity.token_id, entry.exp)
    assert service.cache.get(token) is not None
    assert get_me(app, token)[1]["code"] == "token_revoked"
    with app.app_context():
        gate.revoke_subject("alice")  # the cache is not touched at all
    assert service.cache.get(other) is not None
    assert get_me(app, other)[1]["code"] == "token_revoked"


def test_cache_hit_still_checks_the_token_type(cached: tuple[Flask, AuthGate, TokenService]) -> None:
    app, gate, service = cached

    add_view(app, "/refresh", refresh_token_required, returns="ok")

    token = access_token(app, gate)
    assert get_me(app, token)[0] == 200
    assert service.cache.get(token) is not None
    rv = app.test_client().get("/refresh", headers=bearer(token))
    assert rv.get_json()["code"] == "token_type_invalid"


def test_cache_size_is_bounded(cached: tuple[Flask, AuthGate, TokenService]) -> None:
    app, gate, service = cached
    with app.app_context():
        tokens = [gate.create_access_token(f"user-{i}") for i in range(5)]
    for token in tokens:
        assert get_me(app, token)[0] == 200
    assert len(service.cache) == 3
    assert [service.cache.get(tok) is not None for tok in tokens] == [False, False, True, True, True]
    for token in tokens:  # evicted tokens verify again from scratch
        assert get_me(app, token)[0] == 200


def test_cache_size_zero_turns_it_off(token_format: str) -> None:
    app, gate = make_app({"AUTHGATE_TOKEN_FORMAT": token_format, "AUTHGATE_TOKEN_CACHE_SIZE": 0})
    with_me(app)
    token = access_token(app, gate)
    assert get_me(app, token)[0] == 200
    assert get_me(app, token)[0] == 200
    assert len(tokens_of(app).cache) == 0


def test_failures_are_not_cached(cached: tuple[Flask, AuthGate, TokenService]) -> None:
    app, _gate, service = cached
    for _ in range(2):
        assert get_me(app, "x.y.z")[1]["code"] == "token_invalid"
    assert len(service.cache) == 0


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
