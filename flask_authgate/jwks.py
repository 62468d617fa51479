"""Keys of an outside identity provider, fetched from ``AUTHGATE_JWKS_URL`` and cached.

The key set is cached for ``AUTHGATE_JWKS_CACHE_LIFESPAN`` seconds. A token
whose ``kid`` is not in the cache forces one refresh, at most once per
``AUTHGATE_JWKS_COOLDOWN`` seconds, so unknown kids cannot make us fetch on
every request (RFC 8725 §3.10). When the provider is down the last good keys
stay in use; a token whose key is not among them fails closed with 503
``auth_unavailable``. ``jku``/``x5u``/``jwk`` headers are never followed.
"""

from __future__ import annotations

import collections.abc as cabc
import http.client
import json
import logging
import threading
import time
import typing as t
import urllib.error
import urllib.request

import jwt

from .errors import AuthError

log = logging.getLogger("flask_authgate")

_MAX_BYTES = 1 << 20
#: What a failed or broken fetch raises (RecursionError: a deeply nested JSON document).
_FETCH_ERRORS = (OSError, ValueError, TypeError, RecursionError, http.client.HTTPException, urllib.error.URLError)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: t.Any, **kwargs: t.Any) -> None:
        return None


class JwksClient:
    """A cached view of one provider's JWK Set.

    :param url: The ``http``/``https`` URL of the JWK Set.
    :param algorithms: Accepted algorithms; keys for others are ignored.
    :param lifespan: Seconds a fetched set stays fresh.
    :param cooldown: Minimum seconds between two fetches.
    :param timeout: Seconds to wait for the provider.
    :param retry_after: Seconds sent in ``Retry-After`` with a 503.
    :param on_keys_dropped: Called when a refresh removes a key we had (the
        verified-token cache is emptied then).
    """

    def __init__(
        self,
        url: str,
        *,
        algorithms: cabc.Sequence[str],
        lifespan: float = 300,
        cooldown: float = 30,
        timeout: float = 2,
        retry_after: int = 5,
        on_keys_dropped: cabc.Callable[[], None] | None = None,
        clock: cabc.Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._algorithms = tuple(algorithms)
        self._lifespan = lifespan
        self._cooldown = cooldown
        self._timeout = timeout
        self._retry_after = retry_after
        self.on_keys_dropped = on_keys_dropped
        #: The monotonic clock of the lifespan and the cooldown (replaceable in tests).
        self.clock = clock
        self._keys: dict[str, t.Any] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._last_failed = False
        self._lock = threading.Lock()
        self._opener = urllib.request.build_opener(_NoRedirect)

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def _fetch(self) -> dict[str, t.Any]:
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked in config
        with self._opener.open(request, timeout=self._timeout) as response:
            if response.status != 200:
                raise OSError(f"JWKS answered {response.status}")
            body = response.read(_MAX_BYTES + 1)
        if len(body) > _MAX_BYTES:
            raise ValueError("JWKS document too large")
        data = json.loads(body)
        entries = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise ValueError("not a JWK Set")
        keys: dict[str, t.Any] = {}
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str) or not entry["kid"]:
                continue
            if entry.get("use", "sig") != "sig":
                continue
            alg = entry.get("alg")
            if alg is None and entry.get("kty") == "RSA":
                # PyJWK assumes RS256 for an RSA key without "alg"; use the first RSA algorithm we accept.
                alg = next((a for a in self._algorithms if a[:2] in ("RS", "PS")), None)
            try:
                key = jwt.PyJWK(entry, algorithm=alg)
            except (jwt.PyJWTError, ValueError, TypeError, KeyError, AttributeError):
                continue
            # PyJWT verifies with the key's own algorithm; a key for one we refuse is useless.
            if key.algorithm_name in self._algorithms:
                keys[entry["kid"]] = key
        return keys

    def refresh(self, *, force: bool = False) -> bool:
        """Fetch the set if the cooldown allows; return whether the keys are usable now."""
        with self._lock:
            now = self.clock()
            if not force and self._attempted_at is not None and now - self._attempted_at < self._cooldown:
                return not self._last_failed
            self._attempted_at = now
            try:
                keys = self._fetch()
            except _FETCH_ERRORS as exc:
                self._last_failed = True
                log.warning(
                    "authgate: JWKS fetch failed (%s); keeping %d cached key(s)", type(exc).__name__, len(self._keys)
                )
                return False
            dropped = bool(set(self._keys) - set(keys))
            self._keys = keys
            self._fetched_at = now
            self._last_failed = False
        if dropped and self.on_keys_dropped is not None:
            self.on_keys_dropped()
        return True

    def refresh_if_stale(self) -> None:
        """Fetch the set again once its lifespan is over (also before a verified-token cache hit)."""
        if self._fetched_at is None or self.clock() - self._fetched_at > self._lifespan:
            self.refresh()

    def get_key(self, kid: str) -> t.Any:
        """The key for ``kid``; raise 401 ``token_invalid`` or 503 ``auth_unavailable``."""
        self.refresh_if_stale()
        key = self._keys.get(kid)
        if key is None:
            ok = self.refresh()
            key = self._keys.get(kid)
            if key is None:
                if not ok or self._fetched_at is None:
                    raise AuthError("auth_unavailable", retry_after=self._retry_after)
                raise AuthError("token_invalid")
        return key
