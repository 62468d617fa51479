"""The invalidation channels that keep a :class:`~._redis_view.LocalView` current.

**Invalidation channel** (server-assisted client-side caching on Redis 7.0,
RESP2): one connection per primary runs ``CLIENT TRACKING ON REDIRECT <its
own id> BCAST PREFIX <prefix>jti: PREFIX <prefix>fam: PREFIX <prefix>sub:
PREFIX <heartbeat prefix>`` and then ``SUBSCRIBE __redis__:invalidate``. In
``BCAST`` mode Redis sends it the name of every key with those prefixes that
anyone changes, expires or deletes (``FLUSHALL`` sends "everything"), without
remembering which keys were read, so the data connections need no tracking
and the server keeps no per-key state. Write-only keys (``once:``) are not
broadcast.

**Heartbeat**: every ``staleness / 4`` seconds a second connection to the
same server writes the channel's own heartbeat key; its invalidation coming
back on the channel proves the whole path alive (server, tracking,
subscription) and, as messages on one connection keep their order, that every
invalidation queued before it has been applied. A hung server, a killed
connection or a demoted primary (writes refused) stops the heartbeats, and
the view stops being trusted ``staleness`` after the last one
(:mod:`._redis_view`). The channel thread then reconnects, finding the
primary again through Sentinel or the cluster's slot map.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import typing as t
import uuid
import weakref

from ._redis_backend import ERRORS
from ._redis_backend import INVALIDATE
from ._redis_backend import Backend
from ._redis_backend import ConnectionFactory
from ._redis_backend import RedisConnectionError
from ._redis_backend import RedisTimeoutError
from ._redis_view import LocalView

log = logging.getLogger("flask_authgate")

#: Longest a channel thread waits before looking at its stop flags again (few wake-ups: each one
#: takes the GIL from the request threads).
_TICK = 0.25


class _Channel:
    """One invalidation connection and its heartbeat writer, both to one primary."""

    def __init__(self, index: int, factory: ConnectionFactory, prefixes: list[str], hb_key: str) -> None:
        self.index = index
        self.hb_key = hb_key
        self._factory = factory
        self._prefixes = prefixes
        self.sub: t.Any = None
        self.writer: t.Any = None

    def open(self) -> None:
        sub = self.sub = self._factory()
        self.writer = self._factory()
        sub.connect()
        sub.send_command("CLIENT", "ID")
        client_id = sub.read_response()
        args: list[str] = []
        for prefix in self._prefixes:
            args += ["PREFIX", prefix]
        sub.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST", *args)
        if sub.read_response() != b"OK":
            raise RedisConnectionError("CLIENT TRACKING refused")
        sub.send_command("SUBSCRIBE", INVALIDATE.decode())
        reply = sub.read_response()
        if not isinstance(reply, list) or reply[0] != b"subscribe":
            raise RedisConnectionError("SUBSCRIBE refused")
        self.writer.connect()

    def close(self) -> None:
        for conn in (self.sub, self.writer):
            if conn is not None:
                try:
                    conn.disconnect()
                except ERRORS:  # pragma: no cover - closing a broken socket
                    pass


class Watcher:
    """Keeps a :class:`LocalView` current: channels, heartbeats, reconnects (one thread per process).

    Started lazily, in the process that reads (a thread started before a
    ``fork`` does not exist in the child, so each worker starts its own).
    """

    def __init__(self, backend: Backend, view: LocalView, *, prefix: str, staleness: float, timeout: float) -> None:
        self._backend = backend
        self._view = view
        self._prefix = prefix
        self.interval = staleness / 4
        #: A heartbeat not back after this long means the channel is dead: reconnect.
        self.hb_timeout = max(staleness, 2 * timeout)
        # Long past any heartbeat still awaited (so an expiry never passes for one), short enough
        # that a stopped process's key does not linger.
        self.hb_ttl_ms = int(max(60.0, 10 * (self.interval + self.hb_timeout)) * 1000)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._nonce = uuid.uuid4().hex
        self._opened = 0
        ref = weakref.ref(self)

        def after_fork() -> None:
            watcher = ref()
            if watcher is not None:
                watcher._after_fork()

        os.register_at_fork(after_in_child=after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._thread = None
        self._nonce = uuid.uuid4().hex
        self._view.after_fork()

    def ensure_running(self) -> None:
        """Start the channel thread in this process if it is not running."""
        thread = self._thread
        if thread is not None and self._pid == os.getpid() and thread.is_alive():
            return
        with self._lock:
            thread = self._thread
            if thread is not None and self._pid == os.getpid() and thread.is_alive():
                return
            if self._stop.is_set():
                return
            self._view.down()
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="authgate-revocation-channel", daemon=True)
            self._thread.start()

    def signal_stop(self) -> None:
        """Ask the thread to end, without waiting (from a finalizer)."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread() and self._pid == os.getpid():
            thread.join(timeout=5)

    def _run(self) -> None:
        backoff = 0.05
        healthy = True  # warn once when a working channel is lost, not at every failed retry
        while not self._stop.is_set():
            channels: list[_Channel] = []
            threads: list[threading.Thread] = []
            failed = threading.Event()
            confirmed = threading.Event()
            try:
                self._opened += 1
                hb_prefix = f"{self._prefix}hb:{self._nonce}:{self._opened}:"
                prefixes = [f"{self._prefix}{kind}:" for kind in ("jti", "fam", "sub")] + [hb_prefix]
                for i, (factory, suffix) in enumerate(self._backend.endpoints()):
                    channel = _Channel(i, factory, prefixes, hb_prefix + suffix)
                    channels.append(channel)
                    channel.open()
                generation = self._view.up(len(channels))
                threads = [
                    threading.Thread(target=self._loop, args=(c, generation, failed, confirmed), daemon=True)
                    for c in channels[1:]
                ]
                for thread in threads:
                    thread.start()
                self._loop(channels[0], generation, failed, confirmed)
            except Exception as exc:  # never let the thread die: requests would lose their view for good
                level = logging.WARNING if healthy and not self._stop.is_set() else logging.DEBUG
                log.log(level, "authgate: revocation invalidation channel lost (%s); reconnecting", type(exc).__name__)
            finally:
                failed.set()
                self._view.down()
                for channel in channels:
                    channel.close()
                for thread in threads:
                    thread.join(timeout=2 * _TICK + 1)
            healthy = confirmed.is_set()
            if healthy:
                backoff = 0.05
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 1.0)

    def _loop(self, channel: _Channel, generation: int, failed: threading.Event, confirmed: threading.Event) -> None:
        try:
            self._serve(channel, generation, failed, confirmed)
        except Exception:  # a lost connection, or a socket closed by the teardown
            if threading.current_thread() is self._thread:
                raise
            self._view.down(generation)  # at once: the other channels notice only at their next tick
        finally:
            failed.set()

    def _serve(self, channel: _Channel, generation: int, failed: threading.Event, confirmed: threading.Event) -> None:
        view, prefix, clock = self._view, self._prefix.encode(), time.monotonic
        sub, writer = channel.sub, channel.writer
        hb_key = channel.hb_key.encode()
        next_hb = clock()
        outstanding: float | None = None
        beats = 0
        while not failed.is_set() and not self._stop.is_set():
            now = clock()
            if outstanding is None and now >= next_hb:
                beats += 1
                outstanding = clock()
                writer.send_command("SET", hb_key, beats, "PX", self.hb_ttl_ms)
                writer.read_response()  # an error reply (READONLY on a demoted primary) raises
                continue
            if outstanding is not None and now - outstanding > self.hb_timeout:
                raise RedisTimeoutError("heartbeat did not come back")
            deadline = next_hb if outstanding is None else outstanding + self.hb_timeout
            if not sub.can_read(timeout=min(max(deadline - now, 0.0), _TICK)):
                continue
            message = sub.read_response()
            if not isinstance(message, list) or len(message) != 3 or message[:2] != [b"message", INVALIDATE]:
                continue  # a pong or a subscribe confirmation
            keys = message[2]
            if keys is None:
                view.flush()  # FLUSHALL / FLUSHDB
                continue
            beat = False
            changed = []
            unreadable = False
            for key in keys:
                if key == hb_key:
                    beat = True
                elif key.startswith(prefix):
                    try:
                        changed.append(key[len(prefix) :].decode("utf-8", "surrogatepass"))
                    except UnicodeDecodeError:  # not a key this library wrote: forget everything
                        unreadable = True
            if unreadable:
                view.flush()
            elif changed:
                view.invalidate(changed)
            if beat and outstanding is not None:
                view.confirm(generation, channel.index, outstanding)
                confirmed.set()
                next_hb = outstanding + self.interval
                outstanding = None
