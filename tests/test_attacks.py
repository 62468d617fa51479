"""Hostile headers and tokens: each ends in the documented 400/401 (or 503), never 500.

Every refusal is checked the same way: the status, the whole fixed JSON body,
the exact challenge, and that no byte of the token, its claims, the secret or
an exception's text reaches the body or a header.
"""

from __future__ import annotations

import base64
import collections.abc as cabc
import dataclasses
import hashlib
import hmac
import inspect
import itertools
import json
import secrets
import time
import typing as t
from http import HTTPStatus

import jwt
import jwt.exceptions
import pytest
from conftest import SECRET
from conftest import free_port
from conftest import make_app
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.typing import ResponseReturnValue
from itsdangerous import URLSafeTimedSerializer
from jwt.algorithms import RSAAlgorithm
from kit import serving
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from flask_authgate import AuthError
from flask_authgate import AuthGate
from flask_authgate import current_identity
from flask_authgate import login_required
from flask_authgate import roles_required
from flask_authgate import scopes_required
from flask_authgate.config import load_settings
from flask_authgate.errors import ERRORS
from flask_authgate.jwks import JwksClient
from flask_authgate.jwt_tokens import JwtCodec
from flask_authgate.signed_tokens import SALTS
from flask_authgate.signed_tokens import SIGNER_KWARGS

KEY = SECRET.encode()


# -- crafting ----------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: t.Any) -> str:
    return b64(json.dumps(value).encode())


def rs256(header: dict[str, t.Any], payload: t.Any, private_pem: bytes) -> str:
    """An RS256 JWS over any header (a ``kid`` PyJWT's encoder would refuse, say)."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    algorithm = RSAAlgorithm(RSAAlgorithm.SHA256)
    key = algorithm.prepare_key(private_pem)
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = algorithm.sign(signing_input.encode(), key)
    return f"{signing_input}.{b64(signature)}"


def hs256(header: dict[str, t.Any], payload: t.Any, key: bytes = KEY) -> str:
    """An HS256 JWS over any header and payload, MACed with ``key`` (no PyJWT checks in the way)."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def claims(**changes: t.Any) -> dict[str, t.Any]:
    """Valid access-token claims for ``alice``, with ``changes`` applied (``None`` removes a claim)."""
    now = int(time.time())
    out: dict[str, t.Any] = {
        "sub": "alice",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "attack-jti",
        "type": "access",
    }
    for name, value in changes.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def craft(token_format: str, payload: t.Any) -> str:
    """A correctly signed token of ``token_format`` carrying ``payload`` (claims we did not vet)."""
    if token_format == "jwt":
        return hs256({"alg": "HS256", "typ": "JWT"}, payload)
    return URLSafeTimedSerializer(KEY, salt=SALTS["access"], signer_kwargs=SIGNER_KWARGS).dumps(payload)


def attack_app(config: dict[str, t.Any] | None = None) -> tuple[Flask, AuthGate]:
    app, gate = make_app(config)

    @app.route("/me")
    @login_required
    def me() -> ResponseReturnValue:
        return {"sub": current_identity.subject}

    @app.route("/admin")
    @roles_required("admin")
    def admin() -> ResponseReturnValue:
        return {"sub": current_identity.subject}

    @app.route("/scoped")
    @scopes_required("read")
    def scoped() -> ResponseReturnValue:
        return {"sub": current_identity.subject}

    return app, gate


def get(app: Flask, authorization: str, path: str = "/me") -> t.Any:
    return app.test_client().get(path, headers={"Authorization": authorization})


def challenge(code: str) -> list[str]:
    info = ERRORS[code]
    if info.challenge == "":
        return ['Bearer realm="api"']
    if info.challenge == "invalid_token":
        return [f'Bearer realm="api", error="invalid_token", error_description="{info.message}"']
    if info.challenge == "invalid_request":
        return ['Bearer realm="api", error="invalid_request"']
    return []


