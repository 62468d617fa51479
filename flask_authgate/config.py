"""Read and validate every ``AUTHGATE_*`` key, once, at ``init_app``.

This is the only module that reads the ``AUTHGATE_*`` configuration. A bad
value raises :class:`~flask_authgate.errors.ConfigError` naming the key and the
fix, so a misconfigured app fails at startup instead of answering 500 later.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import datetime
import ipaddress
import re
import types
import typing as t

from ._redis_url import parse_store_url
from .claims import ClaimMapping
from .errors import ConfigError
from .issuer_config import ASYMMETRIC_ALGORITHMS
from .issuer_config import ASYMMETRIC_DEFAULT
from .issuer_config import DEFAULT_ROLES
from .issuer_config import DEFAULT_SCOPES
from .issuer_config import IntrospectionSettings
from .issuer_config import IssuerDefaults
from .issuer_config import TrustedIssuer
from .issuer_config import build_issuers
from .issuer_config import parse_introspection
from .issuer_config import parse_jwt_issuer
from .issuer_config import parse_oidc_issuer
from .issuer_config import parse_trusted_issuers
from .resource_metadata import validate_extra
from .resource_metadata import validate_resource

if t.TYPE_CHECKING:
    from flask import Flask

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

HMAC_ALGORITHMS = {"HS256": 32, "HS384": 48, "HS512": 64}
TOKEN_LOCATIONS = frozenset({"headers", "cookies"})
#: RFC 9449 §4.2: the default DPoP proof algorithms, and every one a proof may use.
DPOP_ALGORITHMS = ("ES256", "PS256", "RS256", "EdDSA")
DPOP_ALGORITHMS_SUPPORTED = (ASYMMETRIC_ALGORITHMS - {"ES256K"}) | {"Ed25519", "Ed448"}
#: RFC 9110 §5.6.2 ``token``: what a header name, a scheme or a realm-safe word may hold.
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: RFC 6750 §3 charset for realm and scope values (no ``"`` and no ``\``).
# Every pattern here is used with fullmatch: "$" would also match before a final newline.
_QUOTABLE_RE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


def setting(key: str | None, default: t.Any = dataclasses.MISSING, **kwargs: t.Any) -> t.Any:
    """A settings field read from ``key`` (``None``: built from several keys), with its default."""
    return dataclasses.field(default=default, metadata={"key": key}, **kwargs)


@dataclasses.dataclass(frozen=True, slots=True)
class KeySettings:
    """The keys that sign and verify this app's own tokens, and the JWKS they may come from."""

    #: HMAC keys, the first signs and all verify (``AUTHGATE_JWT_SECRET``, else Flask's ``SECRET_KEY``).
    secrets: tuple[bytes, ...] = setting("AUTHGATE_JWT_SECRET", ())
    #: Accepted JWT algorithms, one family (``AUTHGATE_JWT_ALGORITHMS``; the asymmetric family
    #: by default when only an identity provider's keys are set).
    algorithms: tuple[str, ...] = setting("AUTHGATE_JWT_ALGORITHMS", ("HS256",))
    #: PEM private key that signs asymmetric tokens (``AUTHGATE_JWT_PRIVATE_KEY``).
    private_key: str | bytes | None = setting("AUTHGATE_JWT_PRIVATE_KEY", None)
    #: ``kid`` header of tokens signed with the private key (``AUTHGATE_JWT_KID``).
    signing_kid: str | None = setting("AUTHGATE_JWT_KID", None)
    #: PEM verification keys by ``kid``, ``None`` for the key without a kid
    #: (``AUTHGATE_JWT_PUBLIC_KEY`` and ``AUTHGATE_JWT_PUBLIC_KEYS``).
    public_keys: cabc.Mapping[str | None, str | bytes] = setting(None, default_factory=dict)
    #: Where verification keys are fetched from (``AUTHGATE_JWKS_URL``).
    jwks_url: str | None = setting("AUTHGATE_JWKS_URL", None)
    #: Seconds a fetched key set is used before it is fetched again (``AUTHGATE_JWKS_CACHE_LIFESPAN``).
    jwks_lifespan: float = setting("AUTHGATE_JWKS_CACHE_LIFESPAN", 300.0)
    #: Seconds between two fetches for an unknown ``kid`` (``AUTHGATE_JWKS_COOLDOWN``).
    jwks_cooldown: float = setting("AUTHGATE_JWKS_COOLDOWN", 30.0)
    #: Seconds one fetch of the key set may take (``AUTHGATE_JWKS_TIMEOUT``).
    jwks_timeout: float = setting("AUTHGATE_JWKS_TIMEOUT", 2.0)

    @property
    def asymmetric(self) -> bool:
        """Whether this app's own tokens are signed with a private key (no HMAC algorithm)."""
        return not any(a in HMAC_ALGORITHMS for a in self.algorithms)


