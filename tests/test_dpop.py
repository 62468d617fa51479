"""DPoP building blocks (RFC 9449): thumbprints, htu normalisation, proof checks, binding, nonces.

Proofs come from PyJWT (the fixture builder), from three independent
implementations (joserfc, jwcrypto and the pydpop client library), and from
RFC 9449 itself. Every hostile proof must end in ``AuthError`` with a code of
``errors.ERRORS`` and the right ``reason``.
"""

from __future__ import annotations

import base64
import collections.abc as cabc
import hashlib
import json
import secrets
import time
import typing as t

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm
from jwt.algorithms import OKPAlgorithm
from jwt.algorithms import RSAAlgorithm
from kit import FakeClock

from flask_authgate.dpop import DEFAULT_ALGORITHMS
from flask_authgate.dpop import DpopProof
from flask_authgate.dpop import DpopVerifier
from flask_authgate.dpop import NonceSource
from flask_authgate.dpop import access_token_hash
from flask_authgate.dpop import check_binding
from flask_authgate.dpop import jwk_thumbprint
from flask_authgate.dpop import normalize_htu
from flask_authgate.dpop import token_is_bound
from flask_authgate.errors import ERRORS
from flask_authgate.errors import AuthError
from flask_authgate.revocation import MemoryStore
from flask_authgate.revocation import RedisStore

NOW = 1_800_000_000.0
URL = "https://api.example.com/items"
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"

# --- RFC examples -------------------------------------------------------------------------------

#: RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
RFC7638_JWK = {
    "kty": "RSA",
    "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs"
        "tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5h"
        "ajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    ),
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

#: RFC 9449 §4.1: the DPoP proof of the token request (figure 3; iat 1562262616).
RFC9449_TOKEN_PROOF = (
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQy"
    "VVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiI"
    "tQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2"
    "fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
)
#: RFC 9449 §7.1: the proof of the protected-resource request (iat 1562262618), with ``ath`` of this token.
RFC9449_RESOURCE_PROOF = (
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQy"
    "VVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJ"
    "lMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsIm"
    "lhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey7"
    "1EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA"
)
RFC9449_ACCESS_TOKEN = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
#: RFC 9449 §6.1: the example ``cnf.jkt``, the thumbprint of the examples' key.
RFC9449_JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


# --- helpers ------------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(value: t.Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


class Keys(t.NamedTuple):
    ec: ec.EllipticCurvePrivateKey
    ec384: ec.EllipticCurvePrivateKey
    rsa: rsa.RSAPrivateKey
    ed: ed25519.Ed25519PrivateKey


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP384R1()),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ed25519.Ed25519PrivateKey.generate(),
    )


def public_jwk(key: t.Any) -> dict[str, t.Any]:
    public = key.public_key()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ECAlgorithm.to_jwk(public, as_dict=True)
    if isinstance(key, rsa.RSAPrivateKey):
        return RSAAlgorithm.to_jwk(public, as_dict=True)
    return OKPAlgorithm.to_jwk(public, as_dict=True)


def private_jwk(key: t.Any) -> dict[str, t.Any]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ECAlgorithm.to_jwk(key, as_dict=True)
    return RSAAlgorithm.to_jwk(key, as_dict=True)


def make_proof(
    key: t.Any,
    *,
    alg: str = "ES256",
    htm: str = "GET",
    htu: str = URL,
    iat: t.Any = NOW,
    access_token: str | None = TOKEN,
    header: dict[str, t.Any] | None = None,
    drop: cabc.Iterable[str] = (),
    **claims: t.Any,
) -> str:
    """A proof signed with PyJWT; ``header`` overrides header members, ``drop`` removes claims."""
    payload: dict[str, t.Any] = {"jti": secrets.token_urlsafe(16), "htm": htm, "htu": htu, "iat": iat}
    if access_token is not None:
        payload["ath"] = access_token_hash(access_token)
    payload.update(claims)
    for name in drop:
        payload.pop(name, None)
    headers: dict[str, t.Any] = {"typ": "dpop+jwt", "jwk": public_jwk(key)}
    headers.update(header or {})
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


def resign(key: t.Any, header: dict[str, t.Any], payload: dict[str, t.Any], alg: str = "ES256") -> str:
    """A proof with exactly this header and payload (PyJWT rewrites neither), signed by ``key``."""
    head, body = b64json(header), b64json(payload)
    signing_input = f"{head}.{body}".encode()
    sig = jwt.get_algorithm_by_name(alg).sign(signing_input, key)
    return f"{head}.{body}.{b64(sig)}"


class Replay:
    """The revocation store's atomic put-if-absent, as the extension will wire it (bounded by expiry)."""

    def __init__(self, clock: cabc.Callable[[], float]) -> None:
        self.store = MemoryStore(clock=clock)
        self.calls: list[tuple[str, float]] = []

    def __call__(self, key: str, expires_at: float) -> bool:
        self.calls.append((key, expires_at))
        return self.store.put_if_absent(key, 1.0, expires_at)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def replay(clock: FakeClock) -> Replay:
    return Replay(clock)


@pytest.fixture
def verifier(clock: FakeClock, replay: Replay) -> DpopVerifier:
    return DpopVerifier(
        algorithms=("ES256", "ES384", "PS256", "RS256", "EdDSA", "Ed25519"), clock=clock, replay=replay, lifetime=60
    )


def refused(
    verifier: DpopVerifier,
    proof: t.Any,
    reason: str,
    *,
    code: str = "dpop_proof_invalid",
    method: str = "GET",
    url: str = URL,
    access_token: str | None = TOKEN,
    **kwargs: t.Any,
) -> AuthError:
    with pytest.raises(AuthError) as info:
        verifier.verify(proof, method=method, url=url, access_token=access_token, **kwargs)
    err = info.value
    assert err.error_code == code
    assert err.code == ERRORS[code].status
    assert getattr(err, "reason", None) == reason
    return err


# --- RFC 7638 thumbprints -----------------------------------------------------------------------


def test_rfc7638_example_thumbprint() -> None:
    assert jwk_thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT


def test_thumbprint_ignores_member_order_and_optional_members() -> None:
    shuffled = {"e": RFC7638_JWK["e"], "use": "sig", "n": RFC7638_JWK["n"], "kty": "RSA"}
    assert jwk_thumbprint(shuffled) == RFC7638_THUMBPRINT


