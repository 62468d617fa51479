"""The contenders of issues 11 and 12: three trusted issuers, introspection, DPoP; and their servers.

Real servers on 127.0.0.1: three :class:`flask_authgate.testing.FakeIdentityProvider`
(threads of this process: each JWK Set is fetched once, then cached) and
``introspection_server.py`` in a process of its own (it answers every
first-seen request, so it must not take this process's interpreter lock).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
import typing as t
import urllib.parse
import urllib.request

from contenders import GATES
from contenders import authgate_config
from contenders import flask_app
from contenders import gated
from contenders import hand_written
from contenders import with_routes
from flask import Flask
from keys import AUDIENCE
from keys import ROLE
from keys import URL
from keys import KeySet
from keys import environ_for
from keys import mint

HERE = os.path.dirname(os.path.abspath(__file__))
#: The credentials ``introspection_server.py`` expects (RFC 7662 §2.1).
CLIENT_ID = "bench"
CLIENT_SECRET = "bench-secret"


# -- three trusted issuers ------------------------------------------------------


class Issuers:
    """Three identity providers on loopback ports; tokens come from the second (``issuers[1]``)."""

    def __init__(self) -> None:
        from flask_authgate.testing import FakeIdentityProvider

        self.providers = [FakeIdentityProvider(audience=AUDIENCE, lifetime=3600) for _ in range(3)]
        for provider in self.providers:
            provider.start()

    @property
    def chosen(self) -> t.Any:
        return self.providers[1]

    def keys(self) -> KeySet:
        """The second issuer's key as the floor gets it: loaded once, from its public JWK Set."""
        import jwt

        jwk = self.chosen.jwks()["keys"][0]
        return KeySet("RS256", None, jwt.PyJWK(jwk).key, None, None, issuer=self.chosen.issuer)

    def tokens(self, count: int) -> list[str]:
        return [self.chosen.token("alice", roles=[ROLE]) for _ in range(count)]

    def stop(self) -> None:
        for provider in self.providers:
            provider.stop()


def build_authgate_trusted(issuers: Issuers, cache_size: int) -> Flask:
    from flask_authgate import roles_required

    app = flask_app("authgate_trusted")
    app.config.update(
        AUTHGATE_JWT_AUDIENCE=AUDIENCE,
        AUTHGATE_TRUSTED_ISSUERS=[
            {"issuer": p.issuer, "jwks_url": p.jwks_url, "algorithms": ["RS256"]} for p in issuers.providers
        ],
        AUTHGATE_TOKEN_CACHE_SIZE=cache_size,
    )
    return with_routes(gated(app), roles_required(ROLE))


# -- introspection (RFC 7662) ----------------------------------------------------


class IntrospectionServer:
    """``introspection_server.py`` in its own process; stopped by :meth:`stop`."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "introspection_server.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}/introspect"

    def posts(self) -> int:
        """How many introspection requests the endpoint has answered so far."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/count", timeout=5) as response:
            return int(json.load(response)["posts"])

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def opaque_tokens(count: int) -> list[str]:
    return [f"opaque-{secrets.token_urlsafe(32)}" for _ in range(count)]


def build_floor_introspect(url: str) -> Flask:
    """The floor of introspection: POST every token to the endpoint with urllib, check ``active`` and the role."""
    basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()

    def check(token: str) -> dict[str, t.Any] | None:
        body = urllib.parse.urlencode({"token": token, "token_type_hint": "access_token"}).encode()
        req = urllib.request.Request(url, data=body, headers={"Authorization": basic}, method="POST")  # noqa: S310 - our loopback http URL
        try:
            with urllib.request.urlopen(req, timeout=2) as response:  # noqa: S310
                answer = json.loads(response.read(1 << 20))
        except (OSError, ValueError):
            return None
        if not isinstance(answer, dict) or answer.get("active") is not True or answer.get("exp", 0) <= time.time():
            return None
        return answer

    return with_routes(flask_app("floor_introspect"), hand_written(check))


def build_authgate_introspect(url: str) -> Flask:
    from flask_authgate import roles_required

    app = flask_app("authgate_introspect")
    app.config.update(
        AUTHGATE_INTROSPECTION_URL=url,
        AUTHGATE_INTROSPECTION_CLIENT_ID=CLIENT_ID,
        AUTHGATE_INTROSPECTION_CLIENT_SECRET=CLIENT_SECRET,
    )
    return with_routes(gated(app), roles_required(ROLE))


# -- DPoP (RFC 9449) --------------------------------------------------------------


def build_authgate_dpop(keys: KeySet, cache_size: int) -> Flask:
    from flask_authgate import roles_required

    app = flask_app("authgate_dpop")
    app.config.update(authgate_config(keys, AUTHGATE_DPOP="allowed", AUTHGATE_TOKEN_CACHE_SIZE=cache_size))
    return with_routes(gated(app), roles_required(ROLE))


class DpopClient:
    """A client's ES256 key pair (joserfc, an implementation independent of the extension's)."""

    def __init__(self) -> None:
        from joserfc.jwk import ECKey

        self.key = ECKey.generate_key("P-256")
        self.jkt = self.key.thumbprint()  # RFC 7638, SHA-256
        self.public = self.key.as_dict(private=False)

    def proof(self, token: str) -> str:
        """A fresh proof for ``GET URL`` with ``token`` (RFC 9449 §4.2)."""
        from joserfc import jwt

        ath = base64.urlsafe_b64encode(hashlib.sha256(token.encode("ascii")).digest()).rstrip(b"=").decode()
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.public}
        claims = {"jti": secrets.token_urlsafe(16), "htm": "GET", "htu": URL, "iat": int(time.time()), "ath": ath}
        return jwt.encode(header, claims, self.key)


def issue(app: Flask, count: int, dpop_jkt: str | None = None) -> list[str]:
    """``count`` access tokens from ``app`` itself (``gate.create_access_token``), bound when ``dpop_jkt``."""
    gate = GATES[app]
    with app.app_context():
        return [
            gate.create_access_token("alice", roles=[ROLE], expires_in=3600, dpop_jkt=dpop_jkt) for _ in range(count)
        ]


def dpop_environs(path: str, client: DpopClient, tokens: list[str], count: int) -> list[dict[str, t.Any]]:
    """``count`` single-use environs cycling through ``tokens``, each with a proof made now."""
    return [
        environ_for(path, tok, scheme="DPoP", headers={"DPoP": client.proof(tok)})
        for tok in (tokens[i % len(tokens)] for i in range(count))
    ]


def build_authgate_revoked(keys: KeySet, cache_size: int, count: int = 10_000) -> Flask:
    """flask-authgate whose memory store holds ``count`` revocations (``gate.revoke`` of other tokens)."""
    from contenders import build_authgate

    app = build_authgate(keys, AUTHGATE_TOKEN_CACHE_SIZE=cache_size)
    gate = GATES[app]
    with app.app_context():
        for token in mint(keys, [ROLE], count):
            gate.revoke(token)
    return app
