"""Revocation: a small store protocol and two stores, in memory and Redis.

Entries are keyed on identity, never on the token string (PyJWT and
itsdangerous accept slightly altered copies of one token):

* ``jti:<id>`` — one token revoked (or a refresh token used up);
* ``fam:<id>`` — every token of one refresh family (reuse detected);
* ``sub:<subject>`` — every token of a subject issued at or before the stored time;
* ``once:<kind>:<digest>`` — :meth:`Revocations.remember_once` (a DPoP proof ``jti``, say).

Each entry outlives every token it can concern (see :class:`Revocations`),
so memory stays bounded by the revocations of one token lifetime. A store
that cannot be reached makes the request fail closed with 503
``auth_unavailable``.

With Redis, each process keeps a bounded local view that Redis keeps current
(:mod:`._redis_view`, :mod:`._redis_backend`): a repeated token's check costs
no round trip, and a revocation made anywhere is refused everywhere within
``staleness`` seconds.
"""

from __future__ import annotations

import collections.abc as cabc
import hashlib
import heapq
import logging
import math
import re
import threading
import time
import typing as t
import weakref

from ._redis_url import parse_store_url
from .errors import AuthError

if t.TYPE_CHECKING:
    from ._redis_backend import Backend
    from ._redis_channel import Watcher
    from ._redis_view import LocalView

log = logging.getLogger("flask_authgate")

#: Default :class:`RedisStore` local view size: four entries (``sub``, ``jti``, ``fam``, spare)
#: for each token the default verified-token cache (4096 tokens) can hold; about 2.5 MiB with
#: the key strings (measured with tracemalloc).
DEFAULT_CACHE_SIZE = 16_384
#: Default bound of :meth:`Revocations.remember_once` entries kept by the memory store.
DEFAULT_ONCE_CAPACITY = 100_000
#: Added to every entry's lifetime: millisecond TTL rounding, and the store's own clock.
MARGIN = 1.0
#: A family entry also covers tokens a rotation already under way issues after it (a process
#: whose view was up to ``staleness`` old, at most 60 s by configuration, plus the request).
FAMILY_SLACK = 120.0
_KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


#: Identifiers longer than this are stored as a digest: a key's size stays bounded whatever a
#: token's ``sub``, ``jti`` or ``fam`` holds (stores and local views count entries, not bytes).
MAX_KEY_PART = 128


def _key(kind: str, value: str) -> str:
    if len(value) <= MAX_KEY_PART:
        return f"{kind}:{value}"
    digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=20).hexdigest()
    return f"{kind}:#{digest}"


