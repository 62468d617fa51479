"""``AUTHGATE_JWKS_URL``: tokens of an outside identity provider, verified with its published keys.

The provider is a real HTTP server on 127.0.0.1 run by the test: it counts
requests, can rotate its keys, serve bad answers and go down.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import http.server
import json
import threading
import time
import typing as t

import jwt
import pytest
from conftest import make_app
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient
from idp_server import IdentityProvider
from jwt.algorithms import RSAAlgorithm
from kit import OffsetClock
from kit import add_view
from kit import b64
from kit import bearer
from kit import body
from kit import guarded_app
from kit import in_threads
from kit import serving
from kit import subject_and_scheme

from flask_authgate import AuthError
from flask_authgate import login_required
from flask_authgate.errors import ERRORS
from flask_authgate.jwks import JwksClient

AUDIENCE = "https://api.example.test"


@pytest.fixture(scope="module")
def key_pool() -> list[rsa.RSAPrivateKey]:
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(4)]


class Provider:
    """A tiny identity provider: a JWKS endpoint at ``url`` (its ``override`` answers instead) and a token minter."""

    def __init__(self, pool: list[rsa.RSAPrivateKey]) -> None:
        self._pool = list(pool)
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.requests: list[str] = []
        #: When set, served instead of the key set: (status, body).
        self.override: tuple[int, bytes] | None = None
        self._lock = threading.Lock()
        provider = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with provider._lock:
                    provider.requests.append(self.path)
                    status, data = provider.override or (200, json.dumps(provider.jwks()).encode())
                if self.path != "/jwks.json":
                    status, data = 404, b"{}"
                self.send_response(status)
                if status in (301, 302, 307):
                    self.send_header("Location", "/jwks.json")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: t.Any) -> None:
                pass

        self._running = contextlib.ExitStack()
        self.base = self._running.enter_context(serving(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)))
        self.url = self.base + "/jwks.json"
        self.issuer = self.base + "/"

    @property
    def fetches(self) -> int:
        return self.requests.count("/jwks.json")

    def add_key(self, kid: str) -> rsa.RSAPrivateKey:
        key = self._pool.pop()
        self.keys[kid] = key
        return key

    def spare_key(self) -> rsa.RSAPrivateKey:
        return self._pool.pop()

    def jwks(self) -> dict[str, t.Any]:
        keys = []
        for kid, key in self.keys.items():
            jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
            keys.append(jwk)
        return {"keys": keys}

    def token(
        self,
        kid: str | None,
        *,
        key: rsa.RSAPrivateKey | None = None,
        typ: str | None = "JWT",
        headers: dict[str, t.Any] | None = None,
        **claims: t.Any,
    ) -> str:
        now = int(time.time())
        payload = {"iss": self.issuer, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 300, **claims}
        head: dict[str, t.Any] = {"typ": typ, **(headers or {})}
        if kid is not None:
            head["kid"] = kid
        signer = key if key is not None else self.keys[t.cast(str, kid)]
        # typ=None makes PyJWT leave the header out (it adds "JWT" otherwise).
        return jwt.encode(payload, signer, algorithm="RS256", headers=head)

    def stop(self) -> None:
        """Stop answering: the port is closed (a second call does nothing)."""
        self._running.close()


@pytest.fixture
def provider(key_pool: list[rsa.RSAPrivateKey]) -> cabc.Iterator[Provider]:
    idp = Provider(key_pool)
    idp.add_key("k1")
    try:
        yield idp
    finally:
        idp.stop()


def build(provider: Provider, **config: t.Any) -> tuple[Flask, FlaskClient, OffsetClock]:
    """An app trusting ``provider``'s keys, with a ``/me`` view, its test client, and the JWKS client's clock."""
    app, _ = make_app(
        {
            "AUTHGATE_JWT_ALGORITHMS": ["RS256"],
            "AUTHGATE_JWKS_URL": provider.url,
            "AUTHGATE_JWT_ISSUER": provider.issuer,
            "AUTHGATE_JWT_AUDIENCE": AUDIENCE,
            **config,
        }
    )

    add_view(app, "/me", login_required, returns=subject_and_scheme)
    clock = OffsetClock(time.monotonic)
    jwks_client(app).clock = clock
    return app, app.test_client(), clock


def jwks_client(app: Flask) -> JwksClient:
    client = app.extensions["authgate"].jwks
    assert isinstance(client, JwksClient)
    return client


def assert_ok(client: FlaskClient, token: str) -> None:
    rv = client.get("/me", headers=bearer(token))
    assert rv.status_code == 200, rv.get_json()
    assert rv.get_json() == {"sub": "user-1", "scheme": "jwt"}


def assert_refused(client: FlaskClient, token: str, code: str = "token_invalid") -> None:
    rv = client.get("/me", headers=bearer(token))
    assert rv.get_json() == body(code)
    if code == "auth_unavailable":
        assert rv.status_code == 503
        assert rv.headers["Retry-After"] == "5"
        assert "WWW-Authenticate" not in rv.headers
    else:
        assert rv.status_code == 401
        assert rv.headers.getlist("WWW-Authenticate") == [
            f'Bearer realm="api", error="invalid_token", error_description="{ERRORS[code].message}"'
        ]
    assert rv.headers["Cache-Control"] == "no-store"


def test_provider_tokens_verify(provider: Provider) -> None:
    _, client, _ = build(provider)
    assert_ok(client, provider.token("k1"))
    assert provider.fetches == 1


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"aud": "https://other.example.test"}, id="wrong-audience"),
        pytest.param({"iss": "https://evil.example.test/"}, id="wrong-issuer"),
        pytest.param({"exp": 1}, id="expired"),
    ],
)
def test_provider_claims_are_checked(provider: Provider, claims: dict[str, t.Any]) -> None:
    _, client, _ = build(provider)
    code = "token_expired" if "exp" in claims else "token_invalid"
    assert_refused(client, provider.token("k1", **claims), code)


def test_keys_are_cached(provider: Provider) -> None:
    _, client, _ = build(provider)
    for i in range(10):
        assert_ok(client, provider.token("k1", jti=f"t{i}"))
    assert provider.fetches == 1


def test_cached_keys_are_refreshed_after_the_lifespan(provider: Provider) -> None:
    _, client, clock = build(provider, AUTHGATE_JWKS_CACHE_LIFESPAN=300)
    assert_ok(client, provider.token("k1", jti="a"))
    clock.offset = 301
    assert_ok(client, provider.token("k1", jti="b"))
    assert provider.fetches == 2


def test_unknown_kid_refreshes_at_most_once_per_cooldown(provider: Provider) -> None:
    _, client, clock = build(provider, AUTHGATE_JWKS_COOLDOWN=60)
    stranger = provider.spare_key()
    assert_ok(client, provider.token("k1"))
    assert provider.fetches == 1
    for i in range(5):  # the first unknown kid refetches once, the rest of the cooldown is quiet
        assert_refused(client, provider.token("nope", key=stranger, jti=f"a{i}"))
    assert provider.fetches == 2
    clock.offset = 61
    for i in range(5):  # the cooldown passed: one fetch, then quiet again
        assert_refused(client, provider.token("nope", key=stranger, jti=f"b{i}"))
    assert provider.fetches == 3


def test_first_request_with_unknown_kid_costs_one_fetch(provider: Provider) -> None:
    _, client, _ = build(provider)
    assert_refused(client, provider.token("nope", key=provider.spare_key()))
    assert provider.fetches == 1


def test_rotation_at_the_provider_is_picked_up(provider: Provider) -> None:
    _, client, clock = build(provider)  # default cooldown: 30 s
    assert_ok(client, provider.token("k1"))
    provider.add_key("k2")
    clock.offset = 31
    assert_ok(client, provider.token("k2"))
    assert_ok(client, provider.token("k1", jti="still-published"))
    assert provider.fetches == 2


def test_dropped_key_empties_the_verified_token_cache(provider: Provider) -> None:
    app, client, clock = build(provider)
    old = provider.token("k1")
    assert_ok(client, old)
    assert len(app.extensions["authgate"].tokens.cache) == 1  # verified once, now cached
    del provider.keys["k1"]  # the provider retires a (compromised?) key
    provider.add_key("k2")
    clock.offset = 31
    assert_ok(client, provider.token("k2"))  # unknown kid: refresh, and k1 is gone
    assert_refused(client, old)
    assert provider.fetches == 2


def test_provider_down_keeps_the_cached_keys(provider: Provider) -> None:
    _, client, clock = build(provider, AUTHGATE_JWKS_CACHE_LIFESPAN=300)
    assert_ok(client, provider.token("k1", jti="a"))
    provider.add_key("k2")  # published, but we never fetched it
    k2_token = provider.token("k2")
    provider.stop()
    clock.offset = 400  # the cache is stale and the cooldown over: we try, and fail
    assert_ok(client, provider.token("k1", jti="b"))
    assert_refused(client, k2_token, "auth_unavailable")
    assert provider.fetches == 1


def test_provider_down_from_the_start(provider: Provider) -> None:
    provider.stop()
    _, client, _ = build(provider)
    assert_refused(client, provider.token("k1"), "auth_unavailable")


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param((500, b'{"error": "boom"}'), id="status-500"),
        pytest.param((200, b"<html>not json</html>"), id="not-json"),
        pytest.param((200, b'{"keys": 5}'), id="keys-not-a-list"),
        pytest.param((200, b"[1, 2]"), id="a-list"),
        pytest.param((200, b"x" * (2 << 20)), id="too-large"),
        pytest.param((204, b""), id="status-204"),
        pytest.param((302, b""), id="redirect-not-followed"),
    ],
)
def test_bad_provider_answers_fail_closed(provider: Provider, answer: tuple[int, bytes]) -> None:
    _, client, clock = build(provider)
    good = provider.token("k1")
    assert_ok(client, good)
    provider.add_key("k2")
    provider.override = answer
    clock.offset = 31
    assert_refused(client, provider.token("k2"), "auth_unavailable")
    assert_ok(client, provider.token("k1", jti="cached-key-still-works"))


def test_unusable_entries_are_skipped(provider: Provider) -> None:
    jwks = provider.jwks()
    good = jwks["keys"][0]
    entries = [
        {"kty": "RSA"},  # no kid
        {**good, "kid": "enc", "use": "enc"},  # an encryption key
        {**good, "kid": "hs", "alg": "HS256"},  # an algorithm we do not accept
        {"kid": "broken", "kty": "RSA", "n": "AA", "e": "AQAB", "alg": "RS256"},
        {"kid": "oct", "kty": "oct", "k": "c2VjcmV0"},
        good,
    ]
    provider.override = (200, json.dumps({"keys": entries}).encode())
    app, client, _ = build(provider)
    assert_ok(client, provider.token("k1"))
    assert jwks_client(app).kids == frozenset({"k1"})


def test_rsa_key_without_alg_uses_the_configured_algorithm(provider: Provider) -> None:
    entry = provider.jwks()["keys"][0]
    del entry["alg"]
    provider.override = (200, json.dumps({"keys": [entry]}).encode())
    _, client, _ = build(provider)
    assert_ok(client, provider.token("k1"))


@pytest.mark.parametrize(
    ("typ", "ok"),
    [
        pytest.param("at+jwt", True, id="at+jwt"),
        pytest.param("application/at+jwt", True, id="application/at+jwt"),
        pytest.param("AT+JWT", True, id="case-insensitive"),
        pytest.param("JWT", False, id="JWT"),
        pytest.param(None, False, id="missing"),
    ],
)
def test_typ_check(provider: Provider, typ: str | None, ok: bool) -> None:
    _, client, _ = build(provider, AUTHGATE_JWT_TYP="at+jwt")
    token = provider.token("k1", typ=typ)
    assert jwt.get_unverified_header(token).get("typ") == typ
    if ok:
        assert_ok(client, token)
    else:
        assert_refused(client, token)


def test_no_typ_check_by_default(provider: Provider) -> None:
    _, client, _ = build(provider)
    assert_ok(client, provider.token("k1", typ=None))


@pytest.mark.parametrize("header", ["jku", "x5u"])
def test_key_url_headers_are_never_fetched(provider: Provider, header: str) -> None:
    _, client, _ = build(provider)
    assert_ok(client, provider.token("k1"))
    attacker = provider.spare_key()
    evil = provider.base + "/evil.json"
    for kid in ("k1", "attacker"):
        assert_refused(client, provider.token(kid, key=attacker, headers={header: evil}))
    # Only the configured JWK Set is ever fetched (the unknown kid refetches it once).
    assert set(provider.requests) == {"/jwks.json"}


def test_embedded_jwk_header_is_not_trusted(provider: Provider) -> None:
    _, client, _ = build(provider)
    attacker = provider.spare_key()
    embedded = RSAAlgorithm.to_jwk(attacker.public_key(), as_dict=True)
    assert_refused(client, provider.token("k1", key=attacker, headers={"jwk": embedded}))


def test_token_without_kid_is_invalid(provider: Provider) -> None:
    _, client, _ = build(provider)
    assert_refused(client, provider.token(None, key=provider.keys["k1"]))


def test_hmac_token_naming_a_published_kid_is_invalid(provider: Provider) -> None:
    _, client, _ = build(provider)
    now = int(time.time())
    claims = {"iss": provider.issuer, "aud": AUDIENCE, "sub": "user-1", "exp": now + 60}
    token = jwt.encode(claims, "k" * 64, algorithm="HS256", headers={"kid": "k1"})
    assert_refused(client, token)


# -- issue #9 item 14, issue #11: a key published after the last fetch ---------------------------


def test_key_published_after_the_last_fetch_is_accepted_at_once(provider: Provider) -> None:
    _, client, _ = build(provider)  # default cooldown: 30 s, and the clock does not move
    assert_ok(client, provider.token("k1"))
    provider.add_key("k2")  # a routine rotation, right after our fetch
    assert_ok(client, provider.token("k2"))
    assert provider.fetches == 2
    # The allowance is used up for this cooldown: random kids cost nothing more.
    stranger = provider.spare_key()
    for i in range(5):
        assert_refused(client, provider.token(f"random-{i}", key=stranger))
    assert provider.fetches == 2


def test_scheduled_refresh_does_not_use_the_unknown_kid_allowance(provider: Provider) -> None:
    _, client, clock = build(provider, AUTHGATE_JWKS_CACHE_LIFESPAN=60, AUTHGATE_JWKS_COOLDOWN=30)
    assert_ok(client, provider.token("k1", jti="a"))
    clock.offset = 61
    assert_ok(client, provider.token("k1", jti="b"))  # stale: the scheduled refresh
    assert provider.fetches == 2
    provider.add_key("k2")
    assert_ok(client, provider.token("k2"))  # still allowed at once
    assert provider.fetches == 3


def test_failed_fetches_are_retried_at_most_once_per_cooldown(provider: Provider) -> None:
    provider.override = (500, b"{}")
    _, client, clock = build(provider, AUTHGATE_JWKS_COOLDOWN=30)
    stranger = provider.spare_key()
    for i in range(5):
        assert_refused(client, provider.token("k1", jti=f"a{i}"), "auth_unavailable")
        assert_refused(client, provider.token(f"r{i}", key=stranger), "auth_unavailable")
    assert provider.fetches == 1
    clock.offset = 31
    assert_refused(client, provider.token("k1", jti="b"), "auth_unavailable")
    assert provider.fetches == 2
    provider.override = None  # the provider is back: we recover by ourselves
    clock.offset = 62
    assert_ok(client, provider.token("k1", jti="c"))
    assert provider.fetches == 3


# -- issue #9 item 3: new material behind an existing kid -------------------------------------------


def test_rekeyed_kid_stops_cached_tokens(provider: Provider) -> None:
    app, client, clock = build(provider, AUTHGATE_JWKS_CACHE_LIFESPAN=300)
    old = provider.token("k1")
    assert_ok(client, old)
    assert len(app.extensions["authgate"].tokens.cache) == 1
    provider.keys["k1"] = provider.spare_key()  # same kid, new material (the old key leaked?)
    clock.offset = 301  # the scheduled refresh sees the new material
    assert_refused(client, old)  # was served from the verified-token cache before the fix
    assert jwks_client(app).generation == 1
    assert_ok(client, provider.token("k1", jti="new-material"))
    assert provider.fetches == 2


def test_added_keys_keep_the_generation(provider: Provider) -> None:
    client = JwksClient(provider.url, algorithms=["RS256"])
    changes: list[int] = []
    client.on_keys_changed = lambda: changes.append(client.generation)
    client.get_key("k1")
    provider.add_key("k2")
    client.get_key("k2")
    assert (client.generation, changes) == (0, [])
    del provider.keys["k1"]
    client.clock = lambda: time.monotonic() + 1000
    client.refresh_if_stale()
    assert (client.generation, changes) == (1, [1])


# -- RFC 7517 §4.2 / §4.3: use and key_ops -----------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"use": "enc"}, id="use-enc"),
        pytest.param({"use": ""}, id="use-empty"),
        pytest.param({"key_ops": ["encrypt", "wrapKey"]}, id="key_ops-without-verify"),
        pytest.param({"key_ops": "verify"}, id="key_ops-not-a-list"),
        pytest.param({"key_ops": []}, id="key_ops-empty"),
        pytest.param({"alg": 256}, id="alg-not-a-string"),
    ],
)
def test_keys_not_meant_for_verifying_never_verify(provider: Provider, extra: dict[str, t.Any]) -> None:
    entry = {**provider.jwks()["keys"][0], **extra}
    provider.override = (200, json.dumps({"keys": [entry]}).encode())
    app, client, _ = build(provider)
    assert_refused(client, provider.token("k1"))
    assert jwks_client(app).kids == frozenset()


def test_key_ops_with_verify_is_used(provider: Provider) -> None:
    entry = {**provider.jwks()["keys"][0], "key_ops": ["verify"]}
    del entry["use"]
    provider.override = (200, json.dumps({"keys": [entry]}).encode())
    _, client, _ = build(provider)
    assert_ok(client, provider.token("k1"))


def test_private_members_make_a_key_unusable(provider: Provider) -> None:
    entry = {**provider.jwks()["keys"][0], "d": "AQAB"}
    provider.override = (200, json.dumps({"keys": [entry]}).encode())
    _, client, _ = build(provider)
    assert_refused(client, provider.token("k1"))


def test_rsa_key_without_alg_serves_one_rsa_algorithm(provider: Provider) -> None:
    entry = provider.jwks()["keys"][0]
    del entry["alg"]
    provider.override = (200, json.dumps({"keys": [entry]}).encode())
    client = JwksClient(provider.url, algorithms=["ES256", "RS256", "PS256"])
    assert client.get_key("k1", "RS256").algorithm_name == "RS256"
    for other in ("PS256", "ES256"):  # one algorithm per key; an RSA key never serves EC
        with pytest.raises(AuthError) as info:
            client.get_key("k1", other)
        assert info.value.reason == "algorithm"


# -- concurrency: many threads, one fetch ---------------------------------------------------------


def test_random_kids_from_many_threads_cost_one_fetch(provider: Provider) -> None:
    client = JwksClient(provider.url, algorithms=["RS256"], cooldown=60)
    client.get_key("k1")
    assert provider.fetches == 1
    results = in_threads(32, lambda i: client.get_key(f"random-{i}"))
    assert all(getattr(r, "error_code", None) == "token_invalid" for r in results), results
    assert provider.fetches == 2


def test_a_new_key_wanted_by_many_threads_costs_one_fetch(provider: Provider) -> None:
    client = JwksClient(provider.url, algorithms=["RS256"], cooldown=60)
    client.get_key("k1")
    provider.add_key("k2")
    results = in_threads(32, lambda i: client.get_key("k2").algorithm_name)
    assert results == ["RS256"] * 32
    assert provider.fetches == 2


def test_first_fetch_from_many_threads_is_one_fetch(provider: Provider) -> None:
    client = JwksClient(provider.url, algorithms=["RS256"], cooldown=60)
    results = in_threads(32, lambda i: client.get_key("k1" if i % 2 else f"random-{i}"))
    # The first fetch, plus at most the one refetch random kids are allowed per cooldown.
    assert provider.fetches in (1, 2)
    assert sum(1 for r in results if isinstance(r, jwt.PyJWK)) == 16


def test_only_the_first_hundred_entries_are_read(provider: Provider) -> None:
    good = provider.jwks()["keys"][0]
    filler = [{"kty": "oct", "kid": f"f{i}", "k": "AA"} for i in range(100)]
    provider.override = (200, json.dumps({"keys": [*filler, good]}).encode())
    client = JwksClient(provider.url, algorithms=["RS256"])
    with pytest.raises(AuthError):
        client.get_key("k1", "RS256")
    assert client.kids == frozenset()


def test_a_slow_scheduled_refresh_does_not_hold_up_requests_with_keys() -> None:
    with IdentityProvider() as idp:
        idp.add_key("k1")
        now = {"t": 0.0}
        client = JwksClient(idp.jwks_url, algorithms=["RS256"], lifespan=300, clock=lambda: now["t"])
        client.get_key("k1", "RS256")
        now["t"] = 301.0  # stale: the next lookup refreshes
        idp.latency["/jwks"] = 1.0
        refresher = threading.Thread(target=client.get_key, args=("k1", "RS256"))
        refresher.start()
        while not client._lock.locked():
            time.sleep(0.005)
        # Another request meanwhile: served from the keys in hand, not queued behind the fetch.
        assert client.get_key("k1", "RS256").algorithm_name == "RS256"
        assert refresher.is_alive()
        refresher.join(timeout=10)
        assert idp.count("/jwks") == 2


# -- a hostile JWKS document -----------------------------------------------------------------


def test_deeply_nested_jwks_document_is_auth_unavailable(provider: Provider) -> None:
    provider.override = (200, b'{"keys":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    app, _ = guarded_app({"AUTHGATE_JWT_ALGORITHMS": ["RS256"], "AUTHGATE_JWKS_URL": provider.url})
    header = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k1"}).encode())
    payload = b64(json.dumps({"sub": "alice", "exp": int(time.time()) + 60}).encode())
    rv = app.test_client().get("/me", headers=bearer(f"{header}.{payload}.{b64(b'x' * 256)}"))
    assert rv.status_code == 503
    assert rv.get_json() == body("auth_unavailable")
    assert "WWW-Authenticate" not in rv.headers
    assert rv.headers.getlist("Cache-Control") == ["no-store"]
    assert rv.headers.getlist("Retry-After") == ["5"]


def test_cached_token_of_a_retired_jwks_key_is_refused_after_the_lifespan(provider: Provider) -> None:
    _, client, clock = build(provider)
    old = provider.token("k1")
    assert_ok(client, old)
    del provider.keys["k1"]  # the provider retires the key; nobody presents a new kid
    clock.offset = 301  # the key set's lifespan (300 s) is over
    assert_refused(client, old)
    # The scheduled refresh (2), then the one refetch per cooldown an unknown kid may cause (3):
    # the scheduled refresh does not use up that allowance (DESIGN.md part two).
    assert provider.fetches == 3
