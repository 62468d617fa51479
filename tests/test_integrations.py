"""flask_authgate.integrations with the real Flask-Limiter and Flask-Caching (in-memory backends)."""

from __future__ import annotations

import functools
import typing as t

import pytest
from conftest import make_app
from flask import Flask
from flask_caching import Cache
from flask_limiter import Limiter
from kit import add_view
from kit import bearer
from kit import problem
from kit import subject

from flask_authgate import AuthGate
from flask_authgate import Identity
from flask_authgate import current_identity
from flask_authgate import login_required
from flask_authgate import public
from flask_authgate.integrations import identity_cache_key
from flask_authgate.integrations import rate_limit_key
from flask_authgate.integrations import too_many_requests
from flask_authgate.testing import make_token

RATE_LIMITED = {
    "error": "Too Many Requests",
    "code": "rate_limited",
    "message": "Too many requests; try again later",
    "status": 429,
}


# -- the limiter key -------------------------------------------------------------


@pytest.fixture
def key_app(token_format: str) -> tuple[Flask, AuthGate]:
    app, gate = make_app({"AUTHGATE_TOKEN_FORMAT": token_format})

    @gate.api_key_loader
    def load(key: str) -> Identity | None:
        return Identity(subject="alice", scheme="api_key") if key == "alice-key" else None

    add_view(app, "/key", public, returns=rate_limit_key)

    return app, gate


def key_for(app: Flask, headers: dict[str, str] | None = None, addr: str = "192.0.2.1") -> str:
    return app.test_client().get("/key", headers=headers or {}, environ_base={"REMOTE_ADDR": addr}).text


def test_key_per_identity_else_per_address(key_app: tuple[Flask, AuthGate]) -> None:
    app, _ = key_app
    alice = key_for(app, bearer(make_token(app, "alice")))
    assert alice.startswith("authgate:sub:") and len(alice) == len("authgate:sub:") + 32
    assert key_for(app, bearer(make_token(app, "alice")), addr="198.51.100.7") == alice  # any address
    assert key_for(app, {"X-API-Key": "alice-key"}) == alice  # any credential of the same subject
    assert key_for(app, bearer(make_token(app, "bob"))) != alice
    assert key_for(app) == "authgate:ip:192.0.2.1"


@pytest.mark.parametrize(
    ("addr", "key"),
    [
        pytest.param("192.0.2.1", "authgate:ip:192.0.2.1", id="ipv4"),
        pytest.param("::ffff:192.0.2.1", "authgate:ip:192.0.2.1", id="ipv4-mapped"),
        pytest.param("2001:db8:1:2::1", "authgate:ip:2001:db8:1:2::/64", id="ipv6"),
        pytest.param("2001:db8:1:2:ffff:ffff:ffff:ffff", "authgate:ip:2001:db8:1:2::/64", id="same-ipv6-64"),
        pytest.param("2001:db8:1:3::1", "authgate:ip:2001:db8:1:3::/64", id="other-ipv6-64"),
        pytest.param("not an address", "authgate:ip:unknown", id="unparseable"),
    ],
)
def test_address_keys(key_app: tuple[Flask, AuthGate], addr: str, key: str) -> None:
    assert key_for(key_app[0], addr=addr) == key


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Authorization": "Bearer x.y.z"}, id="garbage"),
        pytest.param({"X-API-Key": "wrong"}, id="bad-api-key"),
        pytest.param({"Authorization": "Basic YTpi"}, id="other-scheme"),
    ],
)
def test_bad_credentials_count_against_the_address(key_app: tuple[Flask, AuthGate], headers: dict[str, str]) -> None:
    app, _ = key_app
    assert key_for(app, headers) == "authgate:ip:192.0.2.1"
    assert key_for(app, bearer(make_token(app, "alice", expires_in=-5))) == "authgate:ip:192.0.2.1"


def test_subject_never_reaches_the_key_raw(key_app: tuple[Flask, AuthGate]) -> None:
    app, _ = key_app
    hostile = "x:" * 2000 + "authgate:ip:192.0.2.1"
    key = key_for(app, bearer(make_token(app, hostile)))
    assert key.startswith("authgate:sub:") and len(key) == len("authgate:sub:") + 32
    assert "x:" not in key


def test_key_outside_a_request_fails_loudly() -> None:
    with pytest.raises(RuntimeError):
        rate_limit_key()


# -- Flask-Limiter end to end ----------------------------------------------------------


@pytest.fixture
def limited(token_format: str) -> tuple[Flask, AuthGate]:
    app, gate = make_app({"AUTHGATE_TOKEN_FORMAT": token_format, "RATELIMIT_HEADERS_ENABLED": True})
    limiter = Limiter(rate_limit_key, app=app, storage_uri="memory://")
    app.register_error_handler(429, too_many_requests)

    add_view(app, "/search", limiter.limit("2 per minute"), login_required, returns=subject)
    add_view(app, "/after-the-guard", login_required, limiter.limit("2 per minute"), returns=subject)

    return app, gate


def test_each_identity_has_its_own_budget(limited: tuple[Flask, AuthGate]) -> None:
    app, _ = limited
    client = app.test_client()
    alice, bob = bearer(make_token(app, "alice")), bearer(make_token(app, "bob"))
    assert [client.get("/search", headers=alice).status_code for _ in range(3)] == [200, 200, 429]
    fresh_alice = bearer(make_token(app, "alice"))  # a new token is the same alice
    assert client.get("/search", headers=fresh_alice).status_code == 429
    assert client.get("/search", headers=bob).status_code == 200