@pytest.mark.parametrize(
    "jwk",
    [
        pytest.param({"kty": "oct", "k": "c2VjcmV0"}, id="symmetric"),
        pytest.param({"kty": "XYZ"}, id="unknown-kty"),
        pytest.param({"n": "AQAB", "e": "AQAB"}, id="no-kty"),
        pytest.param({"kty": "RSA", "n": "AQAB"}, id="missing-e"),
        pytest.param({"kty": "EC", "crv": "P-256", "x": 1, "y": "AA"}, id="non-string"),
        pytest.param({"kty": "OKP", "crv": "Ed25519", "x": ""}, id="empty"),
        pytest.param({"kty": ["RSA"]}, id="kty-list"),
    ],
)
def test_thumbprint_refuses(jwk: dict[str, t.Any]) -> None:
    with pytest.raises(ValueError):
        jwk_thumbprint(jwk)


def test_thumbprint_refuses_a_non_mapping() -> None:
    with pytest.raises(ValueError):
        jwk_thumbprint(t.cast(t.Any, ["kty", "RSA"]))


def test_thumbprints_agree_with_independent_implementations(keys: Keys) -> None:
    joserfc_jwk = pytest.importorskip("joserfc.jwk")
    jwcrypto_jwk = pytest.importorskip("jwcrypto.jwk")
    for key in (keys.ec, keys.rsa, keys.ed):
        jwk = public_jwk(key)
        ours = jwk_thumbprint(jwk)
        assert joserfc_jwk.import_key(jwk).thumbprint() == ours
        assert jwcrypto_jwk.JWK(**jwk).thumbprint() == ours


# --- RFC 9449 examples --------------------------------------------------------------------------


def test_rfc9449_token_request_proof() -> None:
    clock = FakeClock(1562262616.0)
    verifier = DpopVerifier(clock=clock, replay=Replay(clock))
    proof = verifier.verify(
        RFC9449_TOKEN_PROOF, method="POST", url="https://server.example.com/token", access_token=None
    )
    assert proof == DpopProof(jkt=RFC9449_JKT, jti="-BwC3ESc6acc2lTc", iat=1562262616.0, alg="ES256")


def test_rfc9449_resource_request_proof() -> None:
    clock = FakeClock(1562262620.0)
    verifier = DpopVerifier(clock=clock, replay=Replay(clock))
    proof = verifier.verify(
        RFC9449_RESOURCE_PROOF,
        method="GET",
        url="https://resource.example.org/protectedresource",
        access_token=RFC9449_ACCESS_TOKEN,
    )
    assert proof.jkt == RFC9449_JKT
    # RFC 9449 §6.1's example token carries exactly this binding.
    check_binding({"sub": "someone@example.com", "cnf": {"jkt": RFC9449_JKT}}, proof.jkt)
    # The RFC's proof, a second time: a replay.
    refused(
        verifier,
        RFC9449_RESOURCE_PROOF,
        "dpop_replay",
        url="https://resource.example.org/protectedresource",
        access_token=RFC9449_ACCESS_TOKEN,
    )


def test_rfc9449_example_is_stale_today(replay: Replay) -> None:
    verifier = DpopVerifier(clock=lambda: 1562262616.0 + 61, replay=replay)
    refused(
        verifier,
        RFC9449_TOKEN_PROOF,
        "dpop_iat",
        method="POST",
        url="https://server.example.com/token",
        access_token=None,
    )
    assert replay.calls == []


def test_rfc9449_example_ath() -> None:
    claims = json.loads(base64.urlsafe_b64decode(RFC9449_RESOURCE_PROOF.split(".")[1] + "=="))
    assert access_token_hash(RFC9449_ACCESS_TOKEN) == claims["ath"]


# --- htu normalisation (RFC 3986 §6.2.2-6.2.3) -----------------------------------------------------


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("https://api.example.com/items", "https://api.example.com/items"),
        ("HTTPS://API.Example.COM/items", "https://api.example.com/items"),
        ("https://api.example.com:443/items", "https://api.example.com/items"),
        ("https://api.example.com:/items", "https://api.example.com/items"),
        ("http://api.example.com:80/items", "http://api.example.com/items"),
        ("http://api.example.com:443/items", "http://api.example.com:443/items"),
        ("https://api.example.com:8443/items", "https://api.example.com:8443/items"),
        ("https://api.example.com/items?page=2#top", "https://api.example.com/items"),
        ("https://api.example.com", "https://api.example.com/"),
        ("https://api.example.com?x=1", "https://api.example.com/"),
        ("https://api.example.com/a/./b/../items", "https://api.example.com/a/items"),
        ("https://api.example.com/../items", "https://api.example.com/items"),
        ("https://api.example.com/a/%7euser/%41", "https://api.example.com/a/~user/A"),
        ("https://api.example.com/a%2fb", "https://api.example.com/a%2Fb"),
        ("https://api.example.com/caf%c3%a9", "https://api.example.com/caf%C3%A9"),
        ("https://api.example.com/café", "https://api.example.com/caf%C3%A9"),
        ("https://api.example.com/a/.", "https://api.example.com/a/"),
        ("https://api.example.com/a/..", "https://api.example.com/"),
        ("https://[::1]:443/x", "https://[::1]/x"),
        ("https://[2001:DB8::1]:8443/x", "https://[2001:db8::1]:8443/x"),
        ("https://api.example.com/Items", "https://api.example.com/Items"),
    ],
)
def test_normalize_htu(url: str, normal: str) -> None:
    assert normalize_htu(url) == normal


@pytest.mark.parametrize(
    "url",
    [
        "",
        "/items",
        "api.example.com/items",
        "ftp://api.example.com/items",
        "https:/api.example.com/items",
        "https://",
        "https:///items",
        "https://user:pass@api.example.com/items",
        "https://api.example.com:99999/items",
        "https://api.example.com:-1/items",
        "https://api.example.com:8a/items",
        "https://api.example.com/bad%zzescape",
        "https://api.example.com/trailing%2",
        "https://api.example.com/sp ace",
        "https://api.example.com/\r\nSet-Cookie:x",
        "https://[::1/items",
        "https://[::1]x/items",
        "https://exämple.com/items",
        "https://api.example.com/" + "a" * 9000,
    ],
)
def test_normalize_htu_refuses(url: str) -> None:
    with pytest.raises(ValueError):
        normalize_htu(url)


def test_normalize_htu_refuses_non_strings() -> None:
    with pytest.raises(ValueError):
        normalize_htu(t.cast(t.Any, b"https://api.example.com/"))


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_normalize_htu_never_raises_anything_but_value_error(text: str) -> None:
    for url in (text, "https://api.example.com/" + text, "https://" + text):
        try:
            normal = normalize_htu(url)
        except ValueError:
            continue
        assert normalize_htu(normal) == normal  # idempotent


