"""Real Redis topologies for the tests: one server with AOF, Sentinel, Cluster (pytest plugin).

Every server is Debian's ``redis-server`` (or ``redis-sentinel``) on a free
127.0.0.1 port, in a temporary directory. Outside CI a missing binary skips
the tests that need it; with ``CI=true`` it fails them.
"""

from __future__ import annotations

import collections.abc as cabc
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import typing as t

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def binary(name: str) -> str:
    """The path of ``name``; skip (or fail in CI) when it is not installed."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
    if path is None:
        if IN_CI:
            pytest.fail(f"{name} is not installed; .ci/run must install it (apt-get install {name})")
        pytest.skip(f"{name} is not installed")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return t.cast(int, s.getsockname()[1])


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(20_000, 45_000)
        if _bindable(port) and _bindable(port + 10_000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def wait_until(check: cabc.Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: S110 - a server still starting refuses or errors
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{what} not reached after {timeout}s")


def redis_cli(port: int, *args: str, password: str | None = None) -> str:
    cmd = [binary("redis-cli"), "-h", "127.0.0.1", "-p", str(port)]
    if password:
        cmd += ["--no-auth-warning", "-a", password]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=20, check=True).stdout


_C = t.TypeVar("_C", bound="_Cleaned")


class _Cleaned:
    """A context manager: the ``with`` block ends with :meth:`cleanup`."""

    def cleanup(self) -> None:
        raise NotImplementedError

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


class Server(_Cleaned):
    """One ``redis-server`` (or sentinel) process that can be killed, paused and restarted."""

    def __init__(self, args: list[str], *, sentinel: bool = False, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="authgate-redis-")
        self.args = args
        self.sentinel = sentinel
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.sentinel:
            conf = os.path.join(self.dir, "sentinel.conf")
            with open(conf, "w") as f:
                f.write("\n".join(self.args) + "\n")
            cmd = [binary("redis-sentinel"), conf, "--port", str(self.port), "--bind", "127.0.0.1"]
        else:
            cmd = [binary("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir]
            cmd += self.args
        self.proc = subprocess.Popen(cmd, cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(self.answers, what=f"redis on {self.port}")
        except RuntimeError:
            self.kill()
            raise

    def answers(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))

    def kill(self) -> None:
        """SIGKILL: the process dies without saving (what a crash looks like)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Sentinels(_Cleaned):
    """A primary, a replica and ``count`` sentinels watching ``service``."""

    service = "authgate"

    def __init__(self, count: int = 1, password: str | None = None) -> None:
        auth = ["--requirepass", password, "--masterauth", password] if password else []
        self.password = password
        self.primary = Server(["--save", "", "--appendonly", "no", *auth])
        self.primary.start()
        self.replica = Server(["--save", "", "--appendonly", "no", "--replicaof", "127.0.0.1", str(self.primary.port)])
        self.replica.args += auth
        self.replica.start()
        self.sentinels = []
        for _ in range(count):
            conf = [
                f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} 1",
                f"sentinel down-after-milliseconds {self.service} 300",
                f"sentinel failover-timeout {self.service} 2000",
                f"sentinel parallel-syncs {self.service} 1",
            ]
            if password:  # the sentinels ask for the password too
                conf += [f"sentinel auth-pass {self.service} {password}", f"requirepass {password}"]
            sentinel = Server(conf, sentinel=True)
            sentinel.start()
            self.sentinels.append(sentinel)
        wait_until(lambda: "slave0:" in redis_cli(self.primary.port, "info", "replication", password=password))

    def url(self, db: int = 0) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        auth = f":{self.password}@" if self.password else ""
        return f"redis+sentinel://{auth}{hosts}/{self.service}/{db}"

    def primary_port(self) -> int:
        out = redis_cli(
            self.sentinels[0].port, "sentinel", "get-master-addr-by-name", self.service, password=self.password
        )
        return int(out.split()[1])

    def cleanup(self) -> None:
        for server in [*self.sentinels, self.primary, self.replica]:
            server.cleanup()


class Cluster(_Cleaned):
    """Three primaries, no replicas, made into a cluster by ``redis-cli --cluster create``."""

    def __init__(self) -> None:
        self.nodes = []
        for _ in range(3):
            node = Server(
                ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no"],
                port=free_cluster_port(),
            )
            node.start()
            self.nodes.append(node)
        cmd = [binary("redis-cli"), "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in self.nodes]]
        subprocess.run([*cmd, "--cluster-yes"], capture_output=True, timeout=60, check=True)
        for node in self.nodes:
            port = node.port
            wait_until(lambda: "cluster_state:ok" in redis_cli(port, "cluster", "info"), what="cluster ok")  # noqa: B023

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def flush(self) -> None:
        for node in self.nodes:
            redis_cli(node.port, "flushall")

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()


class RedisServer(Server):
    """A real ``redis-server`` without persistence on a free loopback port; can be stopped and started again."""

    def __init__(self) -> None:
        super().__init__(["--save", "", "--appendonly", "no"])

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def flush(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url)
        client.flushall()
        client.close()


@pytest.fixture(scope="session")
def redis_server() -> cabc.Iterator[RedisServer]:
    """A real redis-server. Outside CI a missing binary skips; in CI it fails."""
    binary("redis-server")
    with RedisServer() as server:
        server.start()
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> cabc.Iterator[str]:
    """The URL of a running, empty redis-server (restarted if a test stopped it)."""
    if redis_server.proc is None:
        redis_server.start()
    redis_server.flush()
    yield redis_server.url
    if redis_server.proc is None:
        redis_server.start()


@pytest.fixture(scope="session")
def aof_server() -> cabc.Iterator[Server]:
    """One redis-server with ``appendonly yes`` (``appendfsync always``), restartable from its AOF."""
    binary("redis-server")
    with Server(["--save", "", "--appendonly", "yes", "--appendfsync", "always"]) as server:
        server.start()
        yield server


@pytest.fixture
def aof_url(aof_server: Server) -> str:
    if aof_server.proc is None:
        aof_server.start()
    aof_server.resume()
    redis_cli(aof_server.port, "flushall")
    return f"redis://127.0.0.1:{aof_server.port}/0"


@pytest.fixture
def sentinels() -> cabc.Iterator[Sentinels]:
    """A fresh primary + replica + sentinel (a failover test changes which is the primary)."""
    binary("redis-sentinel")
    with Sentinels(password="sentinel-secret-pw") as setup:
        yield setup


@pytest.fixture(scope="session")
def cluster() -> cabc.Iterator[Cluster]:
    binary("redis-server")
    binary("redis-cli")
    with Cluster() as setup:
        yield setup
