"""Every ``AUTHGATE_*`` key: its default, and a ConfigError naming the key for a bad value."""

from __future__ import annotations

import ast
import base64
import dataclasses
import datetime
import hashlib
import hmac
import inspect
import ipaddress
import json
import logging
import re
import time
import typing as t
from pathlib import Path

import pytest
from conftest import SECRET
from conftest import make_app
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from kit import bearer
from kit import body
from kit import guarded_app

from flask_authgate import AuthGate
from flask_authgate import ConfigError
from flask_authgate import config as config_module
from flask_authgate import login_required
from flask_authgate.config import DEFAULTS
from flask_authgate.config import GROUPS
from flask_authgate.config import KeySettings
from flask_authgate.config import Settings
from flask_authgate.config import load_settings
from flask_authgate.issuer_config import IntrospectionSettings

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def rsa_public_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def fresh_app(config: dict[str, t.Any]) -> Flask:
    app = Flask("config_test")
    app.config.update(SECRET_KEY=SECRET)
    app.config.update(config)
    return app


RS256 = {"AUTHGATE_JWT_ALGORITHMS": ["RS256"]}

BAD = [
    # HMAC secrets: RFC 7518 §3.2, the key at least as long as the hash.
    pytest.param({"AUTHGATE_JWT_SECRET": "x" * 31}, "AUTHGATE_JWT_SECRET is 31 bytes; HS256", id="hs256-short"),
    pytest.param(
        {"AUTHGATE_JWT_SECRET": "x" * 47, "AUTHGATE_JWT_ALGORITHMS": ["HS384"]},
        "AUTHGATE_JWT_SECRET is 47 bytes; HS384 needs at least 48",
        id="hs384-short",
    ),
    pytest.param(
        {"AUTHGATE_JWT_SECRET": "x" * 63, "AUTHGATE_JWT_ALGORITHMS": ["HS512"]},
        "AUTHGATE_JWT_SECRET is 63 bytes; HS512 needs at least 64",
        id="hs512-short",
    ),
    pytest.param(
        {"AUTHGATE_JWT_SECRET": "x" * 63, "AUTHGATE_JWT_ALGORITHMS": ["HS256", "HS512"]},
        "HS512 needs at least 64",
        id="longest-hash-wins",
    ),
    pytest.param(
        {"AUTHGATE_JWT_SECRET": ["k" * 64, "short-old-key"]},
        "AUTHGATE_JWT_SECRET[1] is 13 bytes",
        id="short-key-in-rotation-list",
    ),
    pytest.param({"AUTHGATE_JWT_SECRET": []}, "AUTHGATE_JWT_SECRET must not be an empty list", id="empty-list"),
    pytest.param({"AUTHGATE_JWT_SECRET": 12345}, "AUTHGATE_JWT_SECRET must be a string", id="secret-int"),
    pytest.param(
        {"SECRET_KEY": "dev"}, "AUTHGATE_JWT_SECRET (or SECRET_KEY) is 3 bytes", id="short-secret-key-fallback"
    ),
    pytest.param({"SECRET_KEY": None}, "AUTHGATE_JWT_SECRET (or SECRET_KEY) is not set", id="no-secret"),
    pytest.param(
        {"AUTHGATE_JWT_SECRET": "-----BEGIN PUBLIC KEY-----\n" + "A" * 64 + "\n-----END PUBLIC KEY-----\n"},
        "AUTHGATE_JWT_SECRET is a PEM or SSH key",
        id="pem-as-hmac-secret",
    ),
    # Algorithms.
    pytest.param({"AUTHGATE_JWT_ALGORITHMS": ["none"]}, "AUTHGATE_JWT_ALGORITHMS contains 'none'", id="none"),
    pytest.param({"AUTHGATE_JWT_ALGORITHMS": ["NoNe"]}, "AUTHGATE_JWT_ALGORITHMS contains 'NoNe'", id="NoNe"),
    pytest.param({"AUTHGATE_JWT_ALGORITHMS": ["HS256", "NONE"]}, "AUTHGATE_JWT_ALGORITHMS", id="none-among-others"),
    pytest.param({"AUTHGATE_JWT_ALGORITHMS": "none"}, "AUTHGATE_JWT_ALGORITHMS contains 'none'", id="none-string"),
    pytest.param({"AUTHGATE_JWT_ALGORITHMS": []}, "AUTHGATE_JWT_ALGORITHMS must not be empty", id="no-algorithms"),
    pytest.param({"AUTHGATE_JWT_ALGORITHMS": ["HS999"]}, "unknown algorithm 'HS999'", id="unknown-algorithm"),
    pytest.param({"AUTHGATE_JWT_ALGORITHMS": ["hs256"]}, "unknown algorithm 'hs256'", id="algorithm-case"),
    pytest.param(
        {"AUTHGATE_JWT_ALGORITHMS": ["HS256", "RS256"]}, "AUTHGATE_JWT_ALGORITHMS mixes HMAC", id="mixed-hs-rs"
    ),
    pytest.param(RS256, "AUTHGATE_JWT_ALGORITHMS is ['RS256'] but no key is set", id="rs256-without-key"),
    pytest.param(
        {"AUTHGATE_JWT_ALGORITHMS": ["ES256"]}, "AUTHGATE_JWT_ALGORITHMS is ['ES256'] but no key", id="es256-no-key"
    ),
    pytest.param(
        {**RS256, "AUTHGATE_JWT_PUBLIC_KEY": "not a pem"},
        "AUTHGATE_JWT_PUBLIC_KEY is not a PEM key",
        id="public-key-not-pem",
    ),
    pytest.param({**RS256, "AUTHGATE_JWT_PUBLIC_KEY": b"  "}, "AUTHGATE_JWT_PUBLIC_KEY must be a PEM", id="blank-pem"),
    pytest.param({**RS256, "AUTHGATE_JWT_PUBLIC_KEYS": {}}, "AUTHGATE_JWT_PUBLIC_KEYS must be", id="public-keys-empty"),
    pytest.param(
        {**RS256, "AUTHGATE_JWT_PUBLIC_KEYS": {"": "x"}}, "AUTHGATE_JWT_PUBLIC_KEYS keys", id="public-keys-empty-kid"
    ),
    pytest.param({"AUTHGATE_JWT_PUBLIC_KEY": "<pem>"}, "AUTHGATE_JWT_PUBLIC_KEY(S)", id="public-key-with-hs256"),
    pytest.param({**RS256, "AUTHGATE_JWKS_URL": "ftp://idp.example/jwks"}, "AUTHGATE_JWKS_URL", id="jwks-url-scheme"),
    pytest.param({**RS256, "AUTHGATE_JWKS_URL": "file:///etc/passwd"}, "AUTHGATE_JWKS_URL", id="jwks-url-file"),
    pytest.param({"AUTHGATE_JWT_KID": ""}, "AUTHGATE_JWT_KID", id="kid-empty"),
    pytest.param({"AUTHGATE_JWT_TYP": [5]}, "AUTHGATE_JWT_TYP", id="typ-not-string"),
    # Claims.
    pytest.param({"AUTHGATE_JWT_AUDIENCE": [""]}, "AUTHGATE_JWT_AUDIENCE", id="audience-empty"),
    pytest.param({"AUTHGATE_JWT_AUDIENCE": 5}, "AUTHGATE_JWT_AUDIENCE", id="audience-int"),
    pytest.param({"AUTHGATE_JWT_ISSUER": ""}, "AUTHGATE_JWT_ISSUER", id="issuer-empty"),
    pytest.param({"AUTHGATE_JWT_LEEWAY": 301}, "AUTHGATE_JWT_LEEWAY must be at most 300", id="leeway-too-big"),
    pytest.param({"AUTHGATE_JWT_LEEWAY": -1}, "AUTHGATE_JWT_LEEWAY", id="leeway-negative"),
    pytest.param({"AUTHGATE_JWT_LEEWAY": True}, "AUTHGATE_JWT_LEEWAY", id="leeway-bool"),
    pytest.param({"AUTHGATE_JWT_LEEWAY": "5"}, "AUTHGATE_JWT_LEEWAY", id="leeway-string"),
    pytest.param(
        {"AUTHGATE_JWT_REQUIRED_CLAIMS": ["sub"]},
        "AUTHGATE_JWT_REQUIRED_CLAIMS must include 'exp' and 'sub'",
        id="required-claims-without-exp",
    ),
    pytest.param(
        {"AUTHGATE_JWT_REQUIRED_CLAIMS": ["exp", "iat"]},
        "AUTHGATE_JWT_REQUIRED_CLAIMS must include",
        id="required-claims-without-sub",
    ),
    pytest.param({"AUTHGATE_JWT_REQUIRED_CLAIMS": [""]}, "AUTHGATE_JWT_REQUIRED_CLAIMS", id="required-claims-blank"),
    pytest.param({"AUTHGATE_ROLES_CLAIM": "roles\x00"}, "AUTHGATE_ROLES_CLAIM", id="roles-claim-control-character"),
    pytest.param({"AUTHGATE_SCOPES_CLAIM": ""}, "AUTHGATE_SCOPES_CLAIM", id="scopes-claim-empty"),
    # Format, locations, headers.
    pytest.param({"AUTHGATE_TOKEN_FORMAT": "paseto"}, "AUTHGATE_TOKEN_FORMAT must be one of", id="token-format"),
    pytest.param({"AUTHGATE_TOKEN_LOCATIONS": ["query"]}, "AUTHGATE_TOKEN_LOCATIONS has unknown", id="location"),
    pytest.param({"AUTHGATE_TOKEN_LOCATIONS": ["headers", "body"]}, "['body']", id="location-among-good"),
    pytest.param({"AUTHGATE_TOKEN_LOCATIONS": []}, "AUTHGATE_TOKEN_LOCATIONS must not be empty", id="no-locations"),
    pytest.param({"AUTHGATE_API_KEY_HEADER": "X API Key"}, "AUTHGATE_API_KEY_HEADER", id="api-key-header"),
    pytest.param({"AUTHGATE_API_KEY_HEADER": "X-Key\r\nSet-Cookie"}, "AUTHGATE_API_KEY_HEADER", id="header-crlf"),
    # Durations: a timedelta or a positive number of seconds.
    pytest.param({"AUTHGATE_ACCESS_TOKEN_EXPIRES": True}, "AUTHGATE_ACCESS_TOKEN_EXPIRES must be", id="access-bool"),
    pytest.param({"AUTHGATE_ACCESS_TOKEN_EXPIRES": -5}, "AUTHGATE_ACCESS_TOKEN_EXPIRES", id="access-negative"),
    pytest.param({"AUTHGATE_ACCESS_TOKEN_EXPIRES": 0}, "AUTHGATE_ACCESS_TOKEN_EXPIRES", id="access-zero"),
    pytest.param({"AUTHGATE_ACCESS_TOKEN_EXPIRES": "15m"}, "AUTHGATE_ACCESS_TOKEN_EXPIRES", id="access-string"),
    pytest.param({"AUTHGATE_ACCESS_TOKEN_EXPIRES": float("nan")}, "AUTHGATE_ACCESS_TOKEN_EXPIRES", id="access-nan"),
    pytest.param(
        {"AUTHGATE_ACCESS_TOKEN_EXPIRES": float("inf")}, "AUTHGATE_ACCESS_TOKEN_EXPIRES", id="access-infinite"
    ),
    pytest.param(
        {"AUTHGATE_REFRESH_TOKEN_EXPIRES": datetime.timedelta(seconds=-1)},
        "AUTHGATE_REFRESH_TOKEN_EXPIRES",
        id="refresh-negative-timedelta",
    ),
    pytest.param({"AUTHGATE_REFRESH_TOKEN_EXPIRES": False}, "AUTHGATE_REFRESH_TOKEN_EXPIRES", id="refresh-bool"),
    pytest.param(
        {"AUTHGATE_MAX_TOKEN_LIFETIME": 600},
        "AUTHGATE_MAX_TOKEN_LIFETIME is shorter",
        id="max-lifetime-below-refresh",
    ),
    pytest.param({"AUTHGATE_MAX_TOKEN_LIFETIME": "1d"}, "AUTHGATE_MAX_TOKEN_LIFETIME", id="max-lifetime-string"),
    pytest.param({"AUTHGATE_JWKS_CACHE_LIFESPAN": 0}, "AUTHGATE_JWKS_CACHE_LIFESPAN", id="jwks-lifespan-zero"),
    pytest.param({"AUTHGATE_JWKS_COOLDOWN": -1}, "AUTHGATE_JWKS_COOLDOWN", id="jwks-cooldown-negative"),
    pytest.param({"AUTHGATE_JWKS_TIMEOUT": "2"}, "AUTHGATE_JWKS_TIMEOUT", id="jwks-timeout-string"),
    pytest.param({"AUTHGATE_REDIS_TIMEOUT": 0}, "AUTHGATE_REDIS_TIMEOUT", id="redis-timeout-zero"),
    pytest.param({"AUTHGATE_RETRY_AFTER": 0}, "AUTHGATE_RETRY_AFTER", id="retry-after-zero"),
    # Challenge realm: a quoted-string that needs no escaping.
    pytest.param({"AUTHGATE_REALM": 'my "api"'}, "AUTHGATE_REALM", id="realm-quote"),
    pytest.param({"AUTHGATE_REALM": "a\\b"}, "AUTHGATE_REALM", id="realm-backslash"),
    pytest.param({"AUTHGATE_REALM": ""}, "AUTHGATE_REALM", id="realm-empty"),
    pytest.param({"AUTHGATE_REALM": "caf\u00e9"}, "AUTHGATE_REALM", id="realm-non-ascii"),
    pytest.param({"AUTHGATE_REALM": "api\r\nX: y"}, "AUTHGATE_REALM", id="realm-crlf"),
    pytest.param({"AUTHGATE_REALM": 5}, "AUTHGATE_REALM", id="realm-int"),
    # Networks, parsed strictly.
    pytest.param({"AUTHGATE_IP_ALLOWLIST": ["10.0.0.1/8"]}, "AUTHGATE_IP_ALLOWLIST", id="ip-host-bits"),
    pytest.param({"AUTHGATE_IP_ALLOWLIST": ["intranet"]}, "AUTHGATE_IP_ALLOWLIST", id="ip-name"),
    pytest.param({"AUTHGATE_IP_ALLOWLIST": ["10.0.0.0/33"]}, "AUTHGATE_IP_ALLOWLIST", id="ip-prefix"),
    pytest.param({"AUTHGATE_IP_ALLOWLIST": []}, "AUTHGATE_IP_ALLOWLIST", id="ip-empty"),
    pytest.param({"AUTHGATE_IP_ALLOWLIST": [10]}, "AUTHGATE_IP_ALLOWLIST", id="ip-int"),
    pytest.param({"AUTHGATE_DEFAULT_DENY": "yes"}, "AUTHGATE_DEFAULT_DENY must be True or False", id="deny-string"),
    pytest.param({"AUTHGATE_DEFAULT_DENY": 1}, "AUTHGATE_DEFAULT_DENY", id="deny-int"),
    # Stores, formats, views.
    pytest.param({"AUTHGATE_REVOCATION_STORE": "memcached://127.0.0.1"}, "AUTHGATE_REVOCATION_STORE", id="store-url"),
    pytest.param({"AUTHGATE_REVOCATION_STORE": "redis"}, "AUTHGATE_REVOCATION_STORE", id="store-word"),
    pytest.param({"AUTHGATE_REVOCATION_STORE": object()}, "AUTHGATE_REVOCATION_STORE object", id="store-object"),
    pytest.param({"AUTHGATE_ERROR_FORMAT": "xml"}, "AUTHGATE_ERROR_FORMAT must be one of", id="error-format"),
    pytest.param({"AUTHGATE_ERROR_FORMAT": "PROBLEM"}, "AUTHGATE_ERROR_FORMAT", id="error-format-case"),
    pytest.param({"AUTHGATE_LOGIN_VIEW": ""}, "AUTHGATE_LOGIN_VIEW", id="login-view-empty"),
    pytest.param({"AUTHGATE_TOKEN_CACHE_SIZE": -1}, "AUTHGATE_TOKEN_CACHE_SIZE", id="cache-negative"),
    pytest.param({"AUTHGATE_TOKEN_CACHE_SIZE": True}, "AUTHGATE_TOKEN_CACHE_SIZE", id="cache-bool"),
    pytest.param({"AUTHGATE_TOKEN_CACHE_SIZE": 1.5}, "AUTHGATE_TOKEN_CACHE_SIZE", id="cache-float"),
    # Role hierarchy.
    pytest.param(
        {"AUTHGATE_ROLE_HIERARCHY": {"admin": ["editor"], "editor": ["admin"]}},
        "AUTHGATE_ROLE_HIERARCHY has a cycle: admin -> editor -> admin",
        id="hierarchy-cycle",
    ),
    pytest.param(
        {"AUTHGATE_ROLE_HIERARCHY": {"admin": ["admin"]}}, "AUTHGATE_ROLE_HIERARCHY has a cycle", id="self-cycle"
    ),
    pytest.param(
        {"AUTHGATE_ROLE_HIERARCHY": {"admin": "editor"}}, "AUTHGATE_ROLE_HIERARCHY['admin']", id="hierarchy-string"
    ),
    pytest.param({"AUTHGATE_ROLE_HIERARCHY": ["admin"]}, "AUTHGATE_ROLE_HIERARCHY must map", id="hierarchy-list"),
    # Cookies.
    pytest.param({"AUTHGATE_COOKIE_SAMESITE": "lax"}, "AUTHGATE_COOKIE_SAMESITE", id="samesite-case"),
    pytest.param(
        {"AUTHGATE_COOKIE_SAMESITE": "None", "AUTHGATE_COOKIE_SECURE": False},
        "AUTHGATE_COOKIE_SAMESITE='None' needs AUTHGATE_COOKIE_SECURE=True",
        id="samesite-none-insecure",
    ),
    pytest.param({"AUTHGATE_COOKIE_SECURE": "true"}, "AUTHGATE_COOKIE_SECURE", id="secure-string"),
    pytest.param({"AUTHGATE_COOKIE_DOMAIN": ""}, "AUTHGATE_COOKIE_DOMAIN", id="cookie-domain-empty"),
    pytest.param({"AUTHGATE_COOKIE_PATH": "api"}, "AUTHGATE_COOKIE_PATH", id="cookie-path-relative"),
    pytest.param({"AUTHGATE_REFRESH_COOKIE_PATH": "/a;b"}, "AUTHGATE_REFRESH_COOKIE_PATH", id="cookie-path-semicolon"),
    pytest.param({"AUTHGATE_ACCESS_COOKIE_NAME": "a b"}, "AUTHGATE_ACCESS_COOKIE_NAME", id="cookie-name-space"),
    pytest.param({"AUTHGATE_CSRF_HEADER": ""}, "AUTHGATE_CSRF_HEADER", id="csrf-header-empty"),
]