# --- the happy paths ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ES256", "ES384", "RS256", "PS256", "EdDSA"])
def test_valid_proofs(kind: str, keys: Keys, verifier: DpopVerifier, replay: Replay) -> None:
    key = {"ES256": keys.ec, "ES384": keys.ec384, "RS256": keys.rsa, "PS256": keys.rsa, "EdDSA": keys.ed}[kind]
    proof = make_proof(key, alg=kind, jti="jti-1")
    result = verifier.verify(proof, method="GET", url=URL, access_token=TOKEN)
    assert result == DpopProof(jkt=jwk_thumbprint(public_jwk(key)), jti="jti-1", iat=NOW, alg=kind)
    [(replay_key, expires_at)] = replay.calls
    assert replay_key.startswith("dpop:") and len(replay_key) == 5 + 43 and "jti-1" not in replay_key
    assert expires_at == NOW + 60 + 1


def test_scheme_host_case_and_default_port_normalise_equal(keys: Keys, verifier: DpopVerifier) -> None:
    proof = make_proof(keys.ec, htu="HTTPS://API.EXAMPLE.COM:443/items")
    verifier.verify(proof, method="GET", url="https://api.example.com/items?q=1", access_token=TOKEN)
    proof = make_proof(keys.ec, htu="https://api.example.com/items")
    verifier.verify(proof, method="GET", url="https://Api.Example.com:443/./items#frag", access_token=TOKEN)


def test_htu_may_carry_the_query(keys: Keys, verifier: DpopVerifier) -> None:
    # RFC 9449 §4.3 step 9: query and fragment are ignored on both sides.
    proof = make_proof(keys.ec, htu=URL + "?page=2")
    verifier.verify(proof, method="GET", url=URL + "?page=3", access_token=TOKEN)


def test_proof_without_a_token(keys: Keys, verifier: DpopVerifier) -> None:
    proof = make_proof(keys.ec, access_token=None)
    assert verifier.verify(proof, method="GET", url=URL, access_token=None).alg == "ES256"


def test_leeway_admits_a_proof_from_the_near_future(keys: Keys, clock: FakeClock, replay: Replay) -> None:
    verifier = DpopVerifier(clock=clock, replay=replay, leeway=5)
    verifier.verify(make_proof(keys.ec, iat=NOW + 5), method="GET", url=URL, access_token=TOKEN)
    verifier.verify(make_proof(keys.ec, iat=NOW - 65), method="GET", url=URL, access_token=TOKEN)
    assert replay.calls[0][1] == NOW + 5 + 60 + 5 + 1


def test_iat_may_be_fractional(keys: Keys, verifier: DpopVerifier) -> None:
    assert (
        verifier.verify(make_proof(keys.ec, iat=NOW - 0.5), method="GET", url=URL, access_token=TOKEN).iat == NOW - 0.5
    )


# --- bad input: the issue's list, and more --------------------------------------------------------


def test_private_ec_key_in_jwk(keys: Keys, verifier: DpopVerifier, replay: Replay) -> None:
    proof = make_proof(keys.ec, header={"jwk": private_jwk(keys.ec)})
    refused(verifier, proof, "dpop_jwk")
    assert replay.calls == []


def test_private_rsa_key_in_jwk(keys: Keys, verifier: DpopVerifier) -> None:
    jwk = private_jwk(keys.rsa)
    assert {"d", "p", "q", "dp", "dq", "qi"} <= jwk.keys()
    refused(verifier, make_proof(keys.rsa, alg="RS256", header={"jwk": jwk}), "dpop_jwk")
    for member in ("p", "q", "dp", "dq", "qi", "oth"):
        public = public_jwk(keys.rsa)
        public[member] = "AQAB"
        refused(verifier, make_proof(keys.rsa, alg="RS256", header={"jwk": public}), "dpop_jwk")


def test_symmetric_key_in_jwk(keys: Keys, verifier: DpopVerifier) -> None:
    jwk = public_jwk(keys.ec)
    jwk["k"] = "c2VjcmV0"
    refused(verifier, make_proof(keys.ec, header={"jwk": jwk}), "dpop_jwk")
    refused(verifier, make_proof(keys.ec, header={"jwk": {"kty": "oct", "k": "c2VjcmV0"}}), "dpop_jwk")


def test_alg_none(keys: Keys, verifier: DpopVerifier) -> None:
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": public_jwk(keys.ec)}
    payload = {"jti": "x", "htm": "GET", "htu": URL, "iat": NOW, "ath": access_token_hash(TOKEN)}
    unsigned = f"{b64json(header)}.{b64json(payload)}."
    refused(verifier, unsigned, "malformed")  # no signature segment at all
    refused(verifier, f"{b64json(header)}.{b64json(payload)}.AAAA", "dpop_alg")
    for spelling in ("None", "NONE", "nOnE"):
        header["alg"] = spelling
        refused(verifier, f"{b64json(header)}.{b64json(payload)}.AAAA", "dpop_alg")


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_algorithms(alg: str, keys: Keys, verifier: DpopVerifier) -> None:
    # The classic confusion: an HMAC "signed" with the public key's bytes, the jwk alongside.
    secret = json.dumps(public_jwk(keys.ec)).encode() * 2
    proof = jwt.encode(
        {"jti": "x", "htm": "GET", "htu": URL, "iat": NOW, "ath": access_token_hash(TOKEN)},
        secret,
        algorithm=alg,
        headers={"typ": "dpop+jwt", "jwk": public_jwk(keys.ec)},
    )
    refused(verifier, proof, "dpop_alg")


def test_algorithm_not_configured(keys: Keys, clock: FakeClock, replay: Replay) -> None:
    only_es256 = DpopVerifier(algorithms=["ES256"], clock=clock, replay=replay)
    refused(only_es256, make_proof(keys.rsa, alg="RS256"), "dpop_alg")
    payload = {"jti": "x", "htm": "GET", "htu": URL, "iat": NOW, "ath": access_token_hash(TOKEN)}
    listed = {"typ": "dpop+jwt", "alg": ["ES256"], "jwk": public_jwk(keys.ec)}
    head, body = b64json(listed), b64json(payload)
    sig = b64(jwt.get_algorithm_by_name("ES256").sign(f"{head}.{body}".encode(), keys.ec))
    refused(only_es256, f"{head}.{body}.{sig}", "dpop_alg")


