"""DPoP (RFC 9449): proof verification, key thumbprints and token binding.

The building blocks, free of Flask and of the extension's settings:

* :func:`jwk_thumbprint`: the RFC 7638 SHA-256 thumbprint of a public JWK
  (what an access token's ``cnf.jkt`` holds, RFC 9449 §6).
* :func:`normalize_htu`: the RFC 3986 §6.2.2-6.2.3 normal form in which a
  proof's ``htu`` and the request URL are compared (RFC 9449 §4.3 step 9).
* :class:`DpopVerifier`: every check of RFC 9449 §4.3 on one proof, cheapest
  first, the ``jti`` replay check last so a proof that fails any other check
  never uses up its ``jti``.
* :func:`check_binding` / :func:`token_is_bound`: the access token's
  ``cnf.jkt`` against the proof's key (RFC 9449 §6.1, §7.1).
* :class:`NonceSource`: optional stateless server nonces (RFC 9449 §9).

Every failure is an :class:`~flask_authgate.errors.AuthError` with a machine
``reason`` (for logs and signals, never the response): a proof that fails a
check of its own is ``dpop_proof_invalid``, a token whose binding does not
match is ``token_invalid``. No PyJWT, ``cryptography`` or ``json`` exception
leaves this module, and none of their text: they can echo attacker input.

Only PyJWT's algorithm objects are used here (no other JOSE library), reached
through :mod:`._pyjwt`, the one module importing ``jwt``. The compact JWS is
split and decoded here rather than by ``jwt.PyJWS``, on purpose: a proof's key
is in its own header (it must be read, strictly, before any key exists), and
PyJWT's decoding lets through what a proof must not have: duplicate member
names (last one wins), non-canonical base64url, ``NaN``/``Infinity`` and
unbounded nesting. The signature itself is PyJWT's; the interop tests verify
proofs made by joserfc, jwcrypto and pydpop, and the RFC 9449 examples.
"""

from __future__ import annotations

import base64
import binascii
import collections.abc as cabc
import hashlib
import hmac
import json
import logging
import math
import re
import time
import typing as t

from ._json import json_number as _number
from ._pyjwt import get_default_algorithms
from .errors import AuthError
from .errors import ErrorCode

log = logging.getLogger("flask_authgate")

#: The proof algorithms accepted when nothing else is configured (DESIGN.md).
DEFAULT_ALGORITHMS: tuple[str, ...] = ("ES256", "PS256", "RS256", "EdDSA")
#: Longest ``DPoP`` header value considered (the proof is refused, unparsed, beyond it).
MAX_PROOF_LENGTH = 8192
#: Longest ``jti`` accepted. RFC 9449 §4.2 asks for 96 bits of randomness; 256 characters is generous.
MAX_JTI_LENGTH = 256
#: Longest URL :func:`normalize_htu` accepts.
MAX_URL_LENGTH = 8192