def assert_refused(rv: t.Any, code: str, *secrets_: str) -> None:
    """The fixed answer for ``code``, with none of ``secrets_`` anywhere in the response."""
    status = ERRORS[code].status
    assert rv.status_code == status
    assert rv.get_json() == {
        "error": HTTPStatus(status).phrase,
        "code": code,
        "message": ERRORS[code].message,
        "status": status,
    }
    assert rv.headers.getlist("WWW-Authenticate") == challenge(code)
    assert rv.headers.getlist("Cache-Control") == ["no-store"]
    raw = rv.get_data() + str(rv.headers).encode("latin-1", "replace")
    for fragment in (SECRET, *secrets_):
        pieces = [fragment, *fragment.split(".")]
        for piece in pieces:
            if len(piece) >= 8:
                assert piece.encode("utf-8", "replace") not in raw


# -- the request line --------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("Bearer x.y.z", id="three-dots"),
        pytest.param("Bearer !!!", id="not-b64token"),
        pytest.param("Bearer abc def", id="two-words"),
        pytest.param('Bearer abc,error="x"', id="auth-params"),
        pytest.param("Bearer \tabc", id="tab"),
        pytest.param("Bearer ====", id="only-padding"),
        pytest.param("Bearer a==b", id="padding-inside"),
        pytest.param("Bearer eyJhbGciOiJIUzI1NiJ9", id="one-segment"),
        pytest.param("Bearer a.b.c.d.e", id="five-segments"),
    ],
)
def test_garbage(token_format: str, value: str) -> None:
    app, _gate = attack_app({"AUTHGATE_TOKEN_FORMAT": token_format})
    assert_refused(get(app, value), "token_invalid", value[7:])


@pytest.mark.parametrize("value", ["Bearer", "bearer", "Bearer ", "Bearer    ", "BEARER"])
def test_empty_bearer_is_no_credentials(token_format: str, value: str) -> None:
    app, _gate = attack_app({"AUTHGATE_TOKEN_FORMAT": token_format})
    assert_refused(get(app, value), "token_missing")


@pytest.mark.parametrize(
    "value", ["Bearer abc中def", "Bearer caf\u00e9.x.y", "Bearer \u00ff\u00fe", "Bearer \U0001f600"]
)
def test_non_ascii(token_format: str, value: str) -> None:
    app, _gate = attack_app({"AUTHGATE_TOKEN_FORMAT": token_format})
    assert_refused(get(app, value), "token_invalid")


def test_200_kb_token(token_format: str) -> None:
    app, gate = attack_app({"AUTHGATE_TOKEN_FORMAT": token_format})
    with app.app_context():
        # Correctly signed by this very app: the size alone refuses it.
        token = gate.create_access_token("alice", claims={"pad": secrets.token_urlsafe(160_000)})
    assert len(token) > 200_000
    assert_refused(get(app, f"Bearer {token}"), "token_invalid", token)
    assert_refused(get(app, "Bearer " + "A" * 200_000), "token_invalid")


# -- header attacks (JWT) ----------------------------------------------------

NONE_SPELLINGS = sorted({"".join(c) for c in itertools.product(*[(ch, ch.upper()) for ch in "none"])})


@pytest.mark.parametrize("alg", NONE_SPELLINGS)
@pytest.mark.parametrize("signature", ["", "AAAA"], ids=["empty-signature", "some-signature"])
def test_alg_none(alg: str, signature: str) -> None:
    app, _gate = attack_app()
    token = f"{segment({'alg': alg, 'typ': 'JWT'})}.{segment(claims(roles=['admin']))}.{signature}"
    assert_refused(get(app, f"Bearer {token}", "/admin"), "token_invalid", token)


