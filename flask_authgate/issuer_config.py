"""Parse and validate the trusted-issuer configuration of DESIGN.md part two.

``AUTHGATE_TRUSTED_ISSUERS`` (a list of mappings), the ``AUTHGATE_OIDC_ISSUER``
shorthand and ``AUTHGATE_JWT_ISSUER`` (a string or a list) are turned into
:class:`TrustedIssuer` entries from the raw values and the app-wide
defaults (:class:`IssuerDefaults`). Every mistake is a
:class:`~.errors.ConfigError` naming the exact key, e.g.
``AUTHGATE_TRUSTED_ISSUERS[1].audience``. These functions read no
``app.config``: ``config.py`` calls them.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import datetime
import re
import typing as t

from ._urls import is_discoverable_issuer
from ._urls import is_http_url
from .claims import ClaimMapping
from .errors import ConfigError

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
#: Every public-key algorithm an issuer may be configured with.
ASYMMETRIC_ALGORITHMS = frozenset({*ASYMMETRIC_DEFAULT, "ES256K"})


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
        own = tuple(a for a in self.algorithms or () if a in ASYMMETRIC_ALGORITHMS)
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


#: The fields of one ``AUTHGATE_TRUSTED_ISSUERS`` entry.
FIELDS = ("issuer", "audience", "jwks_url", "algorithms", "roles_claim", "scopes_claim", "typ", "client_id")
_HMAC = frozenset({"HS256", "HS384", "HS512"})
#: An issuer, audience or client id: printable, no spaces or control characters.
_IDENT = re.compile(r"[\x21-\x7e\u00a0-\U0010ffff]+")


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
        if a not in ASYMMETRIC_ALGORITHMS:
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


@dataclasses.dataclass(frozen=True, slots=True)
class IntrospectionSettings:
    """Validated ``AUTHGATE_INTROSPECTION_*`` values (the arguments of :class:`~.introspection.Introspector`)."""

    #: The endpoint (``AUTHGATE_INTROSPECTION_URL``); ``None``: discovered from ``AUTHGATE_OIDC_ISSUER``.
    url: str | None
    #: This resource server's client id at the provider (``AUTHGATE_INTROSPECTION_CLIENT_ID``).
    client_id: str
    #: Its client secret, sent with HTTP Basic (``AUTHGATE_INTROSPECTION_CLIENT_SECRET``).
    client_secret: str
    #: Seconds an answer is reused, never past the token's ``exp`` (``AUTHGATE_INTROSPECTION_CACHE_TTL``).
    cache_ttl: float = 60.0
    #: Answers kept per process (``AUTHGATE_INTROSPECTION_CACHE_SIZE``).
    cache_size: int = 10_000


def parse_introspection(
    *,
    url: t.Any,
    client_id: t.Any,
    client_secret: t.Any,
    cache_ttl: t.Any = IntrospectionSettings.__dataclass_fields__["cache_ttl"].default,
    cache_size: t.Any = IntrospectionSettings.__dataclass_fields__["cache_size"].default,
    can_discover: bool,
) -> IntrospectionSettings | None:
    """``AUTHGATE_INTROSPECTION_URL``, ``_CLIENT_ID``, ``_CLIENT_SECRET``, ``_CACHE_TTL``, ``_CACHE_SIZE``.

    Introspection is on when a URL is set, or when client credentials are set
    and the URL can be discovered (``can_discover``: ``AUTHGATE_OIDC_ISSUER`` is set).

    :returns: ``None`` when introspection is off.
    :raises ConfigError: Naming the key.
    """
    if url is None and client_id is None and client_secret is None:
        return None
    if url is not None and not is_http_url(url):
        raise ConfigError("AUTHGATE_INTROSPECTION_URL must be an http:// or https:// URL (no user:password@)")
    if url is None and not can_discover:
        raise ConfigError(
            "AUTHGATE_INTROSPECTION_CLIENT_ID/_CLIENT_SECRET are set but no endpoint: set "
            "AUTHGATE_INTROSPECTION_URL, or AUTHGATE_OIDC_ISSUER to discover it"
        )
    for key, value in (
        ("AUTHGATE_INTROSPECTION_CLIENT_ID", client_id),
        ("AUTHGATE_INTROSPECTION_CLIENT_SECRET", client_secret),
    ):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key} must be set (a non-empty string) to call the introspection endpoint")
    if isinstance(cache_ttl, datetime.timedelta):
        cache_ttl = cache_ttl.total_seconds()
    if isinstance(cache_ttl, bool) or not isinstance(cache_ttl, (int, float)) or not 0 <= cache_ttl <= 3600:
        raise ConfigError("AUTHGATE_INTROSPECTION_CACHE_TTL must be a number of seconds from 0 (no cache) to 3600")
    if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
        raise ConfigError("AUTHGATE_INTROSPECTION_CACHE_SIZE must be an integer >= 0 (0 turns the cache off)")
    return IntrospectionSettings(t.cast("str | None", url), client_id, client_secret, float(cache_ttl), cache_size)
