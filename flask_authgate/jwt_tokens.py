"""JWT encoding and decoding with PyJWT; the only module (with :mod:`.jwks`) importing ``jwt``.

Every PyJWT exception is translated here, at the edge: ``ExpiredSignatureError``
becomes ``token_expired``, a JWKS connection failure ``auth_unavailable``, and
everything else (including ``InvalidKeyError``, ``PyJWKError``, ``ValueError``,
``TypeError`` and ``RecursionError``) ``token_invalid``. No exception text
leaves this module: PyJWT's messages echo the ``kid`` and the ``crit`` names.

Time claims (``exp``, ``nbf``, ``iat``) are checked by :mod:`.tokens` with the
extension's clock, so verified tokens can be cached; PyJWT checks the
signature, the algorithm allow list, ``crit``, the audience, the issuer, the
required claims and the types of ``sub`` and ``jti``.
"""

from __future__ import annotations

import base64
import collections.abc as cabc
import hashlib
import hmac
import json
import logging
import re
import typing as t

import jwt
from jwt.algorithms import get_default_algorithms

from .config import HMAC_ALGORITHMS
from .config import Settings
from .errors import AuthError
from .errors import ConfigError

if t.TYPE_CHECKING:
    from .jwks import JwksClient

log = logging.getLogger("flask_authgate")

_RSA_MIN_BITS = 2048

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_FAST_HEADER = frozenset({"alg", "typ", "kid"})
#: alg -> (hash, length of an unpadded base64url signature)
_HMAC_SPECS = {
    "HS256": (hashlib.sha256, 43),
    "HS384": (hashlib.sha384, 64),
    "HS512": (hashlib.sha512, 86),
}


def _pyjwt_accepts_hmac_key(secret: bytes) -> bool:
    try:
        get_default_algorithms()["HS256"].prepare_key(secret)
    except jwt.InvalidKeyError:
        return False
    return True


_B64_INDEX = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}


def _canonical(segment: str) -> bool:
    """Whether the unused low bits of the last character are zero (PyJWT refuses other segments)."""
    rem = len(segment) % 4
    return rem < 2 or not _B64_INDEX[segment[-1]] & (0xF if rem == 2 else 0x3)


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _kid_for_secret(secret: bytes) -> str:
    # A short, non-reversible fingerprint: picks the key without trying each.
    return "hs-" + hashlib.sha256(b"authgate-kid:" + secret).hexdigest()[:12]


def _load_key(setting: str, pem: str | bytes, *, private: bool, algorithms: cabc.Sequence[str]) -> t.Any:
    algs = get_default_algorithms()
    errors = 0
    for name in algorithms:
        algorithm = algs.get(name)
        if algorithm is None:  # pragma: no cover - needs cryptography, checked below
            continue
        try:
            key = algorithm.prepare_key(pem)
        except Exception:
            errors += 1
            continue
        size = getattr(key, "key_size", None)
        if name[:2] in ("RS", "PS") and size is not None and size < _RSA_MIN_BITS:
            raise ConfigError(f"{setting} is a {size}-bit RSA key; RFC 7518 §3.3 needs at least {_RSA_MIN_BITS}")
        if private and not hasattr(key, "sign"):
            raise ConfigError(f"{setting} must be a private key")
        return key
    if not any(a in algs for a in algorithms):
        raise ConfigError(f"{setting}: public-key algorithms need the 'cryptography' package (flask-authgate[crypto])")
    raise ConfigError(f"{setting} is not a PEM key usable with {list(algorithms)}")


def _algorithm_for(key: t.Any, algorithms: cabc.Sequence[str]) -> str:
    algs = get_default_algorithms()
    for name in algorithms:
        try:
            algs[name].prepare_key(key)
        except Exception:  # noqa: S112 - a key of another family
            continue
        return name
    return algorithms[0]  # pragma: no cover - _load_key already found one