@pytest.fixture(scope="module")
def rsa_keys() -> dict[str, bytes]:
    """Two RSA key pairs (PEM): the app's and an attacker's."""
    out = {}
    for name in ("app", "attacker"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        out[f"{name}_private"] = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        out[f"{name}_public"] = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return out


def rs256_config(keys: dict[str, bytes]) -> dict[str, t.Any]:
    return {
        "AUTHGATE_JWT_ALGORITHMS": ["RS256"],
        "AUTHGATE_JWT_PUBLIC_KEY": keys["app_public"],
        "AUTHGATE_JWT_PRIVATE_KEY": keys["app_private"],
    }


def test_hmac_signed_with_the_rsa_public_key_rs256_app(rsa_keys: dict[str, bytes]) -> None:
    # The classic confusion: the attacker MACs with the public key the app verifies with.
    app, gate = attack_app(rs256_config(rsa_keys))
    token = hs256({"alg": "HS256", "typ": "JWT"}, claims(roles=["admin"]), key=rsa_keys["app_public"])
    assert_refused(get(app, f"Bearer {token}", "/admin"), "token_invalid", token)
    with app.app_context():
        good = gate.create_access_token("alice", roles=["admin"])
    assert get(app, f"Bearer {good}", "/admin").status_code == 200


def test_hmac_signed_with_an_rsa_public_key_hs256_app(rsa_keys: dict[str, bytes]) -> None:
    app, _gate = attack_app()
    for kid in (None, "app"):
        header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
        token = hs256(header, claims(roles=["admin"]), key=rsa_keys["app_public"])
        assert_refused(get(app, f"Bearer {token}", "/admin"), "token_invalid", token)


def test_rsa_public_key_as_hmac_secret_is_refused_at_init_app(rsa_keys: dict[str, bytes]) -> None:
    from flask_authgate import ConfigError

    with pytest.raises(ConfigError, match="AUTHGATE_JWT_SECRET"):
        make_app({"AUTHGATE_JWT_SECRET": rsa_keys["app_public"].decode()})


def test_tampered_payload(token_format: str) -> None:
    app, gate = attack_app({"AUTHGATE_TOKEN_FORMAT": token_format})
    with app.app_context():
        token = gate.create_access_token("alice")
    first, rest = token.split(".", 1)
    if token_format == "jwt":
        forged = f"{first}.{segment(claims(roles=['admin']))}.{token.rsplit('.', 1)[1]}"
    else:
        forged = f"{b64(json.dumps(claims(roles=['admin'])).encode())}.{rest}"
    assert forged != token
    assert_refused(get(app, f"Bearer {forged}", "/admin"), "token_invalid", forged)


def test_unknown_crit() -> None:
    app, _gate = attack_app()
    token = hs256({"alg": "HS256", "crit": ["x-magic-ext"], "x-magic-ext": True}, claims())
    assert_refused(get(app, f"Bearer {token}"), "token_invalid", token, "x-magic-ext")


class JwksServer:
    """A WSGI app serving a JWK Set (or anything) at ``url`` and counting its hits."""

    def __init__(self) -> None:
        self.doc: t.Any = {"keys": []}
        self.hits = 0
        self.url = ""

    def __call__(self, environ: dict[str, t.Any], start_response: t.Any) -> cabc.Iterable[bytes]:
        self.hits += 1
        return Response(json.dumps(self.doc), mimetype="application/json")(environ, start_response)


@pytest.fixture(scope="module")
def jwks_server() -> cabc.Iterator[JwksServer]:
    """The JWK Set on a real threaded server on loopback."""
    server = JwksServer()
    with serving(make_server("127.0.0.1", 0, server, threaded=True)) as base:
        server.url = base + "/jwks.json"
        yield server


@pytest.fixture
def jwks(jwks_server: JwksServer) -> JwksServer:
    jwks_server.doc = {"keys": []}
    jwks_server.hits = 0
    return jwks_server


def public_jwk(pem: bytes, kid: str) -> dict[str, t.Any]:
    key = serialization.load_pem_public_key(pem)
    assert isinstance(key, rsa.RSAPublicKey)
    jwk = RSAAlgorithm.to_jwk(key, as_dict=True)
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


@pytest.mark.parametrize("header", ["jku", "x5u", "both"])
def test_jku_and_x5u_are_never_followed(rsa_keys: dict[str, bytes], jwks: JwksServer, header: str) -> None:
    # The attacker hosts a JWK Set with their own key and points the token at it.
    jwks.doc = {"keys": [public_jwk(rsa_keys["attacker_public"], "attacker")]}
    app, _gate = attack_app(rs256_config(rsa_keys))
    headers: dict[str, t.Any] = {"kid": "attacker"}
    if header in ("jku", "both"):
        headers["jku"] = jwks.url
    if header in ("x5u", "both"):
        headers["x5u"] = jwks.url
    token = jwt.encode(claims(roles=["admin"]), rsa_keys["attacker_private"], algorithm="RS256", headers=headers)
    assert_refused(get(app, f"Bearer {token}", "/admin"), "token_invalid", token, jwks.url)
    assert jwks.hits == 0


@pytest.mark.parametrize(
    "kid",
    [
        pytest.param("../../dev/null", id="path-traversal"),
        pytest.param("' OR '1'='1", id="sql"),
        pytest.param("", id="empty"),
        pytest.param(123, id="int"),
        pytest.param(["a"], id="list"),
        pytest.param({"a": 1}, id="object"),
        pytest.param("x" * 5000, id="long"),
    ],
)
def test_hostile_kid(kid: t.Any, rsa_keys: dict[str, bytes]) -> None:
    payload = claims(roles=["admin"])
    # HMAC app: the kid a file-reading verifier would turn into an empty key.
    app, _gate = attack_app()
    token = hs256({"alg": "HS256", "kid": kid}, payload, key=b"")
    assert_refused(get(app, f"Bearer {token}", "/admin"), "token_invalid", token)
    # Public-key app: an unknown kid names no key we hold.
    app, _gate = attack_app(rs256_config(rsa_keys))
    token = rs256({"alg": "RS256", "kid": kid}, payload, rsa_keys["attacker_private"])
    assert_refused(get(app, f"Bearer {token}", "/admin"), "token_invalid", token)


def test_kid_of_a_real_key_with_a_wrong_signature_is_refused() -> None:
    app, gate = attack_app()
    with app.app_context():
        token = gate.create_access_token("alice")
    header = jwt.get_unverified_header(token)
    forged = hs256(header, claims(roles=["admin"]), key=b"k" * 64)
    assert_refused(get(app, f"Bearer {forged}", "/admin"), "token_invalid", forged)


# -- claim attacks (both formats) -------------------------------------------

FAR = int(time.time()) + 10 * 365 * 86400

CLAIM_ATTACKS = [
    pytest.param({"exp": str(int(time.time()) + 600)}, "/me", id="exp-string"),
    pytest.param({"exp": True}, "/me", id="exp-bool"),
    pytest.param({"exp": FAR}, "/me", id="exp-beyond-max-lifetime"),
    pytest.param({"exp": 1e30}, "/me", id="exp-1e30"),
    pytest.param({"exp": float("inf")}, "/me", id="exp-infinity"),
    pytest.param({"exp": float("nan")}, "/me", id="exp-nan"),
    pytest.param({"exp": [1]}, "/me", id="exp-list"),
    pytest.param({"exp": None}, "/me", id="exp-missing"),
    pytest.param({"iat": int(time.time()) + 3600}, "/me", id="iat-future"),
    pytest.param({"nbf": int(time.time()) + 3600}, "/me", id="nbf-future"),
    pytest.param({"iat": "yesterday"}, "/me", id="iat-string"),
    pytest.param({"nbf": False}, "/me", id="nbf-bool"),
    pytest.param({"sub": ""}, "/me", id="sub-empty"),
    pytest.param({"sub": 12345}, "/me", id="sub-int"),
    pytest.param({"sub": None}, "/me", id="sub-missing"),
    pytest.param({"sub": ["alice"]}, "/me", id="sub-list"),
    pytest.param({"roles": "admin"}, "/admin", id="roles-bare-string"),
    pytest.param({"roles": ["admin", 1]}, "/admin", id="roles-with-a-number"),
    pytest.param({"roles": {"admin": True}}, "/admin", id="roles-object"),
    pytest.param({"scope": 42}, "/scoped", id="scope-number"),
    pytest.param({"scope": ["read", 7]}, "/scoped", id="scope-list-with-number"),
    pytest.param({"type": "id"}, "/me", id="type-unknown"),
    pytest.param({"type": ["access"]}, "/me", id="type-list"),
    pytest.param({"jti": 123}, "/me", id="jti-int"),
    pytest.param({"jti": ""}, "/me", id="jti-empty"),
    pytest.param({"fresh": "yes"}, "/me", id="fresh-string"),
]


@pytest.mark.parametrize(("changes", "path"), CLAIM_ATTACKS)
def test_bad_claims(token_format: str, changes: dict[str, t.Any], path: str) -> None:
    app, _gate = attack_app({"AUTHGATE_TOKEN_FORMAT": token_format})
    token = craft(token_format, claims(**changes))
    assert_refused(get(app, f"Bearer {token}", path), "token_invalid", token)


def test_the_crafted_tokens_are_otherwise_valid(token_format: str) -> None:
    # Without the bad claim, the very same crafting is accepted: the refusals above are about the claim.
    app, _gate = attack_app({"AUTHGATE_TOKEN_FORMAT": token_format})
    token = craft(token_format, claims(roles=["admin"], scope="read write"))
    for path in ("/me", "/admin", "/scoped"):
        rv = get(app, f"Bearer {token}", path)
        assert (rv.status_code, rv.get_json()) == (200, {"sub": "alice"})


@pytest.mark.parametrize("payload", [[1, 2], "alice", 42, None], ids=["array", "string", "number", "null"])
def test_payload_not_an_object(token_format: str, payload: t.Any) -> None:
    app, _gate = attack_app({"AUTHGATE_TOKEN_FORMAT": token_format})
    token = craft(token_format, payload)
    assert_refused(get(app, f"Bearer {token}"), "token_invalid", token)


def test_max_token_lifetime(token_format: str) -> None:
    config = {
        "AUTHGATE_TOKEN_FORMAT": token_format,
        "AUTHGATE_ACCESS_TOKEN_EXPIRES": 900,
        "AUTHGATE_REFRESH_TOKEN_EXPIRES": 1800,
        "AUTHGATE_MAX_TOKEN_LIFETIME": 3600,
    }
    app, _gate = attack_app(config)
    now = int(time.time())
    within = craft(token_format, claims(exp=now + 3000))
    assert get(app, f"Bearer {within}").status_code == 200
    beyond = craft(token_format, claims(exp=now + 7200))
    assert_refused(get(app, f"Bearer {beyond}"), "token_invalid", beyond)


def test_default_max_lifetime_is_the_refresh_lifetime(token_format: str) -> None:
    app, _gate = attack_app({"AUTHGATE_TOKEN_FORMAT": token_format})
    now = int(time.time())
    assert get(app, f"Bearer {craft(token_format, claims(exp=now + 29 * 86400))}").status_code == 200
    beyond = craft(token_format, claims(exp=now + 31 * 86400))
    assert_refused(get(app, f"Bearer {beyond}"), "token_invalid", beyond)


# -- audience and issuer (JWT) -----------------------------------------------


def test_aud_without_a_configured_audience() -> None:
    app, _gate = attack_app()
    token = craft("jwt", claims(aud="api"))
    assert_refused(get(app, f"Bearer {token}"), "token_invalid", token)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"aud": "other"}, id="aud-other"),
        pytest.param({"aud": "apix"}, id="aud-prefix"),
        pytest.param({"aud": None}, id="aud-missing"),
        pytest.param({"aud": 7}, id="aud-number"),
        pytest.param({"iss": "https://evil.example"}, id="iss-other"),
        pytest.param({"iss": None}, id="iss-missing"),
        pytest.param({"iss": ["https://issuer.example"]}, id="iss-list"),
    ],
)
def test_audience_and_issuer_mismatch(changes: dict[str, t.Any]) -> None:
    app, _gate = attack_app({"AUTHGATE_JWT_AUDIENCE": "api", "AUTHGATE_JWT_ISSUER": "https://issuer.example"})
    good = claims(aud="api", iss="https://issuer.example")
    assert get(app, f"Bearer {craft('jwt', good)}").status_code == 200
    token = craft("jwt", claims(**{"aud": "api", "iss": "https://issuer.example", **changes}))
    assert_refused(get(app, f"Bearer {token}"), "token_invalid", token)


