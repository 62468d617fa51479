"""Redis clients for one server, Sentinel and Cluster: the data path and where channels connect.

Only :class:`~.revocation.RedisStore` and :mod:`._redis_channel` use this
module. It is the one module importing ``redis`` (so it is imported lazily,
when a Redis store is built); the invalidation channels themselves are in
:mod:`._redis_channel` and get what they need of redis-py from here.
"""

from __future__ import annotations

import collections.abc as cabc
import logging
import threading
import typing as t

import redis
from redis.backoff import NoBackoff
from redis.connection import Connection
from redis.exceptions import AuthenticationError
from redis.exceptions import ResponseError
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError
from redis.sentinel import Sentinel

from ._redis_url import StoreURL

log = logging.getLogger("flask_authgate")

#: What a failing Redis raises (connection refused, timeouts, errors replies, no master).
ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, redis.exceptions.RedisClusterException, OSError)
INVALIDATE = b"__redis__:invalidate"
#: What the channels of :mod:`._redis_channel` raise for a refused subscription or a lost heartbeat
#: (redis-py's own classes, so :data:`ERRORS` catches them as it catches redis-py's).
RedisConnectionError = redis.ConnectionError
RedisTimeoutError = redis.TimeoutError

# Atomically keep the larger value and the later expiry (as MemoryStore.put does). A put that
# changes neither writes nothing, so it sends no invalidation to any process (issue #9 item 4).
PUT_MAX = """
local ttl = tonumber(ARGV[2])
local old = redis.call('GET', KEYS[1])
if old then
  local left = redis.call('PTTL', KEYS[1])
  local bigger = tonumber(old) < tonumber(ARGV[1])
  if left >= ttl and not bigger then return 0 end
  if left > ttl then ttl = left end
  if not bigger then
    redis.call('PEXPIRE', KEYS[1], ttl)
    return 1
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
return 1
"""

#: Makes a fresh (unconnected) ``redis.connection.Connection``; typed loosely, redis-py is not typed.
ConnectionFactory = cabc.Callable[[], t.Any]
_CONNECT_KWARGS = frozenset({"host", "port", "path", "username", "password", "credential_provider", "db"})


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


class _AuthOnAskSentinel(Sentinel):
    """Sentinel discovery that sends the password to a sentinel only when it answers NOAUTH."""

    def __init__(self, url: StoreURL, timeout: float) -> None:
        common: dict[str, t.Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "retry": _no_retry()}
        super().__init__(list(url.hosts), sentinel_kwargs=dict(common))  # type: ignore[no-untyped-call]
        self._authed = [
            redis.Redis(host=h, port=p, username=url.username, password=url.password, **common) for h, p in url.hosts
        ]
        self._needs_auth = [False] * len(url.hosts)
        self._has_password = url.password is not None

    def discover_master(self, service_name: str) -> tuple[str, int]:
        for i, plain in enumerate(self.sentinels):
            clients = [plain, self._authed[i]] if self._has_password else [plain]
            if self._needs_auth[i]:
                clients = clients[1:]
            for client in clients:
                try:
                    masters = client.sentinel_masters()
                except AuthenticationError:
                    self._needs_auth[i] = True
                    continue
                except ResponseError as exc:
                    if "NOAUTH" in str(exc) and client is plain:
                        self._needs_auth[i] = True
                        continue
                    break
                except ERRORS:
                    break
                state = t.cast(dict[str, t.Any], masters).get(service_name)
                if state and self.check_master_state(state, service_name):  # type: ignore[no-untyped-call]
                    return state["ip"], int(state["port"])
                break
        raise MasterNotFoundError("no Sentinel knows a healthy primary for this service")

    def close(self) -> None:
        for client in [*self.sentinels, *self._authed]:
            client.close()


