"""Trusted issuers: route a JWT by its ``iss`` to exactly one, and verify it with that issuer's keys.

:class:`IssuerSet` reads the token's ``iss`` *before* verifying (it only
selects where to look; nothing of the unverified payload is trusted), finds
the one :class:`TrustedIssuer` with exactly that issuer, and verifies the
token with PyJWT against that issuer's keys, algorithms, audience and
``typ`` — one issuer's keys never verify another issuer's tokens. A token
whose ``iss`` is not listed is 401 ``token_invalid`` (reason
``issuer_not_trusted``).

Time claims (``exp``, ``nbf``, ``iat``) are not checked here: like
:class:`~.jwt_tokens.JwtCodec`, PyJWT runs with them off and
:mod:`.tokens` checks them with the extension's clock, so that verdicts can
be cached.

The ``parse_*`` functions validate the configuration shapes of DESIGN.md part
two (``AUTHGATE_TRUSTED_ISSUERS``, ``AUTHGATE_OIDC_ISSUER``,
``AUTHGATE_JWT_ISSUER``) from raw values and app-wide defaults, raising
:class:`~.errors.ConfigError` that names the exact key
(``AUTHGATE_TRUSTED_ISSUERS[1].audience``).
"""

from __future__ import annotations

import base64
import collections.abc as cabc
import dataclasses
import json
import logging
import re
import time
import typing as t

import jwt

from ._http import MAX_BYTES
from ._http import is_http_url
from .claims import ClaimMapping
from .discovery import Discovery
from .discovery import is_discoverable_issuer
from .errors import AuthError
from .errors import ConfigError
from .jwks import JwksClient

log = logging.getLogger("flask_authgate")

#: The accepted algorithms of an outside issuer when none are configured (RFC 8725 §3.1: each
#: key only with its own type; HMAC is never used with keys that are published).
ASYMMETRIC_DEFAULT: tuple[str, ...] = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
_ASYMMETRIC = frozenset({*ASYMMETRIC_DEFAULT, "ES256K"})
_HMAC = frozenset({"HS256", "HS384", "HS512"})
#: PyJWT's errors for a ``sub`` or ``jti`` of the wrong type.
_CLAIM_TYPE_ERRORS: tuple[type[Exception], ...] = tuple(
    getattr(jwt.exceptions, name)
    for name in ("InvalidSubjectError", "InvalidJTIError")
    if hasattr(jwt.exceptions, name)
)
#: The fields of one ``AUTHGATE_TRUSTED_ISSUERS`` entry.
FIELDS = ("issuer", "audience", "jwks_url", "algorithms", "roles_claim", "scopes_claim", "typ", "client_id")
#: An issuer, audience or client id: printable, no spaces or control characters.
_IDENT = re.compile(r"[\x21-\x7e\u00a0-\U0010ffff]+")


DEFAULT_ROLES = ClaimMapping(("roles",), kind="roles")
DEFAULT_SCOPES = ClaimMapping(("scope",), kind="scopes")


@dataclasses.dataclass(frozen=True, slots=True)
class IssuerDefaults:
    """App-wide values an issuer entry takes when it omits a field."""

    #: ``AUTHGATE_JWT_AUDIENCE``.
    audience: tuple[str, ...] | None = None
    #: ``AUTHGATE_JWT_ALGORITHMS`` *if the app set it*; its public-key members are inherited.
    algorithms: tuple[str, ...] | None = None
    #: ``AUTHGATE_ROLES_CLAIM``.
    roles: ClaimMapping = DEFAULT_ROLES
    #: ``AUTHGATE_SCOPES_CLAIM``.
    scopes: ClaimMapping = DEFAULT_SCOPES
    #: ``AUTHGATE_JWT_TYP`` (lower case; empty: no check).
    types: frozenset[str] = frozenset()
    #: ``AUTHGATE_JWT_REQUIRED_CLAIMS``.
    required_claims: tuple[str, ...] = ("exp", "sub")

    def inherited_algorithms(self) -> tuple[str, ...]:
        own = tuple(a for a in self.algorithms or () if a in _ASYMMETRIC)
        return own or ASYMMETRIC_DEFAULT