# -- malleability and revocation --------------------------------------------


def test_altered_signature_does_not_escape_revocation(token_format: str) -> None:
    app, gate = attack_app({"AUTHGATE_TOKEN_FORMAT": token_format})
    with app.app_context():
        token = gate.create_access_token("alice")
    altered = token + "="
    if token_format == "jwt":
        # JWS segments carry no padding (RFC 7515 §2): a padded copy is refused outright,
        # whatever the PyJWT version (2.15 would accept it as the same token).
        assert_refused(get(app, f"Bearer {altered}"), "token_invalid", altered)
        assert_refused(get(app, f"Bearer {token}=="), "token_invalid", token)
        return
    # itsdangerous accepts the altered copy as the same token ...
    assert get(app, f"Bearer {altered}").status_code == 200
    with app.app_context():
        gate.revoke(token)
    # ... so revocation keys on jti: the copy (already in the verified-token cache) is refused too.
    assert_refused(get(app, f"Bearer {altered}"), "token_revoked", altered)
    assert_refused(get(app, f"Bearer {token}"), "token_revoked", token)
    assert_refused(get(app, f"Bearer {token}=="), "token_revoked", token)


# -- every PyJWT exception class --------------------------------------------


def pyjwt_exception_classes() -> list[type[jwt.PyJWTError]]:
    return sorted(
        (cls for _name, cls in inspect.getmembers(jwt.exceptions, inspect.isclass) if issubclass(cls, jwt.PyJWTError)),
        key=lambda cls: cls.__name__,
    )


