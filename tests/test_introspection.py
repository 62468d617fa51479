"""RFC 7662 introspection (``flask_authgate.introspection``) against Authlib's real endpoint."""

from __future__ import annotations

import base64
import json
import threading
import time
import typing as t
import urllib.parse
import urllib.request

import pytest
from idp_server import APP_CLIENT_ID
from idp_server import APP_CLIENT_SECRET
from idp_server import RS_CLIENT_ID
from idp_server import RS_CLIENT_SECRET
from idp_server import IdentityProvider
from idp_server import Override
from kit import OffsetClock
from kit import in_threads

from flask_authgate.discovery import Discovery
from flask_authgate.errors import AuthError
from flask_authgate.introspection import Introspector
from flask_authgate.introspection import looks_like_jwt
from flask_authgate.introspection import token_digest

PATH = "/introspect"


@pytest.fixture(scope="module")
def idp_options() -> dict[str, t.Any]:
    return {"issuer_path": "/realms/acme"}


def make(idp: IdentityProvider, **kwargs: t.Any) -> Introspector:
    kwargs.setdefault("client_id", RS_CLIENT_ID)
    kwargs.setdefault("client_secret", RS_CLIENT_SECRET)
    kwargs.setdefault("timeout", 1)
    return Introspector(idp.introspection_url, **kwargs)


def refusal(introspector: Introspector, token: str) -> tuple[str, str]:
    with pytest.raises(AuthError) as info:
        introspector.introspect(token)
    return info.value.error_code, t.cast(str, info.value.reason)


def test_active_token(idp: IdentityProvider) -> None:
    token = idp.opaque_token(sub="alice", scope="orders:read orders:write")
    result = make(idp).introspect(token)
    assert result.subject == "alice"
    assert result.claims["scope"] == "orders:read orders:write"
    assert result.claims["iss"] == idp.issuer
    assert result.token_id == token_digest(token)
    assert result.expires_at is not None
    assert idp.count(PATH) == 1


def test_jti_is_the_revocation_key(idp: IdentityProvider) -> None:
    result = make(idp).introspect(idp.opaque_token(jti="tok-123"))
    assert result.token_id == "tok-123"


def test_claims_are_deeply_read_only(idp: IdentityProvider) -> None:
    result = make(idp).introspect(idp.opaque_token(groups=["staff"], ext={"tenant": "t1"}))
    assert result.claims["groups"] == ("staff",)
    with pytest.raises(TypeError):
        result.claims["ext"]["tenant"] = "t2"
    with pytest.raises(AttributeError):
        result.claims["groups"].append("admin")


