"""Keys of an outside identity provider, fetched from its JWK Set and cached.

Fetching (:class:`JwksClient`):

* The set is fetched when first needed, never at ``init_app``, and kept for
  ``lifespan`` seconds; a stale set is fetched again (a *scheduled* refresh).
* A token whose ``kid`` is not in the set causes one refetch at once, so a key
  the provider published after our last fetch is accepted without logging its
  users out. That refetch is limited to one per ``cooldown`` *for unknown
  kids*: neither the first fetch nor a scheduled refresh uses the allowance
  up, and random kids cannot cause more than one fetch per cooldown, also when
  many threads ask at once (RFC 8725 §3.10).
* A fetch that fails keeps the last good keys; no fetch of any kind is tried
  again within ``cooldown`` of a failure. A token whose key is not among the
  cached ones is then 503 ``auth_unavailable`` (it cannot be checked), never
  401 and never a pass.

Keys (RFC 7517 §4): an entry is used only when it has a ``kid``, its
``use`` (when present) is ``"sig"``, its ``key_ops`` (when present) include
``"verify"``, it is a public key of type ``RSA``, ``EC`` or ``OKP``, and its
algorithm is one we accept. Each key verifies only with its own algorithm; an
RSA key without ``alg`` is used with the first RSA algorithm we accept (as
PyJWT assumes RS256 for one). ``jku``/``x5u``/``jwk``/``x5c`` token headers are never
followed or trusted.

Key changes: when a fetch drops a key or replaces the material behind a
``kid``, :attr:`JwksClient.generation` increases and ``on_keys_changed`` is
called, so verdicts cached with the old material can be thrown away (issue #9
item 3).
"""

from __future__ import annotations

import collections.abc as cabc
import json
import logging
import threading
import time
import typing as t

from ._http import MAX_BYTES
from ._http import FetchError
from ._http import fetch_json
from ._pyjwt import PyJWK
from ._pyjwt import PyJWTError
from .errors import AuthError

log = logging.getLogger("flask_authgate")

_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})
#: Members of a JWK that hold private key material (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2).
_PRIVATE = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: Members that define the public key itself: what "the same key" means when comparing.
_MATERIAL = ("kty", "crv", "n", "e", "x", "y")

UrlSource = str | cabc.Callable[[], str]
#: Most JWK Set entries looked at (providers publish a handful; each costs a key import).
MAX_KEYS = 100


def _fail(
    code: t.Literal["token_invalid", "auth_unavailable"], reason: str, retry_after: int | None = None
) -> t.NoReturn:
    err = AuthError(code, retry_after=retry_after) if code == "auth_unavailable" else AuthError(code)
    err.reason = reason
    raise err


def _usable(entry: t.Any) -> bool:
    """Whether a JWK Set member may verify signatures at all (RFC 7517 §4.2, §4.3)."""
    if not isinstance(entry, dict):
        return False
    kid = entry.get("kid")
    if not isinstance(kid, str) or not kid:
        return False
    if entry.get("kty") not in _KEY_TYPES or _PRIVATE & entry.keys():
        return False
    if "use" in entry and entry["use"] != "sig":
        return False
    if "key_ops" in entry:
        ops = entry["key_ops"]
        if not isinstance(ops, list) or "verify" not in ops:
            return False
    return not ("alg" in entry and not isinstance(entry["alg"], str))


def parse_jwk_set(data: t.Any, algorithms: cabc.Sequence[str]) -> dict[str, dict[str, PyJWK]]:
    """The usable keys of a JWK Set document: ``kid -> alg -> key``.

    :raises ValueError: The document is not a JWK Set (no ``keys`` list).
    """
    entries = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError("not a JWK Set")
    accepted = tuple(algorithms)
    keys: dict[str, dict[str, PyJWK]] = {}
    if len(entries) > MAX_KEYS:
        log.warning("authgate: the JWK Set has %d entries; using the first %d", len(entries), MAX_KEYS)
    for entry in entries[:MAX_KEYS]:
        if not _usable(entry):
            continue
        alg = entry.get("alg")
        if alg is not None:
            candidates = [alg] if alg in accepted else []
        elif entry["kty"] == "RSA":
            # No "alg" (Entra ID): one algorithm per key (RFC 8725 §3.1), the first RSA one we accept.
            candidates = [a for a in accepted if a[:2] in ("RS", "PS")][:1]
        else:
            candidates = [None]  # EC: from the curve; OKP: EdDSA (PyJWK decides)
        for candidate in candidates:
            try:
                key = PyJWK(entry, algorithm=candidate)
            except (PyJWTError, ValueError, TypeError, KeyError, AttributeError):
                continue
            name = key.algorithm_name
            if name in accepted and name[:2] != "HS":
                keys.setdefault(entry["kid"], {})[name] = key
    return keys


