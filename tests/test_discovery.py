"""Discovery (``flask_authgate.discovery``) against a real provider that can lie, stall and go down."""

from __future__ import annotations

import collections.abc as cabc
import json
import logging
import time
import typing as t

import pytest
from idp_server import IdentityProvider
from idp_server import Override
from kit import OffsetClock

from flask_authgate._urls import is_discoverable_issuer
from flask_authgate.discovery import Discovery
from flask_authgate.discovery import discovery_urls
from flask_authgate.errors import AuthError
from flask_authgate.jwks import JwksClient


@pytest.fixture
def idp() -> cabc.Iterator[IdentityProvider]:
    with IdentityProvider(issuer_path="/realms/acme") as provider:
        provider.add_key("k1")
        yield provider


def unavailable(discovery: Discovery) -> str:
    with pytest.raises(AuthError) as info:
        discovery.metadata()
    assert info.value.error_code == "auth_unavailable"
    assert info.value.code == 503
    assert info.value.retry_after == 5
    return t.cast(str, info.value.reason)


@pytest.mark.parametrize(
    ("issuer", "oidc", "oauth"),
    [
        pytest.param(
            "https://sso.example.com/realms/acme",
            "https://sso.example.com/realms/acme/.well-known/openid-configuration",
            "https://sso.example.com/.well-known/oauth-authorization-server/realms/acme",
            id="path",
        ),
        pytest.param(
            "https://example.eu.auth0.com/",
            "https://example.eu.auth0.com/.well-known/openid-configuration",
            "https://example.eu.auth0.com/.well-known/oauth-authorization-server",
            id="root-with-slash",
        ),
        pytest.param(
            "https://login.microsoftonline.com/tid/v2.0/",
            "https://login.microsoftonline.com/tid/v2.0/.well-known/openid-configuration",
            "https://login.microsoftonline.com/.well-known/oauth-authorization-server/tid/v2.0",
            id="path-with-slash",
        ),
        pytest.param(
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/.well-known/openid-configuration",
            "http://127.0.0.1:8080/.well-known/oauth-authorization-server",
            id="root",
        ),
    ],
)
def test_discovery_urls(issuer: str, oidc: str, oauth: str) -> None:
    assert discovery_urls(issuer) == (oidc, oauth)


@pytest.mark.parametrize(
    "issuer", ["accounts.google.com", "ftp://x.example", "https://x.example/?tenant=1", "https://x.example/#a", ""]
)
def test_issuers_that_cannot_be_discovered(issuer: str) -> None:
    assert not is_discoverable_issuer(issuer)
    with pytest.raises(ValueError):
        Discovery(issuer)


def test_discovered_from_the_openid_document(idp: IdentityProvider) -> None:
    discovery = Discovery(idp.issuer)
    meta = discovery.metadata()
    assert meta.issuer == idp.issuer
    assert meta.jwks_uri == idp.jwks_url
    assert meta.introspection_endpoint == idp.introspection_url
    assert meta.source.endswith("/realms/acme/.well-known/openid-configuration")
    assert discovery.jwks_uri() == idp.jwks_url
    assert discovery.introspection_endpoint() == idp.introspection_url
    assert idp.count(idp.oidc_path) == 1
    assert idp.count(idp.oauth_path) == 0


def test_falls_back_to_rfc8414(idp: IdentityProvider) -> None:
    idp.override(idp.oidc_path, Override(status=404, body=b"{}"))
    meta = Discovery(idp.issuer).metadata()
    assert meta.source == idp.base + "/.well-known/oauth-authorization-server/realms/acme"
    assert (idp.count(idp.oidc_path), idp.count(idp.oauth_path)) == (1, 1)


def test_nothing_is_fetched_at_construction(idp: IdentityProvider) -> None:
    Discovery(idp.issuer)
    JwksClient(Discovery(idp.issuer).jwks_uri, algorithms=["RS256"])
    assert idp.count(idp.oidc_path) == 0


def test_trailing_slash_is_removed_for_the_url_but_not_for_the_comparison() -> None:
    with IdentityProvider(trailing_slash=True) as idp:
        assert idp.issuer.endswith("/")
        assert Discovery(idp.issuer).metadata().issuer == idp.issuer
        assert idp.count("/.well-known/openid-configuration") == 1
        # Configured without the slash: the document's issuer differs, so it is refused.
        assert unavailable(Discovery(idp.issuer[:-1])) == "discovery_failed"


