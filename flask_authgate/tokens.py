"""Issuing and verifying tokens, independent of their format.

:class:`TokenService` sits on a codec (:class:`~.jwt_tokens.JwtCodec` or
:class:`~.signed_tokens.SignedCodec`): it checks claim types strictly, checks
time claims with one clock, checks the token type and revocation, and keeps
the **verified-token cache**.

The cache maps the exact token string to what verifying it produced. It is
bounded (``AUTHGATE_TOKEN_CACHE_SIZE`` entries, first in first out; tokens
longer than 4 KiB are never cached), belongs to one app and its keys, and is
emptied when those keys change (a JWKS refresh that drops a key). A hit still
checks ``exp``, ``nbf``, ``iat``, the maximum lifetime, the token type and
revocation, so it skips only the signature and the parsing.
"""

from __future__ import annotations

import collections
import collections.abc as cabc
import re
import secrets
import threading
import time
import types
import typing as t

from ._json import json_number
from .config import Settings
from .errors import SCOPE_TOKEN
from .errors import AuthError
from .identity import Identity
from .introspection import looks_like_jwt
from .issuers import unverified_issuer

if t.TYPE_CHECKING:
    from .introspection import IntrospectionResult
    from .introspection import Introspector
    from .issuers import IssuerSet
    from .revocation import Revocations


class Codec(t.Protocol):
    format: str

    @property
    def can_sign(self) -> bool: ...

    def encode(self, payload: dict[str, t.Any], token_type: str) -> str: ...

    def decode(self, token: str, token_type: str) -> dict[str, t.Any]: ...

    def peek(self, token: str) -> dict[str, t.Any]: ...

    def jwks(self) -> dict[str, list[dict[str, t.Any]]]: ...


#: Claims the extension sets itself; ``create_*_token(claims=...)`` may not set them.
RESERVED = frozenset({"sub", "iat", "nbf", "exp", "jti", "type", "fresh", "fam", "csrf", "iss", "aud", "cnf"})
#: An RFC 7638 SHA-256 thumbprint: 43 base64url characters.
_JKT = re.compile(r"[A-Za-z0-9_-]{43}")
#: Longest token string the cache keeps.
MAX_CACHED_TOKEN = 4096
TOKEN_TYPES = ("access", "refresh")


class Verified(t.NamedTuple):
    """What verifying a token once produced (a cache entry)."""

    identity: Identity
    exp: float
    nbf: float | None
    iat: float | None
    family: str | None
    csrf: str | None
    #: The key generation the token was verified under: a cache hit from an older
    #: generation is verified again, so a verdict never outlives the key behind it.
    generation: int = 0
    #: When the verdict must be asked for again (an introspection answer's cache time), or ``None``.
    valid_until: float | None = None


def _number(value: t.Any) -> float:
    # RFC 7519 §2: a NumericDate is a JSON number; not a string, not a boolean, not infinite.
    number = json_number(value)
    if number is None:
        raise AuthError("token_invalid", reason="claim_type")
    return number


