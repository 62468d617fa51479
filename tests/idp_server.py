"""A small, real OAuth 2.0 / OpenID Connect provider on 127.0.0.1 for the tests.

Built from Authlib's server classes (``AuthorizationServer`` with the client
credentials grant, RFC 7662 ``IntrospectionEndpoint``) and joserfc keys, served
by Werkzeug's threaded server on a free loopback port. It serves:

* ``{issuer}/.well-known/openid-configuration`` and the RFC 8414
  ``/.well-known/oauth-authorization-server{issuer path}`` document;
* ``/jwks`` (the public keys), ``/token`` (client credentials, opaque tokens)
  and ``/introspect`` (HTTP Basic client authentication).

It signs real RS256/ES256 JWTs with its own keys (``token()``), rotates and
replaces keys, counts every request per path, and misbehaves on demand
(:meth:`IdentityProvider.override`): any status, body, delay, a body dripped
byte by byte, a redirect. :meth:`stop` and :meth:`start` take it down and
bring it back on the same port. Nothing here is a mock of HTTP.
"""

from __future__ import annotations

import collections
import collections.abc as cabc
import dataclasses
import json
import os
import secrets
import threading
import time
import typing as t

import pytest
from flask import Flask
from flask import Response
from flask import request
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey
from joserfc.jwk import RSAKey
from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import make_server

# Authlib refuses plain http unless told otherwise; this provider only ever listens on loopback.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

from authlib.integrations.flask_oauth2 import AuthorizationServer  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749 import ClientMixin  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749 import TokenMixin
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc7662 import IntrospectionEndpoint  # type: ignore[import-untyped]

#: The resource server's credentials at the introspection endpoint.
RS_CLIENT_ID = "orders-api"
RS_CLIENT_SECRET = "rs-secret-" + "x" * 24
#: A client that obtains tokens with the client credentials grant.
APP_CLIENT_ID = "mobile-app"
APP_CLIENT_SECRET = "app-secret-" + "y" * 24

Key = RSAKey | ECKey


@dataclasses.dataclass
class Override:
    """What a path answers instead of its normal response."""

    status: int = 200
    body: bytes | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Seconds to wait before answering at all.
    delay: float = 0.0
    #: Seconds between two pieces of the body (a slow-drip server); sent without Content-Length.
    drip: float | None = None
    #: Bytes per piece when dripping.
    chunk: int = 1
    #: Drip the body again and again, never ending (until the client hangs up).
    forever: bool = False


class Client(ClientMixin):  # type: ignore[misc]
    def __init__(self, client_id: str, secret: str, scope: str) -> None:
        self.client_id = client_id
        self.client_secret = secret
        self.scope = scope

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return ""

    def get_allowed_scope(self, scope: str) -> str:
        if not scope:
            return ""
        allowed = set(self.scope.split())
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic"

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


@dataclasses.dataclass
class OpaqueToken(TokenMixin):  # type: ignore[misc]
    access_token: str
    client_id: str
    scope: str
    sub: str | None
    issued_at: float
    expires_in: float
    extra: dict[str, t.Any]
    revoked: bool = False

    def check_client(self, client: Client) -> bool:
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int(self.expires_in)

    def is_expired(self) -> bool:
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.revoked