def _fingerprints(entries: t.Any) -> dict[str, str]:
    """``kid`` -> a canonical form of its public key material (to notice a key replaced in place)."""
    out: dict[str, str] = {}
    if not isinstance(entries, list):
        return out
    for entry in entries:
        if _usable(entry):
            material = {m: entry.get(m) for m in _MATERIAL}
            previous = out.get(entry["kid"], "")
            out[entry["kid"]] = previous + json.dumps(material, sort_keys=True)
    return out


class JwksClient:
    """A cached view of one provider's JWK Set.

    :param url: The ``http``/``https`` URL of the JWK Set, or a function that
        returns it (e.g. :meth:`.discovery.Discovery.jwks_uri`); it may raise
        :class:`AuthError` or :class:`~._http.FetchError`, which count as a
        failed fetch.
    :param algorithms: Accepted algorithms; keys for others are ignored.
    :param lifespan: Seconds a fetched set stays fresh.
    :param cooldown: Minimum seconds between two refetches for unknown kids,
        and between any fetch and the one after a failure.
    :param timeout: Total seconds a fetch may take.
    :param retry_after: Seconds sent in ``Retry-After`` with a 503.
    :param max_bytes: Largest JWK Set accepted.
    :param on_keys_changed: Called (outside the lock) after a fetch that dropped
        a key or replaced the material behind a ``kid``.
    :param clock: The monotonic clock of the lifespan and the cooldown.
    """

    def __init__(
        self,
        url: UrlSource,
        *,
        algorithms: cabc.Sequence[str],
        lifespan: float = 300,
        cooldown: float = 30,
        timeout: float = 2,
        retry_after: int = 5,
        max_bytes: int = MAX_BYTES,
        on_keys_changed: cabc.Callable[[], None] | None = None,
        clock: cabc.Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._algorithms = tuple(algorithms)
        self._lifespan = lifespan
        self._cooldown = cooldown
        self._timeout = timeout
        self._retry_after = retry_after
        self._max_bytes = max_bytes
        self.on_keys_changed = on_keys_changed
        #: The monotonic clock of the lifespan and the cooldown (replaceable in tests).
        self.clock = clock
        self._keys: dict[str, dict[str, PyJWK]] = {}
        self._material: dict[str, str] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._unknown_kid_at: float | None = None
        self._last_failed = False
        #: How many fetches were attempted (successful or not).
        self.attempts = 0
        self._generation = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str | None:
        return self._url if isinstance(self._url, str) else None

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    @property
    def generation(self) -> int:
        """Increases (never decreases) each time a key we had was dropped or re-keyed.

        A verdict cached while :attr:`generation` was ``n`` may be reused only
        while it is still ``n``.
        """
        return self._generation

    def _resolve_url(self) -> str:
        return self._url if isinstance(self._url, str) else self._url()

    def _fetch_locked(self, now: float) -> bool:
        """One fetch; the caller holds the lock. Returns whether keys changed in a way that matters."""
        self._attempted_at = now
        self.attempts += 1
        try:
            started = self.clock()
            url = self._resolve_url()
            # Discovery (behind a URL function) and this fetch share one timeout.
            remaining = self._timeout - (self.clock() - started)
            if remaining <= 0:
                raise FetchError("timeout")
            data = fetch_json(url, timeout=remaining, max_bytes=self._max_bytes, clock=self.clock)
            keys = parse_jwk_set(data, self._algorithms)
        except FetchError as exc:
            reason = exc.reason
        except AuthError as exc:
            reason = getattr(exc, "reason", None) or "discovery_failed"
        except ValueError:
            reason = "not_a_jwk_set"
        else:
            material = _fingerprints(data.get("keys"))
            changed = any(kid not in material or material[kid] != fp for kid, fp in self._material.items())
            self._keys = keys
            self._material = material
            self._fetched_at = now
            self._last_failed = False
            if changed:
                self._generation += 1
            log.debug("authgate: JWKS fetched, %d usable key(s)", sum(len(v) for v in keys.values()))
            return changed
        self._last_failed = True
        log.warning("authgate: JWKS fetch failed (%s); keeping %d cached key(s)", reason, len(self._keys))
        return False

    def _after_fetch(self, changed: bool) -> None:
        if changed:
            log.info("authgate: the identity provider dropped or replaced a signing key")
            if self.on_keys_changed is not None:
                self.on_keys_changed()

    def _failure_cooldown(self, now: float) -> bool:
        """Whether a failed fetch happened less than a cooldown ago (then nothing is tried)."""
        return self._last_failed and self._attempted_at is not None and now - self._attempted_at < self._cooldown

    def refresh_if_stale(self) -> None:
        """The scheduled refresh: fetch again once the set is older than its lifespan.

        Called before every key lookup and before a verified-token cache hit.
        It never uses the unknown-kid allowance.
        """
        fetched = self._fetched_at
        now = self.clock()
        if fetched is not None and now - fetched <= self._lifespan:
            return
        # With keys in hand, a request does not wait for another thread's refresh: it uses
        # the keys it has. Without any, it waits for the first fetch.
        if not self._lock.acquire(blocking=fetched is None):
            return
        changed = False
        try:
            now = self.clock()
            fetched = self._fetched_at
            if (fetched is None or now - fetched > self._lifespan) and not self._failure_cooldown(now):
                changed = self._fetch_locked(now)
        finally:
            self._lock.release()
        self._after_fetch(changed)

    def refresh(self) -> bool:
        """Fetch now unless a failure happened within the cooldown; return whether the keys are usable."""
        with self._lock:
            now = self.clock()
            changed = False
            if not self._failure_cooldown(now):
                changed = self._fetch_locked(now)
            ok = not self._last_failed
        self._after_fetch(changed)
        return ok

    def _refetch_for_unknown_kid(self, seen_attempts: int) -> None:
        changed = False
        with self._lock:
            now = self.clock()
            if self.attempts != seen_attempts:
                pass  # someone fetched since this request looked: use their result
            elif self._failure_cooldown(now):
                pass
            elif self._unknown_kid_at is None or now - self._unknown_kid_at >= self._cooldown:
                self._unknown_kid_at = now
                changed = self._fetch_locked(now)
        self._after_fetch(changed)

    def get_key(self, kid: str, alg: str | None = None) -> PyJWK:
        """The key for ``kid`` (and the token's ``alg``).

        :raises AuthError: 401 ``token_invalid`` (reason ``unknown_kid``, or
            ``algorithm`` when the kid exists only for other algorithms), or 503
            ``auth_unavailable`` (reason ``jwks_failed``) when the keys could not
            be fetched.
        """
        seen = self.attempts
        self.refresh_if_stale()
        by_alg = self._keys.get(kid)
        if by_alg is None:
            self._refetch_for_unknown_kid(seen)
            by_alg = self._keys.get(kid)
        if by_alg is None:
            if self._last_failed or self._fetched_at is None:
                log.info("authgate: token refused, its key cannot be fetched (jwks_failed)")
                _fail("auth_unavailable", "jwks_failed", self._retry_after)
            log.debug("authgate: token refused (unknown_kid)")
            _fail("token_invalid", "unknown_kid")
        if alg is None:
            return next(iter(by_alg.values()))
        key = by_alg.get(alg)
        if key is None:
            log.debug("authgate: token refused (algorithm): its kid names a key of another algorithm")
            _fail("token_invalid", "algorithm")
        return key