def _optional_str(value: t.Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise AuthError("token_invalid", reason="claim_type")
    return value


class TokenCache:
    """A bounded, first-in-first-out map of token string -> :class:`Verified`."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: collections.OrderedDict[str, Verified] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, token: str) -> Verified | None:
        return self._data.get(token)

    def put(self, token: str, entry: Verified) -> None:
        if self.maxsize <= 0 or len(token) > MAX_CACHED_TOKEN:
            return
        with self._lock:
            data = self._data
            data[token] = entry
            while len(data) > self.maxsize:
                data.popitem(last=False)

    def discard(self, token: str) -> None:
        self._data.pop(token, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class TokenService:
    """Issue and verify the tokens of one app."""

    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        revocations: Revocations,
        clock: cabc.Callable[[], float] = time.time,
        *,
        outside: IssuerSet | None = None,
        introspector: Introspector | None = None,
        key_generation: cabc.Callable[[], int] | None = None,
    ) -> None:
        self.settings = settings
        self.codec = codec
        self.revocations = revocations
        self.cache = TokenCache(settings.tokens.cache_size)
        self.clock = clock
        #: The outside issuers (``AUTHGATE_OIDC_ISSUER``, ``AUTHGATE_TRUSTED_ISSUERS``), if any.
        self.outside = outside
        #: RFC 7662 introspection of opaque tokens, if configured.
        self.introspector = introspector
        #: The generation of every key set in use (JWKS of the codec and the outside issuers).
        self._key_generation = key_generation
        #: Whether the app has keys of its own (else every JWT must come from a trusted issuer).
        self._own_keys = bool(
            settings.keys.secrets or settings.keys.public_keys or settings.keys.private_key or settings.keys.jwks_url
        )
        self._scheme = codec.format
        self._leeway = settings.tokens.leeway
        self._max_life = settings.tokens.max_lifetime
        self._roles_claim = settings.tokens.roles_claim
        self._scopes_claim = settings.tokens.scopes_claim
        #: Called before a cache hit is used: the JWKS client refreshes a stale key set there,
        #: which empties the cache if a key was retired (so its tokens stop verifying in time).
        self.before_hit: cabc.Callable[[], None] | None = None

    # -- verifying ---------------------------------------------------------

    def generation(self) -> int:
        """The current key generation (0 when no key set can change)."""
        generation = self.outside.generation if self.outside is not None else 0
        return generation + (self._key_generation() if self._key_generation is not None else 0)

    def _decode(self, token: str, token_type: str) -> tuple[Verified, bool]:
        """Verify ``token`` once (no cache): ``(entry, cacheable)``.

        A JWT whose ``iss`` names a trusted issuer is verified with that
        issuer's keys only; an opaque token goes to introspection (whose
        answers have their own cache); anything else to this app's codec.
        """
        generation = self.generation()
        outside = self.outside
        if self.introspector is not None and (not looks_like_jwt(token) or (outside is None and not self._own_keys)):
            if self.codec.format == "signed":
                # This app's own tokens are not JWTs either: never send one of ours out.
                # Only a token its signature check does not recognise goes to the endpoint.
                try:
                    return self._build(self.codec.decode(token, token_type), generation=generation), True
                except AuthError as err:
                    if err.reason not in ("signature", "malformed"):
                        raise
            entry = self._introspected(self.introspector.introspect(token), token_type)
            # Kept beside the other verdicts for the introspection cache time only (never past
            # exp), so a repeated opaque token costs what a repeated JWT does.
            ttl = self.introspector.cache_ttl
            return entry._replace(valid_until=min(entry.exp, self.clock() + ttl)), ttl > 0
        if outside is not None and (not self._own_keys or unverified_issuer(token) in outside.issuers):
            verified = outside.verify(token)
            entry = self._build(
                verified.claims,
                roles=verified.roles(),
                scopes=verified.scopes(),
                outside=verified.issuer.issuer,
                generation=generation,
            )
            return entry, True
        return self._build(self.codec.decode(token, token_type), generation=generation), True

    def _introspected(self, result: IntrospectionResult, token_type: str) -> Verified:
        if token_type != "access":
            raise AuthError("token_type_invalid", reason="token_type")  # introspection vouches for access tokens
        claims = result.claims
        identity = Identity(
            subject=result.subject,
            roles=self.settings.tokens.roles_mapping.extract(claims),
            scopes=self.settings.tokens.scopes_mapping.extract(claims),
            claims=claims,
            scheme="introspection",
            token_id=result.token_id,
            token_type="access",
            issuer=claims["iss"] if isinstance(claims.get("iss"), str) and claims["iss"] else "introspection",
        )
        now = self.clock()
        # An answer without exp (RFC 7662 makes it optional) is good for as long as the endpoint
        # says so, up to the maximum lifetime: a revoke() of it must outlive all of that.
        exp = result.expires_at if result.expires_at is not None else now + self._max_life - 1
        iat = claims.get("iat")
        nbf = claims.get("nbf")
        return Verified(
            identity,
            exp,
            _number(nbf) if nbf is not None else None,
            _number(iat) if iat is not None else None,
            None,
            None,
        )

    def _build(
        self,
        claims: dict[str, t.Any],
        *,
        roles: frozenset[str] | None = None,
        scopes: frozenset[str] | None = None,
        outside: str | None = None,
        generation: int = 0,
    ) -> Verified:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise AuthError("token_invalid", reason="missing_claim")
        exp = _number(claims.get("exp"))
        nbf = _number(claims["nbf"]) if claims.get("nbf") is not None else None
        iat = _number(claims["iat"]) if claims.get("iat") is not None else None
        if iat is not None and exp - iat > self._max_life + self._leeway:
            # Issued for longer than any token may live: refused whatever time it is now,
            # so it cannot become acceptable once a revoke_subject() entry has expired.
            raise AuthError("token_invalid", reason="lifetime")
        # An identity provider's token is an access token: its claims were never ours to give
        # a meaning (a "type", a refresh family, a CSRF value).
        token_type = "access" if outside is not None else claims.get("type", "access")
        if token_type not in TOKEN_TYPES:
            raise AuthError("token_invalid", reason="claim_type")
        fresh = claims.get("fresh")
        if fresh is not None and not isinstance(fresh, bool):
            raise AuthError("token_invalid", reason="claim_type")
        identity = Identity(
            subject=subject,
            roles=roles if roles is not None else self.settings.tokens.roles_mapping.extract(claims),
            scopes=scopes if scopes is not None else self.settings.tokens.scopes_mapping.extract(claims),
            claims=types.MappingProxyType(claims),
            scheme=self._scheme,
            token_id=_optional_str(claims.get("jti")),
            token_type=token_type,
            issuer=outside,
        )
        if outside is not None:
            return Verified(identity, exp, nbf, iat, None, None, generation)
        family, csrf = _optional_str(claims.get("fam")), _optional_str(claims.get("csrf"))
        return Verified(identity, exp, nbf, iat, family, csrf, generation)

    def _check_time(self, entry: Verified, now: float) -> None:
        leeway = self._leeway
        if now >= entry.exp + leeway:
            raise AuthError("token_expired", reason="expired")
        if entry.exp - now > self._max_life + leeway:
            raise AuthError("token_invalid", reason="lifetime")  # RFC 6750 §5.2: a token's lifetime MUST be limited
        if entry.nbf is not None and now + leeway < entry.nbf:
            raise AuthError("token_invalid", reason="not_yet_valid")
        if entry.iat is not None and now + leeway < entry.iat:
            raise AuthError("token_invalid", reason="issued_in_future")

    def verify(self, token: str, token_type: str = "access") -> Verified:
        """Verify ``token`` as a ``token_type`` token; raise :class:`AuthError` if it is not one."""
        entry = self.cache.get(token)
        if entry is not None:
            if self.before_hit is not None:
                self.before_hit()
            if self.outside is not None:
                self.outside.refresh_if_stale()
            if entry.generation != self.generation() or (
                entry.valid_until is not None and self.clock() >= entry.valid_until
            ):
                # A key was retired or re-keyed since (this verdict may rest on it), or an
                # introspection answer's cache time is over: ask again.
                self.cache.discard(token)
            entry = self.cache.get(token)
        now = self.clock()
        if entry is None:
            entry, cacheable = self._decode(token, token_type)
            self._check_time(entry, now)
            if cacheable:
                self.cache.put(token, entry)
        else:
            try:
                self._check_time(entry, now)
            except AuthError:
                self.cache.discard(token)
                raise
        identity = entry.identity
        if identity.token_type != token_type:
            raise AuthError("token_type_invalid", reason="token_type")
        if self.revocations.is_revoked(identity.token_id, entry.family, identity.subject, entry.iat):
            if token_type == "refresh" and entry.family is not None:
                # OWASP: a used refresh token presented again means theft; end the whole family.
                self.revocations.revoke_family(entry.family)
            raise AuthError("token_revoked", reason="revoked")
        return entry

    def inspect(self, token: str) -> Verified | None:
        """Verify ``token`` whatever its type, ignoring revocation; ``None`` if it expired."""
        for token_type in TOKEN_TYPES:
            try:
                entry = self._decode(token, token_type)[0]
                self._check_time(entry, self.clock())
            except AuthError as err:
                if err.error_code == "token_type_invalid":
                    continue
                if err.error_code == "token_expired":
                    return None
                raise
            return entry
        raise AuthError("token_invalid")  # pragma: no cover - one of the two types always decodes

    # -- issuing -----------------------------------------------------------

    def issue(
        self,
        subject: str,
        token_type: str,
        *,
        roles: cabc.Iterable[str] = (),
        scopes: cabc.Iterable[str] = (),
        claims: cabc.Mapping[str, t.Any] | None = None,
        expires_in: float | None = None,
        fresh: bool = False,
        family: str | None = None,
        csrf: str | None = None,
        dpop_jkt: str | None = None,
    ) -> str:
        if not isinstance(subject, str) or not subject:
            raise TypeError("subject must be a non-empty string")
        for name, values in (("roles", roles), ("scopes", scopes)):
            if isinstance(values, str):
                raise TypeError(f"{name} must be a list of strings, not one string")
        roles = list(roles)
        scopes = list(scopes)
        if not all(isinstance(r, str) and r for r in roles) or not all(isinstance(s, str) for s in scopes):
            raise TypeError("roles and scopes must be non-empty strings")
        bad = [s for s in scopes if not SCOPE_TOKEN.fullmatch(s)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not an RFC 6749 §3.3 scope-token (no spaces, tabs, quotes or backslashes)")
        extra = dict(claims or {})
        mapped = set(self.settings.tokens.roles_mapping.names) | set(self.settings.tokens.scopes_mapping.names)
        reserved = RESERVED.intersection(extra) | (mapped & set(extra))
        if reserved:
            raise ValueError(f"claims may not set {sorted(reserved)}; use the keyword arguments")
        default = (
            self.settings.tokens.access_expires if token_type == "access" else self.settings.tokens.refresh_expires
        )
        lifetime = default if expires_in is None else float(expires_in)
        if not 0 < lifetime <= self._max_life:
            raise ValueError("expires_in must be positive and at most AUTHGATE_MAX_TOKEN_LIFETIME")
        issued_at = self.clock()
        now = int(issued_at)
        payload: dict[str, t.Any] = {
            **extra,
            "sub": subject,
            # Sub-second iat (RFC 7519 §2 allows it): revoke_subject refuses tokens issued at or
            # before its cutoff, and a login right after "log out everywhere" must still work.
            "iat": issued_at,
            "nbf": now,
            "exp": now + max(1, int(lifetime)),
            "jti": secrets.token_urlsafe(16),
            "type": token_type,
        }
        if roles:
            if not self._roles_claim:
                raise ValueError("AUTHGATE_ROLES_CLAIM is a function: this app cannot put roles in its own tokens")
            payload[self._roles_claim] = sorted(set(roles))
        if scopes:
            if not self._scopes_claim:
                raise ValueError("AUTHGATE_SCOPES_CLAIM is a function: this app cannot put scopes in its own tokens")
            payload[self._scopes_claim] = " ".join(sorted(set(scopes)))
        if fresh:
            payload["fresh"] = True
        if family is not None:
            payload["fam"] = family
        if csrf is not None:
            payload["csrf"] = csrf
        if dpop_jkt is not None:
            if not isinstance(dpop_jkt, str) or not _JKT.fullmatch(dpop_jkt):
                raise ValueError("dpop_jkt must be an RFC 7638 SHA-256 thumbprint (43 base64url characters)")
            payload["cnf"] = {"jkt": dpop_jkt}
        if self.settings.tokens.issuer is not None:
            payload["iss"] = self.settings.tokens.issuer
        if self.settings.tokens.audience:
            payload["aud"] = self.settings.tokens.audience[0]
        return self.codec.encode(payload, token_type)