@dataclasses.dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """One issuer whose tokens are accepted."""

    #: The exact ``iss`` value.
    issuer: str
    #: Accepted audiences (any one in ``aud``); ``None``: the token must have no ``aud``.
    audience: tuple[str, ...] | None
    #: Accepted algorithms (public-key only).
    algorithms: tuple[str, ...]
    #: The JWK Set URL; ``None``: discovered from the issuer.
    jwks_url: str | None
    roles: ClaimMapping
    scopes: ClaimMapping
    #: Accepted ``typ`` headers, lower case; empty: no check.
    types: frozenset[str] = frozenset()
    #: When set, the token's ``client_id`` (else ``azp``) must be one of these
    #: (Cognito access tokens carry no ``aud``).
    client_ids: tuple[str, ...] | None = None
    required_claims: tuple[str, ...] = ("exp", "sub")


class VerifiedToken(t.NamedTuple):
    """A token verified by :meth:`IssuerSet.verify`."""

    claims: dict[str, t.Any]
    issuer: TrustedIssuer
    #: :attr:`IssuerSet.generation` when the token was verified (tag cache entries with it).
    generation: int

    def roles(self) -> frozenset[str]:
        return self.issuer.roles.extract(self.claims)

    def scopes(self) -> frozenset[str]:
        return self.issuer.scopes.extract(self.claims)


def _refuse(reason: str) -> t.NoReturn:
    log.debug("authgate: token refused (%s)", reason)
    err = AuthError("token_invalid")
    err.reason = reason  # type: ignore[attr-defined]
    raise err


def _b64json(segment: str) -> t.Any:
    try:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, TypeError, RecursionError):
        return None