@pytest.mark.parametrize(("config", "message"), BAD)
def test_bad_value_names_the_key(config: dict[str, t.Any], message: str) -> None:
    app = fresh_app(config)
    with pytest.raises(ConfigError, match=re.escape(message)):
        AuthGate(app)
    # Nothing was installed: a fixed config can be tried again on the same app.
    assert "authgate" not in app.extensions


def test_public_key_with_hs256_real_pem(rsa_public_pem: bytes) -> None:
    with pytest.raises(ConfigError, match=re.escape("AUTHGATE_JWT_PUBLIC_KEY(S)")):
        AuthGate(fresh_app({"AUTHGATE_JWT_PUBLIC_KEY": rsa_public_pem}))


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_secret_in_message_is_never_echoed() -> None:
    short = "hunter2-is-my-secret"
    with pytest.raises(ConfigError) as info:
        AuthGate(fresh_app({"AUTHGATE_JWT_SECRET": short}))
    assert short not in str(info.value)


def test_defaults() -> None:
    settings = load_settings(fresh_app({}))
    assert settings.keys.secrets == (SECRET.encode(),)
    assert settings.keys.algorithms == ("HS256",)
    assert settings.keys.private_key is None
    assert settings.keys.signing_kid is None
    assert dict(settings.keys.public_keys) == {}
    assert settings.keys.jwks_url is None
    assert (settings.keys.jwks_lifespan, settings.keys.jwks_cooldown, settings.keys.jwks_timeout) == (300.0, 30.0, 2.0)
    assert settings.tokens.types == frozenset()
    assert settings.tokens.audience is None
    assert settings.tokens.issuer is None
    assert settings.tokens.leeway == 0
    assert settings.tokens.required_claims == ("exp", "sub")
    assert settings.tokens.roles_claim == "roles"
    assert settings.tokens.scopes_claim == "scope"
    assert settings.tokens.format == "jwt"
    assert settings.tokens.locations == frozenset({"headers"})
    assert settings.tokens.api_key_header == "X-API-Key"
    assert settings.tokens.access_expires == 15 * 60
    assert settings.tokens.refresh_expires == 30 * 86400
    assert settings.tokens.max_lifetime == 30 * 86400
    assert settings.errors.realm == "api"
    assert settings.access.ip_allowlist is None
    assert settings.access.default_deny is False
    assert settings.revocation.store == "memory"
    assert settings.revocation.redis_timeout == 0.5
    assert settings.errors.retry_after == 5
    assert settings.errors.format == "json"
    assert settings.errors.login_view is None
    assert dict(settings.access.role_hierarchy) == {}
    assert settings.tokens.cache_size == 4096
    assert settings.cookies.secure is True
    assert settings.cookies.samesite == "Lax"
    assert settings.cookies.domain is None
    assert (settings.cookies.path, settings.cookies.refresh_path) == ("/", "/")
    assert (settings.cookies.access_name, settings.cookies.refresh_name, settings.cookies.csrf_name) == (
        "authgate_access",
        "authgate_refresh",
        "authgate_csrf",
    )
    assert settings.cookies.csrf_header == "X-CSRF-Token"


