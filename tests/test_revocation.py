"""Revocation: the store contract, ``revoke``, ``revoke_subject``, Redis failures, two processes.

The :class:`StoreContract` tests run against :class:`MemoryStore` and a
:class:`RedisStore` on a real ``redis-server`` through class inheritance, as
itsdangerous does for its serializers.
"""

from __future__ import annotations

import collections.abc as cabc
import os
import subprocess
import sys
import textwrap
import time
import typing as t
from pathlib import Path

import jwt
import pytest
import redis
from conftest import SECRET
from conftest import free_port
from conftest import make_app
from conftest import wait_for_port
from flask import Flask
from flask import request
from flask.testing import FlaskClient
from kit import OffsetClock
from kit import add_refresh_route
from kit import bearer
from kit import body
from kit import http_json
from redis_servers import RedisServer

from flask_authgate import AuthError
from flask_authgate import AuthGate
from flask_authgate import MemoryStore
from flask_authgate import RedisStore
from flask_authgate import RevocationStore
from flask_authgate import current_identity
from flask_authgate import get_identity
from flask_authgate import login_required
from flask_authgate._state import get_state
from flask_authgate.revocation import FAMILY_SLACK
from flask_authgate.revocation import MARGIN

REPO = Path(__file__).resolve().parent.parent


# -- the store contract -----------------------------------------------------------


class StoreContract:
    """What every :class:`RevocationStore` must do; subclasses provide ``store`` and ``ttl``."""

    @pytest.fixture
    def store(self) -> RevocationStore:
        raise NotImplementedError

    def ttl(self, store: t.Any, key: str) -> float:
        """Seconds until ``key`` expires in ``store``."""
        raise NotImplementedError

    def test_absent_keys_are_none(self, store: RevocationStore) -> None:
        assert store.get_many(["jti:a", "sub:b"]) == [None, None]

    def test_put_then_get_in_order(self, store: RevocationStore) -> None:
        later = time.time() + 60
        store.put("jti:a", 10.5, later)
        store.put("sub:b", 20.25, later)
        assert store.get_many(["sub:b", "jti:missing", "jti:a"]) == [20.25, None, 10.5]

    def test_put_keeps_the_larger_value(self, store: RevocationStore) -> None:
        later = time.time() + 60
        store.put("sub:x", 100.0, later)
        store.put("sub:x", 50.0, later)
        assert store.get_many(["sub:x"]) == [100.0]
        store.put("sub:x", 150.0, later)
        assert store.get_many(["sub:x"]) == [150.0]

    def test_put_sets_the_expiry(self, store: RevocationStore) -> None:
        store.put("jti:a", 1.0, time.time() + 60)
        assert 50 < self.ttl(store, "jti:a") <= 60

    def test_put_never_shortens_the_expiry(self, store: RevocationStore) -> None:
        store.put("sub:x", 1.0, time.time() + 600)
        store.put("sub:x", 2.0, time.time() + 60)
        assert store.get_many(["sub:x"]) == [2.0]
        assert self.ttl(store, "sub:x") > 500

    def test_put_extends_the_expiry(self, store: RevocationStore) -> None:
        store.put("sub:x", 5.0, time.time() + 60)
        store.put("sub:x", 1.0, time.time() + 600)
        assert store.get_many(["sub:x"]) == [5.0]
        assert self.ttl(store, "sub:x") > 500

    def test_put_if_absent_is_once(self, store: RevocationStore) -> None:
        later = time.time() + 60
        assert store.put_if_absent("jti:r", 1.0, later) is True
        assert store.put_if_absent("jti:r", 2.0, later) is False
        assert store.get_many(["jti:r"]) == [1.0]
        assert 50 < self.ttl(store, "jti:r") <= 60


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore()

    def ttl(self, store: t.Any, key: str) -> float:
        return t.cast(float, store._data[key][1] - time.time())

    def test_entries_expire_and_memory_stays_bounded(self) -> None:
        clock = OffsetClock()
        store = MemoryStore(clock=clock)
        for i in range(5000):
            store.put(f"jti:{i}", clock(), clock() + 10)
        assert len(store) == 5000
        assert len(store._expiry) == 5000
        clock.offset = 11
        assert store.get_many(["jti:0", "jti:4999"]) == [None, None]
        store.put("jti:new", clock(), clock() + 10)
        assert len(store) == 1
        assert len(store._expiry) == 1

    def test_put_if_absent_after_expiry(self) -> None:
        clock = OffsetClock()
        store = MemoryStore(clock=clock)
        assert store.put_if_absent("jti:r", 1.0, clock() + 5)
        clock.offset = 6
        assert store.put_if_absent("jti:r", 2.0, clock() + 5)
        assert store.get_many(["jti:r"]) == [2.0]


