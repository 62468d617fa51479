"""``AuthGate(app)`` and ``init_app``: once per app, per-app state, clear errors when missing."""

from __future__ import annotations

import pytest
from conftest import OTHER_SECRET
from conftest import SECRET
from conftest import make_app
from flask import Flask
from flask.typing import ResponseReturnValue
from kit import bearer

from flask_authgate import AuthGate
from flask_authgate import ConfigError
from flask_authgate import Identity
from flask_authgate import current_identity
from flask_authgate import get_identity
from flask_authgate import ip_allowed
from flask_authgate import login_required
from flask_authgate._state import GateState
from flask_authgate._state import get_state


def guarded(app: Flask) -> Flask:
    @app.route("/me")
    @login_required
    def me() -> ResponseReturnValue:
        return {"sub": current_identity.subject, "app": app.name}

    return app


def test_state_lives_in_app_extensions() -> None:
    app, _ = make_app()
    state = app.extensions["authgate"]
    assert isinstance(state, GateState)
    assert state.app is app
    with app.app_context():
        assert get_state() is state


def test_constructor_with_app() -> None:
    app = Flask("direct")
    app.config["SECRET_KEY"] = SECRET
    AuthGate(app)
    assert "authgate" in app.extensions


def test_second_init_app_is_refused() -> None:
    app, gate = make_app()
    with pytest.raises(RuntimeError, match="already initialised"):
        gate.init_app(app)
    with pytest.raises(RuntimeError, match="already initialised"):
        AuthGate().init_app(app)


def test_failed_init_app_can_be_retried_with_a_fixed_config() -> None:
    app = Flask("retry")
    app.config.update(SECRET_KEY=SECRET, AUTHGATE_REALM='bad"realm')
    gate = AuthGate()
    with pytest.raises(ConfigError, match="AUTHGATE_REALM"):
        gate.init_app(app)
    app.config["AUTHGATE_REALM"] = "good"
    gate.init_app(app)
    guarded(app)
    rv = app.test_client().get("/me")
    assert rv.headers.getlist("WWW-Authenticate") == ['Bearer realm="good"']


def test_one_gate_serves_two_apps_with_different_secrets(token_format: str) -> None:
    gate = AuthGate()
    app_a, _ = make_app({"AUTHGATE_TOKEN_FORMAT": token_format}, gate=gate)
    app_b = Flask("authgate_b")
    app_b.config.update(TESTING=True, SECRET_KEY=OTHER_SECRET, AUTHGATE_TOKEN_FORMAT=token_format)
    gate.init_app(app_b)
    guarded(app_a)
    guarded(app_b)
    with app_a.app_context():
        token_a = gate.create_access_token("alice")
    with app_b.app_context():
        token_b = gate.create_access_token("bob")

    rv = app_a.test_client().get("/me", headers=bearer(token_a))
    assert rv.get_json() == {"sub": "alice", "app": "authgate_test"}
    rv = app_b.test_client().get("/me", headers=bearer(token_b))
    assert rv.get_json() == {"sub": "bob", "app": "authgate_b"}
    for app, token in ((app_b, token_a), (app_a, token_b)):
        rv = app.test_client().get("/me", headers=bearer(token))
        assert rv.status_code == 401
        assert rv.get_json()["code"] == "token_invalid"


def test_revocation_is_per_app() -> None:
    gate = AuthGate()
    app_a, _ = make_app(gate=gate)
    app_b, _ = make_app(gate=gate)  # same secret, its own memory store
    guarded(app_a)
    guarded(app_b)
    with app_a.app_context():
        token = gate.create_access_token("alice")
        gate.revoke(token)
    assert app_a.test_client().get("/me", headers=bearer(token)).status_code == 401
    assert app_b.test_client().get("/me", headers=bearer(token)).status_code == 200


def test_callbacks_are_shared_by_the_apps_of_one_gate() -> None:
    gate = AuthGate()
    app_a, _ = make_app(gate=gate)
    app_b, _ = make_app(gate=gate)

    @gate.user_loader
    def load(identity: Identity) -> None:
        return None

    for app in (app_a, app_b):
        guarded(app)
        with app.app_context():
            token = gate.create_access_token("alice")
        rv = app.test_client().get("/me", headers=bearer(token))
        assert rv.get_json()["code"] == "identity_not_found"


def test_guard_on_an_app_without_init_app_is_a_clear_runtime_error() -> None:
    app = guarded(Flask("bare"))
    app.config["TESTING"] = True
    with pytest.raises(RuntimeError, match=r"not set up on this app: call AuthGate\(app\) or gate.init_app\(app\)"):
        app.test_client().get("/me")


def test_ip_guard_on_an_app_without_init_app_is_a_clear_runtime_error() -> None:
    app = Flask("bare")
    app.config["TESTING"] = True

    @app.route("/ip")
    @ip_allowed("10.0.0.0/8")
    def ip() -> ResponseReturnValue:
        return "unreachable"

    with pytest.raises(RuntimeError, match=r"gate\.init_app"):
        app.test_client().get("/ip")


def test_identity_on_an_app_without_init_app_is_a_clear_runtime_error() -> None:
    app = Flask("bare")
    with app.test_request_context("/"), pytest.raises(RuntimeError, match=r"gate\.init_app"):
        get_identity()


def test_issuing_on_an_app_without_init_app_is_a_clear_runtime_error() -> None:
    gate = AuthGate()
    with Flask("bare").app_context(), pytest.raises(RuntimeError, match=r"gate\.init_app"):
        gate.create_access_token("alice")


def test_issuing_outside_an_app_context_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="application context"):
        AuthGate().create_access_token("alice")


def test_the_cli_group_is_registered() -> None:
    app, _ = make_app()
    assert "authgate" in app.cli.commands