@dataclasses.dataclass
class Ctx:
    keys: dict[str, bytes]
    jwks: JwksServer

    def jwks_app(self) -> Flask:
        app, _gate = attack_app({"AUTHGATE_JWT_ALGORITHMS": ["RS256"], "AUTHGATE_JWKS_URL": self.jwks.url})
        return app

    def app_token(self, payload: dict[str, t.Any], kid: str = "good") -> str:
        return jwt.encode(payload, self.keys["app_private"], algorithm="RS256", headers={"kid": kid})


@dataclasses.dataclass(frozen=True)
class Trigger:
    """How real input makes PyJWT raise one class, and what our codec path answers."""

    #: Makes PyJWT itself raise the class (asserted exactly), proving the scenario is real.
    proof: cabc.Callable[[Ctx], object]
    #: Sends the same situation through the app; returns the response.
    request: cabc.Callable[[Ctx], t.Any]
    code: str


def _hs_app_get(token: str, config: dict[str, t.Any] | None = None, path: str = "/me") -> t.Any:
    app, _gate = attack_app(config)
    return get(app, f"Bearer {token}", path)


def _decode(token: str, key: t.Any = KEY, **kwargs: t.Any) -> object:
    return jwt.decode(token, key, algorithms=kwargs.pop("algorithms", ["HS256"]), **kwargs)


