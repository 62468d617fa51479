"""Revocation across many machines: the local view, Sentinel, Cluster, faults (issue #14).

Everything runs against real servers started by :mod:`redis_servers` and
:mod:`conftest` on 127.0.0.1. Fault tests count what every request got: a
revoked token never gets 200, nothing gets 500, and service comes back
without a restart. Waits are bounded loops, never timed assertions.
"""

from __future__ import annotations

import collections
import collections.abc as cabc
import contextlib
import threading
import time
import typing as t

import pytest
import redis
from conftest import make_app
from flask import Flask
from kit import bearer
from kit import in_threads
from redis_servers import Cluster
from redis_servers import RedisServer
from redis_servers import Sentinels
from redis_servers import Server
from redis_servers import redis_cli
from redis_servers import wait_until

from flask_authgate import AuthError
from flask_authgate import AuthGate
from flask_authgate import RedisStore
from flask_authgate import current_identity
from flask_authgate import login_required
from flask_authgate.revocation import Revocations

pytestmark = pytest.mark.redis

FAST = {"AUTHGATE_REVOCATION_STALENESS": 0.2, "AUTHGATE_REDIS_TIMEOUT": 0.2, "AUTHGATE_RETRY_AFTER": 5}


def build(url: str, **config: t.Any) -> tuple[Flask, AuthGate]:
    app, gate = make_app({"AUTHGATE_REVOCATION_STORE": url, **FAST, **config})

    @app.get("/me")
    @login_required
    def me() -> dict[str, str]:
        return {"sub": current_identity.subject}

    return app, gate


def store_of(app: Flask) -> RedisStore:
    return t.cast(RedisStore, app.extensions["authgate"].revocations.store)


def close(*apps: Flask) -> None:
    for app in apps:
        store_of(app).close()


def tokens(app: Flask, gate: AuthGate, n: int, subject: str = "alice") -> list[str]:
    with app.app_context():
        return [gate.create_access_token(subject) for _ in range(n)]


@contextlib.contextmanager
def good_and_revoked(url: str) -> cabc.Iterator[tuple[Flask, AuthGate, str, str]]:
    """An app on ``url``, and two of its tokens for alice: one good, one revoked; the store closed after."""
    app, gate = build(url)
    try:
        good, revoked = tokens(app, gate, 2)
        with app.app_context():
            gate.revoke(revoked)
        yield app, gate, good, revoked
    finally:
        close(app)