class JwtCodec:
    """Encode and verify JWTs for one app's settings."""

    format = "jwt"

    def __init__(self, settings: Settings, jwks: JwksClient | None = None) -> None:
        self._settings = settings
        self._jwks = jwks
        self._jwt = jwt.PyJWT(
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": True,
                "verify_iss": True,
                "verify_sub": True,
                "verify_jti": True,
                "require": list(settings.required_claims),
            }
        )
        self._algorithms = list(settings.algorithms)
        self._audience: list[str] | None = list(settings.audience) if settings.audience else None
        #: Accepted issuers (``AUTHGATE_JWT_ISSUER``, one or a list), or ``None`` for no check.
        self._issuer: list[str] | None = list(settings.accepted_issuers) if settings.accepted_issuers else None
        self._types = settings.jwt_types
        self._keys: dict[str | None, t.Any] = {}
        self._signing_key: t.Any = None
        self._signing_alg = settings.algorithms[0]
        self._signing_kid: str | None = None
        if not settings.asymmetric:
            for secret in settings.secrets:
                self._keys.setdefault(_kid_for_secret(secret), secret)
            self._signing_key = settings.secrets[0]
            self._signing_kid = _kid_for_secret(settings.secrets[0])
            self._fallback: list[t.Any] = list(settings.secrets)
        else:
            for kid, pem in settings.public_keys.items():
                name = "AUTHGATE_JWT_PUBLIC_KEY" if kid is None else f"AUTHGATE_JWT_PUBLIC_KEYS[{kid!r}]"
                self._keys[kid] = _load_key(name, pem, private=False, algorithms=settings.algorithms)
            if settings.private_key is not None:
                self._signing_key = _load_key(
                    "AUTHGATE_JWT_PRIVATE_KEY", settings.private_key, private=True, algorithms=settings.algorithms
                )
                self._signing_kid = settings.signing_kid
                # With several algorithms (["RS256", "ES256"]) sign with the first one the key fits.
                self._signing_alg = _algorithm_for(self._signing_key, settings.algorithms)
                public = self._signing_key.public_key()
                if self._keys.get(settings.signing_kid) is None:
                    self._keys[settings.signing_kid] = public
            self._fallback = [self._keys[None]] if None in self._keys else []
        self._single = self._fallback[0] if len(self._keys) == 1 and self._fallback and jwks is None else None
        self._required = tuple(settings.required_claims)
        self._only_secret: bytes | None = (
            settings.secrets[0] if not settings.asymmetric and len(set(settings.secrets)) == 1 else None
        )
        #: alg -> (digest, signature length in base64url) for the HMAC fast path.
        self._hmac: dict[str, tuple[t.Any, int]] | None = (
            {a: _HMAC_SPECS[a] for a in settings.algorithms if a in _HMAC_SPECS} if not settings.asymmetric else None
        )
        if self._hmac is not None and not all(_pyjwt_accepts_hmac_key(k) for k in settings.secrets):
            self._hmac = None  # PyJWT refuses such a key on every token: let it decide

    @property
    def can_sign(self) -> bool:
        return self._signing_key is not None

    def encode(self, payload: dict[str, t.Any], token_type: str) -> str:
        if self._signing_key is None:
            raise RuntimeError(
                "this app verifies tokens but cannot issue them: set AUTHGATE_JWT_PRIVATE_KEY "
                "(or an HMAC AUTHGATE_JWT_SECRET)"
            )
        headers = {"kid": self._signing_kid} if self._signing_kid else None
        return jwt.encode(payload, self._signing_key, algorithm=self._signing_alg, headers=headers)

    def peek(self, token: str) -> dict[str, t.Any]:
        """The claims of a token this app just issued, without verifying it."""
        claims: dict[str, t.Any] = jwt.decode(token, options={"verify_signature": False})
        return claims

    def _key_for(self, token: str) -> t.Any:
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
            raise AuthError("token_invalid", reason="malformed") from None
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthError("token_invalid", reason="malformed")
        if self._jwks is not None:
            if not kid:
                raise AuthError("token_invalid", reason="unknown_kid")
            return self._jwks.get_key(kid)
        key = self._keys.get(kid) if kid else None
        if key is not None:
            return key
        if kid and self._settings.asymmetric:
            # RFC 8725 §3.10: an unknown kid names no key we hold; never try others.
            raise AuthError("token_invalid", reason="unknown_kid")
        return self._fallback

    def decode(self, token: str, token_type: str) -> dict[str, t.Any]:
        """Verify ``token`` and return its claims; raise :class:`AuthError` on any failure."""
        if "=" in token:
            # RFC 7515 §2: JWS segments are base64url *without* padding. PyJWT 2.15 accepts a
            # padded signature as the same token (2.14 does not); refuse it on every version.
            raise AuthError("token_invalid", reason="padding")
        if self._hmac is not None:
            payload = self._decode_hmac(token)
            if payload is not None:
                return payload
        return self._decode_pyjwt(token)

    def _decode_hmac(self, token: str) -> dict[str, t.Any] | None:
        """Verify a canonical HMAC token in one pass; ``None`` hands anything unusual to PyJWT.

        PyJWT re-prepares the key and re-validates the base64 alphabet in
        Python on every call, which is most of its cost. This path handles
        only the common shape — three unpadded base64url segments, a header of
        just ``alg`` (one of ours), ``typ`` and a known ``kid``, a signature of
        exactly the digest's length in canonical base64 — and runs every check
        PyJWT would: signature (constant time), JSON object payload, required
        claims, audience, issuer and the types of ``sub`` and ``jti``. Anything
        else (other header parameters such as ``crit``, ``jku`` or ``b64``,
        padding, an unknown ``kid``...) goes through PyJWT, so the outcome is
        the same either way; ``tests/test_fast_path.py`` checks that.
        """
        parts = token.split(".")
        if len(parts) != 3:
            return None
        head, body, sig = parts
        if not (_SEGMENT.fullmatch(head) and _SEGMENT.fullmatch(body) and _SEGMENT.fullmatch(sig)):
            return None
        if not (_canonical(head) and _canonical(body)):
            return None  # non-canonical base64: PyJWT decides (and refuses)
        try:
            header = json.loads(_b64decode(head))
        except (ValueError, RecursionError):
            return None
        if type(header) is not dict or not header.keys() <= _FAST_HEADER:
            return None
        alg = header.get("alg")
        specs = self._hmac or {}
        spec = specs.get(alg) if type(alg) is str else None
        kid = header.get("kid")
        if spec is None or ("kid" in header and type(kid) is not str):
            return None  # a kid that is present must be a string (PyJWT refuses "kid": null)
        if "typ" in header and type(header["typ"]) is not str:
            return None
        # The key named by kid; with one secret, that secret whatever the kid (as PyJWT's path does).
        key = self._keys.get(kid) if kid is not None else None
        if key is None:
            key = self._only_secret
        digestmod, sig_len = spec
        if key is None or len(sig) != sig_len:
            return None
        signature = _b64decode(sig)
        if _b64encode(signature) != sig:
            return None  # non-canonical trailing bits: PyJWT decides
        expected = hmac.new(key, f"{head}.{body}".encode("ascii"), digestmod).digest()
        if not hmac.compare_digest(signature, expected):
            raise AuthError("token_invalid", reason="signature")
        if self._types:
            typ = header.get("typ")
            if not isinstance(typ, str) or typ.lower() not in self._types:
                raise AuthError("token_invalid", reason="typ")
        try:
            payload = json.loads(_b64decode(body))
        except (ValueError, RecursionError):
            raise AuthError("token_invalid", reason="malformed") from None
        if type(payload) is not dict:
            raise AuthError("token_invalid", reason="malformed")
        self._check_claims(payload)
        return payload

    def _check_claims(self, payload: dict[str, t.Any]) -> None:
        """The claim checks PyJWT makes with this codec's options (time claims are checked later)."""
        for claim in self._required:
            if payload.get(claim) is None:
                raise AuthError("token_invalid", reason="missing_claim")
        if "sub" in payload and type(payload["sub"]) is not str:
            raise AuthError("token_invalid", reason="claim_type")
        if "jti" in payload and type(payload["jti"]) is not str:
            raise AuthError("token_invalid", reason="claim_type")
        aud = payload.get("aud")
        if self._audience is None:
            if aud:
                raise AuthError("token_invalid", reason="audience")  # RFC 7519 §4.1.3: an audience we are not in
        else:
            if not aud:
                raise AuthError("token_invalid", reason="audience")
            auds = [aud] if isinstance(aud, str) else aud
            if not isinstance(auds, list) or not all(isinstance(a, str) for a in auds):
                raise AuthError("token_invalid", reason="audience")
            if not any(a in auds for a in self._audience):
                raise AuthError("token_invalid", reason="audience")
        if self._issuer is not None and (type(payload.get("iss")) is not str or payload["iss"] not in self._issuer):
            raise AuthError("token_invalid", reason="issuer")

    def _decode_pyjwt(self, token: str) -> dict[str, t.Any]:
        key = self._single if self._single is not None else self._key_for(token)
        keys = key if isinstance(key, list) else [key]
        if not keys:
            raise AuthError("token_invalid", reason="unknown_kid")
        for i, candidate in enumerate(keys):
            try:
                complete = self._jwt.decode_complete(
                    token,
                    candidate,
                    algorithms=self._algorithms,
                    audience=self._audience,
                    issuer=self._issuer,
                )
            except jwt.InvalidSignatureError:
                if i + 1 < len(keys):
                    continue  # a rotation list: the next key may have signed it
                raise AuthError("token_invalid", reason="signature") from None
            except jwt.PyJWKClientConnectionError:
                raise AuthError("auth_unavailable", reason="jwks_failed") from None
            except jwt.InvalidKeyError as exc:
                log.warning("authgate: a token used a key unusable for its algorithm (%s)", type(exc).__name__)
                raise AuthError("token_invalid", reason="key_unusable") from None
            except (jwt.PyJWTError, ValueError, TypeError, RecursionError, KeyError, AttributeError) as exc:
                raise AuthError("token_invalid", reason=_reason(exc)) from None
            if self._types:
                typ = complete["header"].get("typ")
                if not isinstance(typ, str) or typ.lower() not in self._types:
                    raise AuthError("token_invalid", reason="typ")
            payload = complete["payload"]
            if not isinstance(payload, dict):
                raise AuthError("token_invalid", reason="malformed")
            return payload
        raise AuthError("token_invalid")  # pragma: no cover - the loop always returns or raises

    def jwks(self) -> dict[str, list[dict[str, t.Any]]]:
        """The public JWK Set of the verification keys (empty for HMAC keys)."""
        if not self._settings.asymmetric:
            return {"keys": []}
        algs = get_default_algorithms()
        out: list[dict[str, t.Any]] = []
        seen: set[str] = set()
        # Keys with a kid first: the same key configured again without one adds nothing.
        for kid, key in sorted(self._keys.items(), key=lambda item: item[0] is None):
            public = key.public_key() if hasattr(key, "sign") else key
            for name in self._algorithms:
                try:
                    jwk = json.loads(algs[name].to_jwk(public))
                except Exception:  # noqa: S112 - the key belongs to another algorithm family
                    continue
                material = json.dumps(jwk, sort_keys=True)
                if kid is None and material in seen:
                    break
                seen.add(material)
                jwk.update({"use": "sig", "alg": name})
                if kid:
                    jwk["kid"] = kid
                out.append(jwk)
                break
        return {"keys": out}


#: PyJWT exception -> the refusal reason logged and signalled (the most specific class first).
_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (jwt.InvalidAudienceError, "audience"),
    (jwt.InvalidIssuerError, "issuer"),
    (jwt.InvalidAlgorithmError, "algorithm"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.DecodeError, "malformed"),
)


def _reason(exc: BaseException) -> str:
    for cls, reason in _REASONS:
        if isinstance(exc, cls):
            return reason
    return "claim_type" if isinstance(exc, jwt.InvalidTokenError) else "malformed"


def is_hmac(algorithm: str) -> bool:
    return algorithm in HMAC_ALGORITHMS
