"""The contenders: Flask apps with the same routes, key, token and body, each guarding ``ROUTE`` its own way.

Every builder takes a :class:`~keys.KeySet` and returns a Flask app with two
routes, ``ROUTE`` (an ``admin`` role check) and ``PUBLIC`` (unguarded). The
outside-issuer, introspection and DPoP contenders are in ``outside.py``.
"""

from __future__ import annotations

import collections.abc as cabc
import functools
import hashlib
import typing as t

import jwt
from flask import Flask
from flask import g
from flask import request
from keys import AUDIENCE
from keys import BODY
from keys import PUBLIC
from keys import REALM
from keys import ROLE
from keys import ROUTE
from keys import SECRET
from keys import KeySet

Guard = cabc.Callable[[t.Any], t.Any]


def with_routes(app: Flask, guard: cabc.Callable[[t.Any], t.Any]) -> Flask:
    @app.get(ROUTE)
    @guard
    def admin() -> dict[str, t.Any]:
        return BODY

    @app.get(PUBLIC)
    def public() -> dict[str, t.Any]:
        return BODY

    return app


def flask_app(name: str) -> Flask:
    app = Flask(f"bench_{name}")
    app.config["SECRET_KEY"] = SECRET
    return app


def build_plain(keys: KeySet) -> Flask:
    return with_routes(flask_app("plain"), lambda view: view)


def _json_error(status: int, code: str) -> tuple[dict[str, t.Any], int, dict[str, str]]:
    headers = {"WWW-Authenticate": f'Bearer realm="{REALM}"'} if status == 401 else {}
    return {"error": code, "status": status}, status, headers


def hand_written(check: cabc.Callable[[str], dict[str, t.Any] | None]) -> Guard:
    """The obvious hand-written decorator around ``check(token) -> claims or None``: 401, 403, or the view."""

    def decorator(view: t.Any) -> t.Any:
        @functools.wraps(view)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token:
                return _json_error(401, "token_missing")
            claims = check(token)
            if claims is None:
                return _json_error(401, "token_invalid")
            if ROLE not in claims.get("roles", ()):
                return _json_error(403, "insufficient_role")
            g.claims = claims
            return view(*args, **kwargs)

        return wrapper

    return decorator


def build_floor(keys: KeySet) -> Flask:
    """The floor: the obvious hand-written decorator: parse the header, ``jwt.decode`` with the right key, check the role.

    Written out, not built on :func:`hand_written`: the floors are what every ratio is divided
    by, so each costs exactly what a user's own decorator would, without an extra call.
    """

    def roles_required(role: str) -> cabc.Callable[[t.Any], t.Any]:
        def decorator(view: t.Any) -> t.Any:
            @functools.wraps(view)
            def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
                scheme, _, token = request.headers.get("Authorization", "").partition(" ")
                if scheme.lower() != "bearer" or not token:
                    return _json_error(401, "token_missing")
                try:
                    claims = jwt.decode(
                        token, keys.verify, algorithms=[keys.alg], audience=AUDIENCE, issuer=keys.issuer
                    )
                except jwt.InvalidTokenError:
                    return _json_error(401, "token_invalid")
                if role not in claims.get("roles", ()):
                    return _json_error(403, "insufficient_role")
                g.claims = claims
                return view(*args, **kwargs)

            return wrapper

        return decorator

    return with_routes(flask_app("floor"), roles_required(ROLE))


def build_floor_signed(keys: KeySet) -> Flask:
    """The same hand-written decorator for itsdangerous tokens (the signed format's floor)."""
    from itsdangerous import BadData
    from itsdangerous import URLSafeTimedSerializer

    serializer = URLSafeTimedSerializer(
        SECRET, salt="flask-authgate.access", signer_kwargs={"digest_method": hashlib.sha256}
    )

    def roles_required(role: str) -> cabc.Callable[[t.Any], t.Any]:
        def decorator(view: t.Any) -> t.Any:
            @functools.wraps(view)
            def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
                scheme, _, token = request.headers.get("Authorization", "").partition(" ")
                if scheme.lower() != "bearer" or not token:
                    return _json_error(401, "token_missing")
                try:
                    claims = serializer.loads(token, max_age=3600)
                except BadData:
                    return _json_error(401, "token_invalid")
                if role not in claims.get("roles", ()):
                    return _json_error(403, "insufficient_role")
                g.claims = claims
                return view(*args, **kwargs)

            return wrapper

        return decorator

    return with_routes(flask_app("floor_signed"), roles_required(ROLE))


def authgate_config(keys: KeySet, **extra: t.Any) -> dict[str, t.Any]:
    config: dict[str, t.Any] = {
        "AUTHGATE_JWT_ALGORITHMS": [keys.alg],
        "AUTHGATE_JWT_AUDIENCE": AUDIENCE,
        "AUTHGATE_JWT_ISSUER": keys.issuer,
    }
    if keys.verify_pem is not None:
        config["AUTHGATE_JWT_PUBLIC_KEY"] = keys.verify_pem
    config.update(extra)
    return config


#: Each flask-authgate contender's ``AuthGate``, for its public methods (``create_access_token``, ``revoke``).
GATES: dict[Flask, t.Any] = {}


def gated(app: Flask) -> Flask:
    """``AuthGate(app)``, remembered in :data:`GATES`."""
    from flask_authgate import AuthGate

    GATES[app] = AuthGate(app)
    return app


def build_authgate(keys: KeySet, **config: t.Any) -> Flask:
    from flask_authgate import roles_required

    app = flask_app("authgate")
    app.config.update(authgate_config(keys, **config))
    return with_routes(gated(app), roles_required(ROLE))