def test_junk_tokens_share_one_bucket_per_address(limited: tuple[Flask, AuthGate]) -> None:
    app, _ = limited
    client = app.test_client()
    codes = [client.get("/search", headers={"Authorization": f"Bearer junk{i}"}).status_code for i in range(3)]
    assert codes == [401, 401, 429]  # the limit sits above the guard here: refusals count too
    assert client.get("/search", headers=bearer(make_token(app, "alice"))).status_code == 200


def test_a_limit_below_the_guard_spends_nothing_on_refusals(limited: tuple[Flask, AuthGate]) -> None:
    app, _ = limited
    client = app.test_client()
    codes = [client.get("/after-the-guard", headers={"Authorization": f"Bearer junk{i}"}).status_code for i in range(3)]
    assert codes == [401, 401, 401]
    alice = bearer(make_token(app, "alice"))
    assert [client.get("/after-the-guard", headers=alice).status_code for _ in range(3)] == [200, 200, 429]


def test_429_body_and_headers(limited: tuple[Flask, AuthGate]) -> None:
    app, _ = limited
    client = app.test_client()
    alice = bearer(make_token(app, "alice"))
    client.get("/search", headers=alice)
    client.get("/search", headers=alice)
    rv = client.get("/search", headers=alice)
    assert rv.status_code == 429
    assert rv.get_json() == RATE_LIMITED
    assert rv.mimetype == "application/json"
    assert rv.headers["Cache-Control"] == "no-store"
    assert 0 < int(rv.headers["Retry-After"]) <= 60
    assert "2 per 1 minute" not in rv.text  # the limit's description is not sent


def test_429_problem_format() -> None:
    app, _ = make_app({"AUTHGATE_ERROR_FORMAT": "problem"})
    limiter = Limiter(rate_limit_key, app=app, storage_uri="memory://")
    app.register_error_handler(429, functools.partial(too_many_requests, problem=True))

    add_view(app, "/x", limiter.limit("1 per minute"), returns="ok")

    client = app.test_client()
    assert client.get("/x").status_code == 200
    rv = client.get("/x")
    assert rv.status_code == 429
    assert rv.mimetype == "application/problem+json"
    assert rv.get_json() == problem(429, "rate_limited", "Too many requests; try again later")


# -- Flask-Caching -----------------------------------------------------------------


def cached_app(*, safe: bool, guard_first: bool = True) -> tuple[Flask, list[str]]:
    app, _ = make_app()
    cache = Cache(app, config={"CACHE_TYPE": "SimpleCache"})
    calls: list[str] = []
    options: dict[str, t.Any] = {"timeout": 60}
    if safe:
        options["make_cache_key"] = identity_cache_key()

    def view() -> dict[str, t.Any]:
        calls.append(current_identity.subject)
        return {"me": current_identity.subject, "roles": sorted(current_identity.roles)}

    cached = cache.cached(**options)
    wrapped = login_required(cached(view)) if guard_first else cached(login_required(view))
    app.add_url_rule("/me", "me", wrapped)
    return app, calls


def test_the_default_key_serves_one_users_answer_to_another() -> None:
    """What docs/rate-limiting.md warns about: the path-only key leaks."""
    app, calls = cached_app(safe=False)
    client = app.test_client()
    assert client.get("/me", headers=bearer(make_token(app, "alice"))).get_json()["me"] == "alice"
    assert client.get("/me", headers=bearer(make_token(app, "bob"))).get_json()["me"] == "alice"
    assert calls == ["alice"]


def test_the_default_key_above_the_guard_serves_anonymous_callers() -> None:
    app, _ = cached_app(safe=False, guard_first=False)
    client = app.test_client()
    assert client.get("/me", headers=bearer(make_token(app, "alice"))).status_code == 200
    assert client.get("/me").get_json()["me"] == "alice"  # no credentials at all, and alice's data


@pytest.mark.parametrize("guard_first", [True, False], ids=["guard-first", "cache-first"])
def test_identity_cache_key_keeps_users_apart(guard_first: bool) -> None:
    app, calls = cached_app(safe=True, guard_first=guard_first)
    client = app.test_client()
    alice, bob = bearer(make_token(app, "alice")), bearer(make_token(app, "bob"))
    assert client.get("/me", headers=alice).get_json()["me"] == "alice"
    assert client.get("/me", headers=bob).get_json()["me"] == "bob"
    assert client.get("/me", headers=alice).get_json()["me"] == "alice"
    assert calls == ["alice", "bob"]  # the cache did answer alice's second request
    # Without valid credentials: never a cached answer, whichever decorator is outside.
    assert client.get("/me").status_code == 401
    assert client.get("/me", headers=bearer(make_token(app, "alice", expires_in=-5))).status_code == 401
    # Other roles are another entry: an answer for the old role is not reused.
    admin = bearer(make_token(app, "alice", roles=["admin"]))
    assert client.get("/me", headers=admin).get_json() == {"me": "alice", "roles": ["admin"]}


def test_identity_cache_key_parts() -> None:
    app, _ = make_app()
    key = identity_cache_key(prefix="p")
    no_query = identity_cache_key(query_string=False)
    token = make_token(app, "alice")
    with app.test_request_context("/r?b=2&a=1", headers=bearer(token)):
        a = key()
        assert a.startswith("p:") and len(a) == 2 + 64
        unqueried = no_query()
        assert unqueried.startswith("authgate-view:")
    with app.test_request_context("/r?a=1&b=2", headers=bearer(token)):
        assert key() == a  # the order of the query arguments does not matter
        assert no_query() == unqueried
    with app.test_request_context("/r?a=1&b=3", headers=bearer(token)):
        assert key() != a
        assert no_query() == unqueried
    with app.test_request_context("/r?a=1&b=2"):
        assert key() != a  # anonymous
    with app.test_request_context("/r?a=1&b=2", method="HEAD", headers=bearer(token)):
        assert key() != a
