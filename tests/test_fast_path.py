"""The HMAC fast path in ``JwtCodec`` decides exactly as PyJWT does.

``_fast_hmac.HmacFastPath`` (``JwtCodec._fast``) verifies the common token shape in one pass and
hands anything unusual to PyJWT. This differential test throws valid,
tampered and odd tokens at both paths and requires the same outcome: the same
claims, or the same machine code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import typing as t

import pytest
from conftest import SECRET
from conftest import make_app
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from kit import B64URL
from kit import assert_401
from kit import b64
from kit import bearer
from kit import guarded_app
from kit import hs256

from flask_authgate import AuthError
from flask_authgate.jwt_tokens import JwtCodec
from flask_authgate.jwt_tokens import _kid_for_secret

KEY = SECRET.encode()
KID = _kid_for_secret(KEY)
Outcome = tuple[str, t.Any]


def fast_decode(c: JwtCodec) -> t.Callable[[str], t.Any]:
    """The codec's fast path (every test codec here has one)."""
    assert c._fast is not None
    return c._fast.decode


def sign(header: dict[str, t.Any], payload: t.Any, *, key: bytes = KEY, alg: str = "HS256") -> str:
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(payload).encode())
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    sig = hmac.new(key, f"{head}.{body}".encode(), digest).digest()
    return f"{head}.{body}.{b64(sig)}"


def codec(config: dict[str, t.Any] | None = None) -> JwtCodec:
    app, _ = make_app(config)
    return t.cast(JwtCodec, app.extensions["authgate"].tokens.codec)


def outcome(fn: t.Callable[[str], dict[str, t.Any] | None], token: str) -> Outcome | None:
    try:
        result = fn(token)
    except AuthError as err:
        return ("error", err.error_code)
    return None if result is None else ("ok", result)


def assert_same(c: JwtCodec, token: str) -> Outcome:
    slow = outcome(c._decode_pyjwt, token)
    fast = outcome(fast_decode(c), token)
    assert slow is not None
    assert (fast or slow) == slow, token
    return slow


GOOD = {"sub": "alice", "exp": 4_000_000_000, "jti": "j1", "type": "access"}
HEADER = {"alg": "HS256", "typ": "JWT", "kid": KID}

CASES = {
    "valid": sign(HEADER, GOOD),
    "no-typ": sign({"alg": "HS256", "kid": KID}, GOOD),
    "no-kid": sign({"alg": "HS256", "typ": "JWT"}, GOOD),
    "unknown-kid": sign({**HEADER, "kid": "other"}, GOOD),
    "kid-int": sign({**HEADER, "kid": 5}, GOOD),
    "kid-null": sign({**HEADER, "kid": None}, GOOD),
    "typ-int": sign({**HEADER, "typ": 5}, GOOD),
    "crit": sign({**HEADER, "crit": ["x"], "x": 1}, GOOD),
    "jku": sign({**HEADER, "jku": "http://127.0.0.1:1/jwks"}, GOOD),
    "b64-false": sign({**HEADER, "b64": False, "crit": ["b64"]}, GOOD),
    "alg-none": sign({**HEADER, "alg": "none"}, GOOD),
    "alg-HS384": sign({**HEADER, "alg": "HS384"}, GOOD, alg="HS384"),
    "wrong-key": sign(HEADER, GOOD, key=b"k" * 64),
    "payload-array": sign(HEADER, [1, 2]),
    "payload-string": sign(HEADER, "x"),
    "missing-exp": sign(HEADER, {"sub": "alice"}),
    "missing-sub": sign(HEADER, {"exp": 4_000_000_000}),
    "null-sub": sign(HEADER, {**GOOD, "sub": None}),
    "sub-int": sign(HEADER, {**GOOD, "sub": 5}),
    "jti-int": sign(HEADER, {**GOOD, "jti": 5}),
    "aud-unexpected": sign(HEADER, {**GOOD, "aud": "api"}),
    "aud-empty": sign(HEADER, {**GOOD, "aud": ""}),
    "aud-empty-list": sign(HEADER, {**GOOD, "aud": []}),
    "iss-any": sign(HEADER, {**GOOD, "iss": "someone"}),
}


def _tampered() -> dict[str, str]:
    head, body, sig = CASES["valid"].split(".")
    flipped = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    noncanonical = sig[:-1] + chr(ord(sig[-1]) ^ 1) if sig[-1] not in "AQgw" else sig[:-1] + "B"
    return {
        "sig-flipped": f"{head}.{body}.{flipped}",
        "sig-padded": f"{head}.{body}.{sig}=",
        "sig-noncanonical": f"{head}.{body}.{noncanonical}",
        "sig-short": f"{head}.{body}.{sig[:-2]}",
        "payload-swapped": f"{head}.{b64(json.dumps({**GOOD, 'sub': 'mallory'}).encode())}.{sig}",
        "two-segments": f"{head}.{body}",
        "four-segments": f"{head}.{body}.{sig}.{sig}",
        "bad-base64-header": f"{head}x.{body}.{sig}",
        "empty-payload": f"{head}..{sig}",
    }


ALL = {**CASES, **_tampered()}