class Backend:
    """The data path (reads, atomic writes) and where the invalidation channels connect."""

    def __init__(self, url: StoreURL, timeout: float) -> None:
        self.kind = url.kind
        self._url = url
        self._timeout = timeout
        self._sentinel: _AuthOnAskSentinel | None = None
        self._cluster: t.Any = None
        self._cluster_lock = threading.Lock()
        common: dict[str, t.Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "retry": _no_retry()}
        self._common = common
        self._put_max: t.Any = None
        if url.kind == "redis":
            pool = redis.ConnectionPool.from_url(url.url, max_connections=64, **common)
            self.client: t.Any = redis.Redis(connection_pool=pool)
        elif url.kind == "sentinel":
            self._sentinel = _AuthOnAskSentinel(url, timeout)
            self.client = self._sentinel.master_for(  # type: ignore[no-untyped-call]
                str(url.service), db=url.db, username=url.username, password=url.password, max_connections=64, **common
            )
        if url.kind != "cluster":
            self._put_max = self.client.register_script(PUT_MAX)

    @property
    def cluster(self) -> t.Any:
        """The cluster client, made on first use: it reads the slot map when made, so a cluster
        that is down at start-up fails requests closed (503) instead of failing ``init_app``."""
        if self._cluster is None:
            with self._cluster_lock:
                if self._cluster is None:
                    from redis.cluster import ClusterNode
                    from redis.cluster import RedisCluster

                    url = self._url
                    cluster = RedisCluster(
                        startup_nodes=[ClusterNode(h, p) for h, p in url.hosts],  # type: ignore[no-untyped-call]
                        username=url.username,
                        password=url.password,
                        **self._common,
                    )
                    self._put_max = cluster.register_script(PUT_MAX)
                    self._cluster = cluster
        return self._cluster

    # -- data ------------------------------------------------------------------------

    def _data(self) -> t.Any:
        return self.cluster if self.kind == "cluster" else self.client

    def mget(self, keys: list[bytes]) -> list[bytes | None]:
        if self.kind == "cluster":
            # Keys of one token live in different slots: one MGET per slot, pipelined per node.
            return t.cast(list[bytes | None], self.cluster.mget_nonatomic(keys))
        return t.cast(list[bytes | None], self.client.mget(keys))

    def put_max(self, key: bytes, value: str, ttl_ms: int) -> None:
        client = self._data()
        self._put_max(keys=[key], args=[value, ttl_ms], client=client)

    def set_nx(self, key: bytes, value: str, ttl_ms: int) -> bool:
        return bool(self._data().set(key, value, px=ttl_ms, nx=True))

    def close(self) -> None:
        if self.kind == "cluster":
            if self._cluster is not None:
                self._cluster.close()
        else:
            self.client.close()
        if self._sentinel is not None:
            self._sentinel.close()

    # -- channel endpoints -------------------------------------------------------------

    def _connection(self, kwargs: dict[str, t.Any], cls: t.Any = Connection) -> ConnectionFactory:
        # Where and how to connect, nothing else (RESP2: invalidations arrive as pub/sub messages).
        params = {k: v for k, v in kwargs.items() if k in _CONNECT_KWARGS or k.startswith("ssl_")}
        params.update(protocol=2, socket_timeout=self._timeout, socket_connect_timeout=self._timeout)
        return lambda: cls(**params, retry=_no_retry())

    def endpoints(self) -> list[tuple[ConnectionFactory, str]]:
        """One ``(connection factory, heartbeat key suffix)`` per primary, found afresh."""
        if self.kind == "redis":
            pool = self.client.connection_pool
            return [(self._connection(dict(pool.connection_kwargs), pool.connection_class), "")]
        url = self._url
        if self.kind == "sentinel":
            # Through the data pool: where it finds a new primary it drops its idle connections to
            # the old one, so reads and the channel go to the same server.
            host, port = self.client.connection_pool.get_master_address()
            kwargs = {"host": host, "port": port, "username": url.username, "password": url.password}
            return [(self._connection(kwargs), "")]
        cluster = self.cluster
        cluster.nodes_manager.initialize()  # the slot map as it is now (after a failover, say)
        out = []
        for node in cluster.get_primaries():
            pool = node.redis_connection.connection_pool
            # A hash tag that lands in a slot this primary serves, so its heartbeat comes back here.
            # (A primary serving no slot holds no key, so it needs no channel.)
            tags = ("{" + f"hb{n}" + "}" for n in range(100_000))
            suffix = next((tag for tag in tags if cluster.get_node_from_key(tag).name == node.name), None)
            if suffix is not None:
                out.append((self._connection(dict(pool.connection_kwargs), pool.connection_class), suffix))
        if not out:
            raise RedisConnectionError("the cluster has no primary serving slots")
        return out
