"""The flask-authgate example: a notes API and the single page that uses it.

Run it with ``make demo``, or::

    flask --app example_app seed
    flask --app example_app run

Configuration comes from ``FLASK_*`` environment variables (Flask's
``from_prefixed_env``; values are parsed as JSON when they can be), then from
the ``config`` mapping passed to :func:`create_app`. The defaults are safe for
development: an SQLite file and a random secret key in the instance folder,
and the in-memory revocation store. For a deployment set at least:

``FLASK_SECRET_KEY``
    A random key of at least 32 bytes, the same in every process.
``FLASK_AUTHGATE_REVOCATION_STORE``
    ``redis://...`` when several processes or machines serve the app.
``FLASK_DATABASE``
    The SQLite file.
``FLASK_PROXY_FIX_X_FOR``
    The number of proxies in front of the app that set ``X-Forwarded-For``.

DPoP (RFC 9449) is on in ``"allowed"`` mode: the page binds its tokens to a
key it keeps in the browser, while curl and scripts may still log in for
bearer tokens. ``FLASK_AUTHGATE_DPOP=required`` refuses bearer tokens;
``FLASK_AUTHGATE_DPOP=false`` turns DPoP off.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import typing as t

from flask import Flask
from flask import Response
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_authgate import public

from . import api
from . import auth
from . import db
from .extensions import gate

__all__ = ["create_app", "gate"]


def _dev_secret_key(instance_path: str) -> str:
    """A random key kept in the instance folder, shared by every process of one checkout."""
    os.makedirs(instance_path, exist_ok=True)
    path = os.path.join(instance_path, "dev-secret-key")
    if not os.path.exists(path):
        fd, tmp = tempfile.mkstemp(dir=instance_path)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(64))
            try:
                os.link(tmp, path)  # atomic: two processes starting at once agree on one key
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    with open(path) as f:
        return f.read().strip()


def _json_http_error(err: HTTPException) -> Response:
    """Other HTTP errors (405, 500 ...) in the extension's shape; 401/403/404 are flask-authgate's own.

    The code is the reason phrase as a machine word (``method_not_allowed``);
    the exception's headers are kept, such as ``Allow`` on a 405 (RFC 9110 §15.5.6).
    """
    code = re.sub(r"[^a-z0-9]+", "_", err.name.lower()).strip("_")
    return gate.error_response(err.code or 500, code, err.description or err.name, headers=err.get_headers())


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """Build the example app: defaults, then ``FLASK_*`` variables, then ``config``."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        DATABASE=os.path.join(app.instance_path, "example.sqlite"),
        PROXY_FIX_X_FOR=0,
        # Every view needs a token unless it is marked @public.
        AUTHGATE_DEFAULT_DENY=True,
        # Tokens bound to the client's key (RFC 9449) beside plain bearer tokens.
        AUTHGATE_DPOP="allowed",
    )
    app.config.from_prefixed_env()
    if config is not None:
        app.config.update(config)
    if not app.config.get("SECRET_KEY") and not app.config.get("AUTHGATE_JWT_SECRET"):
        app.config["SECRET_KEY"] = _dev_secret_key(app.instance_path)

    proxies = int(app.config["PROXY_FIX_X_FOR"])
    if proxies > 0:
        # Behind N proxies: request.remote_addr becomes the client's address (for @ip_allowed).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]

    gate.init_app(app)
    db.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(api.bp)
    app.cli.add_command(auth.revoke_user_command)
    app.register_error_handler(HTTPException, _json_http_error)

    @app.get("/")
    @public
    def index() -> Response:
        return app.send_static_file("index.html")

    @app.after_request
    def security_headers(response: Response) -> Response:
        # Tokens live in JavaScript memory: no inline script, no foreign script.
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    return app