_EXPIRED = hs256({"alg": "HS256"}, claims(exp=int(time.time()) - 60, iat=int(time.time()) - 600))
_IMMATURE = hs256({"alg": "HS256"}, claims(nbf=int(time.time()) + 3600))
_FUTURE_IAT = hs256({"alg": "HS256"}, claims(iat=int(time.time()) + 3600))
_GARBAGE = "not.a.jwt"
_CRIT = hs256({"alg": "HS256", "crit": ["x-magic"]}, claims())
_SUB_INT = hs256({"alg": "HS256"}, claims(sub=123))
_JTI_INT = hs256({"alg": "HS256"}, claims(jti=123))
_NO_EXP = hs256({"alg": "HS256"}, claims(exp=None))
_HS512 = jwt.encode(claims(), KEY, algorithm="HS512")
_AUD = hs256({"alg": "HS256"}, claims(aud="someone-else"))
_ISS = hs256({"alg": "HS256"}, claims(iss="https://evil.example"))
_WRONG_KEY = hs256({"alg": "HS256"}, claims(), key=b"w" * 64)
_ISSUER_CONFIG = {"AUTHGATE_JWT_ISSUER": "https://issuer.example"}


def _served(ctx: Ctx, entries: t.Any) -> t.Any:
    ctx.jwks.doc = entries
    return get(ctx.jwks_app(), f"Bearer {ctx.app_token(claims())}")