class RevocationStore(t.Protocol):
    """What a revocation store provides. Values are UNIX times (floats).

    Implementations raise any exception when the backend cannot be reached;
    the extension turns it into 503 ``auth_unavailable``.
    """

    def get_many(self, keys: cabc.Sequence[str]) -> list[float | None]:
        """The values stored under ``keys`` (``None`` where absent or expired), in at most one round trip."""

    def put(self, key: str, value: float, expires_at: float) -> None:
        """Store ``value`` under ``key`` until ``expires_at``, keeping the larger value and the later expiry."""

    def put_if_absent(self, key: str, value: float, expires_at: float) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it was stored (atomically)."""


class StoreFull(RuntimeError):
    """A bounded :class:`MemoryStore` is full of live entries (the request fails closed with 503)."""


class MemoryStore:
    """A per-process store: right for one process, wrong for several (use Redis there).

    Expired entries are dropped as new ones arrive, so the size is bounded by
    the number of revocations made within one maximum token lifetime. Each
    key has exactly one record in the expiry heap, so a write that changes
    nothing (a replayed refresh token revoking its family again) costs no
    memory (issue #9 item 4).

    :param clock: Wall-clock time (UNIX seconds), injectable for tests.
    :param max_entries: Refuse :meth:`put_if_absent` with :class:`StoreFull`
        when this many live entries are kept (``None``: no bound). :meth:`put`
        (a revocation) is never refused.
    """

    def __init__(self, clock: cabc.Callable[[], float] = time.time, *, max_entries: int | None = None) -> None:
        self._data: dict[str, tuple[float, float]] = {}
        # (time to look again, key): the key's expiry when pushed; a later expiry re-pushes lazily.
        self._expiry: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self.clock = clock
        self.max_entries = max_entries

    def __len__(self) -> int:
        """The number of live entries (expired ones are dropped first)."""
        with self._lock:
            self._purge(self.clock())
            return len(self._data)

    def is_empty(self) -> bool:
        """``True`` when nothing is stored: nothing is revoked, no lookup needed."""
        return not self._data

    def _purge(self, now: float) -> None:
        heap, data = self._expiry, self._data
        while heap and heap[0][0] <= now:
            _when, key = heapq.heappop(heap)
            entry = data.get(key)
            if entry is None:
                continue  # pragma: no cover - every key keeps its one record
            if entry[1] <= now:
                del data[key]
            else:
                heapq.heappush(heap, (entry[1], key))  # extended since: look again then

    def get_many(self, keys: cabc.Sequence[str]) -> list[float | None]:
        now = self.clock()
        data = self._data
        out: list[float | None] = []
        for key in keys:
            entry = data.get(key)
            out.append(entry[0] if entry is not None and entry[1] > now else None)
        return out

    def _set(self, key: str, value: float, expires_at: float, old: tuple[float, float] | None) -> None:
        self._data[key] = (value, expires_at)
        if old is None:  # an existing key already has its one heap record (at or before its expiry)
            heapq.heappush(self._expiry, (expires_at, key))

    def put(self, key: str, value: float, expires_at: float) -> None:
        with self._lock:
            now = self.clock()
            self._purge(now)
            old = self._data.get(key)  # after the purge, a stored entry is a live one
            if old is not None:
                if value <= old[0] and expires_at <= old[1]:
                    return  # changes nothing
                value, expires_at = max(value, old[0]), max(expires_at, old[1])
            self._set(key, value, expires_at, old)

    def put_if_absent(self, key: str, value: float, expires_at: float) -> bool:
        with self._lock:
            now = self.clock()
            self._purge(now)
            if key in self._data:
                return False
            if self.max_entries is not None and len(self._data) >= self.max_entries:
                raise StoreFull("the revocation store is full")
            self._set(key, value, expires_at, None)
            return True


class RedisStore:
    """A store shared by every process and machine that uses the same Redis.

    Reads go through a bounded local view that Redis keeps current
    (``CLIENT TRACKING`` invalidations, checked by heartbeats), so a repeated
    token costs no round trip. A key written by this process is forgotten by
    its view at once; Redis tells every other process within ``staleness``
    seconds. A process whose view is not confirmed within ``staleness`` reads
    Redis directly (and fails closed if it cannot). :meth:`put_if_absent` is
    always a write in Redis (``SET NX``), never answered locally.

    :param url: ``redis://``, ``rediss://``, ``unix://``, ``redis+sentinel://``
        or ``redis+cluster://`` (see :func:`~._redis_url.parse_store_url`).
    :param timeout: Seconds for connecting and for each command; kept short
        because a request whose view is not trusted waits on it.
    :param prefix: Prepended to every key.
    :param staleness: Seconds within which another process's revocation is
        seen; ``None`` turns the local view off (every read asks Redis).
    :param cache_size: Most entries of the local view.
    :param clock: Wall-clock time, for TTLs.
    :raises ConfigError: The URL is malformed.
    :raises ValueError: ``staleness`` or ``cache_size`` is out of range.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.5,
        prefix: str = "authgate:",
        staleness: float | None = 1.0,
        cache_size: int = DEFAULT_CACHE_SIZE,
        clock: cabc.Callable[[], float] = time.time,
    ) -> None:
        from ._redis_backend import Backend
        from ._redis_channel import Watcher
        from ._redis_view import LocalView

        if staleness is not None and not 0 < staleness <= 60:
            raise ValueError("staleness must be more than 0 and at most 60 seconds (or None)")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 1:
            raise ValueError("cache_size must be an integer >= 1")
        self._backend: Backend = Backend(parse_store_url(url), timeout)
        self._prefix = prefix
        self.clock = clock
        self.view: LocalView | None = None
        self._watcher: Watcher | None = None
        if staleness is not None:
            self.view = LocalView(cache_size, staleness)
            self._watcher = Watcher(self._backend, self.view, prefix=prefix, staleness=staleness, timeout=timeout)
            # The thread keeps the watcher alive, not the store: end it with the store.
            weakref.finalize(self, self._watcher.signal_stop)

    def get_many(self, keys: cabc.Sequence[str]) -> list[float | None]:
        view = self.view
        ticket = None
        if view is not None:
            values = view.lookup(keys)
            if values is not None:
                return values
            t.cast("Watcher", self._watcher).ensure_running()
            ticket = view.begin()
        raw = self._backend.mget([self._encode(k) for k in keys])
        out = [float(v) if v is not None else None for v in raw]
        if view is not None:
            view.fill(ticket, keys, out)
        return out

    def _encode(self, key: str) -> bytes:
        # surrogatepass: a JSON claim may hold a lone surrogate; it must not turn into a 503.
        return (self._prefix + key).encode("utf-8", "surrogatepass")

    def _ttl_ms(self, expires_at: float) -> int:
        return max(1, math.ceil((expires_at - self.clock()) * 1000))

    def put(self, key: str, value: float, expires_at: float) -> None:
        try:
            self._backend.put_max(self._encode(key), repr(float(value)), self._ttl_ms(expires_at))
        finally:
            if self.view is not None:
                self.view.invalidate([key])  # refused here at once, whatever the channel says

    def put_if_absent(self, key: str, value: float, expires_at: float) -> bool:
        try:
            return self._backend.set_nx(self._encode(key), repr(float(value)), self._ttl_ms(expires_at))
        finally:
            if self.view is not None and not key.startswith("once:"):
                self.view.invalidate([key])

    def close(self) -> None:
        """Stop the channel thread and close every connection."""
        if self._watcher is not None:
            self._watcher.stop()
        self._backend.close()