@pytest.mark.parametrize(
    ("alg", "key_name"),
    [
        pytest.param("ES256", "rsa", id="ES256-with-an-RSA-key"),
        pytest.param("ES256", "ec384", id="ES256-with-a-P-384-key"),
        pytest.param("ES384", "ec", id="ES384-with-a-P-256-key"),
        pytest.param("RS256", "ec", id="RS256-with-an-EC-key"),
        pytest.param("EdDSA", "ec", id="EdDSA-with-an-EC-key"),
    ],
)
def test_key_type_must_fit_the_alg(alg: str, key_name: str, keys: Keys, verifier: DpopVerifier) -> None:
    signer = {"ES256": keys.ec, "ES384": keys.ec384, "RS256": keys.rsa, "EdDSA": keys.ed}[alg]
    other = getattr(keys, key_name)
    refused(verifier, make_proof(signer, alg=alg, header={"jwk": public_jwk(other)}), "dpop_jwk")


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"jwk": None}, id="null"),
        pytest.param({"jwk": "eyJrdHkiOiJFQyJ9"}, id="string"),
        pytest.param({"jwk": []}, id="list"),
        pytest.param({"jwk": {"kty": "EC", "crv": "P-256"}}, id="no-coordinates"),
        pytest.param({"jwk": {"kty": "EC", "crv": "P-256", "x": 5, "y": 6}}, id="numbers"),
        pytest.param({"jwk": {"kty": "EC", "crv": "P-256", "x": "AA==", "y": "AA=="}}, id="padded"),
        pytest.param({"jwk": {"kty": "EC", "crv": "P-256", "x": "A" * 43, "y": "A" * 43}}, id="not-on-curve"),
        pytest.param({"jwk": {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}}, id="short-coordinates"),
        pytest.param({"jwk": {"kty": "EC", "crv": ["P-256"], "x": "AAAA", "y": "AAAA"}}, id="crv-list"),
        pytest.param({"jwk": {"kty": "EC", "crv": {"P-256": 1}, "x": "AAAA", "y": "AAAA"}}, id="crv-object"),
    ],
)
def test_malformed_jwk(change: dict[str, t.Any], keys: Keys, verifier: DpopVerifier) -> None:
    refused(verifier, make_proof(keys.ec, header=change), "dpop_jwk")


def test_missing_jwk(keys: Keys, verifier: DpopVerifier) -> None:
    header = {"typ": "dpop+jwt", "alg": "ES256"}
    payload = {"jti": "x", "htm": "GET", "htu": URL, "iat": NOW, "ath": access_token_hash(TOKEN)}
    refused(verifier, resign(keys.ec, header, payload), "dpop_jwk")


def test_weak_and_slow_rsa_keys() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point of the test
    clock = FakeClock(NOW)
    verifier = DpopVerifier(algorithms=["RS256"], clock=clock, replay=Replay(clock))
    header = {"typ": "dpop+jwt", "alg": "RS256", "jwk": public_jwk(weak)}
    payload = {"jti": "x", "htm": "GET", "htu": URL, "iat": NOW, "ath": access_token_hash(TOKEN)}
    signing_input = f"{b64json(header)}.{b64json(payload)}".encode()
    sig = weak.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    refused(verifier, f"{signing_input.decode()}.{b64(sig)}", "dpop_jwk")
    # A huge public exponent would make every verification slow: refused before any arithmetic.
    jwk = public_jwk(weak)
    jwk["n"] = b64(b"\xff" * 256)
    jwk["e"] = b64(b"\x01" * 64)
    header = {"typ": "dpop+jwt", "alg": "RS256", "jwk": jwk}
    refused(verifier, f"{b64json(header)}.{b64json(payload)}.{b64(b'x' * 256)}", "dpop_jwk")


@pytest.mark.parametrize(
    "typ",
    [None, "JWT", "jwt", "DPOP+JWT", "dpop+JWT", "application/dpop+jwt", "dpop", "at+jwt", 1, ["dpop+jwt"]],
)
def test_typ(typ: t.Any, keys: Keys, verifier: DpopVerifier) -> None:
    header = {"typ": typ} if typ is not None else {}
    proof = make_proof(keys.ec, header=header)
    if typ is None:
        head = json.loads(base64.urlsafe_b64decode(proof.split(".")[0] + "=="))
        head.pop("typ")
        payload = json.loads(base64.urlsafe_b64decode(proof.split(".")[1] + "=="))
        proof = resign(keys.ec, head, payload)
    refused(verifier, proof, "dpop_typ")


def test_an_access_token_is_not_a_proof(keys: Keys, verifier: DpopVerifier) -> None:
    # RFC 8725 §3.11: explicit typing keeps a JWT of another kind out.
    token = jwt.encode({"sub": "alice", "jti": "x", "htm": "GET", "htu": URL, "iat": NOW}, keys.ec, algorithm="ES256")
    refused(verifier, token, "dpop_typ")


def test_crit_header(keys: Keys, verifier: DpopVerifier) -> None:
    refused(verifier, make_proof(keys.ec, header={"crit": ["exp"], "exp": 1}), "malformed")
    refused(verifier, make_proof(keys.ec, header={"b64": False}), "malformed")


def test_signature_by_another_key(keys: Keys, verifier: DpopVerifier) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    refused(verifier, make_proof(other, header={"jwk": public_jwk(keys.ec)}), "dpop_signature")


def test_tampered_payload(keys: Keys, verifier: DpopVerifier, replay: Replay) -> None:
    head, _body, sig = make_proof(keys.ec).split(".")
    body = b64json({"jti": "y", "htm": "GET", "htu": URL, "iat": NOW, "ath": access_token_hash(TOKEN)})
    refused(verifier, f"{head}.{body}.{sig}", "dpop_signature")
    assert replay.calls == []


@pytest.mark.parametrize("sig", ["AAAA", "A" * 86, "A" * 200, b64(b"\x00" * 64)])
def test_bad_signature_shapes(sig: str, keys: Keys, verifier: DpopVerifier) -> None:
    head, body, _ = make_proof(keys.ec).split(".")
    refused(verifier, f"{head}.{body}.{sig}", "dpop_signature")
    head, body, _ = make_proof(keys.ed, alg="EdDSA").split(".")
    refused(verifier, f"{head}.{body}.{sig}", "dpop_signature")


@pytest.mark.parametrize("method", ["POST", "get", "Get", "HEAD", ""])
def test_wrong_htm(method: str, keys: Keys, verifier: DpopVerifier) -> None:
    refused(verifier, make_proof(keys.ec, htm="GET"), "dpop_htm", method=method or "DELETE")
    refused(verifier, make_proof(keys.ec, htm=method), "dpop_htm", method="GET")


@pytest.mark.parametrize(
    "htu",
    [
        "https://api.example.com/other",
        "https://api.example.com/items/",
        "https://api.example.com/ITEMS",
        "https://evil.example.com/items",
        "https://api.example.com.evil.example/items",
        "http://api.example.com/items",
        "https://api.example.com:8443/items",
        "https://api.example.com/items%2F",
        "https://user@api.example.com/items",
        "/items",
        "not a url",
        "",
    ],
)
def test_htu_for_another_target(htu: str, keys: Keys, verifier: DpopVerifier) -> None:
    refused(verifier, make_proof(keys.ec, htu=htu), "dpop_htu")


def test_request_url_that_cannot_be_normalised(keys: Keys, verifier: DpopVerifier) -> None:
    refused(verifier, make_proof(keys.ec), "dpop_htu", url="https://api.example.com/%zz")