def _bad_rsa_jwk() -> dict[str, t.Any]:
    return {"kty": "RSA", "kid": "good", "alg": "RS256", "use": "sig", "n": "AQAB", "e": "A"}


def _unknown_alg_jwk(ctx: Ctx) -> dict[str, t.Any]:
    return {**public_jwk(ctx.keys["app_public"], "good"), "alg": "RS999"}


def _pyjwt_client_unknown_kid(ctx: Ctx) -> object:
    ctx.jwks.doc = {"keys": [public_jwk(ctx.keys["app_public"], "other")]}
    return jwt.PyJWKClient(ctx.jwks.url).get_signing_key("good")


def _closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}/jwks.json"


def _connection_refused_app(ctx: Ctx) -> t.Any:
    app, _gate = attack_app({"AUTHGATE_JWT_ALGORITHMS": ["RS256"], "AUTHGATE_JWKS_URL": _closed_url()})
    return get(app, f"Bearer {ctx.app_token(claims())}")


TRIGGERS: dict[str, Trigger] = {
    "DecodeError": Trigger(lambda c: _decode(_GARBAGE), lambda c: _hs_app_get(_GARBAGE), "token_invalid"),
    "InvalidSignatureError": Trigger(lambda c: _decode(_WRONG_KEY), lambda c: _hs_app_get(_WRONG_KEY), "token_invalid"),
    # The codec leaves time claims to TokenService (one clock, cacheable): same situation, same answer.
    "ExpiredSignatureError": Trigger(lambda c: _decode(_EXPIRED), lambda c: _hs_app_get(_EXPIRED), "token_expired"),
    "ImmatureSignatureError": Trigger(lambda c: _decode(_IMMATURE), lambda c: _hs_app_get(_IMMATURE), "token_invalid"),
    "InvalidIssuedAtError": Trigger(
        lambda c: _decode(hs256({"alg": "HS256"}, claims(iat="soon"))),
        lambda c: _hs_app_get(hs256({"alg": "HS256"}, claims(iat="soon"))),
        "token_invalid",
    ),
    "InvalidAlgorithmError": Trigger(lambda c: _decode(_HS512), lambda c: _hs_app_get(_HS512), "token_invalid"),
    "InvalidAudienceError": Trigger(lambda c: _decode(_AUD), lambda c: _hs_app_get(_AUD), "token_invalid"),
    "InvalidIssuerError": Trigger(
        lambda c: _decode(_ISS, issuer="https://issuer.example"),
        lambda c: _hs_app_get(_ISS, _ISSUER_CONFIG),
        "token_invalid",
    ),
    "MissingRequiredClaimError": Trigger(
        lambda c: _decode(_NO_EXP, options={"require": ["exp"]}), lambda c: _hs_app_get(_NO_EXP), "token_invalid"
    ),
    "InvalidSubjectError": Trigger(lambda c: _decode(_SUB_INT), lambda c: _hs_app_get(_SUB_INT), "token_invalid"),
    "InvalidJTIError": Trigger(lambda c: _decode(_JTI_INT), lambda c: _hs_app_get(_JTI_INT), "token_invalid"),
    "InvalidTokenError": Trigger(lambda c: _decode(_CRIT), lambda c: _hs_app_get(_CRIT), "token_invalid"),
    # A JWK Set entry PyJWT cannot turn into a key: skipped, so the token's kid names no key.
    "InvalidKeyError": Trigger(
        lambda c: jwt.PyJWK(_bad_rsa_jwk()), lambda c: _served(c, {"keys": [_bad_rsa_jwk()]}), "token_invalid"
    ),
    "PyJWKError": Trigger(
        lambda c: jwt.PyJWK(_unknown_alg_jwk(c)),
        lambda c: _served(c, {"keys": [_unknown_alg_jwk(c)]}),
        "token_invalid",
    ),
    "PyJWKSetError": Trigger(
        lambda c: jwt.PyJWKSet.from_dict({"keys": []}), lambda c: _served(c, {"keys": []}), "token_invalid"
    ),
    "PyJWKClientError": Trigger(
        _pyjwt_client_unknown_kid,
        lambda c: _served(c, {"keys": [public_jwk(c.keys["app_public"], "other")]}),
        "token_invalid",
    ),
    "PyJWKClientConnectionError": Trigger(
        lambda c: jwt.PyJWKClient(_closed_url(), timeout=1).get_signing_key("good"),
        _connection_refused_app,
        "auth_unavailable",
    ),
}
# Raised only when ``cryptography`` is missing (it is installed here): it is a PyJWKError, and a
# JWK Set entry that raises it is skipped like the PyJWKError one above.
MISSING_CRYPTO = "MissingCryptographyError"
# The base class itself is never raised by PyJWT; every subclass above is.
BASE = "PyJWTError"