def make_store(
    setting: t.Any,
    *,
    timeout: float,
    staleness: float = 1.0,
    cache_size: int = DEFAULT_CACHE_SIZE,
) -> RevocationStore:
    """Build the store named by ``AUTHGATE_REVOCATION_STORE``."""
    if setting == "memory":
        return MemoryStore()
    if isinstance(setting, str):
        return RedisStore(setting, timeout=timeout, staleness=staleness, cache_size=cache_size)
    return t.cast(RevocationStore, setting)


class Revocations:
    """The revocation rules over a store; every backend failure becomes 503.

    Entry lifetimes (issue #9 item 7). A token is accepted while
    ``now < exp + leeway`` (``tokens._check_time``), and ``_build`` refuses a
    token with ``exp - iat > max_lifetime + leeway``. So:

    * ``jti`` (revoke, consume): that token is accepted until ``exp + leeway``;
    * ``sub`` (cutoff *T*): a token with ``iat <= T`` has ``exp <= T + max_lifetime
      + leeway``, accepted until ``T + max_lifetime + 2 * leeway``;
    * ``fam``: the same from the last token of the family, plus :data:`FAMILY_SLACK`
      for a rotation already under way;

    each plus :data:`MARGIN`.

    :param clock: Wall-clock time, injectable for tests.
    :param once_capacity: With a :class:`MemoryStore`, the most
        :meth:`remember_once` entries kept (beyond: 503, never a forgotten replay).
    """

    def __init__(
        self,
        store: RevocationStore,
        *,
        retry_after: int,
        max_lifetime: float,
        leeway: float = 0,
        clock: cabc.Callable[[], float] = time.time,
        once_capacity: int = DEFAULT_ONCE_CAPACITY,
    ) -> None:
        self.store = store
        self.clock = clock
        self._retry_after = retry_after
        self._leeway = leeway
        self._max_lifetime = max_lifetime
        self._cover = max_lifetime + 2 * leeway + MARGIN
        self._is_empty = store.is_empty if isinstance(store, MemoryStore) else None
        # Replay records live apart from revocations in memory, with their own bound, so they can
        # neither grow without limit nor crowd out a revocation.
        self._once: RevocationStore = (
            MemoryStore(clock=store.clock, max_entries=once_capacity) if isinstance(store, MemoryStore) else store
        )

    def _unavailable(self, exc: BaseException) -> AuthError:
        log.error("authgate: revocation store unavailable (%s)", type(exc).__name__)
        return AuthError("auth_unavailable", retry_after=self._retry_after)

    def is_revoked(self, jti: str | None, family: str | None, subject: str, issued_at: float | None) -> bool:
        """Whether a token with these fields is revoked: at most one round trip to the store."""
        is_empty = self._is_empty
        if is_empty is not None and is_empty():
            return False  # nothing revoked in this process: the common case, no work
        limit = MAX_KEY_PART  # inlined _key(): this runs on every guarded request
        keys = ["sub:" + subject if len(subject) <= limit else _key("sub", subject)]
        if jti is not None:
            keys.append("jti:" + jti if len(jti) <= limit else _key("jti", jti))
        if family is not None:
            keys.append("fam:" + family if len(family) <= limit else _key("fam", family))
        try:
            values = self.store.get_many(keys)
        except Exception as exc:
            raise self._unavailable(exc) from None
        cutoff = values[0]
        if cutoff is not None and (issued_at is None or issued_at <= cutoff):
            return True
        return any(v is not None for v in values[1:])

    def revoke_token(self, jti: str, expires_at: float) -> None:
        self._put(_key("jti", jti), self.clock(), expires_at + self._leeway + MARGIN)

    def revoke_family(self, family: str) -> None:
        """Revoke a refresh family; again is free (a replayed used token repeats it)."""
        now = self.clock()
        try:
            # First revocation wins: a replay writes nothing, grows nothing, invalidates nothing.
            self.store.put_if_absent(_key("fam", family), now, now + self._cover + FAMILY_SLACK)
        except Exception as exc:
            raise self._unavailable(exc) from None

    def revoke_subject(self, subject: str) -> None:
        now = self.clock()
        self._put(_key("sub", subject), now, now + self._cover)

    def consume(self, jti: str, expires_at: float) -> bool:
        """Mark a refresh token used; ``False`` if it already was (reuse). Atomic, never cached."""
        now = self.clock()
        try:
            return self.store.put_if_absent(_key("jti", jti), now, max(expires_at + self._leeway + MARGIN, now + 1))
        except Exception as exc:
            raise self._unavailable(exc) from None

    def remember_once(self, kind: str, key: str, expires_at: float) -> bool:
        """Record ``key`` of ``kind`` until ``expires_at``; ``True`` the first time, ``False`` on a replay.

        Atomic across every process sharing the store (``SET NX`` in Redis),
        never answered from a local view. ``key`` may be attacker-chosen: it
        is stored as a fixed-size digest.

        :param kind: A short lower-case name (``"dpop"``), ``[a-z][a-z0-9_]{0,31}``.
        :param expires_at: The last UNIX time at which a replay could still be accepted;
            at most ``max_lifetime + 2 * leeway`` from now.
        :raises ValueError: A bad ``kind`` or ``expires_at``.
        :raises AuthError: 503 ``auth_unavailable`` when the store cannot record it.
        """
        if not isinstance(kind, str) or not _KIND_RE.match(kind):
            raise ValueError("kind must match [a-z][a-z0-9_]{0,31}")
        if not isinstance(key, str):
            raise TypeError("key must be a string")
        now = self.clock()
        if not math.isfinite(expires_at) or expires_at > now + self._cover:
            raise ValueError("expires_at must be finite and within the maximum token lifetime")
        digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
        try:
            return self._once.put_if_absent(f"once:{kind}:{digest}", now, max(expires_at + MARGIN, now + 1))
        except Exception as exc:
            raise self._unavailable(exc) from None

    def _put(self, key: str, value: float, expires_at: float) -> None:
        try:
            self.store.put(key, value, max(expires_at, self.clock() + 1))
        except Exception as exc:
            raise self._unavailable(exc) from None