def test_client_credentials_token_from_the_real_token_endpoint(idp: IdentityProvider) -> None:
    basic = base64.b64encode(f"{APP_CLIENT_ID}:{APP_CLIENT_SECRET}".encode()).decode()
    req = urllib.request.Request(  # noqa: S310 - loopback test server
        idp.token_url,
        data=urllib.parse.urlencode({"grant_type": "client_credentials", "scope": "orders:read"}).encode(),
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(req, timeout=5) as rv:  # noqa: S310
        issued = json.load(rv)
    assert not looks_like_jwt(issued["access_token"])
    result = make(idp).introspect(issued["access_token"])
    assert result.subject == APP_CLIENT_ID  # no sub: the client is the subject
    assert result.claims["scope"] == "orders:read"


def test_inactive_is_401_and_cached(idp: IdentityProvider) -> None:
    introspector = make(idp)
    for _ in range(3):
        assert refusal(introspector, "never-issued") == ("token_invalid", "introspection_inactive")
    assert idp.count(PATH) == 1


def test_answers_are_cached_for_the_ttl(idp: IdentityProvider) -> None:
    clock = OffsetClock()
    introspector = make(idp, cache_ttl=60, clock=clock)
    token = idp.opaque_token(expires_in=3600)
    for _ in range(5):
        introspector.introspect(token)
    assert idp.count(PATH) == 1
    idp.tokens[token].revoked = True
    introspector.introspect(token)  # still cached: the TTL is the price of caching
    clock.offset = 61
    assert refusal(introspector, token) == ("token_invalid", "introspection_inactive")
    assert idp.count(PATH) == 2


def test_cache_never_outlives_the_tokens_exp(idp: IdentityProvider) -> None:
    clock = OffsetClock()
    introspector = make(idp, cache_ttl=60, clock=clock)
    token = idp.opaque_token(expires_in=10)
    introspector.introspect(token)
    clock.offset = 11  # inside the TTL, past exp: asked again, and now expired
    assert refusal(introspector, token) == ("token_expired", "expired")
    assert idp.count(PATH) == 2


def test_wrong_client_credentials_are_503(idp: IdentityProvider) -> None:
    introspector = make(idp, client_secret="wrong")
    assert refusal(introspector, idp.opaque_token()) == ("auth_unavailable", "introspection_failed")


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Override(body=b"<html>", headers={"Content-Type": "text/html"}), id="not-json"),
        pytest.param(Override(body=b"[true]"), id="a-list"),
        pytest.param(Override(body=b'{"sub": "alice"}'), id="no-active"),
        pytest.param(Override(body=b'{"active": "true", "sub": "alice"}'), id="active-string"),
        pytest.param(Override(body=b'{"active": 1, "sub": "alice"}'), id="active-number"),
        pytest.param(Override(body=b'{"active": null}'), id="active-null"),
        pytest.param(Override(status=500, body=b'{"active": true, "sub": "a"}'), id="500"),
        pytest.param(Override(status=302, headers={"Location": "/elsewhere"}), id="redirect"),
        pytest.param(Override(body=b'{"active": true, "sub": "a"}', delay=2), id="timeout"),
        pytest.param(Override(body=b'{"active": true, "sub": "a"}', drip=0.2), id="slow-drip"),
        pytest.param(Override(body=b"[" * 10_000), id="nested"),
    ],
)
def test_bad_answers_are_503_and_not_cached(idp: IdentityProvider, answer: Override) -> None:
    idp.override(PATH, answer)
    introspector = make(idp, timeout=0.5)
    token = idp.opaque_token()
    assert refusal(introspector, token) == ("auth_unavailable", "introspection_failed")
    with pytest.raises(AuthError) as info:
        introspector.introspect(token)
    assert info.value.retry_after == 5
    assert idp.count(PATH) == 2  # a failure is asked again
    idp.override(PATH, None)
    assert introspector.introspect(token).subject == "user-1"


def test_endpoint_down_is_503() -> None:
    with IdentityProvider() as gone:
        url = gone.introspection_url
    introspector = Introspector(url, client_id=RS_CLIENT_ID, client_secret=RS_CLIENT_SECRET)
    assert refusal(introspector, "opaque") == ("auth_unavailable", "introspection_failed")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param({}, "missing_claim", id="no-sub-no-client_id"),
        pytest.param({"sub": 42}, "claim_type", id="sub-number"),
        pytest.param({"sub": ""}, "claim_type", id="sub-empty"),
        pytest.param({"client_id": ["a"]}, "claim_type", id="client_id-list"),
        pytest.param({"sub": "a", "jti": 5}, "claim_type", id="jti-number"),
        pytest.param({"sub": "a", "exp": "9999999999"}, "claim_type", id="exp-string"),
        pytest.param({"sub": "a", "exp": True}, "claim_type", id="exp-bool"),
        pytest.param({"sub": "a", "iat": "x"}, "claim_type", id="iat-string"),
        pytest.param({"sub": "a", "nbf": 9_999_999_999}, "not_yet_valid", id="not-yet-valid"),
        pytest.param({"sub": "a", "token_use": "refresh_token"}, "token_type", id="hydra-refresh"),
        pytest.param({"sub": "a", "typ": "Refresh"}, "token_type", id="keycloak-refresh"),
        pytest.param({"sub": "a", "aud": "https://elsewhere"}, "audience", id="aud-without-configured-audience"),
        pytest.param({"sub": "a", "aud": 5}, "claim_type", id="aud-number"),
        pytest.param({"sub": "a", "aud": ["x", 5]}, "claim_type", id="aud-number-inside"),
    ],
)
def test_answers_that_fail_a_claim_check(idp: IdentityProvider, answer: dict[str, t.Any], reason: str) -> None:
    idp.override(PATH, Override(body=json.dumps({"active": True, **answer}).encode()))
    assert refusal(make(idp), "opaque-token") == ("token_invalid", reason)