def test_every_default_is_the_one_on_its_field() -> None:
    # The defaults live on the fields of the settings dataclasses, and the loader reads them
    # from there: an app that sets nothing gets exactly the dataclasses' defaults.
    settings = load_settings(fresh_app({}))
    assert settings == Settings(keys=KeySettings(secrets=(SECRET.encode(),)))


def test_the_defaults_cannot_be_changed_behind_every_apps_back() -> None:
    with pytest.raises(TypeError):
        DEFAULTS["AUTHGATE_ERROR_FORMAT"] = "problem"  # type: ignore[index]


def test_every_settings_field_is_documented_with_its_key() -> None:
    # Each field of each group has a one-line "#:" comment above it, naming the key it is read from.
    source = inspect.getsource(config_module).splitlines()
    tree = ast.parse("\n".join(source))
    groups = {cls.__name__: cls for cls in GROUPS.values()}
    seen = set()
    for node in tree.body:
        if not isinstance(node, ast.ClassDef) or node.name not in groups:
            continue
        seen.add(node.name)
        fields = {f.name: f for f in dataclasses.fields(groups[node.name])}
        for stmt in node.body:
            if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
                continue
            comment: list[str] = []
            line = stmt.lineno - 2
            while source[line].strip().startswith("#"):
                comment.insert(0, source[line].strip())
                line -= 1
            assert comment and comment[0].startswith("#:"), f"{node.name}.{stmt.target.id} has no #: doc"
            key = fields[stmt.target.id].metadata["key"]
            if key is not None:
                assert f"``{key}``" in " ".join(comment), f"{node.name}.{stmt.target.id} does not name {key}"
    assert seen == set(groups)