def build_authgate_deny(keys: KeySet) -> Flask:
    """Deny-by-default on: the app-wide ``before_request`` runs, ``/public`` is ``@public``."""
    from flask_authgate import public
    from flask_authgate import roles_required

    app = flask_app("authgate_deny")
    app.config.update(authgate_config(keys, AUTHGATE_DEFAULT_DENY=True))
    gated(app)

    @app.get(ROUTE)
    @roles_required(ROLE)
    def admin() -> dict[str, t.Any]:
        return BODY

    @app.get(PUBLIC)
    @public
    def open_view() -> dict[str, t.Any]:
        return BODY

    return app


def build_fje(keys: KeySet) -> Flask:
    """Flask-JWT-Extended with the role decorator its documentation recommends."""
    from flask_jwt_extended import JWTManager
    from flask_jwt_extended import get_jwt
    from flask_jwt_extended import verify_jwt_in_request

    app = flask_app("fje")
    app.config.update(
        JWT_ALGORITHM=keys.alg,
        JWT_DECODE_ALGORITHMS=[keys.alg],
        JWT_DECODE_AUDIENCE=AUDIENCE,
        JWT_DECODE_ISSUER=keys.issuer,
        JWT_TOKEN_LOCATION=["headers"],
    )
    if keys.alg.startswith("HS"):
        app.config["JWT_SECRET_KEY"] = SECRET
    else:
        app.config["JWT_PUBLIC_KEY"] = keys.verify
    JWTManager(app)

    def admin_required(view: t.Any) -> t.Any:
        @functools.wraps(view)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            verify_jwt_in_request()
            if ROLE not in get_jwt().get("roles", ()):
                return {"msg": "Admins only!"}, 403
            return view(*args, **kwargs)

        return wrapper

    return with_routes(app, admin_required)


def build_httpauth(keys: KeySet) -> Flask:
    """Flask-HTTPAuth: ``HTTPTokenAuth`` with a PyJWT ``verify_token`` and ``get_user_roles``."""
    from flask_httpauth import HTTPTokenAuth  # type: ignore[import-untyped]

    auth = HTTPTokenAuth(scheme="Bearer", realm=REALM)

    @auth.verify_token  # type: ignore[untyped-decorator]
    def verify_token(token: str) -> dict[str, t.Any] | None:
        try:
            return jwt.decode(token, keys.verify, algorithms=[keys.alg], audience=AUDIENCE, issuer=keys.issuer)
        except jwt.InvalidTokenError:
            return None

    @auth.get_user_roles  # type: ignore[untyped-decorator]
    def get_user_roles(user: dict[str, t.Any]) -> list[str]:
        return list(user.get("roles", ()))

    return with_routes(flask_app("httpauth"), auth.login_required(role=ROLE))


def build_authlib(keys: KeySet) -> Flask:
    """Authlib's ``ResourceProtector`` with its RFC 9068 ``JWTBearerTokenValidator`` (joserfc).

    ``get_jwks`` returns the key already imported (the documented pattern
    caches the JWK Set). Authlib answers a missing role with 401
    ``invalid_token`` (its RFC 9068 validator's behaviour), not 403.
    """
    from authlib.integrations.flask_oauth2 import ResourceProtector  # type: ignore[import-untyped]
    from authlib.oauth2.rfc9068 import JWTBearerTokenValidator  # type: ignore[import-untyped]

    class Validator(JWTBearerTokenValidator):  # type: ignore[misc]
        def get_jwks(self) -> t.Any:
            return keys.jwk

    protector = ResourceProtector()
    protector.register_token_validator(Validator(issuer=keys.issuer, resource_server=AUDIENCE, realm=REALM))
    return with_routes(flask_app("authlib"), protector(roles=ROLE))


BUILDERS: dict[str, cabc.Callable[[KeySet], Flask]] = {
    "plain": build_plain,
    "floor": build_floor,
    "floor-signed": build_floor_signed,
    "authgate": build_authgate,
    "authgate-deny": build_authgate_deny,
    "fje": build_fje,
    "httpauth": build_httpauth,
    "authlib": build_authlib,
}
LABELS = {
    "plain": "plain Flask (no auth)",
    "floor": "hand-written PyJWT decorator (floor)",
    "floor-signed": "hand-written itsdangerous decorator (floor)",
    "floor-introspect": "hand-written decorator POSTing to the introspection endpoint (floor)",
    "authgate": "flask-authgate",
    "authgate-signed": "flask-authgate, signed format",
    "authgate-redis": "flask-authgate, Redis revocation store",
    "authgate-revoked": "flask-authgate, memory store holding 10,000 revocations",
    "authgate-deny": "flask-authgate, AUTHGATE_DEFAULT_DENY + @public",
    "authgate-trusted": "flask-authgate, AUTHGATE_TRUSTED_ISSUERS (3 issuers, JWKS)",
    "authgate-introspect": "flask-authgate, AUTHGATE_INTROSPECTION_URL",
    "authgate-bearer": "flask-authgate, AUTHGATE_DPOP allowed, Bearer token",
    "authgate-dpop": "flask-authgate, DPoP-bound token + fresh proof",
    "fje": "Flask-JWT-Extended",
    "httpauth": "Flask-HTTPAuth",
    "authlib": "Authlib ResourceProtector (RFC 9068)",
}
PEERS = ["plain", "floor", "authgate", "httpauth", "authlib", "fje"]
