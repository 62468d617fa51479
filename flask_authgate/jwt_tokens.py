"""JWT encoding and decoding with PyJWT (reached through :mod:`._pyjwt`, the one module importing ``jwt``).

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

import collections.abc as cabc
import hashlib
import json
import logging
import typing as t

from ._fast_hmac import HmacFastPath
from ._pyjwt import DecodeError
from ._pyjwt import InvalidAlgorithmError
from ._pyjwt import InvalidAudienceError
from ._pyjwt import InvalidIssuerError
from ._pyjwt import InvalidKeyError
from ._pyjwt import InvalidSignatureError
from ._pyjwt import InvalidTokenError
from ._pyjwt import MissingRequiredClaimError
from ._pyjwt import PyJWKClientConnectionError
from ._pyjwt import PyJWTError
from ._pyjwt import decoder
from ._pyjwt import encode as encode_jwt
from ._pyjwt import get_default_algorithms
from ._pyjwt import get_unverified_header
from ._pyjwt import unverified_claims
from .config import HMAC_ALGORITHMS
from .config import Settings
from .errors import AuthError
from .errors import ConfigError

if t.TYPE_CHECKING:
    from .jwks import JwksClient

log = logging.getLogger("flask_authgate")

_RSA_MIN_BITS = 2048


def _pyjwt_accepts_hmac_key(secret: bytes) -> bool:
    try:
        get_default_algorithms()["HS256"].prepare_key(secret)
    except InvalidKeyError:
        return False
    return True


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
        self._jwt = decoder(settings.tokens.required_claims)
        self._algorithms = list(settings.keys.algorithms)
        self._audience: list[str] | None = list(settings.tokens.audience) if settings.tokens.audience else None
        #: Accepted issuers (``AUTHGATE_JWT_ISSUER``, one or a list), or ``None`` for no check.
        self._issuer: list[str] | None = (
            list(settings.tokens.accepted_issuers) if settings.tokens.accepted_issuers else None
        )
        self._types = settings.tokens.types
        self._keys: dict[str | None, t.Any] = {}
        self._signing_key: t.Any = None
        self._signing_alg = settings.keys.algorithms[0]
        self._signing_kid: str | None = None
        if not settings.keys.asymmetric:
            for secret in settings.keys.secrets:
                self._keys.setdefault(_kid_for_secret(secret), secret)
            self._signing_key = settings.keys.secrets[0]
            self._signing_kid = _kid_for_secret(settings.keys.secrets[0])
            self._fallback: list[t.Any] = list(settings.keys.secrets)
        else:
            for kid, pem in settings.keys.public_keys.items():
                name = "AUTHGATE_JWT_PUBLIC_KEY" if kid is None else f"AUTHGATE_JWT_PUBLIC_KEYS[{kid!r}]"
                self._keys[kid] = _load_key(name, pem, private=False, algorithms=settings.keys.algorithms)
            if settings.keys.private_key is not None:
                self._signing_key = _load_key(
                    "AUTHGATE_JWT_PRIVATE_KEY",
                    settings.keys.private_key,
                    private=True,
                    algorithms=settings.keys.algorithms,
                )
                self._signing_kid = settings.keys.signing_kid
                # With several algorithms (["RS256", "ES256"]) sign with the first one the key fits.
                self._signing_alg = _algorithm_for(self._signing_key, settings.keys.algorithms)
                public = self._signing_key.public_key()
                if self._keys.get(settings.keys.signing_kid) is None:
                    self._keys[settings.keys.signing_kid] = public
            self._fallback = [self._keys[None]] if None in self._keys else []
        self._single = self._fallback[0] if len(self._keys) == 1 and self._fallback and jwks is None else None
        self._required = tuple(settings.tokens.required_claims)
        self._only_secret: bytes | None = (
            settings.keys.secrets[0] if not settings.keys.asymmetric and len(set(settings.keys.secrets)) == 1 else None
        )
        #: The HMAC fast path (see :mod:`._fast_hmac`): HMAC keys only, and only keys PyJWT
        #: itself accepts (for any other key PyJWT refuses every token: it decides then).
        self._fast: HmacFastPath | None = None
        if not settings.keys.asymmetric and all(_pyjwt_accepts_hmac_key(k) for k in settings.keys.secrets):
            self._fast = HmacFastPath(
                settings.keys.algorithms,
                keys={kid: key for kid, key in self._keys.items() if kid is not None},
                only_secret=self._only_secret,
                types=self._types,
                check_claims=self._check_claims,
            )

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
        return encode_jwt(payload, self._signing_key, algorithm=self._signing_alg, headers=headers)

    def peek(self, token: str) -> dict[str, t.Any]:
        """The claims of a token this app just issued, without verifying it."""
        return unverified_claims(token)

    def _key_for(self, token: str) -> t.Any:
        try:
            header = get_unverified_header(token)
        except (PyJWTError, ValueError, TypeError, RecursionError):
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
        if kid and self._settings.keys.asymmetric:
            # RFC 8725 §3.10: an unknown kid names no key we hold; never try others.
            raise AuthError("token_invalid", reason="unknown_kid")
        return self._fallback

    def decode(self, token: str, token_type: str) -> dict[str, t.Any]:
        """Verify ``token`` and return its claims; raise :class:`AuthError` on any failure."""
        if "=" in token:
            # RFC 7515 §2: JWS segments are base64url *without* padding. PyJWT 2.15 accepts a
            # padded signature as the same token (2.14 does not); refuse it on every version.
            raise AuthError("token_invalid", reason="padding")
        if self._fast is not None:
            payload = self._fast.decode(token)
            if payload is not None:
                return payload
        return self._decode_pyjwt(token)

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
            except InvalidSignatureError:
                if i + 1 < len(keys):
                    continue  # a rotation list: the next key may have signed it
                raise AuthError("token_invalid", reason="signature") from None
            except PyJWKClientConnectionError:
                raise AuthError("auth_unavailable", reason="jwks_failed") from None
            except InvalidKeyError as exc:
                log.warning("authgate: a token used a key unusable for its algorithm (%s)", type(exc).__name__)
                raise AuthError("token_invalid", reason="key_unusable") from None
            except (PyJWTError, ValueError, TypeError, RecursionError, KeyError, AttributeError) as exc:
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
        if not self._settings.keys.asymmetric:
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
    (InvalidAudienceError, "audience"),
    (InvalidIssuerError, "issuer"),
    (InvalidAlgorithmError, "algorithm"),
    (MissingRequiredClaimError, "missing_claim"),
    (DecodeError, "malformed"),
)


def _reason(exc: BaseException) -> str:
    for cls, reason in _REASONS:
        if isinstance(exc, cls):
            return reason
    return "claim_type" if isinstance(exc, InvalidTokenError) else "malformed"


def is_hmac(algorithm: str) -> bool:
    return algorithm in HMAC_ALGORITHMS