@pytest.mark.parametrize(
    ("iat", "reason"),
    [
        pytest.param(NOW - 61, "dpop_iat", id="stale"),
        pytest.param(NOW - 10_000, "dpop_iat", id="ancient"),
        pytest.param(NOW + 1, "dpop_iat", id="future"),
        pytest.param(NOW + 10**9, "dpop_iat", id="far-future"),
        pytest.param(str(int(NOW)), "claim_type", id="string"),
        pytest.param(True, "claim_type", id="bool"),
        pytest.param(None, "claim_type", id="null"),
        pytest.param([NOW], "claim_type", id="list"),
        pytest.param(10**400, "claim_type", id="huge-int"),
        pytest.param(1e308 * 10, "claim_type", id="inf"),
    ],
)
def test_iat(iat: t.Any, reason: str, keys: Keys, verifier: DpopVerifier, replay: Replay) -> None:
    if isinstance(iat, float) and iat == float("inf"):
        # json.dumps would write Infinity, which strict JSON parsing refuses before any claim check.
        refused(verifier, make_proof(keys.ec, iat=iat), "malformed")
        return
    refused(verifier, make_proof(keys.ec, iat=iat), reason)
    assert replay.calls == []


def test_iat_boundaries(keys: Keys, verifier: DpopVerifier) -> None:
    verifier.verify(make_proof(keys.ec, iat=NOW - 60), method="GET", url=URL, access_token=TOKEN)
    verifier.verify(make_proof(keys.ec, iat=NOW), method="GET", url=URL, access_token=TOKEN)


@pytest.mark.parametrize("claim", ["jti", "htm", "htu", "iat"])
def test_missing_claims(claim: str, keys: Keys, verifier: DpopVerifier) -> None:
    refused(verifier, make_proof(keys.ec, drop=[claim]), "missing_claim")


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"jti": 12345}, id="jti-number"),
        pytest.param({"jti": ""}, id="jti-empty"),
        pytest.param({"jti": "x" * 257}, id="jti-long"),
        pytest.param({"jti": ["a"]}, id="jti-list"),
        pytest.param({"htm": ["GET"]}, id="htm-list"),
        pytest.param({"htu": {"url": URL}}, id="htu-object"),
    ],
)
def test_claim_types(claims: dict[str, t.Any], keys: Keys, verifier: DpopVerifier) -> None:
    refused(verifier, make_proof(keys.ec, **claims), "claim_type")


def test_replayed_jti(keys: Keys, verifier: DpopVerifier, clock: FakeClock) -> None:
    proof = make_proof(keys.ec)
    verifier.verify(proof, method="GET", url=URL, access_token=TOKEN)
    refused(verifier, proof, "dpop_replay")
    # A fresh proof with the same jti, same key and target: still a replay.
    jti = json.loads(base64.urlsafe_b64decode(proof.split(".")[1] + "=="))["jti"]
    refused(verifier, make_proof(keys.ec, jti=jti, iat=NOW - 1), "dpop_replay")
    # After the proof's window the store forgets it, and the proof is too old anyway.
    clock.now = NOW + 61
    refused(verifier, proof, "dpop_iat")


def test_a_failed_check_uses_up_no_jti(keys: Keys, verifier: DpopVerifier) -> None:
    proof = make_proof(keys.ec)
    refused(verifier, proof, "dpop_htm", method="POST")
    refused(verifier, proof, "dpop_ath", access_token="another-token")
    verifier.verify(proof, method="GET", url=URL, access_token=TOKEN)


def test_one_clients_jti_cannot_block_another(keys: Keys, verifier: DpopVerifier) -> None:
    verifier.verify(make_proof(keys.ec, jti="shared"), method="GET", url=URL, access_token=TOKEN)
    verifier.verify(make_proof(keys.ed, alg="EdDSA", jti="shared"), method="GET", url=URL, access_token=TOKEN)
    # RFC 9449 §11.1: the jti lives in the context of the target URI.
    other = "https://api.example.com/other"
    verifier.verify(make_proof(keys.ec, jti="shared", htu=other), method="GET", url=other, access_token=TOKEN)


def test_replay_store_holds_only_bounded_entries(
    keys: Keys, verifier: DpopVerifier, replay: Replay, clock: FakeClock
) -> None:
    for i in range(50):
        clock.now = NOW + i * 10
        verifier.verify(make_proof(keys.ec, iat=clock.now), method="GET", url=URL, access_token=TOKEN)
    # Entries expire with their proofs' windows (60 s): at most seven are alive at any time.
    assert len(replay.store) <= 7
    assert all(len(key) == 48 for key, _ in replay.calls)


def test_replay_store_failure_fails_closed(keys: Keys, clock: FakeClock) -> None:
    def broken(key: str, expires_at: float) -> bool:
        raise ConnectionError("redis is down")

    verifier = DpopVerifier(clock=clock, replay=broken)
    err = refused(verifier, make_proof(keys.ec), "replay_store", code="auth_unavailable")
    assert "redis" not in err.message

    def unavailable(key: str, expires_at: float) -> bool:
        raise AuthError("auth_unavailable", retry_after=3)

    verifier = DpopVerifier(clock=clock, replay=unavailable)
    with pytest.raises(AuthError) as info:
        verifier.verify(make_proof(keys.ec), method="GET", url=URL, access_token=TOKEN)
    assert info.value.error_code == "auth_unavailable"
    assert info.value.retry_after == 3


def test_replay_callable_must_say_true(keys: Keys, clock: FakeClock) -> None:
    verifier = DpopVerifier(clock=clock, replay=lambda key, exp: t.cast(bool, 1))
    refused(verifier, make_proof(keys.ec), "dpop_replay")


@pytest.mark.parametrize(
    ("ath", "token"),
    [
        pytest.param(None, TOKEN, id="missing"),
        pytest.param(access_token_hash("another"), TOKEN, id="another-token"),
        pytest.param(access_token_hash(TOKEN) + "=", TOKEN, id="padded"),
        pytest.param(hashlib.sha256(TOKEN.encode()).hexdigest(), TOKEN, id="hex"),
        pytest.param(12, TOKEN, id="number"),
        pytest.param("é", TOKEN, id="non-ascii"),
    ],
)
def test_wrong_ath(ath: t.Any, token: str, keys: Keys, verifier: DpopVerifier) -> None:
    proof = make_proof(keys.ec, access_token=None, **({"ath": ath} if ath is not None else {}))
    refused(verifier, proof, "dpop_ath", access_token=token)