def unverified_issuer(token: str) -> str | None:
    """The ``iss`` of a compact JWS, read without verifying (for routing only), or ``None``."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = _b64json(parts[1])
    iss = payload.get("iss") if isinstance(payload, dict) else None
    return iss if isinstance(iss, str) else None


class IssuerSet:
    """The trusted issuers of one app, each with its own keys.

    :param issuers: The entries; issuers must be distinct.
    :param lifespan: JWKS and discovery cache lifespan, seconds.
    :param cooldown: JWKS and discovery cooldown, seconds.
    :param timeout: Total seconds of one fetch.
    :param retry_after: ``Retry-After`` of a 503.
    :param max_bytes: Largest JWK Set or metadata document.
    :param on_keys_changed: Called when any issuer's keys drop or change.
    :param clock: Monotonic clock of the caches.
    :raises ValueError: Two entries have the same issuer.
    """

    def __init__(
        self,
        issuers: cabc.Sequence[TrustedIssuer],
        *,
        lifespan: float = 300,
        cooldown: float = 30,
        timeout: float = 2,
        retry_after: int = 5,
        max_bytes: int = MAX_BYTES,
        on_keys_changed: cabc.Callable[[], None] | None = None,
        clock: cabc.Callable[[], float] = time.monotonic,
    ) -> None:
        self._by_issuer: dict[str, TrustedIssuer] = {}
        self._discovery: dict[str, Discovery] = {}
        self._jwks: dict[str, JwksClient] = {}
        shared: dict[tuple[str, tuple[str, ...]], JwksClient] = {}
        self._clients: list[JwksClient] = []
        common: dict[str, t.Any] = {
            "lifespan": lifespan,
            "cooldown": cooldown,
            "timeout": timeout,
            "retry_after": retry_after,
        }
        for entry in issuers:
            if entry.issuer in self._by_issuer:
                raise ValueError(f"issuer {entry.issuer!r} is listed twice")
            self._by_issuer[entry.issuer] = entry
            if entry.jwks_url is None:
                discovery = Discovery(entry.issuer, max_bytes=max_bytes, clock=clock, **common)
                self._discovery[entry.issuer] = discovery
                client = JwksClient(
                    discovery.jwks_uri,
                    algorithms=entry.algorithms,
                    max_bytes=max_bytes,
                    on_keys_changed=on_keys_changed,
                    clock=clock,
                    **common,
                )
                self._clients.append(client)
            else:
                # Issuers that publish one JWK Set (Entra tenants, Google's two issuers) share one cache.
                share_key = (entry.jwks_url, entry.algorithms)
                client = shared.get(share_key)  # type: ignore[assignment]
                if client is None:
                    client = JwksClient(
                        entry.jwks_url,
                        algorithms=entry.algorithms,
                        max_bytes=max_bytes,
                        on_keys_changed=on_keys_changed,
                        clock=clock,
                        **common,
                    )
                    shared[share_key] = client
                    self._clients.append(client)
            self._jwks[entry.issuer] = client
        self._decoders: dict[str, jwt.PyJWT] = {}
        for entry in issuers:
            self._decoders[entry.issuer] = jwt.PyJWT(
                options={
                    "verify_signature": True,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": True,
                    "verify_iss": True,
                    "verify_sub": True,
                    "verify_jti": True,
                    "require": list(entry.required_claims),
                }
            )

    @property
    def issuers(self) -> cabc.Mapping[str, TrustedIssuer]:
        return self._by_issuer

    def __len__(self) -> int:
        return len(self._by_issuer)

    def jwks(self, issuer: str) -> JwksClient:
        return self._jwks[issuer]

    def discovery(self, issuer: str) -> Discovery | None:
        return self._discovery.get(issuer)

    @property
    def generation(self) -> int:
        """Increases whenever any issuer drops or re-keys a key (the sum of the JWKS generations)."""
        return sum(client.generation for client in self._clients)

    def refresh_if_stale(self, issuer: str | None = None) -> None:
        """The scheduled JWKS refresh, for one issuer or all (call it before a cache hit)."""
        clients = [self._jwks[issuer]] if issuer is not None and issuer in self._jwks else self._clients
        for client in clients:
            client.refresh_if_stale()

    def route(self, token: str) -> TrustedIssuer:
        """The entry the token's unverified ``iss`` selects; 401 ``issuer_not_trusted`` if none."""
        iss = unverified_issuer(token)
        entry = self._by_issuer.get(iss) if iss is not None else None
        if entry is None:
            # The iss is the sender's text: it is not logged.
            _refuse("issuer_not_trusted")
        return entry

    def verify(self, token: str) -> VerifiedToken:
        """Verify ``token`` against the issuer it names.

        :raises AuthError: 401 ``token_invalid`` with a reason (``malformed``,
            ``issuer_not_trusted``, ``algorithm``, ``unknown_kid``, ``signature``,
            ``audience``, ``issuer``, ``missing_claim``, ``typ``, ``client_id``,
            ``key_unusable``), or 503 ``auth_unavailable`` when the issuer's
            keys cannot be fetched.
        """
        if "=" in token or token.count(".") != 2:
            _refuse("malformed")  # RFC 7515 §2: unpadded base64url, three segments
        header = _b64json(token.split(".", 1)[0])
        if not isinstance(header, dict):
            _refuse("malformed")
        entry = self.route(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in entry.algorithms:
            _refuse("algorithm")
        kid = header.get("kid")
        if kid is None:
            _refuse("unknown_kid")
        if not isinstance(kid, str) or not kid:
            _refuse("malformed")
        key = self._jwks[entry.issuer].get_key(kid, alg)
        claims = self._decode(token, key, alg, entry)
        if entry.types:
            typ = header.get("typ")
            if not isinstance(typ, str) or typ.lower() not in entry.types:
                _refuse("typ")
        if entry.client_ids is not None:
            client_id = claims.get("client_id", claims.get("azp"))
            if not isinstance(client_id, str) or client_id not in entry.client_ids:
                _refuse("client_id")
        return VerifiedToken(claims, entry, self.generation)

    def _decode(self, token: str, key: jwt.PyJWK, alg: str, entry: TrustedIssuer) -> dict[str, t.Any]:
        try:
            complete = self._decoders[entry.issuer].decode_complete(
                token,
                key,
                algorithms=[alg],
                audience=list(entry.audience) if entry.audience else None,
                issuer=entry.issuer,
            )
        except jwt.InvalidSignatureError:
            _refuse("signature")
        except jwt.InvalidAudienceError:
            _refuse("audience")
        except jwt.InvalidIssuerError:
            _refuse("issuer")
        except jwt.MissingRequiredClaimError as exc:
            _refuse({"aud": "audience", "iss": "issuer"}.get(exc.claim, "missing_claim"))
        except jwt.InvalidAlgorithmError:
            _refuse("algorithm")
        except _CLAIM_TYPE_ERRORS:
            _refuse("claim_type")  # sub or jti that is not a string
        except jwt.InvalidKeyError as exc:
            log.warning("authgate: a key of issuer %s is unusable (%s)", entry.issuer, type(exc).__name__)
            _refuse("key_unusable")
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError, KeyError, AttributeError):
            _refuse("malformed")
        payload = complete.get("payload")
        if not isinstance(payload, dict):
            _refuse("malformed")
        return payload