@pytest.mark.parametrize("name", sorted(ALL))
def test_fast_path_matches_pyjwt(name: str) -> None:
    result = assert_same(codec(), ALL[name])
    # PyJWT ignores jku and a non-string typ; an unknown HMAC kid tries every configured key.
    if name in (
        "valid",
        "no-typ",
        "no-kid",
        "aud-empty",
        "aud-empty-list",
        "iss-any",
        "jku",
        "typ-int",
        "unknown-kid",
    ):
        assert result[0] == "ok"
    elif name != "sig-padded":  # PyJWT 2.15 accepts a padded signature, 2.14 does not
        assert result == ("error", "token_invalid")
    # Whatever PyJWT says, the codec refuses padding before either path runs (RFC 7515 §2).
    if "=" in ALL[name]:
        with pytest.raises(AuthError):
            codec().decode(ALL[name], "access")


@pytest.mark.parametrize("name", ["valid", "no-typ", "no-kid", "unknown-kid"])
def test_fast_path_handles_the_common_token(name: str) -> None:
    # Verified here, PyJWT not consulted: with one secret, any kid (or none) names it.
    assert fast_decode(codec())(CASES[name]) == GOOD


def test_fast_path_stays_out_of_a_key_pyjwt_refuses() -> None:
    # Config refuses a PEM-looking HMAC secret; settings built around that check must still not
    # get a fast path that would accept what PyJWT refuses on every call.
    import dataclasses

    settings = codec()._settings
    pem = b"-----BEGIN PUBLIC KEY-----\n" + b"A" * 64 + b"\n-----END PUBLIC KEY-----\n"
    c = JwtCodec(dataclasses.replace(settings, keys=dataclasses.replace(settings.keys, secrets=(pem,))))
    assert c._fast is None
    assert codec()._fast is not None


@pytest.mark.parametrize(
    ("claims", "ok"),
    [
        pytest.param({"aud": "api", "iss": "https://issuer"}, True, id="both-match"),
        pytest.param({"aud": ["x", "api"], "iss": "https://issuer"}, True, id="aud-list"),
        pytest.param({"aud": "apix", "iss": "https://issuer"}, False, id="aud-prefix"),
        pytest.param({"aud": [5], "iss": "https://issuer"}, False, id="aud-not-str"),
        pytest.param({"aud": 5, "iss": "https://issuer"}, False, id="aud-number"),
        pytest.param({"iss": "https://issuer"}, False, id="aud-missing"),
        pytest.param({"aud": "api"}, False, id="iss-missing"),
        pytest.param({"aud": "api", "iss": None}, False, id="iss-null"),
        pytest.param({"aud": "api", "iss": "https://ISSUER"}, False, id="iss-case"),
    ],
)
def test_audience_and_issuer_match_pyjwt(claims: dict[str, t.Any], ok: bool) -> None:
    c = codec({"AUTHGATE_JWT_AUDIENCE": "api", "AUTHGATE_JWT_ISSUER": "https://issuer"})
    result = assert_same(c, sign(HEADER, {**GOOD, **claims}))
    assert (result[0] == "ok") is ok


def test_rotation_list_key_by_kid() -> None:
    old = b"o" * 64
    c = codec({"AUTHGATE_JWT_SECRET": [SECRET, old.decode()]})
    token = sign({**HEADER, "kid": _kid_for_secret(old)}, GOOD, key=old)
    assert fast_decode(c)(token) == GOOD
    assert assert_same(c, token) == ("ok", GOOD)


claim_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.text(max_size=8),
    st.lists(st.text(max_size=4), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(
    claims=st.dictionaries(st.sampled_from(["sub", "exp", "jti", "aud", "iss", "nbf", "x"]), claim_values, max_size=6),
    header_extra=st.dictionaries(st.sampled_from(["typ", "kid", "crit", "cty", "x5u"]), claim_values, max_size=2),
    alg=st.sampled_from(["HS256", "HS384", "none", "RS256"]),
)
def test_fast_path_matches_pyjwt_on_arbitrary_tokens(
    claims: dict[str, t.Any], header_extra: dict[str, t.Any], alg: str
) -> None:
    header = {"alg": alg, "kid": KID, **header_extra}
    token = sign(header, claims, alg=alg if alg.startswith("HS") else "HS256")
    assert_same(CODEC, token)


CODEC = codec()


def _set_spare_bits(segment: str) -> str:
    # The unused low bits of the last character set: the same bytes, non-canonical base64.
    spare = {2: 0xF, 3: 0x3}[len(segment) % 4]
    return segment[:-1] + B64URL[B64URL.index(segment[-1]) | spare]


@pytest.mark.parametrize("segment", ["header", "payload"])
def test_fast_path_matches_pyjwt_on_noncanonical_segments(segment: str) -> None:
    checked = 0
    for pad in range(4):  # lengths mod 4 of 2 and 3 leave spare bits in the last character
        head = b64(json.dumps({**HEADER, "kid": KID + "y" * pad}).encode())  # kid: a fast-path header
        body = b64(json.dumps({**GOOD, "x": "y" * pad}).encode())
        if len(head if segment == "header" else body) % 4 < 2:
            continue
        if segment == "header":
            head = _set_spare_bits(head)
        else:
            body = _set_spare_bits(body)
        sig = hmac.new(KEY, f"{head}.{body}".encode(), hashlib.sha256).digest()
        assert assert_same(CODEC, f"{head}.{body}.{b64(sig)}") == ("error", "token_invalid")
        checked += 1
    assert checked >= 2


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