def test_every_documented_key_belongs_to_a_settings_group() -> None:
    documented = set(re.findall(r"`(AUTHGATE_[A-Z_]+)`", (DOCS / "configuration.md").read_text()))
    source = inspect.getsource(config_module) + inspect.getsource(IntrospectionSettings)
    comments = "\n".join(line for line in source.splitlines() if line.strip().startswith("#"))
    named_by_a_field = set(re.findall(r"``(AUTHGATE_[A-Z_]+)``", comments)) | set(DEFAULTS)
    assert set(DEFAULTS) <= documented
    assert documented - named_by_a_field == set()


def test_good_values_are_normalised() -> None:
    settings = load_settings(
        fresh_app(
            {
                "AUTHGATE_JWT_SECRET": ["n" * 64, b"o" * 64],
                "AUTHGATE_JWT_ALGORITHMS": "HS512",
                "AUTHGATE_ACCESS_TOKEN_EXPIRES": datetime.timedelta(minutes=5),
                "AUTHGATE_REFRESH_TOKEN_EXPIRES": 3600,
                "AUTHGATE_JWT_AUDIENCE": "api",
                "AUTHGATE_JWT_LEEWAY": datetime.timedelta(seconds=30),
                "AUTHGATE_TOKEN_LOCATIONS": ["headers", "cookies"],
                "AUTHGATE_IP_ALLOWLIST": ["10.0.0.0/8", " ::1/128 "],
                "AUTHGATE_JWT_TYP": ["at+jwt"],
                "AUTHGATE_ROLE_HIERARCHY": {"admin": ["editor"], "editor": ["viewer"]},
            }
        )
    )
    assert settings.keys.secrets == (b"n" * 64, b"o" * 64)
    assert settings.keys.algorithms == ("HS512",)
    assert (settings.tokens.access_expires, settings.tokens.refresh_expires, settings.tokens.max_lifetime) == (
        300,
        3600,
        3600,
    )
    assert settings.tokens.audience == ("api",)
    assert settings.tokens.leeway == 30
    assert settings.tokens.locations == frozenset({"headers", "cookies"})
    assert settings.access.ip_allowlist == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))
    assert settings.tokens.types == frozenset({"at+jwt", "application/at+jwt"})
    assert dict(settings.access.role_hierarchy) == {
        "admin": frozenset({"editor", "viewer"}),
        "editor": frozenset({"viewer"}),
    }