# alg -> (kty, accepted crv values or None for RSA). RFC 7518 §3.1, RFC 8037 §3.1, RFC 8812 §3.2.
_ALG_KEYS: dict[str, tuple[str, frozenset[str] | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "ES256K": ("EC", frozenset({"secp256k1"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
    # RFC 9864 §2.2: the fully-specified names of the two EdDSA variants.
    "Ed25519": ("OKP", frozenset({"Ed25519"})),
    "Ed448": ("OKP", frozenset({"Ed448"})),
}
#: PyJWT's name for an algorithm, where it differs (its EdDSA verifies either curve).
_PYJWT_NAMES = {"Ed25519": "EdDSA", "Ed448": "EdDSA"}
#: RFC 7638 §3.2 required members per key type (RFC 8037 §2 for OKP).
_REQUIRED_MEMBERS: dict[str, tuple[str, ...]] = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}
#: Members that only a private (or symmetric) JWK has: RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: Header parameters that make a JWS mean something else than a plain signature
#: (RFC 7515 §4.1.11 crit, RFC 7797 b64): refused rather than half understood.
_REFUSED_HEADERS = frozenset({"crit", "b64", "zip", "enc"})
_RSA_MIN_BITS = 2048
_RSA_MAX_BITS = 8192
#: An RSA public exponent above 2**32 only makes verification slow (65537 is the norm).
_RSA_MAX_EXPONENT_BYTES = 4

_SEGMENT = r"[A-Za-z0-9_-]+"
_COMPACT = re.compile(rf"({_SEGMENT})\.({_SEGMENT})\.({_SEGMENT})")
_HEXDIG = "0123456789ABCDEFabcdef"
# RFC 3986 §2.3 unreserved characters, decoded when percent-encoded (§6.2.2.2).
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# What may stand unencoded in a path (RFC 3986 §3.3 pchar and "/"); anything else is percent-encoded.
_PATH_SAFE = _UNRESERVED | frozenset("!$&'()*+,;=:@/")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=%-]+|\[[0-9A-Fa-f:.]+\]|\[v[0-9A-Fa-f]+\.[A-Za-z0-9._~!$&'()*+,;=:-]+\]")


def _refuse(code: ErrorCode, reason: str) -> AuthError:
    err = AuthError(code)
    # The lead's AuthError gains a declared ``reason``; a plain attribute works either way.
    setattr(err, "reason", reason)  # noqa: B010
    log.debug("authgate: DPoP refused (%s: %s)", code, reason)
    return err


def _bytes(text: str) -> bytes:
    # JSON strings may hold lone surrogates ("\ud800"), which plain UTF-8 refuses to encode.
    return text.encode("utf-8", "surrogatepass")


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(segment: str) -> bytes:
    """Decode unpadded, canonical base64url; :class:`ValueError` otherwise."""
    if not isinstance(segment, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", segment) or len(segment) % 4 == 1:
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):  # pragma: no cover - the pattern above rules it out
        raise ValueError("not base64url") from None
    if _b64url_encode(data) != segment:
        raise ValueError("non-canonical base64url")  # unused low bits set (RFC 4648 §3.5)
    return data


def _reject_constant(name: str) -> t.NoReturn:
    raise ValueError("NaN and Infinity are not JSON")


def _unique_object(pairs: list[tuple[str, t.Any]]) -> dict[str, t.Any]:
    # RFC 7515 §5.2 step 4 / RFC 7519 §7.2 step 10: duplicate member names are refused here.
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate member name")
    return out


def _json_object(data: bytes) -> dict[str, t.Any]:
    """A strict JSON object: UTF-8, no duplicate names, no NaN; :class:`ValueError` otherwise."""
    # RecursionError (deep nesting) and the int-digits limit are ValueError-like here too.
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_unique_object,
            parse_constant=_reject_constant,
        )
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise ValueError("not a JSON object") from None
    if type(value) is not dict:
        raise ValueError("not a JSON object")
    return value


def jwk_thumbprint(jwk: cabc.Mapping[str, t.Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK, base64url without padding.

    Only the required members of the key type take part (RFC 7638 §3.2:
    ``e``, ``kty``, ``n`` for RSA; ``crv``, ``kty``, ``x``, ``y`` for EC;
    ``crv``, ``kty``, ``x`` for OKP, RFC 8037 §2), in lexicographic order,
    without whitespace (§3.3), so other members (``kid``, ``alg``, ``use``)
    never change it.

    :param jwk: The JWK as a mapping.
    :raises ValueError: For another ``kty`` (``oct`` included: a symmetric key
        has no public thumbprint here), or a required member that is missing
        or not a string.

    .. versionadded:: 0.2
    """
    if not isinstance(jwk, cabc.Mapping):
        raise ValueError("a JWK is a JSON object")
    kty = jwk.get("kty")
    members = _REQUIRED_MEMBERS.get(kty) if isinstance(kty, str) else None
    if members is None:
        raise ValueError("thumbprints are computed for RSA, EC and OKP keys only")
    subset: dict[str, str] = {}
    for name in members:
        value = jwk.get(name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"the JWK member {name!r} must be a non-empty string")
        subset[name] = value
    # RFC 7638 §3.3: sorted names, no whitespace, UTF-8 (the members are base64url or short names).
    canonical = json.dumps(subset, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def _normalize_percent(text: str, safe: frozenset[str]) -> str:
    """RFC 3986 §6.2.2.1-6.2.2.2: upper-case hex, decode unreserved, encode what is not ``safe``."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "%":
            hexdigits = text[i + 1 : i + 3]
            if len(hexdigits) != 2 or not all(h in _HEXDIG for h in hexdigits):
                raise ValueError("bad percent-encoding")
            char = chr(int(hexdigits, 16))
            out.append(char if char in _UNRESERVED else "%" + hexdigits.upper())
            i += 3
            continue
        if c in safe:
            out.append(c)
        else:
            # Characters a URI may not hold raw (non-ASCII, space...): their UTF-8 percent-encoding,
            # so an IRI-style URL and its URI form compare equal.
            out.append("".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass")))
        i += 1
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4."""
    output: list[str] = []
    segments = path.split("/")
    # An absolute path: the first segment is the empty string before the leading "/".
    for i, segment in enumerate(segments[1:], start=1):
        last = i == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if output:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/" + "/".join(output)


def normalize_htu(url: str) -> str:
    """The form in which a proof's ``htu`` and the request URL are compared.

    RFC 9449 §4.3 step 9 compares ``htu`` with the request URI "ignoring any
    query and fragment parts" and says servers SHOULD apply RFC 3986
    syntax-based (§6.2.2) and scheme-based (§6.2.3) normalisation first.
    So: the scheme and host are lower-cased, the scheme's default port is
    removed (``:443`` for ``https``, ``:80`` for ``http``), percent-encodings
    are upper-cased and unreserved ones decoded, dot segments are removed, an
    empty path becomes ``/``, and the query and fragment are dropped.

    :param url: An absolute ``http`` or ``https`` URL (for the request side,
        Flask's ``request.url``, which honours ``ProxyFix``).
    :raises ValueError: For anything else: another scheme, no host, user
        information, a bad port, a malformed percent-encoding, control
        characters, or more than :data:`MAX_URL_LENGTH` characters.

    .. versionadded:: 0.2
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise ValueError("not a URL")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise ValueError("control characters or whitespace in the URL")
    scheme, sep, rest = url.partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS or not rest.startswith("//"):
        raise ValueError("not an absolute http(s) URL")
    rest = rest[2:]
    # RFC 3986 §3.2: the authority ends at the first "/", "?" or "#".
    end = len(rest)
    for delim in "/?#":
        at = rest.find(delim)
        if at != -1:
            end = min(end, at)
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        raise ValueError("user information in an http(s) URL")  # RFC 9110 §4.2.4
    host, port_text = authority, ""
    if authority.startswith("["):
        close = authority.find("]")
        if close == -1:
            raise ValueError("bad IP literal")
        host, after = authority[: close + 1], authority[close + 1 :]
        if after:
            if not after.startswith(":"):
                raise ValueError("bad authority")
            port_text = after[1:]
    elif ":" in authority:
        host, _, port_text = authority.rpartition(":")
    if not host or not _HOST.fullmatch(host):
        raise ValueError("bad host")
    host = _normalize_percent(host, _UNRESERVED | frozenset("!$&'()*+,;=[]:")).lower()
    port: int | None = None
    if port_text:
        if not port_text.isdigit() or not port_text.isascii() or len(port_text) > 5:
            raise ValueError("bad port")
        port = int(port_text)
        if port > 65535:
            raise ValueError("bad port")
    # RFC 3986 §6.2.3: an empty port, or the scheme's default, is the same as none.
    authority = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = tail
    for delim in "?#":
        at = path.find(delim)
        if at != -1:
            path = path[:at]
    path = _normalize_percent(path, _PATH_SAFE)
    path = _remove_dot_segments(path) if path else "/"
    return f"{scheme}://{authority}{path}"


def access_token_hash(access_token: str) -> str:
    """The ``ath`` value for an access token: base64url(SHA-256(ASCII token)) (RFC 9449 §4.2).

    A token is ASCII (RFC 6750 §2.1 ``b64token``); anything else is hashed as UTF-8, never refused here.
    """
    return _b64url_encode(hashlib.sha256(access_token.encode("utf-8", "surrogatepass")).digest())


class DpopProof(t.NamedTuple):
    """What a verified proof established."""

    #: The RFC 7638 thumbprint of the proof's key (compare with the token's ``cnf.jkt``).
    jkt: str
    #: The proof's ``jti``.
    jti: str
    #: The proof's ``iat``.
    iat: float
    #: The proof's ``alg``.
    alg: str


class NonceSource:
    """Stateless server nonces for ``DPoP-Nonce`` (RFC 9449 §9), nothing stored.

    Time is cut into windows of ``window`` seconds; the nonce of a window is an
    HMAC-SHA256 of its number under ``secret`` (truncated to 128 bits, base64url),
    so every process with the same secret issues and accepts the same nonces
    without sharing state. :meth:`accepts` takes the current window's nonce and
    the previous one, so a nonce stays valid for between ``window`` and
    ``2 * window`` seconds. A nonce is not single-use (the proof's ``jti`` is);
    it bounds how far ahead a stolen key can pre-compute proofs (RFC 9449 §11.2).

    :param secret: At least 32 bytes; not the JWT signing key (use a separate one).
    :param window: Seconds per nonce.
    :param clock: Wall-clock time in seconds.

    .. versionadded:: 0.2
    """

    def __init__(self, secret: bytes, *, window: float = 60, clock: cabc.Callable[[], float] = time.time) -> None:
        if not isinstance(secret, bytes) or len(secret) < 32:
            raise ValueError("the nonce secret must be at least 32 bytes")
        if isinstance(window, bool) or not isinstance(window, (int, float)) or not 1 <= window <= 86400:
            raise ValueError("the nonce window must be between 1 and 86400 seconds")
        self._secret = secret
        self._window = float(window)
        self._clock = clock

    def _for(self, counter: int) -> str:
        mac = hmac.new(self._secret, b"authgate-dpop-nonce\x00" + str(counter).encode("ascii"), hashlib.sha256)
        return _b64url_encode(mac.digest()[:16])

    def current(self) -> str:
        """The nonce to send in ``DPoP-Nonce`` now (RFC 9449 §9: a ``1*NQCHAR`` value)."""
        return self._for(math.floor(self._clock() / self._window))

    def accepts(self, nonce: str) -> bool:
        """Whether ``nonce`` is this or the previous window's nonce (compared in constant time)."""
        if not isinstance(nonce, str) or len(nonce) != 22:
            return False
        counter = math.floor(self._clock() / self._window)
        given = nonce.encode("ascii", "replace")
        current = hmac.compare_digest(given, self._for(counter).encode("ascii"))
        previous = hmac.compare_digest(given, self._for(counter - 1).encode("ascii"))
        return current or previous


class DpopVerifier:
    """Check DPoP proofs as RFC 9449 §4.3 says, for one configuration.

    :param algorithms: The accepted proof ``alg`` values, asymmetric only
        (``RS*``, ``PS*``, ``ES*``, ``EdDSA``, and RFC 9864's ``Ed25519`` and
        ``Ed448``); RFC 9449 §4.2 forbids ``none`` and MAC algorithms.
    :param lifetime: How many seconds after its ``iat`` a proof is accepted.
    :param leeway: Seconds of clock skew, in both directions.
    :param clock: Wall-clock time in seconds (the proof's ``iat`` is wall-clock).
    :param replay: Called as ``replay(key, expires_at)`` once every other check
        passed; returns ``True`` the first time ``key`` is seen before
        ``expires_at`` (a wall-clock time), ``False`` for a replay. It must be
        atomic across processes and bounded by the expiry (the revocation
        store's ``remember_once``); the verifier keeps nothing itself. An
        :class:`AuthError` from it (``auth_unavailable``) passes through; any
        other exception becomes ``auth_unavailable`` (fail closed).
    :param max_proof_length: Longest proof considered.
    :param nonces: When set, every proof must carry a ``nonce`` that it
        accepts (RFC 9449 §9); a missing or stale nonce fails with reason
        ``dpop_nonce`` (answer it with ``error="use_dpop_nonce"`` and a fresh
        ``DPoP-Nonce``).
    :raises ValueError: For an empty, unknown, symmetric or ``none`` algorithm,
        or a non-positive lifetime or length.

    The replay key is ``"dpop:"`` plus the base64url SHA-256 of the proof's
    key thumbprint, its normalised ``htu`` and its ``jti``: RFC 9449 §11.1
    keeps a ``jti`` "in the context of the target URI", and tying it to the
    key as well means a client can never use up another client's ``jti``
    (it would need that client's private key). The key has a fixed length
    whatever the proof holds. ``expires_at`` is ``iat + lifetime + leeway + 1``,
    one second past the last moment the proof would be accepted.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        *,
        algorithms: cabc.Sequence[str] = DEFAULT_ALGORITHMS,
        lifetime: float = 60,
        leeway: float = 0,
        clock: cabc.Callable[[], float] = time.time,
        replay: cabc.Callable[[str, float], bool],
        max_proof_length: int = MAX_PROOF_LENGTH,
        nonces: NonceSource | None = None,
    ) -> None:
        if isinstance(algorithms, str):
            raise TypeError("algorithms must be a list of names, not one string")
        algorithms = tuple(algorithms)
        if not algorithms:
            raise ValueError("at least one DPoP algorithm is needed")
        available = get_default_algorithms()
        for alg in algorithms:
            if alg not in _ALG_KEYS:
                raise ValueError(
                    f"{alg!r} is not an asymmetric signature algorithm DPoP accepts (RFC 9449 §4.2); "
                    f"use some of {sorted(_ALG_KEYS)}"
                )
            if _PYJWT_NAMES.get(alg, alg) not in available:
                raise ValueError(f"{alg!r} needs the 'cryptography' package (flask-authgate[crypto])")
        for name, value in (("lifetime", lifetime), ("leeway", leeway)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a number of seconds")
        if lifetime <= 0 or leeway < 0:
            raise ValueError("lifetime must be positive and leeway not negative")
        if isinstance(max_proof_length, bool) or not isinstance(max_proof_length, int) or max_proof_length < 64:
            raise ValueError("max_proof_length must be an integer of at least 64")
        if not callable(replay):
            raise TypeError("replay must be a callable (key, expires_at) -> bool")
        self.algorithms = algorithms
        self.lifetime = float(lifetime)
        self.leeway = float(leeway)
        self._clock = clock
        self._replay = replay
        self._max = max_proof_length
        self._nonces = nonces
        self._algs = {alg: available[_PYJWT_NAMES.get(alg, alg)] for alg in algorithms}

    def _key(self, header: dict[str, t.Any], alg: str) -> tuple[t.Any, str]:
        """The proof's public key (for PyJWT) and its thumbprint; refuses anything but a fitting public key."""
        jwk = header.get("jwk")
        if type(jwk) is not dict:
            raise _refuse("dpop_proof_invalid", "dpop_jwk")
        if not _PRIVATE_MEMBERS.isdisjoint(jwk):
            # RFC 9449 §4.2: the jwk header MUST NOT contain a private key.
            raise _refuse("dpop_proof_invalid", "dpop_jwk")
        kty, curves = _ALG_KEYS[alg]
        crv = jwk.get("crv")
        if jwk.get("kty") != kty or (curves is not None and (type(crv) is not str or crv not in curves)):
            raise _refuse("dpop_proof_invalid", "dpop_jwk")  # RFC 7518 §3.1: the alg fixes the key type
        try:
            jkt = jwk_thumbprint(jwk)
            members = {name: jwk[name] for name in _REQUIRED_MEMBERS[kty]}
            raw = {name: _b64url_decode(value) for name, value in members.items() if name not in ("kty", "crv")}
        except (ValueError, KeyError):
            raise _refuse("dpop_proof_invalid", "dpop_jwk") from None
        if kty == "RSA":
            bits = int.from_bytes(raw["n"], "big").bit_length()
            if not _RSA_MIN_BITS <= bits <= _RSA_MAX_BITS or len(raw["e"]) > _RSA_MAX_EXPONENT_BYTES:
                raise _refuse("dpop_proof_invalid", "dpop_jwk")  # RFC 7518 §3.3: 2048 bits at least
        try:
            # Only the required members reach PyJWT: never a "d", "x5c" or "kid" it might act on.
            key = self._algs[alg].from_jwk(members)
        except Exception:  # InvalidKeyError, ValueError, UnsupportedAlgorithm...: all a bad key
            raise _refuse("dpop_proof_invalid", "dpop_jwk") from None
        return key, jkt

    def verify(
        self,
        proof: str,
        *,
        method: str,
        url: str,
        access_token: str | None,
        nonce: str | None = None,
        token_claims: cabc.Mapping[str, t.Any] | None = None,
    ) -> DpopProof:
        """Verify one proof for one request; return what it proves.

        :param proof: The one ``DPoP`` header value (the caller refuses two).
        :param method: The request method, compared case-sensitively with ``htm``.
        :param url: The request URL (``request.url``), compared with ``htu``
            after :func:`normalize_htu` on both.
        :param access_token: The access token the proof accompanies: its hash
            must be the proof's ``ath``. ``None`` where no token is presented.
        :param nonce: A nonce value the proof must carry exactly (besides
            ``nonces`` given to the constructor).
        :param token_claims: The access token's claims: when given,
            :func:`check_binding` runs before the ``jti`` is recorded, so a
            proof for a token bound to another key uses up nothing.
        :raises AuthError: ``dpop_proof_invalid`` (reason ``malformed``,
            ``dpop_typ``, ``dpop_alg``, ``dpop_jwk``, ``dpop_signature``,
            ``claim_type``, ``missing_claim``, ``dpop_htm``, ``dpop_htu``,
            ``dpop_iat``, ``dpop_ath``, ``dpop_nonce``, ``dpop_replay``);
            ``token_invalid`` (``dpop_binding``); ``auth_unavailable`` from
            the replay store.
        """
        # 1. RFC 9449 §4.3 step 2: one well-formed compact JWS, within the bound, before any decoding.
        if not isinstance(proof, str) or len(proof) > self._max:
            raise _refuse("dpop_proof_invalid", "malformed")
        match = _COMPACT.fullmatch(proof)
        if match is None:
            raise _refuse("dpop_proof_invalid", "malformed")
        head, body, sig = match.groups()
        try:
            header = _json_object(_b64url_decode(head))
        except ValueError:
            raise _refuse("dpop_proof_invalid", "malformed") from None
        # 2. Step 4: typ exactly "dpop+jwt" (explicit typing, RFC 8725 §3.11).
        if header.get("typ") != "dpop+jwt":
            raise _refuse("dpop_proof_invalid", "dpop_typ")
        # 3. Step 5: an allowed asymmetric algorithm (never "none", never HS*).
        alg = header.get("alg")
        if type(alg) is not str or alg not in self._algs:
            raise _refuse("dpop_proof_invalid", "dpop_alg")
        if not _REFUSED_HEADERS.isdisjoint(header):
            raise _refuse("dpop_proof_invalid", "malformed")  # RFC 7515 §4.1.11: crit we do not understand
        # 4. Step 7: a public jwk of the alg's key type and curve.
        key, jkt = self._key(header, alg)
        try:
            claims = _json_object(_b64url_decode(body))
            signature = _b64url_decode(sig)
        except ValueError:
            raise _refuse("dpop_proof_invalid", "malformed") from None
        # 5. Step 6: the signature, with the key from the proof itself.
        try:
            valid = self._algs[alg].verify(f"{head}.{body}".encode("ascii"), key, signature)
        except Exception:  # a signature of the wrong length or shape for this key
            valid = False
        if not valid:
            raise _refuse("dpop_proof_invalid", "dpop_signature")
        # 6. Step 3: the required claims, with their types.
        jti, htm, htu = claims.get("jti"), claims.get("htm"), claims.get("htu")
        if jti is None or htm is None or htu is None or "iat" not in claims:
            raise _refuse("dpop_proof_invalid", "missing_claim")
        if type(jti) is not str or not 0 < len(jti) <= MAX_JTI_LENGTH or type(htm) is not str or type(htu) is not str:
            raise _refuse("dpop_proof_invalid", "claim_type")
        iat = _number(claims["iat"])
        if iat is None:
            raise _refuse("dpop_proof_invalid", "claim_type")
        # 7. Step 8: the method, case-sensitively (RFC 9110 §9.1).
        if htm != method:
            raise _refuse("dpop_proof_invalid", "dpop_htm")
        # 8. Step 9: the URL, without query and fragment, RFC 3986 normalised on both sides.
        try:
            target = normalize_htu(htu)
            same = target == normalize_htu(url)
        except ValueError:
            same = False
        if not same:
            raise _refuse("dpop_proof_invalid", "dpop_htu")
        # 9. Step 11: created within the window; not later than the leeway into the future.
        now = self._clock()
        if iat > now + self.leeway or now - iat > self.lifetime + self.leeway:
            raise _refuse("dpop_proof_invalid", "dpop_iat")
        # 10. Step 12: ath, the hash of the access token the proof accompanies (RFC 9449 §7.1).
        if access_token is not None:
            ath = claims.get("ath")
            if type(ath) is not str:
                raise _refuse("dpop_proof_invalid", "dpop_ath")
            expected = access_token_hash(access_token)
            if not hmac.compare_digest(ath.encode("ascii", "replace"), expected.encode("ascii")):
                raise _refuse("dpop_proof_invalid", "dpop_ath")
        # 11. Step 10: the server nonce, when one is required (RFC 9449 §9).
        if nonce is not None or self._nonces is not None:
            given = claims.get("nonce")
            if type(given) is not str:
                raise _refuse("dpop_proof_invalid", "dpop_nonce")
            if nonce is not None and not hmac.compare_digest(_bytes(given), _bytes(nonce)):
                raise _refuse("dpop_proof_invalid", "dpop_nonce")
            if self._nonces is not None and not self._nonces.accepts(given):
                raise _refuse("dpop_proof_invalid", "dpop_nonce")
        # 12. Step 12: the token's binding, before anything is recorded.
        if token_claims is not None:
            check_binding(token_claims, jkt)
        # 13. Last: the jti, so a proof that failed any check above never uses one up (RFC 9449 §11.1).
        digest = hashlib.sha256(_bytes("\n".join((jkt, target, jti)))).digest()
        replay_key = "dpop:" + _b64url_encode(digest)
        try:
            # One second past the last moment the proof is accepted, so the entry outlives its window.
            first = self._replay(replay_key, iat + self.lifetime + self.leeway + 1)
        except AuthError:
            raise
        except Exception as exc:
            log.error("authgate: the DPoP replay store failed (%s)", type(exc).__name__)
            raise _refuse("auth_unavailable", "replay_store") from None
        if first is not True:
            raise _refuse("dpop_proof_invalid", "dpop_replay")
        return DpopProof(jkt=jkt, jti=jti, iat=iat, alg=alg)


def token_is_bound(claims: cabc.Mapping[str, t.Any]) -> bool:
    """Whether an access token is DPoP-bound: it has a ``cnf`` object with a ``jkt`` member (RFC 9449 §6).

    A ``jkt`` of the wrong type still counts as bound, so such a token is
    refused as ``Bearer`` too (and fails :func:`check_binding` as ``DPoP``).
    """
    cnf = claims.get("cnf")
    return isinstance(cnf, cabc.Mapping) and "jkt" in cnf


def check_binding(token_claims: cabc.Mapping[str, t.Any], proof_jkt: str) -> None:
    """Refuse a token that is not bound to the proof's key.

    :param token_claims: The access token's claims (a JWT's, or an introspection answer's).
    :param proof_jkt: :attr:`DpopProof.jkt` of the accompanying proof.
    :raises AuthError: ``token_invalid`` with reason ``dpop_binding`` when
        ``cnf.jkt`` is missing, not a string, or not the proof's thumbprint
        (RFC 9449 §7.1, figure 16: ``error="invalid_token"``).
    """
    cnf = token_claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, cabc.Mapping) else None
    if type(jkt) is not str or not isinstance(proof_jkt, str):
        raise _refuse("token_invalid", "dpop_binding")
    if not hmac.compare_digest(_bytes(jkt), _bytes(proof_jkt)):
        raise _refuse("token_invalid", "dpop_binding")
