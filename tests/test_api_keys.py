"""API keys: the key helpers, ``api_key_loader``, challenges and cache headers."""

from __future__ import annotations

import asyncio
import hashlib
import re
import typing as t

import pytest
from conftest import make_app
from flask import Flask
from kit import add_view
from kit import bearer
from kit import body
from kit import subject_and_scheme

from flask_authgate import AuthGate
from flask_authgate import Identity
from flask_authgate import generate_api_key
from flask_authgate import hash_api_key
from flask_authgate import login_required
from flask_authgate import refresh_token_required
from flask_authgate import roles_required
from flask_authgate import verify_api_key

BEARER = 'Bearer realm="api"'
API_KEY = 'ApiKey realm="api"'
KEY_INVALID = 'ApiKey realm="api", error="invalid_key", error_description="The API key is invalid"'


# -- the helpers --------------------------------------------------------------------


def test_generate_api_key() -> None:
    key, digest = generate_api_key()
    assert re.fullmatch(r"ag_[A-Za-z0-9_-]{43}", key)
    assert digest == hashlib.sha256(key.encode()).hexdigest() == hash_api_key(key)
    assert generate_api_key()[0] != key


def test_generate_api_key_with_a_prefix() -> None:
    key, digest = generate_api_key("live")
    assert key.startswith("live_")
    assert verify_api_key(key, digest)


@pytest.mark.parametrize("prefix", ["", "1abc", "has space", "a" * 17, "ag_"])
def test_bad_prefix(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        generate_api_key(prefix)


def test_verify_api_key() -> None:
    key, digest = generate_api_key()
    other, _ = generate_api_key()
    assert verify_api_key(key, digest) is True
    assert verify_api_key(other, digest) is False
    assert verify_api_key(key, digest.upper()) is False
    assert verify_api_key(key, "") is False


# -- the loader ------------------------------------------------------------------------

KEY, DIGEST = generate_api_key()
#: What an app keeps in its database: the digest and who the key belongs to.
DATABASE = {DIGEST: ("reporting-service", ["reader"])}


def load_key(key: str) -> Identity | None:
    for digest, (owner, roles) in DATABASE.items():
        if verify_api_key(key, digest):
            return Identity(subject=owner, roles=frozenset(roles))
    return None


async def load_key_async(key: str) -> Identity | None:
    await asyncio.sleep(0)
    return load_key(key)


def build(token_format: str = "jwt", *, loader: t.Any = load_key, **config: t.Any) -> tuple[Flask, AuthGate]:
    app, gate = make_app({"AUTHGATE_TOKEN_FORMAT": token_format, **config})
    gate.api_key_loader(loader)

    add_view(app, "/reports", login_required, returns=subject_and_scheme)

    @app.get("/async-reports")
    @login_required
    async def async_reports() -> dict[str, t.Any]:
        await asyncio.sleep(0)
        return subject_and_scheme()

    @app.get("/cached")
    @login_required
    def cached() -> tuple[dict[str, bool], dict[str, str]]:
        return {"ok": True}, {"Cache-Control": "max-age=60"}

    @app.get("/admin")
    @roles_required("admin")
    def admin() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/refresh")
    @refresh_token_required
    def refresh() -> dict[str, bool]:
        return {"ok": True}

    return app, gate


@pytest.mark.parametrize("path", ["/reports", "/async-reports"])
@pytest.mark.parametrize("loader", [pytest.param(load_key, id="sync"), pytest.param(load_key_async, id="async")])
def test_valid_key(path: str, loader: t.Any) -> None:
    app, _ = build(loader=loader)
    rv = app.test_client().get(path, headers={"X-API-Key": KEY})
    assert rv.status_code == 200
    assert rv.get_json() == {"sub": "reporting-service", "scheme": "api_key"}
    assert rv.headers["Cache-Control"] == "private"
    assert rv.headers.getlist("Vary") == ["X-API-Key"]


def test_private_is_added_to_the_views_cache_control() -> None:
    app, _ = build()
    rv = app.test_client().get("/cached", headers={"X-API-Key": KEY})
    assert rv.headers["Cache-Control"] == "private, max-age=60"


@pytest.mark.parametrize("loader", [pytest.param(load_key, id="sync"), pytest.param(load_key_async, id="async")])
def test_unknown_key(loader: t.Any) -> None:
    app, _ = build(loader=loader)
    rv = app.test_client().get("/reports", headers={"X-API-Key": "ag_not-a-key-we-issued"})
    assert rv.status_code == 401
    assert rv.get_json() == body("api_key_invalid")
    assert rv.headers.getlist("WWW-Authenticate") == [BEARER, KEY_INVALID]
    assert rv.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "key",
    [pytest.param("has space", id="space"), pytest.param("x" * 2000, id="too-long"), pytest.param("é", id="non-ascii")],
)
def test_malformed_key(key: str) -> None:
    app, _ = build()
    rv = app.test_client().get("/reports", headers={"X-API-Key": key.encode().decode("latin-1")})
    assert rv.status_code == 401
    assert rv.get_json() == body("api_key_invalid")


