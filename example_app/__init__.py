"""A small example app using flask-authgate (grown into the full demo later)."""

from __future__ import annotations

import os
import typing as t

import click
from flask import Flask

from flask_authgate import AuthGate
from flask_authgate import current_identity
from flask_authgate import login_required
from flask_authgate import roles_required

gate = AuthGate()


def create_app(config: dict[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY", "dev-only-secret-key-change-me-0123456789abcdef")
    app.config.update(config or {})
    gate.init_app(app)

    @app.get("/api/me")
    @login_required
    def me() -> dict[str, t.Any]:
        return {"subject": current_identity.subject, "roles": sorted(current_identity.roles)}

    @app.get("/api/admin")
    @roles_required("admin")
    def admin() -> dict[str, t.Any]:
        return {"ok": True}

    @app.cli.command("seed")
    def seed() -> None:
        """Print a demo admin token."""
        click.echo(gate.create_access_token("admin", roles=["admin"]))

    return app
