"""Revocation bounds: memory (issue #9 item 4), entry lifetimes under leeway (item 7), the local
view's races and size, ``remember_once``, and the Redis URL forms and settings (issue #14).

No server is needed here, except where a test says so: the view is exercised
directly with an injected monotonic clock, the stores with an injected wall clock.
"""

from __future__ import annotations

import time
import typing as t

import jwt
import pytest
from conftest import SECRET
from conftest import make_app
from flask import Flask
from kit import FakeClock
from kit import add_refresh_route
from kit import bearer

from flask_authgate import AuthError
from flask_authgate import AuthGate
from flask_authgate import MemoryStore
from flask_authgate import current_identity
from flask_authgate import login_required
from flask_authgate._redis_url import parse_store_url
from flask_authgate._redis_view import LocalView
from flask_authgate.errors import ConfigError
from flask_authgate.revocation import Revocations

# -- issue #9 item 4: a write that changes nothing costs nothing -------------------------------


def refresh_app(store: MemoryStore, **config: t.Any) -> tuple[Flask, AuthGate]:
    app, gate = make_app({"AUTHGATE_REVOCATION_STORE": store, **config})

    add_refresh_route(app, gate)

    @app.get("/me")
    @login_required
    def me() -> dict[str, str]:
        return {"sub": current_identity.subject}

    return app, gate


def test_replaying_a_used_refresh_token_grows_nothing() -> None:
    store = MemoryStore()
    app, gate = refresh_app(store)
    client = app.test_client()
    with app.app_context():
        used = gate.create_refresh_token("alice")
    assert client.post("/refresh", headers=bearer(used)).status_code == 200
    assert client.post("/refresh", headers=bearer(used)).status_code == 401  # reuse: family revoked
    entries, heap = len(store), len(store._expiry)
    for _ in range(200):
        assert client.post("/refresh", headers=bearer(used)).status_code == 401
    assert (len(store), len(store._expiry)) == (entries, heap)


def test_extending_an_entry_keeps_one_heap_record() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    for i in range(100):
        store.put("sub:alice", clock() + i, clock() + 10 + i)  # a later value and expiry each time
    assert len(store._expiry) == 1
    clock.now += 50
    assert store.get_many(["sub:alice"]) == [clock.now - 50 + 99]  # still live: expiry was extended
    clock.now += 60
    assert len(store) == 0 and store._expiry == []


def test_put_that_changes_nothing_is_a_no_op() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    store.put("jti:a", 5.0, clock() + 100)
    store.put("jti:a", 4.0, clock() + 50)
    assert store.get_many(["jti:a"]) == [5.0]
    assert len(store._expiry) == 1


# -- issue #9 item 7: every entry outlives every token it can concern ---------------------------

MAX_LIFE = 60
LEEWAY = 30
LEEWAY_CONFIG = {
    "AUTHGATE_JWT_LEEWAY": LEEWAY,
    "AUTHGATE_ACCESS_TOKEN_EXPIRES": MAX_LIFE,
    "AUTHGATE_REFRESH_TOKEN_EXPIRES": MAX_LIFE,
    "AUTHGATE_MAX_TOKEN_LIFETIME": MAX_LIFE,
}


def leeway_app() -> tuple[Flask, AuthGate, FakeClock]:
    clock = FakeClock(time.time())
    app, gate = refresh_app(MemoryStore(clock=clock), **LEEWAY_CONFIG)
    state = app.extensions["authgate"]
    state.tokens.clock = clock
    state.revocations.clock = clock
    return app, gate, clock


def longest(clock: FakeClock, **claims: t.Any) -> str:
    """A token as long-lived as verification allows: ``exp - iat = max lifetime + leeway``."""
    iat = clock()
    payload = {"sub": "alice", "iat": iat, "exp": iat + MAX_LIFE + LEEWAY, "jti": f"j{iat}", **claims}
    return jwt.encode(payload, SECRET, algorithm="HS256")