class _Url:
    """A provider address: its base URL (``http://127.0.0.1:<port>``) and then ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __get__(self, provider: IdentityProvider, owner: type | None = None) -> str:
        return provider.base + self.path


class IdentityProvider:
    """A real authorization server on ``127.0.0.1``.

    :param issuer_path: Path part of the issuer (``"/realms/acme"``); empty for
        an issuer at the root.
    :param trailing_slash: Whether the issuer ends in ``/`` (Auth0 style).
    """

    def __init__(self, *, issuer_path: str = "", trailing_slash: bool = False) -> None:
        self.issuer_path = issuer_path
        self.trailing_slash = trailing_slash
        self.keys: dict[str, tuple[str, Key]] = {}
        #: Extra JWK entries appended to the published set (provider shapes, hostile entries).
        self.extra_jwks: list[dict[str, t.Any]] = []
        #: Rewrites each published JWK (e.g. drop ``alg`` as Entra ID does).
        self.jwk_transform: cabc.Callable[[dict[str, t.Any]], dict[str, t.Any]] | None = None
        #: Extra fields of the discovery documents.
        self.metadata_extra: dict[str, t.Any] = {}
        self.overrides: dict[str, Override] = {}
        #: Seconds a path waits before answering normally (a slow but correct provider).
        self.latency: dict[str, float] = {}
        self.tokens: dict[str, OpaqueToken] = {}
        self.clients = {
            RS_CLIENT_ID: Client(RS_CLIENT_ID, RS_CLIENT_SECRET, ""),
            APP_CLIENT_ID: Client(APP_CLIENT_ID, APP_CLIENT_SECRET, "orders:read orders:write"),
        }
        self._requests: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self.app = self._make_app()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.start()

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Listen (again) on the same port."""
        if self._server is not None:
            return
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        """Stop listening: connections are refused until :meth:`start`."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=10)

    def __enter__(self) -> IdentityProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return self.base + self.issuer_path + ("/" if self.trailing_slash else "")

    jwks_url = _Url("/jwks")
    introspection_url = _Url("/introspect")
    token_url = _Url("/token")

    @property
    def oidc_path(self) -> str:
        return self.issuer_path + "/.well-known/openid-configuration"

    @property
    def oauth_path(self) -> str:
        return "/.well-known/oauth-authorization-server" + self.issuer_path

    def count(self, path: str) -> int:
        with self._lock:
            return self._requests[path]

    def reset_counts(self) -> None:
        with self._lock:
            self._requests.clear()

    def reset(self) -> None:
        """Answer every path normally again, with every request count back at zero."""
        self.overrides.clear()
        self.reset_counts()

    def override(self, path: str, answer: Override | None) -> None:
        """Answer ``path`` with ``answer`` (``None``: answer normally again)."""
        if answer is None:
            self.overrides.pop(path, None)
        else:
            self.overrides[path] = answer

    # -- keys and tokens -------------------------------------------------------

    def add_key(self, kid: str, alg: str = "RS256") -> Key:
        key: Key
        if alg.startswith("ES"):
            curve = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
            key = ECKey.generate_key(curve, parameters={"kid": kid}, private=True)
        else:
            key = RSAKey.generate_key(2048, parameters={"kid": kid}, private=True)
        self.keys[kid] = (alg, key)
        return key

    def replace_key(self, kid: str) -> None:
        """New key material behind an existing ``kid`` (a provider re-keying in place)."""
        alg, _ = self.keys[kid]
        self.add_key(kid, alg)

    def rotate_keys(self) -> str:
        """Publish a new key and retire every old one; return the new kid."""
        kid = f"k-{secrets.token_hex(4)}"
        alg = next(iter(self.keys.values()))[0] if self.keys else "RS256"
        self.keys.clear()
        self.add_key(kid, alg)
        return kid

    def jwks(self) -> dict[str, t.Any]:
        entries = []
        for kid, (alg, key) in self.keys.items():
            jwk = dict(key.as_dict(private=False))
            jwk.update({"kid": kid, "use": "sig", "alg": alg})
            entries.append(self.jwk_transform(jwk) if self.jwk_transform else jwk)
        return {"keys": entries + list(self.extra_jwks)}

    def token(
        self,
        claims: cabc.Mapping[str, t.Any] | None = None,
        *,
        kid: str | None = None,
        typ: str | None = "JWT",
        header: cabc.Mapping[str, t.Any] | None = None,
        key: Key | None = None,
        alg: str | None = None,
        lifetime: int = 300,
    ) -> str:
        """A JWT signed with one of this provider's keys (the first one by default).

        ``claims`` are added to ``iss`` (this issuer), ``sub``, ``iat`` and ``exp``;
        a claim set to ``None`` is left out.
        """
        kid = kid if kid is not None else next(iter(self.keys))
        key_alg, own = self.keys[kid] if kid in self.keys else ("RS256", None)
        signer = key if key is not None else own
        assert signer is not None, f"no key {kid!r}"
        now = int(time.time())
        payload: dict[str, t.Any] = {"iss": self.issuer, "sub": "user-1", "iat": now, "exp": now + lifetime}
        payload.update(claims or {})
        payload = {k: v for k, v in payload.items() if v is not None}
        head: dict[str, t.Any] = {"alg": alg or key_alg, "kid": kid}
        if typ is not None:
            head["typ"] = typ
        head.update(header or {})
        return jose_jwt.encode(head, payload, signer, algorithms=[head["alg"]])

    def opaque_token(
        self,
        *,
        sub: str | None = "user-1",
        scope: str = "orders:read",
        client_id: str = APP_CLIENT_ID,
        expires_in: float = 300,
        **extra: t.Any,
    ) -> str:
        """Store and return an opaque access token (as the token endpoint would)."""
        value = secrets.token_urlsafe(32)
        self.tokens[value] = OpaqueToken(value, client_id, scope, sub, time.time(), expires_in, extra)
        return value

    # -- the WSGI app ----------------------------------------------------------

    def _metadata(self) -> dict[str, t.Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_url,
            "token_endpoint": self.token_url,
            "introspection_endpoint": self.introspection_url,
            "grant_types_supported": ["client_credentials"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            **self.metadata_extra,
        }

    def _make_app(self) -> Flask:
        app = Flask("identity_provider")
        provider = self

        def save_token(token: dict[str, t.Any], req: t.Any) -> None:
            provider.tokens[token["access_token"]] = OpaqueToken(
                token["access_token"],
                req.client.client_id,
                token.get("scope", ""),
                None,
                time.time(),
                token.get("expires_in", 300),
                {},
            )

        server = AuthorizationServer(app, query_client=self.clients.get, save_token=save_token)
        server.register_grant(grants.ClientCredentialsGrant)

        class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
            def query_token(self, token_string: str, token_type_hint: str | None) -> OpaqueToken | None:
                return provider.tokens.get(token_string)

            def introspect_token(self, token: OpaqueToken) -> dict[str, t.Any]:
                answer: dict[str, t.Any] = {
                    "active": True,
                    "client_id": token.client_id,
                    "token_type": "Bearer",
                    "scope": token.scope,
                    "iss": provider.issuer,
                    "exp": int(token.issued_at + token.expires_in),
                    "iat": int(token.issued_at),
                }
                if token.sub is not None:
                    answer["sub"] = token.sub
                answer.update(token.extra)
                return {k: v for k, v in answer.items() if v is not None}

            def check_permission(self, token: OpaqueToken, client: Client, req: t.Any) -> bool:
                # Only the resource server may introspect (RFC 7662 §2.1).
                return bool(client.client_id == RS_CLIENT_ID)

        server.register_endpoint(Introspection)

        @app.before_request
        def count_and_misbehave() -> Response | None:
            with provider._lock:
                provider._requests[request.path] += 1
            if request.path in provider.latency:
                time.sleep(provider.latency[request.path])
            answer = provider.overrides.get(request.path)
            if answer is None:
                return None
            if answer.delay:
                time.sleep(answer.delay)
            body = answer.body if answer.body is not None else b""
            headers = {"Content-Type": "application/json", **answer.headers}
            if answer.drip is not None:
                interval, size, forever = answer.drip, answer.chunk, answer.forever

                def dripping() -> cabc.Iterator[bytes]:
                    while True:
                        for i in range(0, len(body), size):
                            if interval:
                                time.sleep(interval)
                            yield body[i : i + size]
                        if not forever:
                            return

                return Response(dripping(), status=answer.status, headers=headers)
            return Response(body, status=answer.status, headers=headers)

        def document() -> Response:
            return Response(json.dumps(provider._metadata()), mimetype="application/json")

        # Registered for the issuer path given at construction.
        app.add_url_rule(self.oidc_path, "oidc", document)
        if self.issuer_path:
            app.add_url_rule(self.oauth_path, "oauth", document)
        else:
            app.add_url_rule("/.well-known/oauth-authorization-server", "oauth", document)

        @app.get("/jwks")
        def jwks() -> Response:
            return Response(json.dumps(provider.jwks()), mimetype="application/json")

        @app.post("/token")
        def issue() -> Response:
            return t.cast(Response, server.create_token_response())

        @app.post("/introspect")
        def introspect() -> Response:
            return t.cast(Response, server.create_endpoint_response(IntrospectionEndpoint.ENDPOINT_NAME))

        return app


# -- fixtures (a plugin: ``pytest_plugins`` in conftest.py) ---------------------------------------


@pytest.fixture(scope="module")
def idp_options() -> dict[str, t.Any]:
    """The keyword arguments of the module's :class:`IdentityProvider`; a test module overrides this fixture."""
    return {}


@pytest.fixture(scope="module")
def idp_server(idp_options: dict[str, t.Any]) -> cabc.Iterator[IdentityProvider]:
    """One running provider for the whole module, with one RSA key, ``k1``."""
    with IdentityProvider(**idp_options) as provider:
        provider.add_key("k1")
        yield provider


@pytest.fixture
def idp(idp_server: IdentityProvider) -> IdentityProvider:
    """The module's provider, answering normally and with its request counts at zero."""
    idp_server.reset()
    return idp_server