def test_secret_key_is_the_default_secret_and_jwt_secret_wins() -> None:
    assert load_settings(fresh_app({"AUTHGATE_JWT_SECRET": "j" * 32})).keys.secrets == (b"j" * 32,)


def test_public_key_only_app_needs_no_secret(rsa_public_pem: bytes) -> None:
    settings = load_settings(fresh_app({"SECRET_KEY": None, **RS256, "AUTHGATE_JWT_PUBLIC_KEY": rsa_public_pem}))
    assert settings.keys.secrets == ()
    assert settings.keys.asymmetric


# -- AUTHGATE_LOGIN_VIEW --------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("/login\r\nX-Evil: 1", id="crlf"),
        pytest.param("/login\n", id="lf"),
        pytest.param("/log in", id="space"),
        pytest.param("/login\x00", id="nul"),
        pytest.param("/l\u00f6gin", id="non-ascii"),
    ],
)
def test_login_view_that_cannot_be_a_header_is_refused_at_init(value: str) -> None:
    with pytest.raises(ConfigError, match="AUTHGATE_LOGIN_VIEW"):
        make_app({"AUTHGATE_LOGIN_VIEW": value})


def test_login_view_naming_no_endpoint_answers_the_json_401(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = guarded_app({"AUTHGATE_LOGIN_VIEW": "no_such_endpoint"})
    with caplog.at_level(logging.ERROR, logger="flask_authgate"):
        rv = app.test_client().get("/me", headers={"Accept": "text/html"})
    assert rv.status_code == 401
    assert rv.get_json() == body("token_missing")
    assert rv.headers.getlist("WWW-Authenticate") == ['Bearer realm="api"']
    assert rv.headers.getlist("Cache-Control") == ["no-store"]
    assert any("AUTHGATE_LOGIN_VIEW" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "key",
    ["AUTHGATE_ACCESS_TOKEN_EXPIRES", "AUTHGATE_REFRESH_TOKEN_EXPIRES", "AUTHGATE_MAX_TOKEN_LIFETIME"],
)
def test_durations_beyond_ten_years_are_refused_at_init(key: str) -> None:
    # 1e15 s used to pass init_app and then break set_token_cookies at login (a 500).
    with pytest.raises(ConfigError, match=key):
        make_app(
            {key: 1e15, "AUTHGATE_MAX_TOKEN_LIFETIME": 1e15} if key != "AUTHGATE_MAX_TOKEN_LIFETIME" else {key: 1e15}
        )


def test_a_token_issued_for_longer_than_the_maximum_lifetime_is_invalid_even_near_its_end() -> None:
    # iat 40 days ago, exp in one day: its remaining life is short, but it was issued for 41 days,
    # beyond AUTHGATE_MAX_TOKEN_LIFETIME (30 days), so a revoke_subject() entry expiring cannot revive it.
    app, _gate = make_app()

    @app.get("/me")
    @login_required
    def me() -> dict[str, str]:
        return {"ok": "yes"}

    now = int(time.time())
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()).rstrip(b"=")
    for iat, status in ((now - 40 * 86400, 401), (now - 10 * 86400, 200)):
        claims = {"sub": "alice", "iat": iat, "exp": now + 86400, "jti": f"j{iat}"}
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
        signing_input = header + b"." + body
        sig = base64.urlsafe_b64encode(hmac.new(SECRET.encode(), signing_input, hashlib.sha256).digest()).rstrip(b"=")
        token = (signing_input + b"." + sig).decode()
        rv = app.test_client().get("/me", headers=bearer(token))
        assert rv.status_code == status
        if status == 401:
            assert rv.get_json()["code"] == "token_invalid"