def test_token_bound_to_another_key(keys: Keys, verifier: DpopVerifier, replay: Replay) -> None:
    other = jwk_thumbprint(public_jwk(keys.ed))
    claims = {"sub": "alice", "cnf": {"jkt": other}}
    proof = make_proof(keys.ec)
    refused(verifier, proof, "dpop_binding", code="token_invalid", token_claims=claims)
    assert replay.calls == []  # the binding is checked before the jti is recorded
    result = verifier.verify(proof, method="GET", url=URL, access_token=TOKEN)
    with pytest.raises(AuthError) as info:
        check_binding(claims, result.jkt)
    assert info.value.error_code == "token_invalid"
    assert getattr(info.value, "reason", None) == "dpop_binding"
    bound = {"sub": "alice", "cnf": {"jkt": result.jkt}}
    check_binding(bound, result.jkt)
    verifier.verify(make_proof(keys.ec), method="GET", url=URL, access_token=TOKEN, token_claims=bound)


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"sub": "alice"}, id="no-cnf"),
        pytest.param({"cnf": None}, id="cnf-null"),
        pytest.param({"cnf": "jkt"}, id="cnf-string"),
        pytest.param({"cnf": {}}, id="cnf-empty"),
        pytest.param({"cnf": {"jkt": None}}, id="jkt-null"),
        pytest.param({"cnf": {"jkt": ["x"]}}, id="jkt-list"),
        pytest.param({"cnf": {"x5t#S256": "abc"}}, id="mtls-binding"),
    ],
)
def test_binding_needs_a_jkt(claims: dict[str, t.Any]) -> None:
    with pytest.raises(AuthError) as info:
        check_binding(claims, RFC9449_JKT)
    assert info.value.error_code == "token_invalid"
    assert getattr(info.value, "reason", None) == "dpop_binding"


def test_token_is_bound() -> None:
    assert token_is_bound({"cnf": {"jkt": RFC9449_JKT}})
    assert token_is_bound({"cnf": {"jkt": 5}})  # refused as Bearer, and as DPoP by check_binding
    assert not token_is_bound({"sub": "alice"})
    assert not token_is_bound({"cnf": "x"})
    assert not token_is_bound({"cnf": {"x5t#S256": "abc"}})


def test_a_100_kb_proof(keys: Keys, verifier: DpopVerifier) -> None:
    big = make_proof(keys.ec, padding="x" * 100_000)
    assert len(big) > 100_000
    refused(verifier, big, "malformed")
    refused(verifier, "a" * 100_000, "malformed")


def test_deeply_nested_json(keys: Keys, clock: FakeClock, replay: Replay) -> None:
    verifier = DpopVerifier(clock=clock, replay=replay, max_proof_length=2_000_000)
    deep = "[" * 200_000 + "]" * 200_000
    head = b64(('{"typ":"dpop+jwt","alg":"ES256","x":' + deep + "}").encode())
    refused(verifier, f"{head}.{b64json({})}.AAAA", "malformed")
    good_head = make_proof(keys.ec).split(".")[0]
    body = b64(('{"jti":' + deep + "}").encode())
    refused(verifier, f"{good_head}.{body}.AAAA", "malformed")


@pytest.mark.parametrize(
    "head",
    [
        pytest.param('{"typ":"dpop+jwt","alg":"ES256","alg":"ES256"}', id="duplicate-alg"),
        pytest.param('{"typ":"dpop+jwt","typ":"dpop+jwt","alg":"ES256"}', id="duplicate-typ"),
        pytest.param('["typ","dpop+jwt"]', id="array"),
        pytest.param('"dpop+jwt"', id="string"),
        pytest.param("null", id="null"),
        pytest.param('{"typ":"dpop+jwt","alg":"ES256","n":NaN}', id="nan"),
        pytest.param('{"typ":"dpop+jwt","alg":"ES256","n":' + "9" * 5000 + "}", id="int-over-digit-limit"),
        pytest.param('{"typ":"dpop+jwt",', id="truncated"),
        pytest.param("\ufeff{}", id="bom"),
    ],
)
def test_bad_header_json(head: str, verifier: DpopVerifier) -> None:
    refused(verifier, f"{b64(head.encode())}.{b64json({})}.AAAA", "malformed")


def test_header_not_utf8(verifier: DpopVerifier) -> None:
    head = b64(b'{"typ":"dpop+jwt","alg":"\xff"}')
    refused(verifier, f"{head}.{b64json({})}.AAAA", "malformed")


def test_duplicate_claims(keys: Keys, verifier: DpopVerifier) -> None:
    head = make_proof(keys.ec).split(".")[0]
    body = b64(f'{{"jti":"a","htm":"GET","htm":"POST","htu":"{URL}","iat":{NOW}}}'.encode())
    sig = b64(jwt.get_algorithm_by_name("ES256").sign(f"{head}.{body}".encode(), keys.ec))
    refused(verifier, f"{head}.{body}.{sig}", "malformed")


@pytest.mark.parametrize(
    "proof",
    [
        "",
        ".",
        "..",
        "a.b",
        "a.b.c.d",
        "a..c",
        "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.",
        "a.b.c\n",
        " a.b.c",
        "a.b.c=",
        "a+b.c/d.e",
        "Bearer abc",
        "\x00\x01\x02",
        "eyJ.eyJ.eyJ",
        "ab.cd.e",
        "é.é.é",
    ],
)
def test_garbage(proof: str, verifier: DpopVerifier) -> None:
    refused(verifier, proof, "malformed")


@pytest.mark.parametrize("proof", [None, b"a.b.c", 12, ["a.b.c"]])
def test_not_a_string(proof: t.Any, verifier: DpopVerifier) -> None:
    refused(verifier, proof, "malformed")


def test_non_canonical_base64(keys: Keys, verifier: DpopVerifier) -> None:
    head, body, sig = make_proof(keys.ec).split(".")
    # The last character of an 86-character ES256 signature carries 4 unused bits: set one.
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(sig) % 4 == 2
    bumped = sig[:-1] + last[last.index(sig[-1]) | 1]
    assert bumped != sig
    refused(verifier, f"{head}.{body}.{bumped}", "malformed")
    refused(verifier, f"{head}=.{body}.{sig}", "malformed")


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_mutated_proofs_fail_cleanly(data: st.DataObject) -> None:
    key = _FUZZ_KEY
    proof = make_proof(key)
    clock = FakeClock(NOW)
    verifier = DpopVerifier(clock=clock, replay=Replay(clock))
    i = data.draw(st.integers(0, len(proof) - 1))
    replacement = data.draw(st.text(max_size=8))
    mutated = proof[:i] + replacement + proof[i + 1 :]
    try:
        verifier.verify(mutated, method="GET", url=URL, access_token=TOKEN)
    except AuthError as err:
        assert err.error_code == "dpop_proof_invalid"
    else:
        assert mutated == proof or mutated.split(".")[:2] == proof.split(".")[:2]