class TestRedisStore(StoreContract):
    @pytest.fixture
    def store(self, redis_url: str) -> cabc.Iterator[RedisStore]:
        store = RedisStore(redis_url, timeout=0.5)
        self.url = redis_url
        yield store
        store.close()

    def ttl(self, store: t.Any, key: str) -> float:
        client = redis.Redis.from_url(self.url)
        try:
            return int(client.pttl("authgate:" + key)) / 1000
        finally:
            client.close()

    def test_keys_carry_the_prefix(self, store: RedisStore, redis_url: str) -> None:
        store.put("jti:a", 1.0, time.time() + 60)
        client = redis.Redis.from_url(redis_url)
        try:
            keys = t.cast(list[bytes], client.keys("*"))
            assert [k for k in keys if not k.startswith(b"authgate:hb:")] == [b"authgate:jti:a"]
        finally:
            client.close()

    def test_unreachable_redis_raises(self) -> None:
        store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2)
        with pytest.raises(redis.ConnectionError):
            store.get_many(["jti:a"])
        store.close()


# -- revoke and revoke_subject, both stores, both formats -------------------------------


@pytest.fixture(params=["memory", "redis"])
def store_setting(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        return t.cast(str, request.getfixturevalue("redis_url"))
    return "memory"


def build(token_format: str, store: t.Any, **config: t.Any) -> tuple[Flask, AuthGate]:
    app, gate = make_app({"AUTHGATE_TOKEN_FORMAT": token_format, "AUTHGATE_REVOCATION_STORE": store, **config})

    @app.get("/me")
    @login_required
    def me() -> dict[str, str]:
        return {"sub": current_identity.subject}

    @app.get("/hello")
    def hello() -> dict[str, t.Any]:
        identity = get_identity()
        return {"sub": identity.subject if identity else None}

    add_refresh_route(app, gate)

    @app.post("/logout")
    @login_required
    def logout() -> dict[str, bool]:
        gate.revoke(request.headers["Authorization"].split()[1])
        return {"revoked": True}

    return app, gate


def assert_revoked(client: FlaskClient, token: str, path: str = "/me") -> None:
    rv = client.open(path, method="POST" if path == "/refresh" else "GET", headers=bearer(token))
    assert rv.status_code == 401
    assert rv.get_json() == body("token_revoked", "refresh" if path == "/refresh" else "access")


@pytest.fixture
def revocable(token_format: str, store_setting: str) -> tuple[Flask, AuthGate, FlaskClient]:
    """:func:`build` for this token format and store, with a test client."""
    app, gate = build(token_format, store_setting)
    return app, gate, app.test_client()


def test_revoke_is_keyed_on_jti(revocable: tuple[Flask, AuthGate, FlaskClient]) -> None:
    app, gate, client = revocable
    with app.app_context():
        token = gate.create_access_token("alice")
        other = gate.create_access_token("alice")
        jti = get_state().tokens.inspect(token).identity.token_id  # type: ignore[union-attr]
        assert client.get("/me", headers=bearer(token)).status_code == 200  # now in the verified-token cache
        gate.revoke(token)
        store = get_state().revocations.store
        assert store.get_many([f"jti:{jti}"])[0] is not None
    assert_revoked(client, token)
    assert client.get("/me", headers=bearer(other)).get_json() == {"sub": "alice"}


def test_revoke_from_a_view(revocable: tuple[Flask, AuthGate, FlaskClient]) -> None:
    app, gate, client = revocable
    with app.app_context():
        token = gate.create_access_token("alice")
    assert client.post("/logout", headers=bearer(token)).get_json() == {"revoked": True}
    assert_revoked(client, token)
    # On a public view, a revoked token is anonymous.
    assert client.get("/hello", headers=bearer(token)).get_json() == {"sub": None}


def test_revoke_a_refresh_token(revocable: tuple[Flask, AuthGate, FlaskClient]) -> None:
    app, gate, client = revocable
    with app.app_context():
        token = gate.create_refresh_token("alice")
        gate.revoke(token)
    assert_revoked(client, token, "/refresh")


def test_revoke_subject_logs_out_everywhere(revocable: tuple[Flask, AuthGate, FlaskClient]) -> None:
    app, gate, client = revocable
    with app.app_context():
        phone = gate.create_token_pair("alice")
        laptop = gate.create_access_token("alice")
        bob = gate.create_access_token("bob")
        gate.revoke_subject("alice")
        after = gate.create_token_pair("alice")  # a new login right after
    assert_revoked(client, phone["access_token"])
    assert_revoked(client, phone["refresh_token"], "/refresh")
    assert_revoked(client, laptop)
    assert client.get("/me", headers=bearer(bob)).get_json() == {"sub": "bob"}
    assert client.get("/me", headers=bearer(after["access_token"])).get_json() == {"sub": "alice"}
    assert client.post("/refresh", headers=bearer(after["refresh_token"])).status_code == 200


def test_revoke_subject_reaches_tokens_without_jti(store_setting: str) -> None:
    app, gate = build("jwt", store_setting)
    now = int(time.time())
    token = jwt.encode({"sub": "alice", "iat": now - 5, "exp": now + 60}, SECRET, algorithm="HS256")
    client = app.test_client()
    assert client.get("/me", headers=bearer(token)).status_code == 200
    with app.app_context(), pytest.raises(ValueError, match="no jti"):
        gate.revoke(token)
    with app.app_context():
        gate.revoke_subject("alice")
    assert_revoked(client, token)


def test_revoke_an_expired_token_is_a_no_op(token_format: str) -> None:
    clock = OffsetClock()
    store = MemoryStore(clock=clock)
    app, gate = build(token_format, store)
    with app.app_context():
        tokens = get_state().tokens
        tokens.clock = lambda: time.time() - 120
        token = gate.create_access_token("alice", expires_in=60)
        tokens.clock = time.time
        gate.revoke(token)
    assert len(store) == 0


@pytest.mark.parametrize("token", [pytest.param("garbage", id="garbage"), pytest.param("a.b.c", id="three-parts")])
def test_revoke_a_bad_token_raises(token_format: str, token: str) -> None:
    app, gate = build(token_format, "memory")
    with app.app_context(), pytest.raises(AuthError) as info:
        gate.revoke(token)
    assert info.value.error_code == "token_invalid"


def test_memory_entries_expire_with_the_token(token_format: str) -> None:
    clock = OffsetClock()
    store = MemoryStore(clock=clock)
    app, gate = build(token_format, store)
    with app.app_context():
        tokens = [gate.create_access_token(f"user{i}", expires_in=30) for i in range(200)]
        for token in tokens:
            gate.revoke(token)
    assert len(store) == 200
    assert_revoked(app.test_client(), tokens[0])
    clock.offset = 31  # every revoked token has expired by now
    assert len(store) == 0


# -- Redis specifics --------------------------------------------------------------


def test_redis_keys_carry_ttls(token_format: str, redis_url: str) -> None:
    app, gate = build(token_format, redis_url)
    client = app.test_client()
    with app.app_context():
        access = gate.create_access_token("alice", expires_in=120)
        gate.revoke(access)
        gate.revoke_subject("bob")
        pair = gate.create_token_pair("carol")
    assert client.post("/refresh", headers=bearer(pair["refresh_token"])).status_code == 200
    assert_revoked(client, pair["refresh_token"], "/refresh")  # reuse: the family is revoked
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        keys = sorted(k for k in t.cast(list[str], r.keys("*")) if not k.startswith("authgate:hb:"))
        assert [k.split(":")[1] for k in keys] == ["fam", "jti", "jti", "sub"]
        assert all(k.startswith("authgate:") for k in keys)
        ttls = {k: r.pttl(k) / 1000 for k in keys}
        assert all(ttl > 0 for ttl in ttls.values()), ttls  # -1 would mean "never expires"
        max_life = 30 * 86400 + FAMILY_SLACK + MARGIN  # the family entry covers rotations under way
        assert all(ttl <= max_life for ttl in ttls.values()), ttls
        access_key = [k for k in keys if k.endswith(gate_jti(app, access))]
        assert len(access_key) == 1
        assert ttls[access_key[0]] <= 120 + MARGIN
    finally:
        r.close()


def gate_jti(app: Flask, token: str) -> str:
    with app.app_context():
        entry = app.extensions["authgate"].tokens.inspect(token)
    return t.cast(str, entry.identity.token_id)


UNAVAILABLE_HEADERS = {"Retry-After": "5", "Cache-Control": "no-store"}


def assert_unavailable(client: FlaskClient, method: str, path: str, token: str) -> None:
    rv = client.open(path, method=method, headers=bearer(token))
    assert rv.status_code == 503
    assert rv.get_json() == body("auth_unavailable")
    assert rv.headers["Retry-After"] == "5"
    assert rv.headers["Cache-Control"] == "no-store"
    assert "WWW-Authenticate" not in rv.headers


def test_redis_stopped_mid_test(token_format: str, redis_url: str, redis_server: RedisServer) -> None:
    app, gate = build(token_format, redis_url, AUTHGATE_REDIS_TIMEOUT=0.5)
    client = app.test_client()
    with app.app_context():
        token = gate.create_access_token("alice")
        pair = gate.create_token_pair("alice")
        revoked = gate.create_access_token("alice")
        gate.revoke(revoked)
    assert client.get("/me", headers=bearer(token)).status_code == 200  # cached as verified now
    assert_revoked(client, revoked)

    redis_server.stop()
    # Fail closed: never a 500, never an accepted token, not even a cached one.
    assert_unavailable(client, "GET", "/me", token)
    assert_unavailable(client, "GET", "/me", revoked)
    assert_unavailable(client, "POST", "/refresh", pair["refresh_token"])
    assert_unavailable(client, "POST", "/logout", token)
    # A public view treats the caller as anonymous rather than trusting the token.
    assert client.get("/hello", headers=bearer(token)).get_json() == {"sub": None}
    with app.app_context(), pytest.raises(AuthError) as info:
        gate.revoke(token)
    assert info.value.error_code == "auth_unavailable"
    assert info.value.code == 503

    redis_server.start()
    assert client.get("/me", headers=bearer(token)).get_json() == {"sub": "alice"}
    assert client.post("/refresh", headers=bearer(pair["refresh_token"])).status_code == 200


def test_retry_after_follows_config(redis_server: RedisServer, redis_url: str) -> None:
    app, gate = build("jwt", redis_url, AUTHGATE_RETRY_AFTER=30)
    with app.app_context():
        token = gate.create_access_token("alice")
    redis_server.stop()
    rv = app.test_client().get("/me", headers=bearer(token))
    assert rv.status_code == 503
    assert rv.headers["Retry-After"] == "30"


# -- a custom store --------------------------------------------------------------


class DictStore:
    """The smallest RevocationStore: a dict, no expiry (for the protocol test only)."""

    def __init__(self) -> None:
        self.data: dict[str, float] = {}
        self.down = False
        self.down_writes = False

    def get_many(self, keys: cabc.Sequence[str]) -> list[float | None]:
        if self.down:
            raise ConnectionError("backend down")
        return [self.data.get(k) for k in keys]

    def put(self, key: str, value: float, expires_at: float) -> None:
        if self.down:
            raise ConnectionError("backend down")
        self.data[key] = max(value, self.data.get(key, value))

    def put_if_absent(self, key: str, value: float, expires_at: float) -> bool:
        if self.down_writes:
            raise ConnectionError("backend read-only")
        if key in self.data:
            return False
        self.data[key] = value
        return True


def test_custom_store(token_format: str) -> None:
    store = DictStore()
    store_protocol: RevocationStore = store
    app, gate = build(token_format, store_protocol)
    client = app.test_client()
    with app.app_context():
        token = gate.create_access_token("alice")
        gate.revoke(token)
        gate.revoke_subject("bob")
    assert sorted(k.split(":")[0] for k in store.data) == ["jti", "sub"]
    assert_revoked(client, token)
    store.down = True
    with app.app_context():
        fresh = gate.create_access_token("carol")
    assert_unavailable(client, "GET", "/me", fresh)


# -- two processes sharing Redis ------------------------------------------------------

APP_SCRIPT = textwrap.dedent(
    """
    import sys

    from flask import Flask, request
    from werkzeug.serving import make_server

    from flask_authgate import AuthGate, current_identity, login_required

    port, store, token_format = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    app = Flask("process_" + str(port))
    app.config.update(
        SECRET_KEY=SECRET,
        AUTHGATE_REVOCATION_STORE=store,
        AUTHGATE_TOKEN_FORMAT=token_format,
    )
    gate = AuthGate(app)


    @app.post("/login")
    def login():
        return gate.create_token_pair(request.args["user"], fresh=True)


    @app.get("/me")
    @login_required
    def me():
        return {"sub": current_identity.subject, "port": port}


    @app.post("/logout")
    @login_required
    def logout():
        gate.revoke(request.headers["Authorization"].split()[1])
        return {"revoked": True}


    @app.post("/logout-everywhere")
    @login_required
    def logout_everywhere():
        gate.revoke_subject(current_identity.subject)
        return {"revoked": current_identity.subject}


    make_server("127.0.0.1", port, app, threaded=True).serve_forever()
    """
)


def call(port: int, method: str, path: str, token: str | None = None) -> tuple[int, dict[str, t.Any]]:
    return http_json(f"http://127.0.0.1:{port}{path}", token, method=method, timeout=10)


@pytest.fixture
def two_processes(tmp_path: Path, redis_url: str, token_format: str) -> cabc.Iterator[tuple[int, int]]:
    script = tmp_path / "authgate_process.py"
    script.write_text(f"SECRET = {SECRET!r}\n" + APP_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ports = (free_port(), free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(port), redis_url, token_format],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        for port in ports:
            wait_for_port(port, timeout=30)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


def within_staleness(check: cabc.Callable[[], bool], staleness: float = 1.0) -> None:
    """``check()`` becomes true within AUTHGATE_REVOCATION_STALENESS (the default, 1 s) and stays true."""
    deadline = time.monotonic() + staleness + 0.5  # + the time two HTTP calls take
    while not check():
        assert time.monotonic() < deadline, "a revocation was not seen within the staleness bound"
        time.sleep(0.01)
    assert check()


def test_two_processes_share_revocations(two_processes: tuple[int, int]) -> None:
    one, two = two_processes
    status, pair = call(one, "POST", "/login?user=alice")
    assert status == 200
    access = pair["access_token"]
    assert call(two, "GET", "/me", access) == (200, {"sub": "alice", "port": two})

    assert call(one, "POST", "/logout", access) == (200, {"revoked": True})
    assert call(one, "GET", "/me", access) == (401, body("token_revoked"))  # here: at once
    within_staleness(lambda: call(two, "GET", "/me", access) == (401, body("token_revoked")))

    _, bob_one = call(one, "POST", "/login?user=bob")
    _, bob_two = call(two, "POST", "/login?user=bob")
    assert call(two, "POST", "/logout-everywhere", bob_two["access_token"]) == (200, {"revoked": "bob"})
    within_staleness(lambda: call(one, "GET", "/me", bob_one["access_token"]) == (401, body("token_revoked")))
    _, bob_again = call(one, "POST", "/login?user=bob")
    assert call(two, "GET", "/me", bob_again["access_token"]) == (200, {"sub": "bob", "port": two})


def test_refresh_fails_closed_when_the_store_cannot_mark_it_used(token_format: str) -> None:
    store = DictStore()
    app, gate = build(token_format, store)
    with app.app_context():
        token = gate.create_refresh_token("alice")
    store.down_writes = True
    assert_unavailable(app.test_client(), "POST", "/refresh", token)
    store.down_writes = False
    assert app.test_client().post("/refresh", headers=bearer(token)).status_code == 200