def test_expired_answer_is_token_expired(idp: IdentityProvider) -> None:
    idp.override(PATH, Override(body=json.dumps({"active": True, "sub": "a", "exp": 1}).encode()))
    assert refusal(make(idp), "opaque-token") == ("token_expired", "expired")


def test_audience_and_issuer(idp: IdentityProvider) -> None:
    introspector = make(idp, audience=("orders-api",), issuers=(idp.issuer,))
    assert introspector.introspect(idp.opaque_token(aud=["x", "orders-api"])).subject == "user-1"
    assert refusal(introspector, idp.opaque_token(aud="other")) == ("token_invalid", "audience")
    assert refusal(introspector, idp.opaque_token()) == ("token_invalid", "audience")
    assert refusal(introspector, idp.opaque_token(aud="orders-api", iss="https://evil")) == ("token_invalid", "issuer")


def test_discovered_endpoint(idp: IdentityProvider) -> None:
    introspector = Introspector(
        Discovery(idp.issuer).introspection_endpoint, client_id=RS_CLIENT_ID, client_secret=RS_CLIENT_SECRET
    )
    assert introspector.introspect(idp.opaque_token(sub="dora")).subject == "dora"


def test_malformed_tokens_are_never_sent(idp: IdentityProvider) -> None:
    introspector = make(idp, max_token_length=100)
    for token in ("", "a b", "x" * 101, "tok\r\n", "ä"):
        assert refusal(introspector, token) == ("token_invalid", "malformed")
    assert idp.count(PATH) == 0


def test_cache_is_bounded_and_keyed_by_digest(idp: IdentityProvider) -> None:
    introspector = make(idp, max_entries=3)
    tokens = [idp.opaque_token() for _ in range(5)]
    for token in tokens:
        introspector.introspect(token)
    assert len(introspector) == 3
    dump = repr(introspector._cache)
    assert not any(token in dump for token in tokens)
    assert all(len(key) == 32 for key in introspector._cache)


def test_one_call_per_token_under_concurrency(idp: IdentityProvider) -> None:
    tokens = [idp.opaque_token(sub=f"u{i}") for i in range(4)]
    introspector = make(idp)
    # A slow endpoint: every thread arrives while the first call for its token is in flight.
    idp.latency[PATH] = 0.3
    try:
        results = in_threads(24, lambda i: introspector.introspect(tokens[i % 4]).subject)
    finally:
        idp.latency.clear()
    assert sorted(set(results)) == ["u0", "u1", "u2", "u3"]
    assert idp.count(PATH) == 4
    assert introspector.calls == 4


def test_concurrent_failures_are_shared_not_repeated(idp: IdentityProvider) -> None:
    idp.override(PATH, Override(status=500, body=b"{}", delay=0.3))
    introspector = make(idp)
    token = idp.opaque_token()
    results = in_threads(12, lambda i: introspector.introspect(token))
    assert all(getattr(r, "error_code", None) == "auth_unavailable" for r in results)
    assert idp.count(PATH) == 1


def test_in_flight_table_is_bounded(idp: IdentityProvider) -> None:
    idp.override(PATH, Override(body=b'{"active": true, "sub": "a"}', delay=0.5))
    introspector = make(idp, max_inflight=1)
    started = threading.Event()

    def first() -> t.Any:
        started.set()
        return introspector.introspect("first-token")

    thread = threading.Thread(target=first)
    thread.start()
    started.wait()
    while not introspector._inflight:
        time.sleep(0.01)
    assert refusal(introspector, "second-token") == ("auth_unavailable", "introspection_busy")
    thread.join(timeout=10)


@pytest.mark.parametrize(
    ("token", "jwt"),
    [
        pytest.param("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", True, id="jwt"),
        pytest.param("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", True, id="empty-signature"),
        pytest.param("abc.def.ghi", False, id="three-segments-not-json"),
        pytest.param("WzFd.e30.c2ln", False, id="header-a-list"),
        pytest.param("e30.e30", False, id="two-segments"),
        pytest.param("ory_at_abc.def", False, id="hydra"),
        pytest.param("2YotnFZFEjr1zCsicMWpAA", False, id="rfc6749-example"),
        pytest.param(".e30.c2ln", False, id="empty-header"),
        pytest.param("e30=.e30.c2ln", False, id="padded"),
    ],
)
def test_looks_like_jwt(token: str, jwt: bool) -> None:
    assert looks_like_jwt(token) is jwt