@given(
    header=st.dictionaries(
        st.text(max_size=6),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=5),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
            max_leaves=8,
        ),
        max_size=5,
    )
)
@settings(max_examples=200, deadline=None)
def test_arbitrary_headers_fail_cleanly(header: dict[str, t.Any]) -> None:
    clock = FakeClock(NOW)
    verifier = DpopVerifier(clock=clock, replay=Replay(clock))
    for extra in ({}, {"typ": "dpop+jwt"}, {"typ": "dpop+jwt", "alg": "ES256"}):
        proof = f"{b64json({**header, **extra})}.{b64json({'jti': 'x'})}.AAAA"
        with pytest.raises(AuthError) as info:
            verifier.verify(proof, method="GET", url=URL, access_token=TOKEN)
        assert info.value.error_code == "dpop_proof_invalid"


_FUZZ_KEY = ec.generate_private_key(ec.SECP256R1())


# --- the verifier's own configuration ---------------------------------------------------------------


@pytest.mark.parametrize(
    "algorithms",
    [["HS256"], ["none"], ["ES256", "HS512"], [], ["RSA-OAEP"], ["es256"], [""]],
)
def test_verifier_refuses_bad_algorithms(algorithms: list[str]) -> None:
    with pytest.raises(ValueError):
        DpopVerifier(algorithms=algorithms, replay=lambda k, e: True)


def test_verifier_refuses_a_string_of_algorithms() -> None:
    with pytest.raises(TypeError):
        DpopVerifier(algorithms="ES256", replay=lambda k, e: True)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lifetime": 0},
        {"lifetime": -1},
        {"lifetime": float("nan")},
        {"lifetime": True},
        {"leeway": -1},
        {"leeway": "5"},
        {"max_proof_length": 10},
        {"max_proof_length": 8192.0},
    ],
)
def test_verifier_refuses_bad_numbers(kwargs: dict[str, t.Any]) -> None:
    with pytest.raises(ValueError):
        DpopVerifier(replay=lambda k, e: True, **kwargs)


def test_verifier_needs_a_replay_callable() -> None:
    with pytest.raises(TypeError):
        DpopVerifier(replay=t.cast(t.Any, set()))


def test_default_algorithms() -> None:
    assert DEFAULT_ALGORITHMS == ("ES256", "PS256", "RS256", "EdDSA")
    assert DpopVerifier(replay=lambda k, e: True).algorithms == DEFAULT_ALGORITHMS


# --- server nonces (RFC 9449 §9) -------------------------------------------------------------------


def test_nonce_source(clock: FakeClock) -> None:
    nonces = NonceSource(b"n" * 32, window=60, clock=clock)
    first = nonces.current()
    assert len(first) == 22 and first == nonces.current()
    assert all(c.isalnum() or c in "-_" for c in first)  # RFC 9449 §8.1 NQCHAR, and no quoting needed
    assert nonces.accepts(first)
    clock.now += 60
    second = nonces.current()
    assert second != first
    assert nonces.accepts(first) and nonces.accepts(second)  # the previous window still counts
    clock.now += 60
    assert not nonces.accepts(first)
    assert not nonces.accepts("x" * 22) and not nonces.accepts("") and not nonces.accepts(t.cast(t.Any, None))
    assert not nonces.accepts("é" * 22)
    other = NonceSource(b"m" * 32, window=60, clock=clock)
    assert not other.accepts(nonces.current())


@pytest.mark.parametrize(
    "kwargs", [{"secret": b"short"}, {"secret": "n" * 32}, {"window": 0}, {"window": True}, {"window": 10**9}]
)
def test_nonce_source_refuses(kwargs: dict[str, t.Any]) -> None:
    args: dict[str, t.Any] = {"secret": b"n" * 32, **kwargs}
    with pytest.raises(ValueError):
        NonceSource(**args)


def test_required_nonce(keys: Keys, clock: FakeClock, replay: Replay) -> None:
    nonces = NonceSource(b"n" * 32, window=30, clock=clock)
    verifier = DpopVerifier(clock=clock, replay=replay, nonces=nonces)
    refused(verifier, make_proof(keys.ec), "dpop_nonce")
    refused(verifier, make_proof(keys.ec, nonce="made-up-nonce-value-xx"), "dpop_nonce")
    refused(verifier, make_proof(keys.ec, nonce=123), "dpop_nonce")
    assert replay.calls == []
    verifier.verify(make_proof(keys.ec, nonce=nonces.current()), method="GET", url=URL, access_token=TOKEN)
    stale = nonces.current()
    clock.now += 61
    refused(verifier, make_proof(keys.ec, nonce=stale, iat=clock.now), "dpop_nonce")


def test_exact_nonce(keys: Keys, verifier: DpopVerifier) -> None:
    refused(verifier, make_proof(keys.ec, nonce="abc"), "dpop_nonce", nonce="abd")
    refused(verifier, make_proof(keys.ec), "dpop_nonce", nonce="abc")
    verifier.verify(make_proof(keys.ec, nonce="abc"), method="GET", url=URL, access_token=TOKEN, nonce="abc")


# --- interoperability: proofs nobody here wrote ----------------------------------------------------


def _claims(htm: str = "GET", htu: str = URL, **extra: t.Any) -> dict[str, t.Any]:
    return {
        "jti": secrets.token_urlsafe(12),
        "htm": htm,
        "htu": htu,
        "iat": int(NOW),
        "ath": access_token_hash(TOKEN),
        **extra,
    }


@pytest.mark.parametrize(
    ("kty", "arg", "alg"),
    [
        ("EC", "P-256", "ES256"),
        ("RSA", 2048, "PS256"),
        ("RSA", 2048, "RS256"),
        ("OKP", "Ed25519", "Ed25519"),
    ],
)
def test_joserfc_proofs(kty: str, arg: t.Any, alg: str, verifier: DpopVerifier) -> None:
    jose_jwk = pytest.importorskip("joserfc.jwk")
    jose_jws = pytest.importorskip("joserfc.jws")
    key = {"EC": jose_jwk.ECKey, "RSA": jose_jwk.RSAKey, "OKP": jose_jwk.OKPKey}[kty].generate_key(arg)
    public = key.as_dict(private=False)
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": public}
    registry = jose_jws.JWSRegistry(algorithms=[alg])
    proof = jose_jws.serialize_compact(header, json.dumps(_claims()), key, registry=registry)
    result = verifier.verify(proof, method="GET", url=URL, access_token=TOKEN)
    assert result.jkt == key.thumbprint()
    # joserfc also signs a proof carrying its private key if asked: we refuse it.
    leaky = jose_jws.serialize_compact(
        {**header, "jwk": key.as_dict(private=True)}, json.dumps(_claims()), key, registry=registry
    )
    refused(verifier, leaky, "dpop_jwk")


