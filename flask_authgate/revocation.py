"""Revocation: a small store protocol and two stores, in memory and Redis.

Entries are keyed on identity, never on the token string (PyJWT and
itsdangerous accept slightly altered copies of one token):

* ``jti:<id>`` — one token revoked (or a refresh token used up);
* ``fam:<id>`` — every token of one refresh family (reuse detected);
* ``sub:<subject>`` — every token of a subject issued at or before the stored time.

Each entry expires when the newest token it can concern would have expired,
so memory stays bounded by the revocations of one token lifetime. A store that
cannot be reached makes the request fail closed with 503 ``auth_unavailable``.
"""

from __future__ import annotations

import collections.abc as cabc
import heapq
import logging
import threading
import time
import typing as t

from .errors import AuthError

log = logging.getLogger("flask_authgate")


class RevocationStore(t.Protocol):
    """What a revocation store provides. Values are UNIX times (floats).

    Implementations raise any exception when the backend cannot be reached;
    the extension turns it into 503 ``auth_unavailable``.
    """

    def get_many(self, keys: cabc.Sequence[str]) -> list[float | None]:
        """The values stored under ``keys`` (``None`` where absent or expired), in one round trip."""

    def put(self, key: str, value: float, expires_at: float) -> None:
        """Store ``value`` under ``key`` until ``expires_at``, keeping the larger value if one exists."""

    def put_if_absent(self, key: str, value: float, expires_at: float) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it was stored (atomically)."""


class MemoryStore:
    """A per-process store: right for one process, wrong for several (use Redis there).

    Expired entries are dropped as new ones arrive, so the size is bounded by
    the number of revocations made within one maximum token lifetime.
    """

    def __init__(self, clock: cabc.Callable[[], float] = time.time) -> None:
        self._data: dict[str, tuple[float, float]] = {}
        self._expiry: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._clock = clock

    def __len__(self) -> int:
        """The number of live entries (expired ones are dropped first)."""
        with self._lock:
            self._purge(self._clock())
            return len(self._data)

    def _purge(self, now: float) -> None:
        heap = self._expiry
        while heap and heap[0][0] <= now:
            _expires_at, key = heapq.heappop(heap)
            entry = self._data.get(key)
            if entry is not None and entry[1] <= now:
                del self._data[key]

    def get_many(self, keys: cabc.Sequence[str]) -> list[float | None]:
        now = self._clock()
        data = self._data
        out: list[float | None] = []
        for key in keys:
            entry = data.get(key)
            out.append(entry[0] if entry is not None and entry[1] > now else None)
        return out

    def put(self, key: str, value: float, expires_at: float) -> None:
        with self._lock:
            now = self._clock()
            self._purge(now)
            old = self._data.get(key)
            if old is not None and old[1] > now:
                value, expires_at = max(value, old[0]), max(expires_at, old[1])
            self._data[key] = (value, expires_at)
            heapq.heappush(self._expiry, (expires_at, key))

    def put_if_absent(self, key: str, value: float, expires_at: float) -> bool:
        with self._lock:
            now = self._clock()
            self._purge(now)
            old = self._data.get(key)
            if old is not None and old[1] > now:
                return False
            self._data[key] = (value, expires_at)
            heapq.heappush(self._expiry, (expires_at, key))
            return True


# Atomically keep the larger value and the later expiry (as MemoryStore.put does).
_PUT_MAX = """
local ttl = tonumber(ARGV[2])
local old = redis.call('GET', KEYS[1])
if old then
  local left = redis.call('PTTL', KEYS[1])
  if left > ttl then ttl = left end
  if tonumber(old) >= tonumber(ARGV[1]) then
    redis.call('PEXPIRE', KEYS[1], ttl)
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
return 1
"""


class RedisStore:
    """A store shared by every process and machine that uses the same Redis.

    :param url: A ``redis://``, ``rediss://`` or ``unix://`` URL.
    :param timeout: Seconds for connecting and for each command; kept short
        because every guarded request waits on it.
    :param prefix: Prepended to every key.
    """

    def __init__(self, url: str, *, timeout: float = 0.5, prefix: str = "authgate:") -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        pool = redis.ConnectionPool.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            max_connections=64,
        )
        self._redis = redis.Redis(connection_pool=pool)
        self._prefix = prefix
        self._put_max = self._redis.register_script(_PUT_MAX)

    def get_many(self, keys: cabc.Sequence[str]) -> list[float | None]:
        values = self._redis.mget([self._prefix + k for k in keys])
        return [float(v) if v is not None else None for v in values]

    def put(self, key: str, value: float, expires_at: float) -> None:
        ttl_ms = max(1, int((expires_at - time.time()) * 1000))
        self._put_max(keys=[self._prefix + key], args=[repr(float(value)), ttl_ms])

    def put_if_absent(self, key: str, value: float, expires_at: float) -> bool:
        ttl_ms = max(1, int((expires_at - time.time()) * 1000))
        return bool(self._redis.set(self._prefix + key, repr(float(value)), px=ttl_ms, nx=True))

    def close(self) -> None:
        self._redis.close()


def make_store(setting: t.Any, *, timeout: float) -> RevocationStore:
    """Build the store named by ``AUTHGATE_REVOCATION_STORE``."""
    if setting == "memory":
        return MemoryStore()
    if isinstance(setting, str):
        return RedisStore(setting, timeout=timeout)
    return t.cast(RevocationStore, setting)


class Revocations:
    """The revocation rules over a store; every backend failure becomes 503."""

    def __init__(self, store: RevocationStore, *, retry_after: int, max_lifetime: float, leeway: float = 0) -> None:
        self.store = store
        self._retry_after = retry_after
        # A token is accepted until exp + leeway: every entry must outlive that.
        self._leeway = leeway
        self._max_lifetime = max_lifetime + leeway

    def _unavailable(self, exc: BaseException) -> AuthError:
        log.error("authgate: revocation store unavailable (%s)", type(exc).__name__)
        return AuthError("auth_unavailable", retry_after=self._retry_after)

    def is_revoked(self, jti: str | None, family: str | None, subject: str, issued_at: float | None) -> bool:
        """Whether a token with these fields is revoked: one round trip to the store."""
        store = self.store
        if type(store) is MemoryStore and not store._data:
            return False  # nothing revoked in this process: the common case, no work
        keys = ["sub:" + subject]
        if jti is not None:
            keys.append("jti:" + jti)
        if family is not None:
            keys.append("fam:" + family)
        try:
            values = store.get_many(keys)
        except Exception as exc:
            raise self._unavailable(exc) from None
        cutoff = values[0]
        if cutoff is not None and (issued_at is None or issued_at <= cutoff):
            return True
        return any(v is not None for v in values[1:])

    def revoke_token(self, jti: str, expires_at: float) -> None:
        self._put("jti:" + jti, time.time(), expires_at + self._leeway)

    def revoke_family(self, family: str) -> None:
        self._put("fam:" + family, time.time(), time.time() + self._max_lifetime)

    def revoke_subject(self, subject: str) -> None:
        now = time.time()
        self._put("sub:" + subject, now, now + self._max_lifetime)

    def consume(self, jti: str, expires_at: float) -> bool:
        """Mark a refresh token used; ``False`` if it already was (reuse)."""
        try:
            expires_at += self._leeway
            return self.store.put_if_absent("jti:" + jti, time.time(), max(expires_at, time.time() + 1))
        except Exception as exc:
            raise self._unavailable(exc) from None

    def _put(self, key: str, value: float, expires_at: float) -> None:
        try:
            self.store.put(key, value, max(expires_at, time.time() + 1))
        except Exception as exc:
            raise self._unavailable(exc) from None
