"""What the cases run against: keys, apps, request environs and servers, built once and shared.

:meth:`Bench.build` turns a :class:`cases.Spec` into a :class:`timing.Case`,
right before it is timed (a DPoP proof is only valid for a minute).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import tempfile
import time
import typing as t

import contenders
import outside
from cases import Spec
from keys import PUBLIC
from keys import ROLE
from keys import ROUTE
from keys import KeySet
from keys import environ_for
from keys import make_keys
from keys import mint
from timing import Case
from timing import Entry
from timing import prove

Environs = list[dict[str, t.Any]]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A throwaway redis-server on a free loopback port, stopped by :meth:`stop`."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not os.path.exists(binary):
            raise RuntimeError("redis-server is not installed (apt-get install redis-server), or pass --no-redis")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="authgate-bench-redis-")
        self._info: t.Any = None
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def commands_processed(self) -> int:
        """Commands the server has processed so far (one persistent client, so no connect handshake)."""
        import redis

        if self._info is None:
            self._info = redis.Redis.from_url(self.url)
        return int(t.cast(dict[str, t.Any], self._info.info("stats"))["total_commands_processed"])

    def stop(self) -> None:
        if self._info is not None:
            self._info.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


# -- timing ----------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cache_size = 256 if args.quick else 4096
        self.pool_size = self.cache_size + 8  # cycled first in, first out: every call misses
        self.keys: dict[str, KeySet] = {}
        self.apps: dict[str, t.Any] = {}
        self.redis: RedisServer | None = None
        self.issuers: outside.Issuers | None = None
        self.introspection: outside.IntrospectionServer | None = None
        self.dpop_client: outside.DpopClient | None = None
        self.shared: dict[tuple[str, str, str], Environs] = {}
        self.cursors: dict[tuple[int, int], list[int]] = {}

    def stop(self) -> None:
        for server in (self.redis, self.issuers, self.introspection):
            if server is not None:
                server.stop()

    def specs(self, all_cases: list[Spec]) -> list[Spec]:
        only = self.args.case
        return [
            s
            for s in all_cases
            if (not only or s.name in only)
            and not (s.full and self.args.quick)
            and not (s.needs == "redis" and self.redis is None)
        ]

    def key(self, alg: str) -> KeySet:
        if alg not in self.keys:
            self.keys[alg] = make_keys(alg)
        return self.keys[alg]

    # -- apps ----------------------------------------------------------------

    def app(self, contender: str, alg: str) -> t.Any:
        name = f"{contender}/{alg}"
        if name not in self.apps:
            self.apps[name] = self._build_app(contender, alg)
        return self.apps[name]

    def _build_app(self, contender: str, alg: str) -> t.Any:
        size = self.cache_size
        if contender == "authgate":
            return contenders.build_authgate(self.key(alg), AUTHGATE_TOKEN_CACHE_SIZE=size)
        if contender == "authgate-redis":
            assert self.redis is not None
            return contenders.build_authgate(
                self.key(alg), AUTHGATE_REVOCATION_STORE=self.redis.url, AUTHGATE_TOKEN_CACHE_SIZE=size
            )
        if contender == "authgate-signed":
            return contenders.build_authgate(
                self.key(alg), AUTHGATE_TOKEN_FORMAT="signed", AUTHGATE_TOKEN_CACHE_SIZE=size
            )
        if contender == "authgate-revoked":
            return outside.build_authgate_revoked(self.key(alg), size)
        if contender == "authgate-trusted":
            return outside.build_authgate_trusted(self.trusted(), size)
        if contender == "floor" and alg == "RS256-trusted":
            return contenders.build_floor(self.trusted().keys())
        if contender == "authgate-introspect":
            return outside.build_authgate_introspect(self.endpoint().url)
        if contender == "floor-introspect":
            return outside.build_floor_introspect(self.endpoint().url)
        if contender in ("authgate-bearer", "authgate-dpop"):
            return outside.build_authgate_dpop(self.key(alg), size)
        return contenders.BUILDERS[contender](self.key(alg))

    def trusted(self) -> outside.Issuers:
        if self.issuers is None:
            self.issuers = outside.Issuers()
        return self.issuers

    def endpoint(self) -> outside.IntrospectionServer:
        if self.introspection is None:
            self.introspection = outside.IntrospectionServer()
        return self.introspection

    # -- requests ----------------------------------------------------------------

    def environs(self, contender: str, alg: str, kind: str, fmt: str) -> tuple[Environs, bool]:
        """The requests ``contender`` is sent for ``kind``, and whether each may be sent once only."""
        if kind in ("opaque-distinct", "dpop", "dpop-pool"):
            return self._single_use(contender, alg, kind), True
        cache_key = (alg, kind, fmt)
        if kind.startswith("issued"):  # tokens of the app that will check them
            cache_key = (contender, kind, fmt)
        elif kind.startswith("trusted"):  # the same tokens for the floor and flask-authgate
            cache_key = ("trusted", kind, fmt)
        if cache_key not in self.shared:
            self.shared[cache_key] = [environ_for(PUBLIC if kind.startswith("public") else ROUTE, tok)
                                      for tok in self._tokens(contender, alg, kind, fmt)]  # fmt: skip
        return self.shared[cache_key], False

    def _count(self, kind: str) -> int:
        return self.pool_size if kind.endswith("pool") else 1

    def _tokens(self, contender: str, alg: str, kind: str, fmt: str) -> list[str | None]:
        count = self._count(kind)
        if kind == "none":
            return [None]
        if kind.startswith("trusted"):
            return list(self.trusted().tokens(count))
        if kind == "opaque":
            return list(outside.opaque_tokens(1))
        if kind.startswith("issued"):
            return list(outside.issue(self.app(contender, alg), count))
        roles = [] if kind.startswith("user") else [ROLE]
        if fmt == "signed":
            app = self.app("authgate-signed", "HS256")
            with app.app_context():
                gate = contenders.GATES[app]
                return [gate.create_access_token("alice", roles=roles, expires_in=3600) for _ in range(count)]
        return list(mint(self.key(alg), roles, count))

    def _single_use(self, contender: str, alg: str, kind: str) -> Environs:
        rounds, batch = self.args.rounds, self.args.batch
        needed = rounds * batch + min(batch, 20) + self.pool_size + 64  # timing, warm-up, proof, checks
        if kind == "opaque-distinct":
            return [environ_for(ROUTE, tok) for tok in outside.opaque_tokens(needed)]
        if self.dpop_client is None:
            self.dpop_client = outside.DpopClient()
        client = self.dpop_client
        app = self.app("authgate-dpop", alg)  # its tokens, whoever is sent them (plain Flask too)
        tokens = outside.issue(app, self._count(kind), dpop_jkt=client.jkt)
        return outside.dpop_environs(ROUTE, client, tokens, needed)

    # -- cases -------------------------------------------------------------------

    def build(self, spec: Spec) -> Case:
        entries = []
        for contender in spec.contenders:
            kind = spec.kind_of(contender)
            alg = "RS256-trusted" if contender == "floor" and kind.startswith("trusted") else spec.alg
            environs, single_use = self.environs(contender, alg, kind, spec.fmt)
            expected = 200
            if kind == "none":
                expected = 401
            elif kind.startswith("user"):
                expected = 401 if contender == "authlib" else 403
            if contender == "plain":
                expected = 200
            app = self.app(contender, alg)
            cursor = [0] if single_use else self.cursors.setdefault((id(app), id(environs)), [0])
            entries.append(Entry(contender, app, environs, expected, cursor, single_use))
        for entry in entries:
            checks = spec.checks_of(entry.contender)
            if checks is not None:
                if not spec.kind_of(entry.contender).endswith("pool"):
                    entry.check(spec.name)  # a repeated token is seen once before it is counted
                n = self.pool_size + 32 if spec.kind_of(entry.contender).endswith("pool") else 64
                extra = self.endpoint().posts if "posts" in checks else None
                prove(entry, checks, n, extra)
        return Case(spec.name, spec.title, entries, spec.floor)