@pytest.mark.parametrize(
    ("kty", "params", "alg"),
    [
        ("EC", {"crv": "P-256"}, "ES256"),
        ("EC", {"crv": "P-384"}, "ES384"),
        ("RSA", {"size": 2048}, "PS256"),
        ("OKP", {"crv": "Ed25519"}, "EdDSA"),
    ],
)
def test_jwcrypto_proofs(kty: str, params: dict[str, t.Any], alg: str, verifier: DpopVerifier) -> None:
    jc_jwk = pytest.importorskip("jwcrypto.jwk")
    jc_jws = pytest.importorskip("jwcrypto.jws")
    key = jc_jwk.JWK.generate(kty=kty, **params)
    public = key.export_public(as_dict=True)
    token = jc_jws.JWS(json.dumps(_claims(htm="POST")))
    token.add_signature(key, alg=alg, protected=json.dumps({"typ": "dpop+jwt", "alg": alg, "jwk": public}))
    proof = token.serialize(compact=True)
    result = verifier.verify(proof, method="POST", url=URL, access_token=TOKEN)
    assert result.jkt == key.thumbprint()
    refused(verifier, proof, "dpop_replay", method="POST")


def test_pydpop_client_proofs(clock: FakeClock, replay: Replay) -> None:
    pydpop = pytest.importorskip("pydpop")
    key = pydpop.generate_key()
    verifier = DpopVerifier(clock=clock, replay=replay)
    proof = pydpop.generate_proof(private_key=key, htm="DELETE", htu=URL + "?id=5", iat=int(NOW), access_token=TOKEN)
    result = verifier.verify(proof, method="DELETE", url=URL + "?id=5", access_token=TOKEN)
    assert result.jkt == pydpop.jwk_thumbprint(pydpop.public_jwk(key))
    refused(verifier, proof, "dpop_replay", method="DELETE")
    # Its proof for another method, or for another token, is refused.
    other = pydpop.generate_proof(private_key=key, htm="GET", htu=URL, iat=int(NOW), access_token=TOKEN)
    refused(verifier, other, "dpop_htm", method="DELETE")
    other = pydpop.generate_proof(private_key=key, htm="GET", htu=URL, iat=int(NOW), access_token="stolen")
    refused(verifier, other, "dpop_ath")


def test_our_proofs_verify_elsewhere(keys: Keys) -> None:
    """The reverse direction: the fixture's proofs (PyJWT) verify with pydpop's verifier."""
    pydpop = pytest.importorskip("pydpop")
    proof = make_proof(keys.ec, htm="GET", iat=int(NOW))
    result = pydpop.verify_proof(proof=proof, htm="GET", htu=URL, access_token=TOKEN, now=int(NOW))
    assert result["jwk_thumbprint"] == jwk_thumbprint(public_jwk(keys.ec))


# --- across processes: the jti through a real Redis --------------------------------------------------


def _remember_once(store: RedisStore) -> cabc.Callable[[str, float], bool]:
    def remember(key: str, expires_at: float) -> bool:
        return store.put_if_absent(key, 1.0, expires_at)

    return remember


@pytest.mark.redis
def test_replay_is_caught_across_processes(keys: Keys, redis_url: str) -> None:
    stores = [RedisStore(redis_url), RedisStore(redis_url)]
    clock = time.time  # Redis expires entries on its own clock
    try:
        verifiers = [DpopVerifier(clock=clock, replay=_remember_once(store)) for store in stores]
        proof = make_proof(keys.ec, iat=clock())
        verifiers[0].verify(proof, method="GET", url=URL, access_token=TOKEN)
        refused(verifiers[1], proof, "dpop_replay")
    finally:
        for store in stores:
            store.close()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=6,
)
_JWK_MEMBERS = st.sampled_from(["kty", "crv", "x", "y", "n", "e", "d", "kid", "alg", "use", "key_ops"])


@given(
    jwk=st.dictionaries(_JWK_MEMBERS, _JSON | st.sampled_from(["EC", "RSA", "OKP", "P-256", "Ed25519", "AQAB"])),
    alg=st.sampled_from(["ES256", "RS256", "EdDSA"]),
)
@settings(max_examples=300, deadline=None)
def test_arbitrary_jwks_fail_cleanly(jwk: dict[str, t.Any], alg: str) -> None:
    clock = FakeClock(NOW)
    verifier = DpopVerifier(clock=clock, replay=Replay(clock))
    proof = f"{b64json({'typ': 'dpop+jwt', 'alg': alg, 'jwk': jwk})}.{b64json({'jti': 'x'})}.AAAA"
    with pytest.raises(AuthError) as info:
        verifier.verify(proof, method="GET", url=URL, access_token=TOKEN)
    assert info.value.error_code == "dpop_proof_invalid"


@given(claims=st.dictionaries(st.sampled_from(["jti", "htm", "htu", "iat", "ath", "nonce"]), _JSON | st.just("\ud800")))
@settings(max_examples=300, deadline=None)
def test_arbitrary_signed_claims_fail_cleanly(claims: dict[str, t.Any]) -> None:
    clock = FakeClock(NOW)
    verifier = DpopVerifier(clock=clock, replay=Replay(clock), nonces=NonceSource(b"n" * 32, clock=clock))
    full = {"jti": "x", "htm": "GET", "htu": URL, "iat": NOW, "ath": access_token_hash(TOKEN), **claims}
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(_FUZZ_KEY)}
    proof = resign(_FUZZ_KEY, header, full)
    for token in (TOKEN, "caf\u00e9", "\ud800"):
        try:
            verifier.verify(proof, method="GET", url=URL, access_token=token, nonce="\ud800")
        except AuthError as err:
            assert err.error_code == "dpop_proof_invalid"
        else:  # pragma: no cover - the nonce never matches
            pytest.fail("accepted")


@pytest.mark.parametrize("value", ["\ud800", "caf\u00e9"])
def test_odd_strings_in_binding(value: str) -> None:
    with pytest.raises(AuthError) as info:
        check_binding({"cnf": {"jkt": value}}, RFC9449_JKT)
    assert info.value.error_code == "token_invalid"
    with pytest.raises(AuthError):
        check_binding({"cnf": {"jkt": RFC9449_JKT}}, value)
    assert access_token_hash(value)


def test_two_dpop_headers_joined_by_the_server_are_malformed(
    keys: Keys, verifier: DpopVerifier, replay: Replay
) -> None:
    # WSGI servers join repeated header lines with ", "; a compact JWS holds neither, so the
    # joined value can never pass as one proof (the header layer reports it as dpop_multiple).
    first, second = make_proof(keys.ec), make_proof(keys.ec)
    for joined in (f"{first}, {second}", f"{first},{second}", f"{first}, "):
        refused(verifier, joined, "malformed")
    assert replay.calls == []
