"""Revocation entries outlive the leeway: a token is accepted until ``exp + AUTHGATE_JWT_LEEWAY``."""

from __future__ import annotations

import collections.abc as cabc

import pytest
from flask import Flask
from kit import OffsetClock
from kit import add_refresh_route
from kit import assert_401
from kit import bearer
from kit import body
from kit import guarded_app

from flask_authgate import AuthGate
from flask_authgate import MemoryStore

# -- revocation must outlive the leeway -----------------------------------------------------


LEEWAY = {
    "AUTHGATE_JWT_LEEWAY": 30,
    "AUTHGATE_ACCESS_TOKEN_EXPIRES": 60,
    "AUTHGATE_REFRESH_TOKEN_EXPIRES": 60,
    "AUTHGATE_MAX_TOKEN_LIFETIME": 60,
}


def leeway_app(token_format: str) -> tuple[Flask, AuthGate, OffsetClock]:
    clock = OffsetClock()
    app, gate = guarded_app(
        {**LEEWAY, "AUTHGATE_TOKEN_FORMAT": token_format, "AUTHGATE_REVOCATION_STORE": MemoryStore(clock=clock)}
    )
    app.extensions["authgate"].tokens.clock = clock
    add_refresh_route(app, gate)
    return app, gate, clock


@pytest.mark.parametrize(
    "revoke",
    [
        pytest.param(lambda gate, token: gate.revoke(token), id="token"),
        pytest.param(lambda gate, token: gate.revoke_subject("alice"), id="subject"),
    ],
)
def test_revoked_token_stays_revoked_within_the_leeway(
    token_format: str, revoke: cabc.Callable[[AuthGate, str], None]
) -> None:
    app, gate, clock = leeway_app(token_format)
    with app.app_context():
        token = gate.create_access_token("alice")
        revoke(gate, token)
    clock.offset = 70  # past exp (60 s), still inside exp + leeway (90 s)
    assert_401(app.test_client(), token, "token_revoked")


def test_used_refresh_token_cannot_be_replayed_within_the_leeway(token_format: str) -> None:
    app, gate, clock = leeway_app(token_format)
    client = app.test_client()
    with app.app_context():
        refresh = gate.create_refresh_token("alice")
    assert client.post("/refresh", headers=bearer(refresh)).status_code == 200
    clock.offset = 70
    rv = client.post("/refresh", headers=bearer(refresh))
    assert rv.status_code == 401
    assert rv.get_json() == body("token_revoked", "refresh")
