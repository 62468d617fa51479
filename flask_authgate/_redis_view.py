"""The local view of a Redis revocation store: a bounded map that Redis keeps current.

Pure Python, no ``redis`` import: :mod:`._redis_channel` feeds it
invalidations and heartbeats, :class:`~.revocation.RedisStore` reads it.

Safety rules, each closing a race:

* **Trust is time-bound.** :meth:`LocalView.lookup` answers only while the
  last heartbeat that came back through every invalidation channel was *sent*
  at most ``staleness`` seconds ago (monotonic clock). Messages on one
  connection arrive in the order Redis queued them, so once a heartbeat
  written at time *h* has come back, every invalidation for a write executed
  before *h* has been applied. A silent channel (dropped, killed, hung) stops
  confirming, and the view stops answering after ``staleness``.
* **A read that raced an invalidation is not cached.** :meth:`begin` takes an
  ``(epoch, seq)`` ticket before the read goes to Redis; :meth:`fill` drops a
  key invalidated after the ticket, and everything if the view was flushed
  (channel lost or re-established) in between.
* **Reads made while no channel is established are never cached**: writes
  made then produce no invalidation here.
* **Bounded**: at most ``maxsize`` entries, least recently used evicted first;
  the record of recent invalidations is bounded too.
"""

from __future__ import annotations

import collections
import collections.abc as cabc
import threading
import time

#: Marks "not in the view" (``None`` is a cached "absent in Redis").
_MISSING = object()
#: Keys whose last invalidation is remembered individually; beyond it, a floor covers all.
_MAX_RECENT = 4096


class LocalView:
    """A bounded map of store key -> value (``None`` = absent), trusted only while confirmed.

    :param maxsize: Most entries kept (least recently used evicted first).
    :param staleness: Seconds a confirmation stays good.
    :param clock: A monotonic clock.
    """

    def __init__(self, maxsize: int, staleness: float, clock: cabc.Callable[[], float] = time.monotonic) -> None:
        self.maxsize = maxsize
        self.staleness = staleness
        self.clock = clock
        self._entries: collections.OrderedDict[str, float | None] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._epoch = 0  # bumped by every flush
        self._seq = 0  # bumped by every invalidation
        self._recent: dict[str, int] = {}
        self._floor = 0  # every key not in _recent was last invalidated at or before this seq
        self._up = False  # every channel established (tracking on, subscribed)
        self._confirmations: list[float] = []
        self._generation = 0  # bumped by up() and down(): a confirmation of an older one is ignored
        #: Send time (monotonic) of the oldest channel's last confirmed heartbeat.
        self.confirmed = float("-inf")

    def __len__(self) -> int:
        return len(self._entries)

    def after_fork(self) -> None:
        """In a forked child: nothing of the parent's channel exists here."""
        self._lock = threading.Lock()
        self.down()

    # -- reading (request threads) ------------------------------------------------

    def trusted(self) -> bool:
        """Whether every channel confirmed the view within ``staleness``."""
        return self.clock() - self.confirmed <= self.staleness

    def lookup(self, keys: cabc.Sequence[str]) -> list[float | None] | None:
        """The cached values of ``keys``, or ``None`` if the view is not trusted or lacks one."""
        if self.clock() - self.confirmed > self.staleness:
            return None
        entries = self._entries
        out: list[float | None] = []
        for key in keys:
            value = entries.get(key, _MISSING)
            if value is _MISSING:
                return None
            out.append(value)  # type: ignore[arg-type]
        for key in keys:
            try:
                entries.move_to_end(key)
            except KeyError:  # invalidated meanwhile: it is re-read next time
                pass
        return out

    def begin(self) -> tuple[int, int] | None:
        """A ticket for a read about to go to Redis, or ``None`` if its answer may not be cached."""
        if not self._up:
            return None
        return self._epoch, self._seq

    def fill(
        self, ticket: tuple[int, int] | None, keys: cabc.Sequence[str], values: cabc.Sequence[float | None]
    ) -> None:
        """Cache what a read with ``ticket`` returned, except what was invalidated since."""
        if ticket is None:
            return
        epoch, seq = ticket
        with self._lock:
            if not self._up or self._epoch != epoch:
                return
            recent, floor, entries = self._recent, self._floor, self._entries
            if floor > seq:
                return  # too many invalidations since to tell which keys they were
            for key, value in zip(keys, values, strict=True):
                if recent.get(key, 0) > seq:
                    continue
                entries[key] = value
                entries.move_to_end(key)
            while len(entries) > self.maxsize:
                entries.popitem(last=False)

    # -- keeping current (the channel thread; and local writes) ----------------------

    def invalidate(self, keys: cabc.Iterable[str]) -> None:
        """Forget ``keys``: Redis says (or this process knows) they changed."""
        with self._lock:
            self._seq += 1
            seq, recent, entries = self._seq, self._recent, self._entries
            for key in keys:
                recent[key] = seq
                entries.pop(key, None)
            if len(recent) > _MAX_RECENT:
                recent.clear()
                self._floor = seq

    def flush(self) -> None:
        """Forget everything (``FLUSHALL``, or a channel re-established)."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        self._epoch += 1
        self._seq += 1
        self._floor = self._seq
        self._recent.clear()
        self._entries.clear()

    def up(self, channels: int) -> int:
        """Every channel is established, none has confirmed a heartbeat yet; return the generation."""
        with self._lock:
            self._flush()
            self._confirmations = [float("-inf")] * channels
            self.confirmed = float("-inf")
            self._up = True
            self._generation += 1
            return self._generation

    def down(self, generation: int | None = None) -> None:
        """A channel was lost: stop trusting and caching until every channel is back.

        :param generation: Only if this is still the current generation (a late call from an
            old channel's thread must not take down its successor).
        """
        with self._lock:
            if generation is not None and generation != self._generation:
                return
            self._up = False
            self._generation += 1
            self.confirmed = float("-inf")
            self._confirmations = []
            self._flush()

    def confirm(self, generation: int, channel: int, sent_at: float) -> None:
        """Channel ``channel`` of ``generation`` got back a heartbeat sent at ``sent_at`` (monotonic)."""
        with self._lock:
            if not self._up or generation != self._generation or channel >= len(self._confirmations):
                return
            self._confirmations[channel] = max(self._confirmations[channel], sent_at)
            self.confirmed = min(self._confirmations)