@dataclasses.dataclass(frozen=True, slots=True)
class TokenSettings:
    """What this app's own tokens look like, how long they live, and where credentials are read."""

    #: ``"jwt"`` or ``"signed"`` (itsdangerous) tokens (``AUTHGATE_TOKEN_FORMAT``).
    format: t.Literal["jwt", "signed"] = setting("AUTHGATE_TOKEN_FORMAT", "jwt")
    #: Where tokens are read from: ``"headers"`` and/or ``"cookies"`` (``AUTHGATE_TOKEN_LOCATIONS``).
    locations: frozenset[str] = setting("AUTHGATE_TOKEN_LOCATIONS", frozenset({"headers"}))
    #: The header API keys come in (``AUTHGATE_API_KEY_HEADER``).
    api_key_header: str = setting("AUTHGATE_API_KEY_HEADER", "X-API-Key")
    #: Accepted ``typ`` header values (lower case), or empty for no check (``AUTHGATE_JWT_TYP``).
    types: frozenset[str] = setting("AUTHGATE_JWT_TYP", frozenset())
    #: Accepted ``aud`` values (``AUTHGATE_JWT_AUDIENCE``, else ``AUTHGATE_RESOURCE``), or ``None``.
    audience: tuple[str, ...] | None = setting("AUTHGATE_JWT_AUDIENCE", None)
    #: Every issuer this app's own tokens may carry (``AUTHGATE_JWT_ISSUER``, a string or a list).
    accepted_issuers: tuple[str, ...] | None = setting("AUTHGATE_JWT_ISSUER", None)
    #: The issuer this app's own tokens are issued with: the first accepted one.
    issuer: str | None = setting(None, None)
    #: Seconds of clock skew allowed on ``exp``/``nbf``/``iat`` (``AUTHGATE_JWT_LEEWAY``, at most 300).
    leeway: float = setting("AUTHGATE_JWT_LEEWAY", 0.0)
    #: Claims every token must carry; always ``exp`` and ``sub`` (``AUTHGATE_JWT_REQUIRED_CLAIMS``).
    required_claims: tuple[str, ...] = setting("AUTHGATE_JWT_REQUIRED_CLAIMS", ("exp", "sub"))
    #: The longest ``exp - iat`` accepted (``AUTHGATE_MAX_TOKEN_LIFETIME``; the longer of the two lifetimes).
    max_lifetime: float = setting("AUTHGATE_MAX_TOKEN_LIFETIME", 30 * 86400.0)
    #: Seconds an access token lives (``AUTHGATE_ACCESS_TOKEN_EXPIRES``).
    access_expires: float = setting("AUTHGATE_ACCESS_TOKEN_EXPIRES", 15 * 60.0)
    #: Seconds a refresh token lives (``AUTHGATE_REFRESH_TOKEN_EXPIRES``).
    refresh_expires: float = setting("AUTHGATE_REFRESH_TOKEN_EXPIRES", 30 * 86400.0)
    #: Where roles are read from: claim names, dotted paths or a function (``AUTHGATE_ROLES_CLAIM``).
    roles_mapping: ClaimMapping = setting("AUTHGATE_ROLES_CLAIM", DEFAULT_ROLES)
    #: Where scopes are read from: claim names, dotted paths or a function (``AUTHGATE_SCOPES_CLAIM``).
    scopes_mapping: ClaimMapping = setting("AUTHGATE_SCOPES_CLAIM", DEFAULT_SCOPES)
    #: The claim this app's own tokens carry roles in: the mapping's first name (``""`` for a function).
    roles_claim: str = setting(None, "roles")
    #: The claim this app's own tokens carry scopes in: the mapping's first name (``""`` for a function).
    scopes_claim: str = setting(None, "scope")
    #: Verified tokens remembered per process; 0 turns the cache off (``AUTHGATE_TOKEN_CACHE_SIZE``).
    cache_size: int = setting("AUTHGATE_TOKEN_CACHE_SIZE", 4096)


@dataclasses.dataclass(frozen=True, slots=True)
class CookieSettings:
    """The cookies tokens travel in, and their CSRF double-submit token."""

    #: ``Secure`` on every cookie (``AUTHGATE_COOKIE_SECURE``).
    secure: bool = setting("AUTHGATE_COOKIE_SECURE", True)
    #: ``"Lax"``, ``"Strict"`` or ``"None"`` (``AUTHGATE_COOKIE_SAMESITE``; ``"None"`` needs ``Secure``).
    samesite: str = setting("AUTHGATE_COOKIE_SAMESITE", "Lax")
    #: ``Domain`` of the cookies, or host-only (``AUTHGATE_COOKIE_DOMAIN``).
    domain: str | None = setting("AUTHGATE_COOKIE_DOMAIN", None)
    #: ``Path`` of the access and CSRF cookies (``AUTHGATE_COOKIE_PATH``).
    path: str = setting("AUTHGATE_COOKIE_PATH", "/")
    #: ``Path`` of the refresh cookie (``AUTHGATE_REFRESH_COOKIE_PATH``).
    refresh_path: str = setting("AUTHGATE_REFRESH_COOKIE_PATH", "/")
    #: Name of the access-token cookie (``AUTHGATE_ACCESS_COOKIE_NAME``).
    access_name: str = setting("AUTHGATE_ACCESS_COOKIE_NAME", "authgate_access")
    #: Name of the refresh-token cookie (``AUTHGATE_REFRESH_COOKIE_NAME``).
    refresh_name: str = setting("AUTHGATE_REFRESH_COOKIE_NAME", "authgate_refresh")
    #: Name of the CSRF cookie the page reads (``AUTHGATE_CSRF_COOKIE_NAME``).
    csrf_name: str = setting("AUTHGATE_CSRF_COOKIE_NAME", "authgate_csrf")
    #: The header an unsafe request echoes the CSRF cookie in (``AUTHGATE_CSRF_HEADER``).
    csrf_header: str = setting("AUTHGATE_CSRF_HEADER", "X-CSRF-Token")