def mget_calls(port: int) -> int:
    out = redis_cli(port, "info", "commandstats")
    for line in out.splitlines():
        if line.startswith("cmdstat_mget:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def until_trusted(*apps: Flask) -> None:
    for app in apps:
        view = store_of(app).view
        assert view is not None
        wait_until(view.trusted, what="local view confirmed")


def until_status(app: Flask, token: str, status: int, timeout: float = 20.0) -> None:
    client = app.test_client()
    wait_until(lambda: client.get("/me", headers=bearer(token)).status_code == status, timeout, f"status {status}")


class Tally:
    """What every request got, per kind of token."""

    def __init__(self) -> None:
        self.seen: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
        self._lock = threading.Lock()

    def send(self, app: Flask, kind: str, token: str) -> int:
        status = app.test_client().get("/me", headers=bearer(token)).status_code
        with self._lock:
            self.seen[kind][status] += 1
        return status

    def check(self) -> None:
        assert self.seen["revoked"][200] == 0, self.seen
        for counter in self.seen.values():
            assert set(counter) <= {200, 401, 503}, self.seen  # never a 500
        assert set(self.seen["revoked"]) <= {401, 503}, self.seen


class Hammer:
    """Requests from a background thread for as long as the ``with`` block lasts: the fault
    happens mid-traffic."""

    def __init__(self, tally: Tally, app: Flask, good: str, revoked: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(tally, app, good, revoked), daemon=True)
        self.requests = 0

    def _run(self, tally: Tally, app: Flask, good: str, revoked: str) -> None:
        while not self._stop.is_set():
            tally.send(app, "good", good)
            tally.send(app, "revoked", revoked)
            self.requests += 2

    def __enter__(self) -> Hammer:
        self._thread.start()
        wait_until(lambda: self.requests > 0, what="traffic started")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def traffic(tally: Tally, app: Flask, good: str, revoked: str, until: cabc.Callable[[], bool], limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        tally.send(app, "good", good)
        tally.send(app, "revoked", revoked)
        if until():
            return
    raise AssertionError(f"not recovered within {limit}s: {dict(tally.seen)}")


# -- the steady state: no round trip --------------------------------------------------------


def test_repeated_token_costs_no_round_trip(redis_url: str, redis_server: RedisServer) -> None:
    with good_and_revoked(redis_url) as (app, _, good, revoked):
        client = app.test_client()
        client.get("/me", headers=bearer(good))
        until_trusted(app)
        assert client.get("/me", headers=bearer(good)).status_code == 200  # fills the view
        assert client.get("/me", headers=bearer(revoked)).status_code == 401
        before = mget_calls(redis_server.port)
        for _ in range(200):
            assert client.get("/me", headers=bearer(good)).status_code == 200
            assert client.get("/me", headers=bearer(revoked)).status_code == 401
        assert mget_calls(redis_server.port) - before <= 2  # the view answered (a heartbeat race at most)


def test_revocation_elsewhere_is_seen_within_the_bound(redis_url: str) -> None:
    one, gate = build(redis_url)
    two, _ = build(redis_url)  # another process's store: its own view and channel
    try:
        (token,) = tokens(one, gate, 1)
        for app in (one, two):
            app.test_client().get("/me", headers=bearer(token))
        until_trusted(one, two)
        assert two.test_client().get("/me", headers=bearer(token)).status_code == 200  # cached "not revoked"
        with one.app_context():
            gate.revoke(token)
        assert one.test_client().get("/me", headers=bearer(token)).status_code == 401  # here: at once
        until_status(two, token, 401, timeout=5)  # there: by invalidation
        with one.app_context():
            gate.revoke_subject("bob")
            (bob,) = tokens(one, gate, 1, "bob")
        assert two.test_client().get("/me", headers=bearer(bob)).status_code == 200  # issued after the cutoff
    finally:
        close(one, two)


def test_a_foreign_writer_and_flushall_invalidate(redis_url: str) -> None:
    app, gate = build(redis_url)
    try:
        (token,) = tokens(app, gate, 1)
        with app.app_context():
            jti = app.extensions["authgate"].tokens.inspect(token).identity.token_id
        app.test_client().get("/me", headers=bearer(token))
        until_trusted(app)
        assert app.test_client().get("/me", headers=bearer(token)).status_code == 200
        client = redis.Redis.from_url(redis_url)
        client.set(f"authgate:jti:{jti}", "1.0", px=60_000)  # e.g. an older version, or an operator
        until_status(app, token, 401, timeout=5)
        client.flushall()  # forgets the revocation in Redis: the view forgets it too
        until_status(app, token, 200, timeout=5)
        client.close()
    finally:
        close(app)


# -- faults ---------------------------------------------------------------------------------


def test_client_kill_of_the_invalidation_connection(redis_url: str) -> None:
    app, gate = build(redis_url)
    other, other_gate = build(redis_url)
    try:
        good, revoked, later = tokens(app, gate, 3)
        with app.app_context():
            gate.revoke(revoked)
        tally = Tally()
        for token in (good, revoked, later):
            app.test_client().get("/me", headers=bearer(token))
        until_trusted(app)
        assert tally.send(app, "good", later) == 200  # "not revoked" is in the view
        admin = redis.Redis.from_url(redis_url)
        with Hammer(tally, app, good, revoked):
            killed = admin.client_kill_filter(_type="pubsub")
            assert killed >= 1
            with other.app_context():
                other_gate.revoke(later)  # while the channel is down: its invalidation is lost here
        revoked_at = time.monotonic()

        def later_refused() -> bool:
            # Within the staleness bound "later" may still pass (the view was confirmed just
            # before); after it, never.
            grace = time.monotonic() <= revoked_at + FAST["AUTHGATE_REVOCATION_STALENESS"]
            return tally.send(app, "grace" if grace else "revoked", later) == 401

        traffic(tally, app, good, revoked, later_refused, 10)
        until_trusted(app)
        assert tally.send(app, "good", good) == 200
        assert tally.send(app, "revoked", later) == 401
        tally.check()
        admin.close()
    finally:
        close(app, other)


def test_a_silent_channel_is_distrusted_and_redis_asked(redis_url: str, redis_server: RedisServer) -> None:
    """Heartbeats stop coming back (writes paused) while reads work: the view is distrusted
    within the bound and every request asks Redis directly, still answering correctly."""
    with good_and_revoked(redis_url) as (app, _, good, revoked):
        tally = Tally()
        for token in (good, revoked):
            tally.send(app, "good" if token == good else "revoked", token)
        until_trusted(app)
        tally.send(app, "good", good)
        view = store_of(app).view
        assert view is not None and view.trusted()
        admin = redis.Redis.from_url(redis_url)
        admin.client_pause(2000, all=False)  # writes paused: the channel stays open, silent
        try:
            wait_until(lambda: not view.trusted(), 5, "view distrusted")
            before = mget_calls(redis_server.port)
            assert tally.send(app, "good", good) == 200  # asked Redis: reads still work
            assert tally.send(app, "revoked", revoked) == 401
            assert mget_calls(redis_server.port) - before >= 2
        finally:
            admin.client_unpause()
            admin.close()
        until_trusted(app)
        tally.check()


def test_sigstop_hangs_then_sigcont_recovers(aof_url: str, aof_server: Server) -> None:
    with good_and_revoked(aof_url) as (app, _, good, revoked):
        tally = Tally()
        tally.send(app, "good", good)
        until_trusted(app)
        with Hammer(tally, app, good, revoked):
            aof_server.pause()
            try:
                # Within the bound the view may still answer; after it, every request asks Redis,
                # which hangs: 503 after AUTHGATE_REDIS_TIMEOUT, never a 500, never a pass.
                traffic(tally, app, good, revoked, lambda: tally.seen["good"][503] >= 3, 15)
                assert tally.send(app, "revoked", revoked) in (401, 503)
            finally:
                aof_server.resume()
            traffic(tally, app, good, revoked, lambda: tally.send(app, "good", good) == 200, 15)
            until_trusted(app)
        tally.check()
        assert tally.seen["good"][503] >= 3


def test_restart_from_the_append_only_file_keeps_revocations(aof_url: str, aof_server: Server) -> None:
    with good_and_revoked(aof_url) as (app, gate, good, revoked):
        with app.app_context():
            gate.revoke_subject("carol")
        tally = Tally()
        tally.send(app, "good", good)
        with Hammer(tally, app, good, revoked):
            aof_server.kill()  # SIGKILL mid-traffic: no shutdown save; appendfsync always has the write
            traffic(tally, app, good, revoked, lambda: tally.seen["good"][503] >= 2, 10)
            aof_server.start()
            traffic(tally, app, good, revoked, lambda: tally.send(app, "good", good) == 200, 15)
        assert tally.send(app, "revoked", revoked) == 401  # read back from the AOF
        tally.check()


def test_restart_without_persistence_forgets_revocations(redis_url: str, redis_server: RedisServer) -> None:
    """Documented behaviour (docs/revocation.md): Redis without AOF loses revocations on a restart."""
    app, gate = build(redis_url)
    try:
        (token,) = tokens(app, gate, 1)
        with app.app_context():
            gate.revoke(token)
        assert app.test_client().get("/me", headers=bearer(token)).status_code == 401
        redis_server.stop()
        redis_server.start()
        until_status(app, token, 200)
    finally:
        close(app)


def test_sentinel_failover_fails_closed_and_recovers(sentinels: Sentinels) -> None:
    with good_and_revoked(sentinels.url()) as (app, gate, good, revoked):
        replica = sentinels.replica.port
        wait_until(lambda: int(redis_cli(replica, "dbsize", password=sentinels.password)) >= 1, what="replicated")
        tally = Tally()
        tally.send(app, "good", good)
        until_trusted(app)
        old = sentinels.primary_port()
        assert old == sentinels.primary.port
        with Hammer(tally, app, good, revoked):
            sentinels.primary.kill()  # mid-traffic
            traffic(tally, app, good, revoked, lambda: tally.seen["good"][503] >= 2, 15)
            wait_until(lambda: sentinels.primary_port() == sentinels.replica.port, 20, "failover")
            traffic(tally, app, good, revoked, lambda: tally.send(app, "good", good) == 200, 20)
            until_trusted(app)
        assert tally.send(app, "revoked", revoked) == 401
        with app.app_context():
            gate.revoke(good)  # writes go to the new primary
        assert tally.send(app, "revoked", good) == 401
        tally.check()
        assert tally.seen["good"][503] >= 2


# -- cluster ----------------------------------------------------------------------------------


def test_cluster_keys_across_slots(cluster: Cluster) -> None:
    cluster.flush()
    one, gate = build(cluster.url)
    two, _ = build(cluster.url)
    try:
        pair_tokens = []
        with one.app_context():
            for i in range(6):
                pair_tokens.append(gate.create_token_pair(f"user{i}"))
        for pair in pair_tokens:  # sub, jti and fam keys land on different primaries
            assert one.test_client().get("/me", headers=bearer(pair["access_token"])).status_code == 200
            two.test_client().get("/me", headers=bearer(pair["access_token"]))
        until_trusted(one, two)
        with one.app_context():
            gate.revoke(pair_tokens[0]["access_token"])
            gate.revoke_subject("user1")
        for app in (one, two):
            until_status(app, pair_tokens[0]["access_token"], 401, 5)
            until_status(app, pair_tokens[1]["access_token"], 401, 5)
            assert app.test_client().get("/me", headers=bearer(pair_tokens[2]["access_token"])).status_code == 200
        revocations = one.extensions["authgate"].revocations
        assert revocations.consume("refresh-jti", time.time() + 60) is True
        assert two.extensions["authgate"].revocations.consume("refresh-jti", time.time() + 60) is False
    finally:
        close(one, two)


# -- atomic writes: consume and remember_once are never cached ----------------------------------


@pytest.mark.parametrize("method", ["consume", "remember_once"])
def test_atomic_once_across_processes(redis_url: str, method: str) -> None:
    stores = [RedisStore(redis_url, timeout=0.5, staleness=0.2) for _ in range(4)]
    revs = [Revocations(s, retry_after=5, max_lifetime=3600) for s in stores]
    try:

        def attempt(i: int) -> bool:
            rev = revs[i % 4]
            if method == "consume":
                return rev.consume("the-jti", time.time() + 60)
            return rev.remember_once("dpop", "proof-jti", time.time() + 60)

        results = in_threads(8, attempt)
        assert sorted(results) == [False] * 7 + [True]
        client = redis.Redis.from_url(redis_url)
        once = list(client.keys("authgate:once:*"))
        assert len(once) == (1 if method == "remember_once" else 0)
        client.close()
    finally:
        for store in stores:
            store.close()


# -- forked workers --------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Python 3.12+: fork() of a threaded process
def test_a_forked_worker_runs_its_own_channel(redis_url: str) -> None:
    import multiprocessing

    app, gate = build(redis_url)
    try:
        (token,) = tokens(app, gate, 1)
        assert app.test_client().get("/me", headers=bearer(token)).status_code == 200
        until_trusted(app)  # the parent's channel thread runs; a child does not inherit it
        ctx = multiprocessing.get_context("fork")
        results: t.Any = ctx.Queue()
        go = ctx.Event()

        def child() -> None:
            try:
                client = app.test_client()
                trusted_at_start = store_of(app).view.trusted()  # type: ignore[union-attr]
                first = client.get("/me", headers=bearer(token)).status_code
                until_trusted(app)
                results.put((trusted_at_start, first, "ready"))
                go.wait(10)
                until_status(app, token, 401, timeout=5)
                results.put("revoked seen")
            except Exception as exc:  # pragma: no cover - reported to the parent
                results.put(repr(exc))

        proc = ctx.Process(target=child)
        proc.start()
        try:
            assert results.get(timeout=20) == (False, 200, "ready")
            with app.app_context():
                gate.revoke(token)
            go.set()
            assert results.get(timeout=20) == "revoked seen"
        finally:
            proc.join(timeout=10)
        assert proc.exitcode == 0
    finally:
        close(app)


# -- nothing reachable at start-up ------------------------------------------------------------


@pytest.mark.parametrize("form", ["redis", "sentinel", "cluster"])
def test_unreachable_at_start_up_fails_closed(form: str) -> None:
    from redis_servers import free_port

    a, b = free_port(), free_port()
    url = {
        "redis": f"redis://127.0.0.1:{a}/0",
        "sentinel": f"redis+sentinel://:pw@127.0.0.1:{a},127.0.0.1:{b}/authgate",
        "cluster": f"redis+cluster://127.0.0.1:{a},127.0.0.1:{b}",
    }[form]
    app, gate = build(url)  # init_app does not connect
    try:
        (token,) = tokens(app, gate, 1)
        for _ in range(3):
            rv = app.test_client().get("/me", headers=bearer(token))
            assert rv.status_code == 503
            assert rv.get_json()["code"] == "auth_unavailable"
            assert rv.headers["Retry-After"] == "5"
        with app.app_context(), pytest.raises(AuthError) as info:
            gate.revoke(token)
        assert info.value.code == 503
    finally:
        close(app)


# -- hostile identifiers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        pytest.param("\ud800lone-surrogate", id="lone-surrogate"),
        pytest.param("x" * 5000, id="5000-chars"),
        pytest.param("a:b\r\n*3\r\n$3\r\nDEL", id="resp-like"),
        pytest.param("ünïcode-👤", id="unicode"),
    ],
)
def test_any_subject_is_revocable_with_a_bounded_key(redis_url: str, subject: str) -> None:
    import jwt
    from conftest import SECRET

    one, gate = build(redis_url)
    two, _ = build(redis_url)
    try:
        now = time.time()
        token = jwt.encode({"sub": subject, "iat": now - 1, "exp": now + 60, "jti": "j" * 300}, SECRET)
        for app in (one, two):
            assert app.test_client().get("/me", headers=bearer(token)).status_code == 200
        until_trusted(one, two)
        assert two.test_client().get("/me", headers=bearer(token)).status_code == 200
        with one.app_context():
            gate.revoke_subject(subject)
        assert one.test_client().get("/me", headers=bearer(token)).status_code == 401
        until_status(two, token, 401, timeout=5)
        client = redis.Redis.from_url(redis_url)
        keys = [k for k in t.cast(list[bytes], client.keys("authgate:*")) if not k.startswith(b"authgate:hb:")]
        assert keys and all(len(k) <= len("authgate:sub:") + 200 for k in keys), keys
        client.close()
    finally:
        close(one, two)