def lying(idp: IdentityProvider, **changes: t.Any) -> Override:
    document = {
        "issuer": idp.issuer,
        "jwks_uri": idp.jwks_url,
        "introspection_endpoint": idp.introspection_url,
        **changes,
    }
    return Override(body=json.dumps(document).encode())


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"issuer": "https://evil.example/realms/acme"}, id="other-issuer"),
        pytest.param({"issuer": None}, id="no-issuer"),
        pytest.param({"issuer": 5}, id="issuer-not-a-string"),
        pytest.param({"jwks_uri": "file:///etc/passwd"}, id="jwks-file-url"),
        pytest.param({"jwks_uri": "javascript:alert(1)"}, id="jwks-javascript"),
        pytest.param({"jwks_uri": ["http://127.0.0.1/jwks"]}, id="jwks-a-list"),
        pytest.param({"introspection_endpoint": "ftp://127.0.0.1/x"}, id="introspection-ftp"),
        pytest.param({"introspection_endpoint": 7}, id="introspection-number"),
    ],
)
def test_documents_that_fail_a_check_are_not_used(idp: IdentityProvider, changes: dict[str, t.Any]) -> None:
    bad = lying(idp, **changes)
    idp.override(idp.oidc_path, bad)
    idp.override(idp.oauth_path, bad)
    assert unavailable(Discovery(idp.issuer)) == "discovery_failed"


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Override(body=b"{" * 5000), id="nested"),
        pytest.param(Override(body=b'{"a": "' + b"x" * (2 << 20) + b'"}'), id="huge"),
        pytest.param(Override(body=b"[]"), id="a-list"),
        pytest.param(Override(status=500, body=b"{}"), id="500"),
        pytest.param(Override(status=302, headers={"Location": "/elsewhere"}), id="redirect"),
        pytest.param(Override(body=b"{}", delay=2), id="slow"),
    ],
)
def test_hostile_documents_end_in_503(idp: IdentityProvider, answer: Override) -> None:
    idp.override(idp.oidc_path, answer)
    idp.override(idp.oauth_path, answer)
    assert unavailable(Discovery(idp.issuer, timeout=0.5)) == "discovery_failed"


def test_the_timeout_covers_both_documents(idp: IdentityProvider, caplog: pytest.LogCaptureFixture) -> None:
    slow = Override(body=json.dumps({"issuer": idp.issuer}).encode(), drip=0.05)
    idp.override(idp.oidc_path, slow)
    idp.override(idp.oauth_path, slow)
    with caplog.at_level(logging.WARNING, "flask_authgate"):
        assert unavailable(Discovery(idp.issuer, timeout=0.5)) == "discovery_failed"
    # The first document used up the deadline: the second was not even given a full timeout.
    assert "timeout" in caplog.text


def test_down_at_first_then_recovers_by_itself(idp: IdentityProvider) -> None:
    idp.stop()
    clock = OffsetClock(time.monotonic)
    discovery = Discovery(idp.issuer, cooldown=30, clock=clock)
    assert unavailable(discovery) == "discovery_failed"
    assert unavailable(discovery) == "discovery_failed"
    assert discovery.attempts == 1  # inside the cooldown: not tried again
    idp.start()
    assert unavailable(discovery) == "discovery_failed"
    clock.offset = 31
    assert discovery.metadata().jwks_uri == idp.jwks_url
    assert discovery.attempts == 2


def test_cached_for_the_lifespan_and_kept_when_a_refresh_fails(idp: IdentityProvider) -> None:
    clock = OffsetClock(time.monotonic)
    discovery = Discovery(idp.issuer, lifespan=300, cooldown=30, clock=clock)
    for _ in range(5):
        discovery.metadata()
    assert idp.count(idp.oidc_path) == 1
    clock.offset = 301
    discovery.metadata()
    assert idp.count(idp.oidc_path) == 2
    idp.override(idp.oidc_path, Override(status=503, body=b"{}"))
    idp.override(idp.oauth_path, Override(status=503, body=b"{}"))
    clock.offset = 602
    assert discovery.metadata().jwks_uri == idp.jwks_url  # the last good document
    assert discovery.metadata().jwks_uri == idp.jwks_url
    assert idp.count(idp.oidc_path) == 3  # one failed attempt, then the cooldown


def test_missing_jwks_uri_is_503(idp: IdentityProvider) -> None:
    idp.override(idp.oidc_path, lying(idp, jwks_uri=None, introspection_endpoint=None))
    discovery = Discovery(idp.issuer)
    for method in (discovery.jwks_uri, discovery.introspection_endpoint):
        with pytest.raises(AuthError) as info:
            method()
        assert info.value.error_code == "auth_unavailable"


def test_jwks_client_follows_the_discovered_uri(idp: IdentityProvider) -> None:
    discovery = Discovery(idp.issuer)
    client = JwksClient(discovery.jwks_uri, algorithms=["RS256"])
    assert client.get_key("k1", "RS256").algorithm_name == "RS256"
    assert (idp.count(idp.oidc_path), idp.count("/jwks")) == (1, 1)


def test_jwks_client_is_503_while_discovery_fails(idp: IdentityProvider) -> None:
    idp.stop()
    client = JwksClient(Discovery(idp.issuer).jwks_uri, algorithms=["RS256"])
    with pytest.raises(AuthError) as info:
        client.get_key("k1", "RS256")
    assert info.value.error_code == "auth_unavailable"
    assert info.value.reason == "jwks_failed"
