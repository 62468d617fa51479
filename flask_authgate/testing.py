"""Helpers for testing an app that uses flask-authgate.

* :class:`AuthGateClient`: a test client that is signed in as someone.
* :func:`make_token`: any token the app would accept, or refuse because of
  its time claims (expired, not yet valid), in the app's own token format.
* :class:`FakeIdentityProvider`: an OpenID provider on ``127.0.0.1`` serving a
  discovery document and a JWK Set over real HTTP, for apps that verify
  outside tokens (``AUTHGATE_JWKS_URL``).

None of this belongs in production code: the client and :func:`make_token`
sign with the app's own keys, and the provider's keys live in memory.
The pytest fixtures built on these are in :mod:`flask_authgate.pytest_plugin`.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import http.server
import json
import math
import secrets
import threading
import time
import typing as t

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from ._pyjwt import encode as encode_jwt
from ._pyjwt import get_default_algorithms
from ._state import get_state
from .tokens import RESERVED
from .tokens import TOKEN_TYPES

if t.TYPE_CHECKING:
    from flask import Flask

__all__ = ["AuthGateClient", "FakeIdentityProvider", "make_token"]

#: When a token a client sends is re-issued: this many seconds before it expires.
_RENEW_MARGIN = 1.0


def _names(name: str, values: cabc.Iterable[str]) -> list[str]:
    if isinstance(values, str):
        raise TypeError(f"{name} must be a list of strings, not one string")
    out = list(values)
    if not all(isinstance(v, str) and v for v in out):
        raise TypeError(f"{name} must be non-empty strings")
    return out


def _timestamp(name: str, value: float | datetime.datetime) -> float:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise ValueError(f"{name} must be an aware datetime (naive datetimes have no fixed instant)")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number of seconds or an aware datetime")
    return float(value)


def _issue(
    app: Flask,
    subject: str,
    *,
    roles: cabc.Iterable[str],
    scopes: cabc.Iterable[str],
    claims: cabc.Mapping[str, t.Any] | None,
    expires_in: float | datetime.timedelta | None,
    issued_at: float | datetime.datetime | None,
    token_type: str,
    fresh: bool,
) -> tuple[str, dict[str, t.Any]]:
    """Build the payload as :meth:`TokenService.issue` does and sign it; return the token and its claims."""
    if not isinstance(subject, str) or not subject:
        raise TypeError("subject must be a non-empty string")
    if token_type not in TOKEN_TYPES:
        raise ValueError(f"token_type must be one of {list(TOKEN_TYPES)}")
    state = get_state(app)
    tokens = state.tokens
    settings = state.settings
    role_list = _names("roles", roles)
    scope_list = _names("scopes", scopes)
    if any(" " in s for s in scope_list):
        raise TypeError("scopes may not contain spaces")
    extra = dict(claims or {})
    # iss and aud may be set, to test an issuer or audience the app refuses; the rest have keywords.
    controlled = (RESERVED - {"iss", "aud"}) | {settings.tokens.roles_claim, settings.tokens.scopes_claim}
    clash = controlled.intersection(extra)
    if clash:
        raise ValueError(f"claims may not set {sorted(clash)}; use the keyword arguments")
    if isinstance(expires_in, datetime.timedelta):
        expires_in = expires_in.total_seconds()
    if expires_in is None:
        lifetime = settings.tokens.access_expires if token_type == "access" else settings.tokens.refresh_expires
    elif isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) or not math.isfinite(expires_in):
        raise TypeError("expires_in must be a finite number of seconds or a timedelta")
    else:
        lifetime = float(expires_in)
    # The app's own clock, so a test that freezes or moves it gets tokens in step with it.
    iat = tokens.clock() if issued_at is None else _timestamp("issued_at", issued_at)
    if lifetime > 0:
        exp = int(iat) + max(1, int(lifetime))  # as issue() rounds it
    else:
        exp = math.floor(iat + lifetime)  # at or before iat: expired from the start
    payload: dict[str, t.Any] = {
        "sub": subject,
        "iat": iat,
        "nbf": int(iat),  # an issued_at in the future makes the token not yet valid
        "exp": exp,
        "jti": secrets.token_urlsafe(16),
        "type": token_type,
    }
    if role_list:
        payload[settings.tokens.roles_claim] = sorted(set(role_list))
    if scope_list:
        payload[settings.tokens.scopes_claim] = " ".join(sorted(set(scope_list)))
    if fresh:
        payload["fresh"] = True
    if token_type == "refresh":
        payload["fam"] = secrets.token_urlsafe(12)  # a refresh token starts a family, as create_refresh_token
    if state.cookie_name is not None:
        payload["csrf"] = secrets.token_urlsafe(24)  # bound to the token, echoed in the CSRF header
    if settings.tokens.issuer is not None:
        payload["iss"] = settings.tokens.issuer
    if settings.tokens.audience:
        payload["aud"] = settings.tokens.audience[0]
    payload.update(extra)
    return tokens.codec.encode(payload, token_type), payload


def make_token(
    app: Flask,
    subject: str,
    *,
    roles: cabc.Iterable[str] = (),
    scopes: cabc.Iterable[str] = (),
    claims: cabc.Mapping[str, t.Any] | None = None,
    expires_in: float | datetime.timedelta | None = None,
    issued_at: float | datetime.datetime | None = None,
    token_type: str = "access",
    fresh: bool = False,
) -> str:
    """Make a token signed with ``app``'s keys in its format (``jwt`` or ``signed``).

    Unlike :meth:`AuthGate.create_access_token`, any lifetime is allowed, so the
    token can be one the app refuses by time::

        make_token(app, "alice", expires_in=-5)         # 401 token_expired
        make_token(app, "alice", issued_at=time.time() + 60)  # 401 token_invalid (not yet valid)

    No app or request context is needed.

    :param app: An app on which flask-authgate is set up; it must be able to
        sign (an HMAC secret or ``AUTHGATE_JWT_PRIVATE_KEY``; for an app that
        only verifies a provider's tokens, use :class:`FakeIdentityProvider`).
    :param subject: The ``sub`` claim.
    :param roles: Stored in ``AUTHGATE_ROLES_CLAIM``.
    :param scopes: Stored space-separated in ``AUTHGATE_SCOPES_CLAIM``.
    :param claims: Extra claims. ``iss`` and ``aud`` replace the app's own
        (to test a refused issuer or audience); the claims the other
        arguments control (``sub``, ``exp``, ``jti``, the roles claim...) are refused.
    :param expires_in: Seconds from ``issued_at`` to ``exp`` (default: the
        app's lifetime for ``token_type``); zero or negative makes an expired
        token. A :class:`~datetime.timedelta` works too.
    :param issued_at: The ``iat`` (and ``nbf``) time, seconds since the epoch
        or an aware datetime (default: now, by the app's clock). In the future,
        the token is not valid yet.
    :param token_type: ``"access"`` or ``"refresh"``.
    :param fresh: Mark the token as issued at a real login (``fresh_login_required``).
    :raises TypeError: A subject, role or scope that is not a non-empty string.
    :raises ValueError: A reserved claim in ``claims`` or an unknown ``token_type``.
    :raises RuntimeError: The app cannot sign tokens, or flask-authgate is not set up on it.

    .. versionadded:: 0.2
    """
    token, _ = _issue(
        app,
        subject,
        roles=roles,
        scopes=scopes,
        claims=claims,
        expires_in=expires_in,
        issued_at=issued_at,
        token_type=token_type,
        fresh=fresh,
    )
    return token


class AuthGateClient(FlaskClient):
    """A Flask test client that sends an access token for one identity on every request.

    Set it as the app's client class, then pass the identity to ``test_client``::

        app.test_client_class = AuthGateClient
        client = app.test_client(subject="alice", roles=["admin"])
        client.get("/admin")                # Authorization: Bearer <token for alice>
        app.test_client().get("/admin")     # no subject: sends no credentials (401)

    The token goes in the ``Authorization`` header, or, on an app whose only
    token location is cookies (``AUTHGATE_TOKEN_LOCATIONS = ["cookies"]``), in
    the access-token cookie with the CSRF header on every request. An
    ``Authorization`` header passed to one request replaces the client's for
    that request. The token is issued with :func:`make_token` on the first
    request and issued again once it expires by the app's clock;
    :attr:`access_token` is the one being sent (to revoke it, for instance).

    :param subject: Whom to sign in as; ``None`` sends nothing. It may be
        changed between requests (``client.subject = "bob"``); so may the
        other identity attributes, followed by :meth:`renew`.
    :param roles: The token's roles.
    :param scopes: The token's scopes.
    :param claims: Extra claims (see :func:`make_token`).
    :param fresh: Issue tokens marked fresh (``fresh_login_required``).

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        *args: t.Any,
        subject: str | None = None,
        roles: cabc.Iterable[str] = (),
        scopes: cabc.Iterable[str] = (),
        claims: cabc.Mapping[str, t.Any] | None = None,
        fresh: bool = False,
        **kwargs: t.Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.subject = subject
        self.roles = tuple(_names("roles", roles))
        self.scopes = tuple(_names("scopes", scopes))
        self.claims = dict(claims or {})
        self.fresh = fresh
        self._token: str | None = None
        self._payload: dict[str, t.Any] = {}
        self._environ_keys: list[str] = []
        if subject is not None:
            if not isinstance(subject, str) or not subject:
                raise TypeError("subject must be a non-empty string")
            if self._cookie_only and self._cookies is None:
                raise ValueError("a cookie-only app needs a client with use_cookies=True")

    @property
    def _cookie_only(self) -> bool:
        locations = get_state(self.application).settings.tokens.locations
        return "cookies" in locations and "headers" not in locations

    def renew(self) -> None:
        """Issue a new token on the next request (after changing ``roles``, ``claims``...)."""
        self._token = None

    @property
    def access_token(self) -> str | None:
        """The access token this client sends (``None`` without a subject)."""
        if self.subject is None:
            return None
        now = get_state(self.application).tokens.clock()
        stale = self._payload.get("sub") != self.subject or now >= float(self._payload["exp"]) - _RENEW_MARGIN
        if self._token is None or stale:
            self._token, self._payload = _issue(
                self.application,
                self.subject,
                roles=self.roles,
                scopes=self.scopes,
                claims=self.claims,
                expires_in=None,
                issued_at=None,
                token_type="access",
                fresh=self.fresh,
            )
        return self._token

    def open(self, *args: t.Any, **kwargs: t.Any) -> TestResponse:
        """Send the request with this client's credentials (see the class docs)."""
        for key in self._environ_keys:  # what an earlier request set (the subject may have changed)
            self.environ_base.pop(key, None)
        self._environ_keys = []
        token = self.access_token
        if token is not None:
            settings = get_state(self.application).settings
            if self._cookie_only:
                host = (self.application.config.get("SERVER_NAME") or "localhost").partition(":")[0]
                # As set_token_cookies sets them: the access cookie on its path, the CSRF cookie on "/".
                # origin_only=False: subdomains of the app's host get them too, as a browser's would.
                self.set_cookie(
                    settings.cookies.access_name, token, domain=host, origin_only=False, path=settings.cookies.path
                )
                csrf = str(self._payload["csrf"])
                self.set_cookie(settings.cookies.csrf_name, csrf, domain=host, origin_only=False)
                self._set_environ(_environ_key(settings.cookies.csrf_header), csrf)
            else:
                # environ_base: a header the request passes itself still wins.
                self._set_environ("HTTP_AUTHORIZATION", f"Bearer {token}")
        return super().open(*args, **kwargs)

    def _set_environ(self, key: str, value: str) -> None:
        self.environ_base[key] = value
        self._environ_keys.append(key)


def _environ_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


# -- a fake OpenID provider -----------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _ProviderServer
    #: Seconds an idle connection may hold a handler thread.
    timeout = 5

    def do_GET(self) -> None:
        provider = self.server.provider
        path = self.path.partition("?")[0]
        document = provider._document(path)
        if document is None:
            body = b'{"error": "not_found"}'
            self.send_response(404)
        else:
            body = json.dumps(document).encode()
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: t.Any) -> None:
        pass  # keep the test output clean


class _ProviderServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, provider: FakeIdentityProvider) -> None:
        self.provider = provider
        super().__init__(("127.0.0.1", 0), _Handler)


class FakeIdentityProvider:
    """An OpenID provider on ``127.0.0.1``, for testing apps that verify outside tokens.

    A context manager: entering it starts a threaded HTTP server on a free
    loopback port serving ``/.well-known/openid-configuration`` (OpenID
    Connect Discovery 1.0 §3) and ``/jwks.json`` (RFC 7517 §5), a JWK Set of
    freshly generated 2048-bit RSA keys. Point the app at it::

        with FakeIdentityProvider() as idp:
            app.config.update(
                AUTHGATE_JWKS_URL=idp.jwks_url,
                AUTHGATE_JWT_ALGORITHMS=["RS256"],
                AUTHGATE_JWT_ISSUER=idp.issuer,
            )
            token = idp.token("alice", roles=["admin"])

    Needs the ``cryptography`` package (``flask-authgate[crypto]``).

    :param audience: The ``aud`` claim of the tokens, when given.
    :param lifetime: Seconds from ``iat`` to ``exp`` of the tokens.

    .. versionadded:: 0.2
    """

    def __init__(self, *, audience: str | None = None, lifetime: float = 300) -> None:
        try:
            from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: F401
        except ImportError:  # pragma: no cover - cryptography is in the test dependencies
            raise ImportError(
                "FakeIdentityProvider needs the 'cryptography' package (flask-authgate[crypto])"
            ) from None
        self.audience = audience
        self.lifetime = lifetime
        #: path -> how many GET requests it answered: ``/jwks.json``,
        #: ``/.well-known/openid-configuration``, and ``"other"`` for the rest.
        self.requests: dict[str, int] = {}
        self._lock = threading.Lock()
        self._keys: list[tuple[str, t.Any]] = []  # (kid, private key); the first signs
        self._server: _ProviderServer | None = None
        self._thread: threading.Thread | None = None
        self.rotate_keys()

    # -- the server --------------------------------------------------------

    def __enter__(self) -> FakeIdentityProvider:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start serving (entering the ``with`` block does this)."""
        if self._server is not None:
            raise RuntimeError("the provider is already running")
        self._server = _ProviderServer(self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-idp", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the port."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the provider is not running: use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def issuer(self) -> str:
        """The issuer identifier (``iss``), ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def jwks_url(self) -> str:
        """The URL of the JWK Set, for ``AUTHGATE_JWKS_URL``."""
        return f"{self.issuer}/jwks.json"

    @property
    def discovery_url(self) -> str:
        """The URL of the OpenID discovery document."""
        return f"{self.issuer}/.well-known/openid-configuration"

    def _document(self, path: str) -> dict[str, t.Any] | None:
        counted = path if path in ("/jwks.json", "/.well-known/openid-configuration") else "other"
        with self._lock:
            self.requests[counted] = self.requests.get(counted, 0) + 1
        if path == "/jwks.json":
            return self.jwks()
        if path == "/.well-known/openid-configuration":
            issuer = self.issuer
            return {
                "issuer": issuer,
                "jwks_uri": self.jwks_url,
                "authorization_endpoint": f"{issuer}/authorize",
                "token_endpoint": f"{issuer}/token",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        return None

    # -- keys and tokens ---------------------------------------------------

    @property
    def kid(self) -> str:
        """The ``kid`` of the key that signs new tokens."""
        return self._keys[0][0]

    def jwks(self) -> dict[str, list[dict[str, t.Any]]]:
        """The public JWK Set the provider serves."""
        with self._lock:
            keys = list(self._keys)
        rs256 = get_default_algorithms()["RS256"]
        out = []
        for kid, private in keys:
            jwk = rs256.to_jwk(private.public_key(), as_dict=True)
            jwk.update({"kid": kid, "use": "sig", "alg": "RS256"})
            out.append(jwk)
        return {"keys": out}

    def rotate_keys(self, *, keep_old: bool = False) -> str:
        """Generate a new signing key and return its ``kid``.

        :param keep_old: Keep publishing the previous keys (a rotation with
            overlap); by default only the new key is published, so tokens
            signed before stop verifying once the app fetches the set again.
        """
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kid = secrets.token_urlsafe(8)
        with self._lock:
            self._keys = [(kid, key), *(self._keys if keep_old else [])]
        return kid

    def token(self, subject: str, **claims: t.Any) -> str:
        """An RS256 token for ``subject`` signed with the current key (``kid`` in its header).

        It carries ``iss``, ``sub``, ``iat``, ``exp`` (``iat`` + ``lifetime``),
        ``jti`` and ``aud`` (when the provider has one); ``claims`` add to them
        or replace them (``exp=time.time() - 5`` makes an expired token).
        """
        if not isinstance(subject, str) or not subject:
            raise TypeError("subject must be a non-empty string")
        now = int(time.time())
        payload: dict[str, t.Any] = {
            "iss": self.issuer,
            "sub": subject,
            "iat": now,
            "exp": now + int(self.lifetime),
            "jti": secrets.token_urlsafe(16),
        }
        if self.audience is not None:
            payload["aud"] = self.audience
        payload.update(claims)
        with self._lock:
            kid, key = self._keys[0]
        return encode_jwt(payload, key, algorithm="RS256", headers={"kid": kid})
