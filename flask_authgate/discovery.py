"""Authorization server metadata: OpenID Connect Discovery, falling back to RFC 8414.

For an issuer ``https://sso.example.com/realms/acme`` the documents tried are,
in order:

1. ``https://sso.example.com/realms/acme/.well-known/openid-configuration``
   (OpenID Connect Discovery 1.0 §4: a terminating ``/`` of the issuer is
   removed before the path is appended);
2. ``https://sso.example.com/.well-known/oauth-authorization-server/realms/acme``
   (RFC 8414 §3.1: the well-known path goes *between* the host and the
   issuer's path).

A document is used only if it is a JSON object whose ``issuer`` equals the
configured issuer exactly (OIDC Discovery §4.3, RFC 8414 §3.3: this stops a
provider from impersonating another), and whose ``jwks_uri`` and
``introspection_endpoint``, when present, are ``http``/``https`` URLs.

Nothing is fetched at construction. The metadata is fetched when first
needed, kept for ``lifespan`` seconds, and fetched again afterwards; when a
fetch fails the last good document stays in use, and no new attempt is made
within ``cooldown`` seconds of a failure. Without any good document, callers
get 503 ``auth_unavailable`` (reason ``discovery_failed``) until the provider
answers again — no restart needed.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import logging
import threading
import time
import types
import typing as t
import urllib.parse

from ._http import MAX_BYTES
from ._http import FetchError
from ._http import fetch_json
from ._urls import is_discoverable_issuer
from ._urls import is_http_url
from .errors import AuthError

log = logging.getLogger("flask_authgate")

OIDC_SUFFIX = "/.well-known/openid-configuration"
OAUTH_PREFIX = "/.well-known/oauth-authorization-server"


def discovery_urls(issuer: str) -> tuple[str, str]:
    """The OpenID Connect and the RFC 8414 metadata URLs of ``issuer``, in the order they are tried."""
    trimmed = issuer[:-1] if issuer.endswith("/") else issuer
    parts = urllib.parse.urlsplit(trimmed)
    oidc = trimmed + OIDC_SUFFIX
    oauth = urllib.parse.urlunsplit((parts.scheme, parts.netloc, OAUTH_PREFIX + parts.path, "", ""))
    return oidc, oauth


@dataclasses.dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """What a checked metadata document says."""

    #: The issuer, equal to the configured one.
    issuer: str
    #: Where the provider publishes its keys, or ``None``.
    jwks_uri: str | None
    #: The RFC 7662 endpoint, or ``None``.
    introspection_endpoint: str | None
    #: The whole document (read-only).
    document: cabc.Mapping[str, t.Any]
    #: The URL the document came from.
    source: str


def check_metadata(document: cabc.Mapping[str, t.Any], issuer: str, source: str) -> ProviderMetadata:
    """Validate a metadata document for ``issuer``.

    :raises FetchError: With reason ``issuer_mismatch``, ``jwks_uri`` or
        ``introspection_endpoint`` when the document fails a check.
    """
    if document.get("issuer") != issuer:
        # Exact comparison, no normalisation: a trailing "/" or a case change is another issuer.
        raise FetchError("issuer_mismatch")
    urls: dict[str, str | None] = {}
    for field in ("jwks_uri", "introspection_endpoint"):
        value = document.get(field)
        if value is not None and not is_http_url(value):
            raise FetchError(field)
        urls[field] = value
    return ProviderMetadata(
        issuer=issuer,
        jwks_uri=urls["jwks_uri"],
        introspection_endpoint=urls["introspection_endpoint"],
        document=types.MappingProxyType(dict(document)),
        source=source,
    )


def _unavailable(reason: str, retry_after: int) -> t.NoReturn:
    err = AuthError("auth_unavailable", retry_after=retry_after)
    err.reason = reason
    raise err


class Discovery:
    """The lazily fetched, cached metadata of one issuer.

    :param issuer: The issuer identifier, an ``http``/``https`` URL without
        query or fragment (see :func:`is_discoverable_issuer`).
    :param lifespan: Seconds a fetched document stays fresh.
    :param cooldown: Seconds without a new attempt after a failed one.
    :param timeout: Total seconds for one discovery (both URLs together).
    :param retry_after: Seconds sent in ``Retry-After`` with a 503.
    :param max_bytes: Largest document accepted.
    :param clock: The monotonic clock of the lifespan and the cooldown.
    :raises ValueError: ``issuer`` cannot be discovered.
    """

    def __init__(
        self,
        issuer: str,
        *,
        lifespan: float = 300,
        cooldown: float = 30,
        timeout: float = 2,
        retry_after: int = 5,
        max_bytes: int = MAX_BYTES,
        clock: cabc.Callable[[], float] = time.monotonic,
    ) -> None:
        if not is_discoverable_issuer(issuer):
            raise ValueError("the issuer must be an http(s) URL without query or fragment to be discovered")
        self.issuer = issuer
        self.urls = discovery_urls(issuer)
        self._lifespan = lifespan
        self._cooldown = cooldown
        self._timeout = timeout
        self._retry_after = retry_after
        self._max_bytes = max_bytes
        #: The monotonic clock of the lifespan and the cooldown (replaceable in tests).
        self.clock = clock
        self._metadata: ProviderMetadata | None = None
        self._fetched_at: float | None = None
        self._failed_at: float | None = None
        #: How many discoveries were attempted.
        self.attempts = 0
        self._lock = threading.Lock()

    def _discover(self) -> ProviderMetadata:
        deadline = self.clock() + self._timeout
        reasons = []
        for url in self.urls:
            remaining = deadline - self.clock()
            if remaining <= 0:
                reasons.append("timeout")
                break
            try:
                document = fetch_json(url, timeout=remaining, max_bytes=self._max_bytes, clock=self.clock)
                return check_metadata(document, self.issuer, url)
            except FetchError as exc:
                reasons.append(exc.reason)
        raise FetchError("+".join(reasons))

    def metadata(self) -> ProviderMetadata:
        """The checked metadata, fetched if missing or stale.

        :raises AuthError: 503 ``auth_unavailable`` (reason ``discovery_failed``)
            while no good document was ever fetched.
        """
        current, fetched = self._metadata, self._fetched_at
        if current is not None and fetched is not None and self.clock() - fetched <= self._lifespan:
            return current
        with self._lock:
            now = self.clock()
            fresh = self._fetched_at is not None and now - self._fetched_at <= self._lifespan
            cooling = self._failed_at is not None and now - self._failed_at < self._cooldown
            if not fresh and not cooling:
                self.attempts += 1
                try:
                    self._metadata = self._discover()
                except FetchError as exc:
                    self._failed_at = now
                    log.warning(
                        "authgate: discovery for issuer %s failed (%s)%s",
                        self.issuer,
                        exc.reason,
                        "; keeping the last good metadata" if self._metadata is not None else "",
                    )
                else:
                    self._fetched_at = now
                    self._failed_at = None
                    log.debug("authgate: discovered %s from %s", self.issuer, self._metadata.source)
            current = self._metadata
        if current is None:
            _unavailable("discovery_failed", self._retry_after)
        return current

    def jwks_uri(self) -> str:
        """The discovered ``jwks_uri``; 503 ``auth_unavailable`` when there is none (yet)."""
        return self._endpoint("jwks_uri", self.metadata().jwks_uri)

    def introspection_endpoint(self) -> str:
        """The discovered ``introspection_endpoint``; 503 ``auth_unavailable`` when there is none (yet)."""
        return self._endpoint("introspection_endpoint", self.metadata().introspection_endpoint)

    def _endpoint(self, name: str, uri: str | None) -> str:
        """``uri``, the metadata member ``name``; 503 ``auth_unavailable`` (``discovery_failed``) when it is absent."""
        if uri is None:
            log.warning("authgate: the metadata of issuer %s has no %s", self.issuer, name)
            _unavailable("discovery_failed", self._retry_after)
        return uri