@dataclasses.dataclass(frozen=True, slots=True)
class RevocationSettings:
    """Where revocations are kept and how fresh each process's view of them is."""

    #: ``"memory"``, a ``redis://``/``rediss://``/``redis+sentinel://``/``redis+cluster://`` URL,
    #: or an object implementing ``RevocationStore`` (``AUTHGATE_REVOCATION_STORE``).
    store: t.Any = setting("AUTHGATE_REVOCATION_STORE", "memory")
    #: Seconds one Redis call may take before the request fails closed (``AUTHGATE_REDIS_TIMEOUT``).
    redis_timeout: float = setting("AUTHGATE_REDIS_TIMEOUT", 0.5)
    #: Seconds within which a revocation made elsewhere is seen (``AUTHGATE_REVOCATION_STALENESS``).
    staleness: float = setting("AUTHGATE_REVOCATION_STALENESS", 1.0)
    #: Entries of each process's local view of Redis (``AUTHGATE_REVOCATION_CACHE_SIZE``).
    cache_size: int = setting("AUTHGATE_REVOCATION_CACHE_SIZE", 16_384)


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorSettings:
    """How refusals are rendered."""

    #: The ``realm`` of every challenge (``AUTHGATE_REALM``).
    realm: str = setting("AUTHGATE_REALM", "api")
    #: ``"json"`` or ``"problem"`` (RFC 9457) bodies (``AUTHGATE_ERROR_FORMAT``).
    format: t.Literal["json", "problem"] = setting("AUTHGATE_ERROR_FORMAT", "json")
    #: Seconds sent in ``Retry-After`` with a 503 (``AUTHGATE_RETRY_AFTER``).
    retry_after: int = setting("AUTHGATE_RETRY_AFTER", 5)
    #: Endpoint or path a browser's 401 redirects to with ``next=`` (``AUTHGATE_LOGIN_VIEW``).
    login_view: str | None = setting("AUTHGATE_LOGIN_VIEW", None)