# -- configuration ------------------------------------------------------------------------------


def _ident(where: str, value: t.Any, what: str) -> str:
    if not isinstance(value, str) or not _IDENT.fullmatch(value):
        raise ConfigError(f"{where} must be a non-empty {what} without spaces or control characters")
    return value


def _ident_list(where: str, value: t.Any, what: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, (list, tuple)) or not values:
        raise ConfigError(f"{where} must be a string or a non-empty list of strings ({what})")
    out = tuple(_ident(f"{where}[{i}]" if not isinstance(value, str) else where, v, what) for i, v in enumerate(values))
    if len(set(out)) != len(out):
        raise ConfigError(f"{where} lists the same {what} twice")
    return out


def parse_jwt_issuer(value: t.Any, *, key: str = "AUTHGATE_JWT_ISSUER") -> tuple[str, ...] | None:
    """``AUTHGATE_JWT_ISSUER``: one issuer or a list of them (Google documents two)."""
    if value is None:
        return None
    return _ident_list(key, value, "issuer")


def parse_algorithms(where: str, value: t.Any) -> tuple[str, ...]:
    """Algorithms for an outside issuer: public-key ones only, never ``none`` or HMAC."""
    algs = [value] if isinstance(value, str) else value
    if not isinstance(algs, (list, tuple)) or not algs or not all(isinstance(a, str) for a in algs):
        raise ConfigError(f"{where} must be a non-empty list of algorithm names, e.g. ['RS256']")
    for a in algs:
        if a.lower() == "none":
            raise ConfigError(f"{where} contains {a!r}; unsigned tokens are never accepted (RFC 8725 §3.2)")
        if a in _HMAC:
            raise ConfigError(
                f"{where} contains {a!r}; an outside issuer's keys are public, so HMAC cannot verify its "
                "tokens (RFC 8725 §3.1). Use its public-key algorithms, e.g. ['RS256']"
            )
        if a not in _ASYMMETRIC:
            raise ConfigError(f"{where} contains the unknown algorithm {a!r}")
    return tuple(dict.fromkeys(algs))


def _types(where: str, value: t.Any) -> frozenset[str]:
    types = frozenset(v.lower() for v in _ident_list(where, value, "typ value"))
    # RFC 9068 §4: "at+jwt", also sent as the full media type.
    return types | {"application/at+jwt"} if "at+jwt" in types else types


def _entry(where: str, raw: t.Any, defaults: IssuerDefaults) -> TrustedIssuer:
    if not isinstance(raw, cabc.Mapping):
        raise ConfigError(f"{where} must be a mapping such as {{'issuer': 'https://sso.example.com/realms/acme'}}")
    unknown = sorted(str(k) for k in raw if k not in FIELDS)
    if unknown:
        raise ConfigError(f"{where} has unknown field(s) {unknown}; the fields are {list(FIELDS)}")
    if "issuer" not in raw:
        raise ConfigError(f"{where}.issuer is required")
    issuer = _ident(f"{where}.issuer", raw["issuer"], "issuer")
    audience: tuple[str, ...] | None = defaults.audience
    if "audience" in raw:
        # An explicit None: this issuer's tokens carry no aud (Cognito access tokens).
        aud = raw["audience"]
        audience = None if aud is None else _ident_list(f"{where}.audience", aud, "audience")
    jwks_url = raw.get("jwks_url")
    if jwks_url is not None and not is_http_url(jwks_url):
        raise ConfigError(f"{where}.jwks_url must be an http:// or https:// URL (no user:password@, no fragment)")
    if jwks_url is None and not is_discoverable_issuer(issuer):
        raise ConfigError(
            f"{where}.jwks_url is needed: the issuer {issuer!r} is not an http(s) URL whose metadata can be discovered"
        )
    algorithms = (
        parse_algorithms(f"{where}.algorithms", raw["algorithms"])
        if raw.get("algorithms") is not None
        else defaults.inherited_algorithms()
    )
    roles = (
        ClaimMapping.parse(raw["roles_claim"], key=f"{where}.roles_claim", kind="roles")
        if raw.get("roles_claim") is not None
        else defaults.roles
    )
    scopes = (
        ClaimMapping.parse(raw["scopes_claim"], key=f"{where}.scopes_claim", kind="scopes")
        if raw.get("scopes_claim") is not None
        else defaults.scopes
    )
    types = _types(f"{where}.typ", raw["typ"]) if raw.get("typ") is not None else defaults.types
    client_ids = (
        _ident_list(f"{where}.client_id", raw["client_id"], "client id") if raw.get("client_id") is not None else None
    )
    return TrustedIssuer(
        issuer=issuer,
        audience=audience,
        algorithms=algorithms,
        jwks_url=jwks_url,
        roles=roles,
        scopes=scopes,
        types=types,
        client_ids=client_ids,
        required_claims=defaults.required_claims,
    )