def test_subject_entry_outlives_the_longest_token_it_covers() -> None:
    app, gate, clock = leeway_app()
    client = app.test_client()
    token = longest(clock)
    assert client.get("/me", headers=bearer(token)).status_code == 200
    with app.app_context():
        gate.revoke_subject("alice")
    # exp + leeway is iat + 120: the token is still accepted by time at iat + 119.
    clock.now += MAX_LIFE + 2 * LEEWAY - 1
    rv = client.get("/me", headers=bearer(token))
    assert rv.status_code == 401
    assert rv.get_json()["code"] == "token_revoked"


def test_family_entry_outlives_the_longest_token_of_the_family() -> None:
    app, _gate, clock = leeway_app()
    client = app.test_client()
    used = longest(clock, type="refresh", fam="F")
    sibling = longest(clock, type="refresh", fam="F", jti="sibling")
    assert client.post("/refresh", headers=bearer(used)).status_code == 200
    assert client.post("/refresh", headers=bearer(used)).status_code == 401  # reuse: family F revoked
    clock.now += MAX_LIFE + 2 * LEEWAY - 1
    rv = client.post("/refresh", headers=bearer(sibling))
    assert rv.status_code == 401
    assert rv.get_json()["code"] == "token_revoked"


def test_jti_entry_lives_until_exp_plus_leeway() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    revocations = Revocations(store, retry_after=5, max_lifetime=MAX_LIFE, leeway=LEEWAY, clock=clock)
    revocations.revoke_token("a", clock() + 10)
    clock.now += 10 + LEEWAY - 0.001  # the last instant the token is accepted
    assert revocations.is_revoked("a", None, "alice", None) is True


# -- remember_once ------------------------------------------------------------------------------


def test_remember_once_in_memory_is_once_and_bounded() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    revocations = Revocations(store, retry_after=5, max_lifetime=3600, clock=clock, once_capacity=3)
    assert revocations.remember_once("dpop", "proof-1", clock() + 60) is True
    assert revocations.remember_once("dpop", "proof-1", clock() + 60) is False
    assert revocations.remember_once("other", "proof-1", clock() + 60) is True  # kinds are apart
    assert revocations.remember_once("dpop", "x" * 100_000, clock() + 60) is True  # stored as a digest
    with pytest.raises(AuthError) as info:  # full of live entries: fail closed, forget no replay
        revocations.remember_once("dpop", "proof-4", clock() + 60)
    assert (info.value.error_code, info.value.code, info.value.retry_after) == ("auth_unavailable", 503, 5)
    assert revocations.remember_once("dpop", "proof-1", clock() + 60) is False
    assert store.is_empty()  # replay records never crowd the revocations
    clock.now += 62
    assert revocations.remember_once("dpop", "proof-4", clock() + 60) is True


@pytest.mark.parametrize(
    ("kind", "expires_in", "error"),
    [
        pytest.param("DPoP", 60, ValueError, id="kind-case"),
        pytest.param("", 60, ValueError, id="kind-empty"),
        pytest.param("a:b", 60, ValueError, id="kind-colon"),
        pytest.param("dpop", float("inf"), ValueError, id="expiry-infinite"),
        pytest.param("dpop", float("nan"), ValueError, id="expiry-nan"),
        pytest.param("dpop", 10 * 86400, ValueError, id="expiry-beyond-lifetime"),
    ],
)
def test_remember_once_refuses_bad_arguments(kind: str, expires_in: float, error: type[Exception]) -> None:
    clock = FakeClock()
    revocations = Revocations(MemoryStore(clock=clock), retry_after=5, max_lifetime=3600, clock=clock)
    with pytest.raises(error):
        revocations.remember_once(kind, "k", clock() + expires_in)


# -- the local view -----------------------------------------------------------------------------


def view(maxsize: int = 100) -> tuple[LocalView, FakeClock, int]:
    clock = FakeClock(100.0)
    local = LocalView(maxsize, staleness=1.0, clock=clock)
    generation = local.up(1)
    local.confirm(generation, 0, clock())
    return local, clock, generation