def test_no_credentials_gets_both_challenges() -> None:
    app, _ = build()
    rv = app.test_client().get("/reports")
    assert rv.status_code == 401
    assert rv.get_json() == body("token_missing")
    assert rv.headers.getlist("WWW-Authenticate") == [BEARER, API_KEY]


def test_bad_bearer_token_gets_both_challenges(token_format: str) -> None:
    app, _ = build(token_format)
    rv = app.test_client().get("/reports", headers={"Authorization": "Bearer not-a-token"})
    assert rv.status_code == 401
    assert rv.headers.getlist("WWW-Authenticate") == [
        'Bearer realm="api", error="invalid_token", error_description="The access token is invalid"',
        API_KEY,
    ]


def test_bearer_still_works_on_the_same_route(token_format: str) -> None:
    app, gate = build(token_format)
    with app.app_context():
        token = gate.create_access_token("alice")
    rv = app.test_client().get("/reports", headers=bearer(token))
    assert rv.get_json() == {"sub": "alice", "scheme": token_format}
    assert "private" not in rv.headers.get("Cache-Control", "")  # Authorization makes caches careful already


def test_key_and_bearer_at_once(token_format: str) -> None:
    app, gate = build(token_format)
    with app.app_context():
        token = gate.create_access_token("alice")
    rv = app.test_client().get("/reports", headers={**bearer(token), "X-API-Key": KEY})
    assert rv.status_code == 400
    assert rv.get_json() == body("invalid_request")
    assert rv.headers.getlist("WWW-Authenticate") == ['Bearer realm="api", error="invalid_request"']


def test_custom_header_name() -> None:
    app, _ = build(AUTHGATE_API_KEY_HEADER="X-Service-Key")
    client = app.test_client()
    rv = client.get("/reports", headers={"X-Service-Key": KEY})
    assert rv.get_json() == {"sub": "reporting-service", "scheme": "api_key"}
    assert rv.headers.getlist("Vary") == ["X-Service-Key"]
    rv = client.get("/reports", headers={"X-API-Key": KEY})
    assert rv.status_code == 401
    assert rv.get_json() == body("token_missing")


def test_roles_of_the_key() -> None:
    app, _ = build()
    rv = app.test_client().get("/admin", headers={"X-API-Key": KEY})
    assert rv.status_code == 403
    assert rv.get_json() == body("insufficient_role")
    assert "WWW-Authenticate" not in rv.headers


def test_a_key_is_not_a_refresh_token() -> None:
    app, _ = build()
    rv = app.test_client().post("/refresh", headers={"X-API-Key": KEY})
    assert rv.status_code == 401
    assert rv.get_json() == body("token_type_invalid")


def test_keys_are_off_without_a_loader() -> None:
    app, _ = make_app()

    @app.get("/reports")
    @login_required
    def reports() -> dict[str, bool]:
        return {"ok": True}

    rv = app.test_client().get("/reports", headers={"X-API-Key": KEY})
    assert rv.status_code == 401
    assert rv.get_json() == body("token_missing")
    assert rv.headers.getlist("WWW-Authenticate") == [BEARER]