def parse_trusted_issuers(
    value: t.Any, *, defaults: IssuerDefaults, key: str = "AUTHGATE_TRUSTED_ISSUERS"
) -> tuple[TrustedIssuer, ...]:
    """``AUTHGATE_TRUSTED_ISSUERS``: a list of mappings, one per issuer (fields: :data:`FIELDS`).

    :raises ConfigError: Naming the entry and field (``AUTHGATE_TRUSTED_ISSUERS[1].audience``).
    """
    if value is None:
        return ()
    if isinstance(value, (str, bytes, cabc.Mapping)) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"{key} must be a list of mappings, one per issuer")
    if not value:
        raise ConfigError(f"{key} must not be empty (leave it unset instead)")
    entries = tuple(_entry(f"{key}[{i}]", raw, defaults) for i, raw in enumerate(value))
    _no_duplicates([(f"{key}[{i}]", e) for i, e in enumerate(entries)])
    return entries


def parse_oidc_issuer(
    value: t.Any,
    *,
    defaults: IssuerDefaults,
    key: str = "AUTHGATE_OIDC_ISSUER",
    jwks_url: str | None = None,
) -> TrustedIssuer | None:
    """``AUTHGATE_OIDC_ISSUER``: shorthand for one discovered issuer with the app-wide settings.

    :param jwks_url: Keys to use instead of the discovered ``jwks_uri`` (``AUTHGATE_JWKS_URL``
        set beside it), already validated.
    """
    if value is None:
        return None
    if not is_discoverable_issuer(value):
        raise ConfigError(
            f"{key} must be the issuer's http(s) URL without query or fragment, exactly as its tokens' iss "
            "(e.g. 'https://sso.example.com/realms/acme')"
        )
    return TrustedIssuer(
        issuer=value,
        audience=defaults.audience,
        algorithms=defaults.inherited_algorithms(),
        jwks_url=jwks_url,
        roles=defaults.roles,
        scopes=defaults.scopes,
        types=defaults.types,
        required_claims=defaults.required_claims,
    )


def build_issuers(
    oidc_issuer: TrustedIssuer | None,
    trusted: cabc.Sequence[TrustedIssuer],
    *,
    oidc_key: str = "AUTHGATE_OIDC_ISSUER",
    trusted_key: str = "AUTHGATE_TRUSTED_ISSUERS",
) -> tuple[TrustedIssuer, ...]:
    """Both settings together; an issuer in both is a :class:`ConfigError`."""
    named = [(oidc_key, oidc_issuer)] if oidc_issuer is not None else []
    named += [(f"{trusted_key}[{i}]", e) for i, e in enumerate(trusted)]
    _no_duplicates(named)
    return tuple(e for _, e in named)


def _no_duplicates(named: cabc.Sequence[tuple[str, TrustedIssuer]]) -> None:
    seen: dict[str, str] = {}
    for where, entry in named:
        if entry.issuer in seen:
            raise ConfigError(f"{where}: the issuer {entry.issuer!r} is already listed as {seen[entry.issuer]}")
        seen[entry.issuer] = where