def test_every_pyjwt_exception_class_has_a_trigger() -> None:
    names = {cls.__name__ for cls in pyjwt_exception_classes()}
    assert names == {*TRIGGERS, MISSING_CRYPTO, BASE}
    assert issubclass(jwt.exceptions.MissingCryptographyError, jwt.PyJWKError)


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_every_pyjwt_exception_class(name: str, rsa_keys: dict[str, bytes], jwks: JwksServer) -> None:
    ctx = Ctx(rsa_keys, jwks)
    cls = getattr(jwt.exceptions, name)
    trigger = TRIGGERS[name]
    with pytest.raises(cls) as info:
        trigger.proof(ctx)
    assert type(info.value) is cls
    rv = trigger.request(ctx)
    assert_refused(rv, trigger.code, str(info.value))
    if trigger.code == "auth_unavailable":
        assert rv.headers.getlist("Retry-After") == ["5"]


def test_jwks_good_key_is_accepted(rsa_keys: dict[str, bytes], jwks: JwksServer) -> None:
    # The control for the JWKS triggers: the same app and token with a usable key.
    ctx = Ctx(rsa_keys, jwks)
    rv = _served(ctx, {"keys": [public_jwk(rsa_keys["app_public"], "good")]})
    assert (rv.status_code, rv.get_json()) == (200, {"sub": "alice"})


def test_codec_with_unreachable_jwks_fails_closed(rsa_keys: dict[str, bytes]) -> None:
    app = Flask("codec")
    app.config.update(AUTHGATE_JWT_ALGORITHMS=["RS256"], AUTHGATE_JWKS_URL=_closed_url())
    settings = load_settings(app)
    client = JwksClient(settings.keys.jwks_url or "", algorithms=settings.keys.algorithms, timeout=1)
    codec = JwtCodec(settings, client)
    token = jwt.encode(claims(), rsa_keys["app_private"], algorithm="RS256", headers={"kid": "good"})
    with pytest.raises(AuthError) as info:
        codec.decode(token, "access")
    assert (info.value.code, info.value.error_code) == (503, "auth_unavailable")


def test_codec_with_an_rsa_key_as_hmac_secret_is_token_invalid(rsa_keys: dict[str, bytes]) -> None:
    # Config refuses this secret; the codec still maps PyJWT's InvalidKeyError to 401, not 500.
    app = Flask("codec")
    app.config.update(AUTHGATE_JWT_SECRET=SECRET)
    settings = load_settings(app)
    settings = dataclasses.replace(settings, keys=dataclasses.replace(settings.keys, secrets=(rsa_keys["app_public"],)))
    codec = JwtCodec(settings)
    token = hs256({"alg": "HS256"}, claims(), key=rsa_keys["app_public"])
    with pytest.raises(jwt.InvalidKeyError):
        jwt.decode(token, rsa_keys["app_public"], algorithms=["HS256"])
    with pytest.raises(AuthError) as info:
        codec.decode(token, "access")
    assert (info.value.code, info.value.error_code) == (401, "token_invalid")