@dataclasses.dataclass(frozen=True, slots=True)
class AccessSettings:
    """App-wide access rules."""

    #: Every view needs credentials unless it is ``@public`` (``AUTHGATE_DEFAULT_DENY``).
    default_deny: bool = setting("AUTHGATE_DEFAULT_DENY", False)
    #: Networks every request must come from, or ``None`` (``AUTHGATE_IP_ALLOWLIST``).
    ip_allowlist: tuple[IPNetwork, ...] | None = setting("AUTHGATE_IP_ALLOWLIST", None)
    #: Role -> every role it implies, transitively (``AUTHGATE_ROLE_HIERARCHY``).
    role_hierarchy: cabc.Mapping[str, frozenset[str]] = setting("AUTHGATE_ROLE_HIERARCHY", default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class ProviderSettings:
    """Outside identity providers whose tokens this app accepts."""

    #: The outside issuers (``AUTHGATE_OIDC_ISSUER`` and ``AUTHGATE_TRUSTED_ISSUERS``).
    trusted_issuers: tuple[TrustedIssuer, ...] = setting(None, ())
    #: RFC 7662 introspection of opaque tokens (``AUTHGATE_INTROSPECTION_*``), or ``None``.
    introspection: IntrospectionSettings | None = setting(None, None)


@dataclasses.dataclass(frozen=True, slots=True)
class ResourceSettings:
    """This API as an RFC 9728 protected resource, and its DPoP (RFC 9449) proofs."""

    #: This API's resource identifier (``AUTHGATE_RESOURCE``), or ``None``.
    identifier: str | None = setting("AUTHGATE_RESOURCE", None)
    #: Extra RFC 9728 metadata fields (``AUTHGATE_RESOURCE_METADATA``).
    metadata: cabc.Mapping[str, t.Any] = setting("AUTHGATE_RESOURCE_METADATA", default_factory=dict)
    #: ``False``, ``"allowed"`` or ``"required"`` (``AUTHGATE_DPOP``).
    dpop: t.Literal[False, "allowed", "required"] = setting("AUTHGATE_DPOP", False)
    #: Accepted DPoP proof algorithms (``AUTHGATE_DPOP_ALGORITHMS``).
    dpop_algorithms: tuple[str, ...] = setting("AUTHGATE_DPOP_ALGORITHMS", DPOP_ALGORITHMS)
    #: How old a proof's ``iat`` may be, in seconds (``AUTHGATE_DPOP_PROOF_LIFETIME``, at most 3600).
    dpop_proof_lifetime: float = setting("AUTHGATE_DPOP_PROOF_LIFETIME", 60.0)


@dataclasses.dataclass(frozen=True, slots=True)
class TelemetrySettings:
    """What the extension reports about its decisions."""

    #: Decision metrics through OpenTelemetry (``AUTHGATE_METRICS``).
    metrics: bool = setting("AUTHGATE_METRICS", False)
    #: One JSON line per decision on the ``flask_authgate.audit`` logger (``AUTHGATE_AUDIT_LOG``).
    audit_log: bool = setting("AUTHGATE_AUDIT_LOG", False)


#: The groups, by their attribute on :class:`Settings`.
GROUPS: dict[str, type] = {
    "keys": KeySettings,
    "tokens": TokenSettings,
    "cookies": CookieSettings,
    "revocation": RevocationSettings,
    "errors": ErrorSettings,
    "access": AccessSettings,
    "providers": ProviderSettings,
    "resource": ResourceSettings,
    "telemetry": TelemetrySettings,
}


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """The validated configuration of one app, one small dataclass per concern."""

    keys: KeySettings = dataclasses.field(default_factory=KeySettings)
    tokens: TokenSettings = dataclasses.field(default_factory=TokenSettings)
    cookies: CookieSettings = dataclasses.field(default_factory=CookieSettings)
    revocation: RevocationSettings = dataclasses.field(default_factory=RevocationSettings)
    errors: ErrorSettings = dataclasses.field(default_factory=ErrorSettings)
    access: AccessSettings = dataclasses.field(default_factory=AccessSettings)
    providers: ProviderSettings = dataclasses.field(default_factory=ProviderSettings)
    resource: ResourceSettings = dataclasses.field(default_factory=ResourceSettings)
    telemetry: TelemetrySettings = dataclasses.field(default_factory=TelemetrySettings)

    @property
    def issuers(self) -> tuple[str, ...]:
        """The issuers this app trusts (RFC 9728 ``authorization_servers``)."""
        own = self.tokens.accepted_issuers or ()
        return own + tuple(e.issuer for e in self.providers.trusted_issuers if e.issuer not in own)


def keys_of(group: type) -> dict[str, t.Any]:
    """The ``AUTHGATE_*`` key of each field of ``group`` that is read from one key, and its default."""
    out = {}
    for f in dataclasses.fields(group):
        key = f.metadata.get("key")
        if key is not None:
            factory = f.default_factory
            out[key] = f.default if factory is dataclasses.MISSING else factory()
    return out


#: Every key read from one field, with its default: what ``load_settings`` falls back to
#: (read-only: a default cannot be changed behind every app's back).
DEFAULTS: cabc.Mapping[str, t.Any] = types.MappingProxyType(
    {k: v for group in GROUPS.values() for k, v in keys_of(group).items()}
)


def _get(app: Flask, key: str, default: t.Any) -> t.Any:
    return app.config.get(key, default)


#: The longest duration any setting accepts: beyond it, dates overflow (cookie expiry) and
#: tokens stop meaning anything (RFC 6750 §5.2: a token's lifetime MUST be limited).
MAX_DURATION = 10 * 365 * 86400


def duration(key: str, value: t.Any) -> float:
    """A ``timedelta`` or a positive number of seconds, as seconds."""
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ConfigError(f"{key} must be a datetime.timedelta or a number of seconds, not {type(value).__name__}")
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise ConfigError(f"{key} must be a positive, finite duration")
    if seconds > MAX_DURATION:
        raise ConfigError(f"{key} must be at most 10 years ({MAX_DURATION} seconds)")
    return seconds


def _number(key: str, value: t.Any, *, minimum: float = 0) -> float:
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (minimum <= value < float("inf")):
        raise ConfigError(f"{key} must be a number >= {minimum:g}")
    return float(value)


def _count(key: str, value: t.Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        turns_off = " (0 turns the cache off)" if minimum == 0 else ""
        raise ConfigError(f"{key} must be an integer >= {minimum}{turns_off}")
    return value


def _bool(key: str, value: t.Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be True or False, not {value!r}")
    return value


def _str_list(key: str, value: t.Any, *, allow_empty: bool = False) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple, set, frozenset)) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{key} must be a list of non-empty strings")
    if not value and not allow_empty:
        raise ConfigError(f"{key} must not be empty")
    return tuple(value)


def _name(key: str, value: t.Any) -> str:
    if not isinstance(value, str) or not _TOKEN_RE.fullmatch(value):
        raise ConfigError(f"{key} must be a non-empty name of letters, digits and -._~ (an HTTP token)")
    return value


def _secrets(app: Flask, algorithms: tuple[str, ...], token_format: str) -> tuple[bytes, ...]:
    key = "AUTHGATE_JWT_SECRET"
    value = app.config.get(key)
    hmac_algs = [a for a in algorithms if a in HMAC_ALGORITHMS]
    needed = not algorithms or bool(hmac_algs) or token_format == "signed"
    outside = any(app.config.get(k) is not None for k in OUTSIDE_KEYS)
    if value is None and needed and not outside:
        # Flask's SECRET_KEY (there for sessions in most apps) is the HMAC key only when no
        # outside keys are configured (DESIGN.md part two); beside an identity provider's
        # keys, HMAC tokens need AUTHGATE_JWT_SECRET set explicitly.
        value, key = app.config.get("SECRET_KEY"), "AUTHGATE_JWT_SECRET (or SECRET_KEY)"
    if value is None:
        if needed and outside:
            raise ConfigError(
                f"{key} is not set: beside an identity provider's keys, HMAC tokens (or the signed format) "
                "need AUTHGATE_JWT_SECRET set explicitly (Flask's SECRET_KEY is not used then); it must be "
                "a random key of at least 32 bytes"
            )
        if needed:
            raise ConfigError(
                f"{key} is not set; it must be a random key of at least 32 bytes to sign this app's own "
                "tokens. To verify an identity provider's tokens instead, set AUTHGATE_OIDC_ISSUER or "
                "AUTHGATE_JWKS_URL: no secret is needed then"
            )
        return ()
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ConfigError(f"{key} must not be an empty list")
    minimum = max([HMAC_ALGORITHMS[a] for a in hmac_algs] + [32])
    out = []
    for i, v in enumerate(values):
        if isinstance(v, str):
            v = v.encode()
        if not isinstance(v, bytes):
            raise ConfigError(f"{key} must be a string, bytes or a list of them")
        which = f"{key}[{i}]" if isinstance(value, (list, tuple)) else key
        if v.lstrip().startswith((b"-----BEGIN", b"ssh-", b"ecdsa-sha2-")):
            # PyJWT refuses such a key as an HMAC secret (InvalidKeyError) at every encode and decode.
            raise ConfigError(
                f"{which} is a PEM or SSH key; an HMAC secret must be random bytes. For RS/ES/EdDSA "
                "set AUTHGATE_JWT_ALGORITHMS and AUTHGATE_JWT_PUBLIC_KEY / AUTHGATE_JWT_PRIVATE_KEY"
            )
        if len(v) < minimum:
            alg = max(hmac_algs, key=lambda a: HMAC_ALGORITHMS[a]) if hmac_algs else "HS256"
            raise ConfigError(
                f"{which} is {len(v)} bytes; {alg} needs at least {minimum} (RFC 7518 §3.2). "
                "Use a random key such as secrets.token_urlsafe(64)"
            )
        out.append(v)
    return tuple(out)


#: The keys that name outside keys: with only these, no HMAC secret is needed.
OUTSIDE_KEYS = (
    "AUTHGATE_JWKS_URL",
    "AUTHGATE_OIDC_ISSUER",
    "AUTHGATE_TRUSTED_ISSUERS",
    "AUTHGATE_INTROSPECTION_URL",
    "AUTHGATE_INTROSPECTION_CLIENT_ID",
)


def _algorithms(app: Flask, token_format: str = "jwt") -> tuple[str, ...]:
    key = "AUTHGATE_JWT_ALGORITHMS"
    outside = any(app.config.get(k) is not None for k in OUTSIDE_KEYS)
    if (
        outside
        and token_format == "jwt"
        and key not in app.config
        and app.config.get("AUTHGATE_JWT_SECRET") is not None
    ):
        # The secret would be ignored silently (outside keys default to the asymmetric family).
        raise ConfigError(
            "AUTHGATE_JWT_SECRET is set beside an identity provider's keys, but AUTHGATE_JWT_ALGORITHMS is not: "
            'to sign this app\'s own tokens too, set AUTHGATE_JWT_ALGORITHMS = ["HS256"] (the identity '
            "provider's tokens keep their own algorithms); otherwise remove AUTHGATE_JWT_SECRET"
        )
    # A verify-only app (an identity provider's tokens) needs no secret: asymmetric by default.
    algs = _str_list(key, _get(app, key, list(ASYMMETRIC_DEFAULT) if outside else ["HS256"]))
    for a in algs:
        if a.lower() == "none":
            raise ConfigError(f"{key} contains {a!r}; unsigned tokens are never accepted (RFC 8725 §3.2)")
        if a not in HMAC_ALGORITHMS and a not in ASYMMETRIC_ALGORITHMS:
            raise ConfigError(f"{key} contains the unknown algorithm {a!r}")
    if any(a in HMAC_ALGORITHMS for a in algs) and any(a in ASYMMETRIC_ALGORITHMS for a in algs):
        raise ConfigError(
            f"{key} mixes HMAC and public-key algorithms; use one family so no key serves two (RFC 8725 §3.1)"
        )
    return algs


def _pem(key: str, value: t.Any) -> str | bytes:
    if not isinstance(value, (str, bytes)) or not value.strip():
        raise ConfigError(f"{key} must be a PEM-encoded key (str or bytes)")
    return value


def _public_keys(app: Flask) -> dict[str | None, str | bytes]:
    keys: dict[str | None, str | bytes] = {}
    one = app.config.get("AUTHGATE_JWT_PUBLIC_KEY")
    if one is not None:
        keys[None] = _pem("AUTHGATE_JWT_PUBLIC_KEY", one)
    many = app.config.get("AUTHGATE_JWT_PUBLIC_KEYS")
    if many is not None:
        if not isinstance(many, cabc.Mapping) or not many:
            raise ConfigError("AUTHGATE_JWT_PUBLIC_KEYS must be a non-empty mapping of kid -> PEM public key")
        for kid, pem in many.items():
            if not isinstance(kid, str) or not kid:
                raise ConfigError("AUTHGATE_JWT_PUBLIC_KEYS keys must be non-empty kid strings")
            keys[kid] = _pem(f"AUTHGATE_JWT_PUBLIC_KEYS[{kid!r}]", pem)
    return keys


def _networks(key: str, value: t.Any) -> tuple[IPNetwork, ...]:
    return parse_networks(key, _str_list(key, value))


def parse_networks(where: str, values: cabc.Iterable[t.Any]) -> tuple[IPNetwork, ...]:
    """Parse networks strictly (host bits set is an error), naming ``where`` on failure."""
    out = []
    for v in values:
        if not isinstance(v, str):
            raise ConfigError(f"{where}: {v!r} is not a network string such as '10.0.0.0/8'")
        try:
            out.append(ipaddress.ip_network(v.strip(), strict=True))
        except ValueError:
            raise ConfigError(
                f"{where}: {v!r} is not a valid network (for example '10.0.0.0/8' or '::1/128')"
            ) from None
    if not out:
        raise ConfigError(f"{where}: at least one network is needed")
    return tuple(out)


def _hierarchy(value: t.Any) -> dict[str, frozenset[str]]:
    key = "AUTHGATE_ROLE_HIERARCHY"
    if value is None:
        return {}
    if not isinstance(value, cabc.Mapping):
        raise ConfigError(f"{key} must map a role to the list of roles it includes, e.g. {{'admin': ['editor']}}")
    graph: dict[str, tuple[str, ...]] = {}
    for role, children in value.items():
        if not isinstance(role, str) or not role:
            raise ConfigError(f"{key}: every role must be a non-empty string")
        if isinstance(children, str) or not isinstance(children, (list, tuple, set, frozenset)):
            raise ConfigError(f"{key}[{role!r}] must be a list of role names")
        if not all(isinstance(c, str) and c for c in children):
            raise ConfigError(f"{key}[{role!r}] must hold non-empty role names")
        graph[role] = tuple(children)
    closure: dict[str, frozenset[str]] = {}

    def visit(role: str, path: tuple[str, ...]) -> frozenset[str]:
        if role in path:
            cycle = " -> ".join((*path[path.index(role) :], role))
            raise ConfigError(f"{key} has a cycle: {cycle}")
        if role in closure:
            return closure[role]
        implied: set[str] = set()
        for child in graph.get(role, ()):
            implied.add(child)
            implied |= visit(child, (*path, role))
        closure[role] = frozenset(implied)
        return closure[role]

    for role in graph:
        visit(role, ())
    return {r: c for r, c in closure.items() if c}


def _choice(key: str, value: t.Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(repr(c) for c in choices)}, not {value!r}")
    return t.cast(str, value)


def load_settings(app: Flask) -> Settings:
    """Read, default and validate every ``AUTHGATE_*`` key of ``app``."""
    cfg = app.config

    def get(key: str) -> t.Any:
        return cfg.get(key, DEFAULTS[key])

    token_format = _choice("AUTHGATE_TOKEN_FORMAT", get("AUTHGATE_TOKEN_FORMAT"), ("jwt", "signed"))
    algorithms = _algorithms(app, token_format)
    public_keys = _public_keys(app)
    private_key = cfg.get("AUTHGATE_JWT_PRIVATE_KEY")
    if private_key is not None:
        private_key = _pem("AUTHGATE_JWT_PRIVATE_KEY", private_key)
    signing_kid = cfg.get("AUTHGATE_JWT_KID")
    if signing_kid is not None and (not isinstance(signing_kid, str) or not signing_kid):
        raise ConfigError("AUTHGATE_JWT_KID must be a non-empty string")
    jwks_url = cfg.get("AUTHGATE_JWKS_URL")
    if jwks_url is not None and (not isinstance(jwks_url, str) or not re.fullmatch(r"https?://[\x21-\x7e]+", jwks_url)):
        raise ConfigError("AUTHGATE_JWKS_URL must be an http:// or https:// URL")
    asymmetric = any(a in ASYMMETRIC_ALGORITHMS for a in algorithms)
    outside = any(cfg.get(k) is not None for k in OUTSIDE_KEYS[1:])
    if asymmetric and token_format == "jwt" and not (public_keys or private_key or jwks_url or outside):
        raise ConfigError(
            f"AUTHGATE_JWT_ALGORITHMS is {list(algorithms)} but no key is set: set AUTHGATE_JWT_PUBLIC_KEY "
            "(and AUTHGATE_JWT_PRIVATE_KEY to issue tokens), AUTHGATE_JWT_PUBLIC_KEYS or AUTHGATE_JWKS_URL"
        )
    if not asymmetric and (public_keys or private_key or jwks_url):
        raise ConfigError(
            "AUTHGATE_JWT_PUBLIC_KEY(S), AUTHGATE_JWT_PRIVATE_KEY and AUTHGATE_JWKS_URL need a public-key "
            "algorithm in AUTHGATE_JWT_ALGORITHMS, e.g. ['RS256']"
        )
    keys = KeySettings(
        # After the key checks: a verify-only setup is told about its algorithms, not a secret.
        secrets=_secrets(app, algorithms, token_format),
        algorithms=algorithms,
        private_key=private_key,
        signing_kid=signing_kid,
        public_keys=public_keys,
        jwks_url=jwks_url,
        jwks_lifespan=duration("AUTHGATE_JWKS_CACHE_LIFESPAN", get("AUTHGATE_JWKS_CACHE_LIFESPAN")),
        jwks_cooldown=_number("AUTHGATE_JWKS_COOLDOWN", get("AUTHGATE_JWKS_COOLDOWN")),
        jwks_timeout=duration("AUTHGATE_JWKS_TIMEOUT", get("AUTHGATE_JWKS_TIMEOUT")),
    )

    resource = _resource(get)
    tokens = _tokens(app, get, token_format, algorithms, resource.identifier)
    providers = _providers(cfg, tokens, algorithms if "AUTHGATE_JWT_ALGORITHMS" in cfg else None)
    if resource.dpop and resource.dpop_proof_lifetime + 1 > tokens.max_lifetime:
        raise ConfigError(
            "AUTHGATE_DPOP_PROOF_LIFETIME is longer than AUTHGATE_MAX_TOKEN_LIFETIME: the replay records of "
            "proofs could not be kept long enough; shorten the proof lifetime"
        )
    if resource.dpop == "required" and "cookies" in tokens.locations:
        raise ConfigError(
            "AUTHGATE_DPOP = 'required' cannot work with 'cookies' in AUTHGATE_TOKEN_LOCATIONS: a cookie "
            "cannot carry a DPoP-bound token (use 'allowed', or header-only tokens)"
        )
    allow = get("AUTHGATE_IP_ALLOWLIST")
    return Settings(
        keys=keys,
        tokens=tokens,
        cookies=_cookies(get),
        revocation=_revocation(get),
        errors=_errors(get),
        access=AccessSettings(
            default_deny=_bool("AUTHGATE_DEFAULT_DENY", get("AUTHGATE_DEFAULT_DENY")),
            ip_allowlist=_networks("AUTHGATE_IP_ALLOWLIST", allow) if allow is not None else None,
            role_hierarchy=_hierarchy(get("AUTHGATE_ROLE_HIERARCHY")),
        ),
        providers=providers,
        resource=resource,
        telemetry=TelemetrySettings(
            metrics=_bool("AUTHGATE_METRICS", get("AUTHGATE_METRICS")),
            audit_log=_bool("AUTHGATE_AUDIT_LOG", get("AUTHGATE_AUDIT_LOG")),
        ),
    )


_Get = cabc.Callable[[str], t.Any]


def _resource(get: _Get) -> ResourceSettings:
    resource = get("AUTHGATE_RESOURCE")
    if resource is not None:
        resource = validate_resource(resource, "AUTHGATE_RESOURCE")
    dpop = get("AUTHGATE_DPOP")
    if dpop not in (False, "allowed", "required"):
        raise ConfigError(f"AUTHGATE_DPOP must be False, 'allowed' or 'required', not {dpop!r}")
    dpop_algs = _str_list("AUTHGATE_DPOP_ALGORITHMS", get("AUTHGATE_DPOP_ALGORITHMS"))
    bad_algs = [a for a in dpop_algs if a not in DPOP_ALGORITHMS_SUPPORTED]
    if bad_algs:
        raise ConfigError(
            f"AUTHGATE_DPOP_ALGORITHMS contains {bad_algs[0]!r}, which is not a DPoP proof algorithm: use "
            f"some of {sorted(DPOP_ALGORITHMS_SUPPORTED)} (RFC 9449 §4.2: asymmetric, never 'none' or HMAC)"
        )
    lifetime = duration("AUTHGATE_DPOP_PROOF_LIFETIME", get("AUTHGATE_DPOP_PROOF_LIFETIME"))
    if lifetime > 3600:
        raise ConfigError("AUTHGATE_DPOP_PROOF_LIFETIME must be at most 3600 seconds (a proof is for one request)")
    return ResourceSettings(
        identifier=resource,
        metadata=validate_extra(get("AUTHGATE_RESOURCE_METADATA"), "AUTHGATE_RESOURCE_METADATA"),
        dpop=dpop,
        dpop_algorithms=dpop_algs,
        dpop_proof_lifetime=lifetime,
    )


def _tokens(
    app: Flask, get: _Get, token_format: str, algorithms: tuple[str, ...], resource: str | None
) -> TokenSettings:
    cfg = app.config
    types = cfg.get("AUTHGATE_JWT_TYP")
    jwt_types = frozenset(x.lower() for x in _str_list("AUTHGATE_JWT_TYP", types)) if types is not None else frozenset()
    if "at+jwt" in jwt_types:
        jwt_types |= {"application/at+jwt"}
    audience = get("AUTHGATE_JWT_AUDIENCE")
    if audience is not None:
        audience = _str_list("AUTHGATE_JWT_AUDIENCE", audience)
    elif resource is not None:
        audience = (resource,)  # RFC 9728 §1: the resource is the audience of its tokens
    required = _str_list("AUTHGATE_JWT_REQUIRED_CLAIMS", get("AUTHGATE_JWT_REQUIRED_CLAIMS"))
    if "exp" not in required or "sub" not in required:
        raise ConfigError("AUTHGATE_JWT_REQUIRED_CLAIMS must include 'exp' and 'sub'")
    accepted_issuers = parse_jwt_issuer(get("AUTHGATE_JWT_ISSUER"))
    roles = ClaimMapping.parse(get("AUTHGATE_ROLES_CLAIM"), key="AUTHGATE_ROLES_CLAIM", kind="roles")
    scopes = ClaimMapping.parse(get("AUTHGATE_SCOPES_CLAIM"), key="AUTHGATE_SCOPES_CLAIM", kind="scopes")
    leeway = _number("AUTHGATE_JWT_LEEWAY", get("AUTHGATE_JWT_LEEWAY"))
    if leeway > 300:
        raise ConfigError("AUTHGATE_JWT_LEEWAY must be at most 300 seconds (RFC 7519 §4.1.4: a few minutes)")

    access = duration("AUTHGATE_ACCESS_TOKEN_EXPIRES", get("AUTHGATE_ACCESS_TOKEN_EXPIRES"))
    refresh = duration("AUTHGATE_REFRESH_TOKEN_EXPIRES", get("AUTHGATE_REFRESH_TOKEN_EXPIRES"))
    max_life = duration("AUTHGATE_MAX_TOKEN_LIFETIME", cfg.get("AUTHGATE_MAX_TOKEN_LIFETIME", max(access, refresh)))
    if max_life < max(access, refresh):
        raise ConfigError(
            "AUTHGATE_MAX_TOKEN_LIFETIME is shorter than AUTHGATE_ACCESS/REFRESH_TOKEN_EXPIRES; "
            "tokens this app issues would be refused"
        )
    locations = frozenset(_str_list("AUTHGATE_TOKEN_LOCATIONS", get("AUTHGATE_TOKEN_LOCATIONS")))
    unknown = locations - TOKEN_LOCATIONS
    if unknown:
        raise ConfigError(
            f"AUTHGATE_TOKEN_LOCATIONS has unknown location(s) {sorted(unknown)}; use 'headers', 'cookies'"
        )
    return TokenSettings(
        format=t.cast(t.Literal["jwt", "signed"], token_format),
        locations=locations,
        api_key_header=_name("AUTHGATE_API_KEY_HEADER", get("AUTHGATE_API_KEY_HEADER")),
        types=jwt_types,
        audience=audience,
        accepted_issuers=accepted_issuers,
        issuer=accepted_issuers[0] if accepted_issuers else None,  # the one this app's own tokens carry
        # The claim this app's own tokens carry roles and scopes in: the first name of the
        # mapping ("" for a function, and then this app issues none).
        roles_mapping=roles,
        roles_claim=roles.names[0] if roles.names else "",
        scopes_mapping=scopes,
        scopes_claim=scopes.names[0] if scopes.names else "",
        leeway=leeway,
        required_claims=required,
        max_lifetime=max_life,
        access_expires=access,
        refresh_expires=refresh,
        cache_size=_count("AUTHGATE_TOKEN_CACHE_SIZE", get("AUTHGATE_TOKEN_CACHE_SIZE"), minimum=0),
    )


def _providers(
    cfg: cabc.Mapping[str, t.Any], tokens: TokenSettings, algorithms: tuple[str, ...] | None
) -> ProviderSettings:
    # What an outside issuer inherits from the app-wide keys; its algorithms only when set
    # explicitly (otherwise each issuer defaults to the asymmetric family).
    defaults = IssuerDefaults(
        audience=tokens.audience,
        algorithms=algorithms,
        roles=tokens.roles_mapping,
        scopes=tokens.scopes_mapping,
        types=tokens.types,
        required_claims=tokens.required_claims,
    )
    oidc = parse_oidc_issuer(cfg.get("AUTHGATE_OIDC_ISSUER"), defaults=defaults)
    return ProviderSettings(
        trusted_issuers=build_issuers(
            oidc, parse_trusted_issuers(cfg.get("AUTHGATE_TRUSTED_ISSUERS"), defaults=defaults)
        ),
        introspection=parse_introspection(
            url=cfg.get("AUTHGATE_INTROSPECTION_URL"),
            client_id=cfg.get("AUTHGATE_INTROSPECTION_CLIENT_ID"),
            client_secret=cfg.get("AUTHGATE_INTROSPECTION_CLIENT_SECRET"),
            can_discover=oidc is not None,
            **{
                name: cfg[key]
                for name, key in (
                    ("cache_ttl", "AUTHGATE_INTROSPECTION_CACHE_TTL"),
                    ("cache_size", "AUTHGATE_INTROSPECTION_CACHE_SIZE"),
                )
                if key in cfg
            },
        ),
    )


def _cookies(get: _Get) -> CookieSettings:
    samesite = _choice("AUTHGATE_COOKIE_SAMESITE", get("AUTHGATE_COOKIE_SAMESITE"), ("Lax", "Strict", "None"))
    secure = _bool("AUTHGATE_COOKIE_SECURE", get("AUTHGATE_COOKIE_SECURE"))
    if samesite == "None" and not secure:
        raise ConfigError("AUTHGATE_COOKIE_SAMESITE='None' needs AUTHGATE_COOKIE_SECURE=True")
    domain = get("AUTHGATE_COOKIE_DOMAIN")
    if domain is not None and (not isinstance(domain, str) or not domain):
        raise ConfigError("AUTHGATE_COOKIE_DOMAIN must be a domain name")
    paths = {}
    for key in ("AUTHGATE_COOKIE_PATH", "AUTHGATE_REFRESH_COOKIE_PATH"):
        p = get(key)
        if not isinstance(p, str) or not p.startswith("/") or not _QUOTABLE_RE.fullmatch(p) or ";" in p:
            raise ConfigError(f"{key} must be a path starting with '/'")
        paths[key] = p
    return CookieSettings(
        secure=secure,
        samesite=samesite,
        domain=domain,
        path=paths["AUTHGATE_COOKIE_PATH"],
        refresh_path=paths["AUTHGATE_REFRESH_COOKIE_PATH"],
        access_name=_name("AUTHGATE_ACCESS_COOKIE_NAME", get("AUTHGATE_ACCESS_COOKIE_NAME")),
        refresh_name=_name("AUTHGATE_REFRESH_COOKIE_NAME", get("AUTHGATE_REFRESH_COOKIE_NAME")),
        csrf_name=_name("AUTHGATE_CSRF_COOKIE_NAME", get("AUTHGATE_CSRF_COOKIE_NAME")),
        csrf_header=_name("AUTHGATE_CSRF_HEADER", get("AUTHGATE_CSRF_HEADER")),
    )


def _revocation(get: _Get) -> RevocationSettings:
    store = get("AUTHGATE_REVOCATION_STORE")
    if isinstance(store, str):
        if store != "memory":
            parse_store_url(store)  # raises ConfigError naming AUTHGATE_REVOCATION_STORE
    elif not all(hasattr(store, m) for m in ("get_many", "put", "put_if_absent")):
        raise ConfigError("AUTHGATE_REVOCATION_STORE object must implement the RevocationStore protocol")
    staleness = duration("AUTHGATE_REVOCATION_STALENESS", get("AUTHGATE_REVOCATION_STALENESS"))
    if staleness > 60:
        raise ConfigError("AUTHGATE_REVOCATION_STALENESS must be at most 60 seconds")
    return RevocationSettings(
        store=store,
        redis_timeout=duration("AUTHGATE_REDIS_TIMEOUT", get("AUTHGATE_REDIS_TIMEOUT")),
        staleness=staleness,
        cache_size=_count("AUTHGATE_REVOCATION_CACHE_SIZE", get("AUTHGATE_REVOCATION_CACHE_SIZE"), minimum=1),
    )


def _errors(get: _Get) -> ErrorSettings:
    realm = get("AUTHGATE_REALM")
    if not isinstance(realm, str) or not realm or not _QUOTABLE_RE.fullmatch(realm):
        raise ConfigError('AUTHGATE_REALM must be non-empty printable ASCII without " or \\')
    login_view = get("AUTHGATE_LOGIN_VIEW")
    if login_view is not None and (not isinstance(login_view, str) or not re.fullmatch(r"[\x21-\x7e]+", login_view)):
        # It goes into the Location header: printable ASCII only, no space, CR or LF.
        raise ConfigError("AUTHGATE_LOGIN_VIEW must be an endpoint name or a path (printable ASCII, no spaces)")
    return ErrorSettings(
        realm=realm,
        format=t.cast(
            t.Literal["json", "problem"],
            _choice("AUTHGATE_ERROR_FORMAT", get("AUTHGATE_ERROR_FORMAT"), ("json", "problem")),
        ),
        retry_after=int(_number("AUTHGATE_RETRY_AFTER", get("AUTHGATE_RETRY_AFTER"), minimum=1)),
        login_view=login_view,
    )
