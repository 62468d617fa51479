"""The shared material of every case: constants, keys, tokens and request environs."""

from __future__ import annotations

import dataclasses
import secrets
import time
import typing as t

import jwt
from werkzeug.test import EnvironBuilder

SECRET = "bench-" + "k" * 58  # 64 bytes: long enough for HS256..HS512
AUDIENCE = "https://api.example.test"
ISSUER = "https://issuer.example.test"
ROUTE = "/api/admin"
PUBLIC = "/public"
ROLE = "admin"
BODY = {"ok": True}
REALM = "api"
#: What Werkzeug's EnvironBuilder makes of ``ROUTE`` (the ``htu`` of a DPoP proof, RFC 9449 §4.2).
URL = f"http://localhost{ROUTE}"


@dataclasses.dataclass
class KeySet:
    """One algorithm's keys, in every form the contenders want."""

    alg: str
    sign: t.Any  # what PyJWT signs with (None: the tokens come from elsewhere)
    verify: t.Any  # what PyJWT verifies with (a loaded key object, or the HMAC secret)
    verify_pem: str | None  # what flask-authgate is configured with (asymmetric)
    jwk: t.Any  # a joserfc key, for Authlib
    issuer: str = ISSUER


def make_keys(alg: str) -> KeySet:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric import rsa
    from joserfc.jwk import import_key

    if alg == "HS256":
        return KeySet(alg, SECRET, SECRET, None, import_key(SECRET.encode(), "oct"))
    if alg == "RS256":
        private: t.Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kind = "RSA"
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
        kind = "EC"
    else:
        raise ValueError(alg)
    public = private.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return KeySet(alg, private, public, pem, import_key(pem, kind))  # type: ignore[call-overload]


def mint(keys: KeySet, roles: list[str], count: int) -> list[str]:
    """``count`` distinct JWTs (distinct ``jti``) that every contender accepts.

    The claims satisfy the strictest contender (Authlib's RFC 9068 validator
    needs ``typ: at+jwt``, ``iss``, ``aud``, ``client_id``, ``iat``, ``jti``);
    every contender is configured to check the same issuer and audience.
    """
    now = int(time.time())
    out = []
    for _ in range(count):
        payload = {
            "sub": "alice",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "jti": secrets.token_urlsafe(16),
            "type": "access",
            "roles": roles,
            "iss": keys.issuer,
            "aud": AUDIENCE,
            "client_id": "bench",
        }
        out.append(jwt.encode(payload, keys.sign, algorithm=keys.alg, headers={"typ": "at+jwt"}))
    return out


def environ_for(
    path: str, token: str | None, *, scheme: str = "Bearer", headers: dict[str, str] | None = None
) -> dict[str, t.Any]:
    """A WSGI environ for ``GET path`` with ``Authorization: <scheme> <token>`` (and ``headers``)."""
    pairs = [("Authorization", f"{scheme} {token}")] if token is not None else []
    pairs.extend((headers or {}).items())
    builder = EnvironBuilder(path=path, method="GET", headers=pairs, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    try:
        return builder.get_environ()
    finally:
        builder.close()