def test_view_answers_only_while_confirmed() -> None:
    local, clock, generation = view()
    local.fill(local.begin(), ["sub:a"], [None])
    assert local.lookup(["sub:a"]) == [None]
    assert local.lookup(["sub:a", "jti:b"]) is None  # one key missing: ask Redis
    clock.now += 1.01  # no heartbeat came back within the bound
    assert local.lookup(["sub:a"]) is None
    local.confirm(generation, 0, clock())
    assert local.lookup(["sub:a"]) == [None]


def test_a_read_that_raced_an_invalidation_is_not_cached() -> None:
    local, _clock, _generation = view()
    ticket = local.begin()
    local.invalidate(["sub:a"])  # arrives while the read is on its way back
    local.fill(ticket, ["sub:a", "jti:b"], [None, None])
    assert local.lookup(["sub:a"]) is None
    assert local.lookup(["jti:b"]) == [None]  # an untouched key of the same read is fine


def test_a_read_across_a_flush_or_a_lost_channel_is_not_cached() -> None:
    local, clock, _generation = view()
    ticket = local.begin()
    local.flush()
    local.fill(ticket, ["sub:a"], [None])
    assert local.lookup(["sub:a"]) is None
    ticket = local.begin()
    local.down()
    assert local.begin() is None  # no channel: nothing read now may be cached
    generation = local.up(1)
    local.confirm(generation, 0, clock())
    local.fill(ticket, ["sub:a"], [None])
    assert local.lookup(["sub:a"]) is None


def test_many_invalidations_make_older_reads_uncacheable() -> None:
    local, _clock, _generation = view()
    ticket = local.begin()
    local.invalidate(f"jti:{i}" for i in range(5000))  # more than the per-key record holds
    local.fill(ticket, ["sub:a"], [None])
    assert local.lookup(["sub:a"]) is None
    assert len(local._recent) == 0


def test_a_stale_generation_cannot_confirm() -> None:
    local, clock, old = view()
    local.down()
    new = local.up(1)
    local.confirm(old, 0, clock())  # an old channel thread, late
    assert not local.trusted()
    local.confirm(new, 0, clock())
    assert local.trusted()


def test_a_late_down_from_an_old_generation_is_ignored() -> None:
    local, clock, old = view()
    local.down()
    new = local.up(1)
    local.confirm(new, 0, clock())
    local.down(old)  # an old channel's thread, failing late
    assert local.trusted()
    local.down(new)
    assert not local.trusted()


def test_every_channel_must_confirm() -> None:
    clock = FakeClock(100.0)
    local = LocalView(10, staleness=1.0, clock=clock)
    generation = local.up(3)  # a cluster of three primaries
    local.confirm(generation, 0, clock())
    local.confirm(generation, 2, clock())
    assert not local.trusted()
    local.confirm(generation, 1, clock())
    assert local.trusted()


def test_view_is_bounded_least_recently_used_first() -> None:
    local, _clock, _generation = view(maxsize=3)
    for key in ("a", "b", "c"):
        local.fill(local.begin(), [key], [None])
    assert local.lookup(["a"]) == [None]  # a is now the most recently used
    local.fill(local.begin(), ["d"], [1.0])
    assert len(local) == 3
    assert local.lookup(["b"]) is None
    assert local.lookup(["a"]) == [None] and local.lookup(["d"]) == [1.0]
    for i in range(10_000):
        local.fill(local.begin(), [f"jti:{i}"], [None])
    assert len(local) == 3


# -- URL forms and settings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind", "hosts", "service", "db", "password"),
    [
        ("redis://127.0.0.1:6379/0", "redis", (), None, 0, None),
        ("rediss://:pw@redis.internal:6380/2", "redis", (), None, 0, None),
        ("unix:///run/redis/redis.sock?db=1", "redis", (), None, 0, None),
        ("redis://[::1]:6379", "redis", (), None, 0, None),
        ("redis+sentinel://:s%40cret@s1:26379,s2:26380/mymaster/3", "sentinel", (("s1", 26379), ("s2", 26380)), "mymaster", 3, "s@cret"),
        ("redis+sentinel://[::1]:26379/mymaster", "sentinel", (("::1", 26379),), "mymaster", 0, None),
        ("redis+sentinel://s1/mymaster", "sentinel", (("s1", 26379),), "mymaster", 0, None),
        ("redis+cluster://n1:7000,n2:7001", "cluster", (("n1", 7000), ("n2", 7001)), None, 0, None),
        ("redis+cluster://user:pw@n1:7000", "cluster", (("n1", 7000),), None, 0, "pw"),
    ],
)  # fmt: skip
def test_url_forms(
    url: str, kind: str, hosts: tuple[t.Any, ...], service: str | None, db: int, password: str | None
) -> None:
    parsed = parse_store_url(url)
    assert (parsed.kind, parsed.hosts, parsed.service, parsed.db, parsed.password) == (
        kind,
        hosts,
        service,
        db,
        password,
    )
    assert "pw" not in repr(parsed) and "cret" not in repr(parsed)


@pytest.mark.parametrize(
    "url",
    [
        "postgres://h/0",
        "redis//h",
        "redis://:secretpw@/0",
        "redis://h:99999/0",
        "redis://h:port/0",
        "redis://h/notadb",
        "redis://h/0 x",
        "redis://h/\r\n",
        "unix://",
        "redis+sentinel://:secretpw@s1:26379",
        "redis+sentinel://:secretpw@s1:26379/",
        "redis+sentinel://s1:26379/bad name",
        "redis+sentinel://s1:26379/m/1/2",
        "redis+sentinel://s1:x/m",
        "redis+sentinel:///m",
        "redis+sentinel://s1:26379,/m",
        "redis+sentinel://s1:26379/m?x=1",
        "redis+cluster://:secretpw@n1:7000/0",
        "redis+cluster://",
        "redis+cluster://[::1",
        "rédis://h",
    ],
)
def test_bad_urls_raise_config_error_naming_the_key(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_store_url(url)
    message = str(info.value)
    assert message.startswith("AUTHGATE_REVOCATION_STORE ")
    assert "secretpw" not in message
    with pytest.raises(ConfigError, match=r"^AUTHGATE_REVOCATION_STORE "):
        make_app({"AUTHGATE_REVOCATION_STORE": url})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("AUTHGATE_REVOCATION_STALENESS", 0),
        ("AUTHGATE_REVOCATION_STALENESS", -1),
        ("AUTHGATE_REVOCATION_STALENESS", 61),
        ("AUTHGATE_REVOCATION_STALENESS", "1"),
        ("AUTHGATE_REVOCATION_STALENESS", float("nan")),
        ("AUTHGATE_REVOCATION_CACHE_SIZE", 0),
        ("AUTHGATE_REVOCATION_CACHE_SIZE", True),
        ("AUTHGATE_REVOCATION_CACHE_SIZE", 1.5),
    ],
)
def test_bad_settings_name_the_key(key: str, value: t.Any) -> None:
    with pytest.raises(ConfigError, match=rf"^{key} "):
        make_app({key: value})


def test_settings_defaults() -> None:
    app, _gate = make_app()
    settings = app.extensions["authgate"].settings
    assert (settings.revocation.staleness, settings.revocation.cache_size) == (1.0, 16_384)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"staleness": 0}, "staleness", id="staleness-0"),
        pytest.param({"staleness": 61}, "staleness", id="staleness-61"),
        pytest.param({"staleness": float("nan")}, "staleness", id="staleness-nan"),
        pytest.param({"cache_size": 0}, "cache_size", id="cache-0"),
        pytest.param({"cache_size": True}, "cache_size", id="cache-bool"),
    ],
)
def test_redis_store_arguments_are_checked(kwargs: dict[str, t.Any], message: str) -> None:
    from flask_authgate import RedisStore

    with pytest.raises(ValueError, match=message):
        RedisStore("redis://127.0.0.1:1/0", **kwargs)
