"""The :class:`AuthGate` extension: set-up, registrars and the token façade."""

from __future__ import annotations

import collections.abc as cabc
import secrets
import typing as t
import weakref

from flask import Blueprint
from flask import Flask
from flask import Response

from . import credentials
from . import openapi
from . import pipeline
from ._state import GateState
from ._state import get_state
from .config import Settings
from .config import load_settings
from .decorators import names
from .decorators import public
from .dpop import DpopVerifier
from .errors import AuthError
from .errors import app_error
from .identity import thaw
from .introspection import Introspector
from .issuers import IssuerSet
from .jwks import JwksClient
from .jwt_tokens import JwtCodec
from .metrics import make_decision_hooks
from .requirements import Requirement
from .resource_metadata import build_metadata
from .resource_metadata import metadata_path
from .resource_metadata import metadata_url
from .responses import extra_headers
from .responses import handle_auth_error
from .responses import handle_http_error
from .responses import render_error
from .revocation import Revocations
from .revocation import make_store
from .rules import BlueprintRules
from .rules import before_request
from .rules import scopes_in_use
from .rules import static_views
from .signed_tokens import SignedCodec
from .tokens import RESERVED
from .tokens import Codec
from .tokens import TokenService
from .typing import ApiKeyLoader
from .typing import Callbacks
from .typing import ErrorRenderer
from .typing import RolesLoader
from .typing import UserLoader


def _install_hook(app: Flask) -> None:
    """Put the app-wide rules first among the app's ``before_request`` hooks, once.

    First, so the IP allow list is checked before anything else. Every app
    gets it: besides the allow list, deny by default and protected
    blueprints, it enforces a guard written above ``@app.route`` (which would
    otherwise leave the view open). An endpoint without rules costs one
    dictionary look-up.
    """
    hooks = app.before_request_funcs.setdefault(None, [])
    if before_request not in hooks:
        hooks.insert(0, before_request)


def _outside_issuers(settings: Settings, on_keys_changed: t.Callable[[], None]) -> IssuerSet | None:
    """The trusted outside issuers, each with its own lazily discovered keys (nothing fetched now)."""
    if not settings.providers.trusted_issuers:
        return None
    return IssuerSet(
        settings.providers.trusted_issuers,
        lifespan=settings.keys.jwks_lifespan,
        cooldown=settings.keys.jwks_cooldown,
        timeout=settings.keys.jwks_timeout,
        retry_after=settings.errors.retry_after,
        on_keys_changed=on_keys_changed,
    )


def _introspector(settings: Settings, outside: IssuerSet | None) -> Introspector | None:
    """RFC 7662 introspection, its endpoint given or discovered from ``AUTHGATE_OIDC_ISSUER``."""
    config = settings.providers.introspection
    if config is None:
        return None
    url: str | t.Callable[[], str]
    if config.url is not None:
        url = config.url
    else:
        discovery = outside.discovery(settings.providers.trusted_issuers[0].issuer) if outside is not None else None
        if discovery is None:  # pragma: no cover - config refuses introspection without a URL or discovery
            raise RuntimeError("introspection needs AUTHGATE_INTROSPECTION_URL or a discoverable issuer")
        url = discovery.introspection_endpoint
    return Introspector(
        url,
        client_id=config.client_id,
        client_secret=config.client_secret,
        timeout=settings.keys.jwks_timeout,
        cache_ttl=config.cache_ttl,
        max_entries=config.cache_size,
        audience=settings.tokens.audience,
        issuers=settings.issuers or None,
        leeway=settings.tokens.leeway,
        retry_after=settings.errors.retry_after,
    )


def _serve_metadata(app: Flask, state: GateState) -> None:
    """Serve RFC 9728 protected-resource metadata at its well-known path (public, cacheable, CORS)."""
    settings = state.settings
    resource = t.cast(str, settings.resource.identifier)

    @public
    def protected_resource_metadata() -> Response:
        document = build_metadata(
            resource=resource,
            authorization_servers=settings.issuers,
            scopes=scopes_in_use(app, state),
            dpop_algs=settings.resource.dpop_algorithms if settings.resource.dpop else None,
            dpop_required=settings.resource.dpop == "required",
            extra=settings.resource.metadata,
        )
        response = t.cast(Response, app.json.response(document))
        # RFC 9728 §3: public and cacheable; browsers' clients (and MCP ones) read it cross-origin.
        response.headers["Cache-Control"] = "public, max-age=300"
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    app.add_url_rule(
        metadata_path(resource),
        endpoint="authgate_protected_resource_metadata",
        view_func=protected_resource_metadata,
        methods=["GET"],
    )


class TokenPair(t.TypedDict):
    """What :meth:`AuthGate.create_token_pair` and :meth:`AuthGate.rotate_refresh_token` return."""

    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int


class AuthGate:
    """The flask-authgate extension.

    ``AuthGate(app)`` or, in an app factory, ``gate = AuthGate()`` then
    ``gate.init_app(app)``. Per-app state lives in
    ``app.extensions["authgate"]``, so one ``AuthGate`` serves several apps,
    each with its own keys and settings; the callbacks registered on the
    ``AuthGate`` are shared by them.

    .. versionadded:: 0.1
    """

    def __init__(self, app: Flask | None = None) -> None:
        self._callbacks = Callbacks()
        self._rules = BlueprintRules()
        #: The apps this gate was initialised on, so protect() can reach them.
        self._apps: weakref.WeakSet[Flask] = weakref.WeakSet()
        if app is not None:
            self.init_app(app)

    # -- set-up ------------------------------------------------------------

    def init_app(self, app: Flask) -> None:
        """Validate the ``AUTHGATE_*`` configuration of ``app`` and install the extension.

        :raises ConfigError: A configuration value is wrong; the message names the key.
        :raises RuntimeError: The app was already initialised.
        """
        if "authgate" in app.extensions:
            raise RuntimeError("flask-authgate is already initialised on this app; call init_app once per app")
        settings = load_settings(app)
        revocations = Revocations(
            make_store(
                settings.revocation.store,
                timeout=settings.revocation.redis_timeout,
                staleness=settings.revocation.staleness,
                cache_size=settings.revocation.cache_size,
            ),
            retry_after=settings.errors.retry_after,
            max_lifetime=settings.tokens.max_lifetime,
            leeway=settings.tokens.leeway,
        )
        jwks = None
        if settings.keys.jwks_url is not None:
            jwks = JwksClient(
                settings.keys.jwks_url,
                algorithms=settings.keys.algorithms,
                lifespan=settings.keys.jwks_lifespan,
                cooldown=settings.keys.jwks_cooldown,
                timeout=settings.keys.jwks_timeout,
                retry_after=settings.errors.retry_after,
            )
        codec: Codec = SignedCodec(settings) if settings.tokens.format == "signed" else JwtCodec(settings, jwks)
        tokens = TokenService(
            settings,
            codec,
            revocations,
            key_generation=(lambda: jwks.generation) if jwks is not None else None,
        )
        # Any retired or re-keyed key empties the verified-token cache (and entries carry
        # the key generation, so a verdict racing the change is not served either).
        tokens.outside = _outside_issuers(settings, tokens.cache.clear)
        tokens.introspector = _introspector(settings, tokens.outside)
        if jwks is not None:
            jwks.on_keys_changed = tokens.cache.clear
            tokens.before_hit = jwks.refresh_if_stale
        state = GateState(
            app,
            settings,
            tokens,
            revocations,
            jwks,
            self._callbacks,
            self._rules,
            render=lambda err: render_error(err, state),
            static_views=static_views(app),
        )
        hooks = make_decision_hooks(metrics=settings.telemetry.metrics, audit_log=settings.telemetry.audit_log)
        app.extensions["authgate"] = state
        for hook in hooks:  # one app-level after_request function, not a closure per request
            pipeline.add_decision_hook(app, hook)
        if settings.resource.dpop:
            state.dpop = DpopVerifier(
                algorithms=settings.resource.dpop_algorithms,
                lifetime=settings.resource.dpop_proof_lifetime,
                leeway=settings.tokens.leeway,
                # Replay protection lives in the revocation store: atomic, shared by every
                # process, bounded by the proofs' lifetime.
                replay=lambda key, expires_at: revocations.remember_once("dpop", key, expires_at),
            )
        if settings.resource.identifier is not None:
            state.metadata_url = metadata_url(settings.resource.identifier)
            _serve_metadata(app, state)

        app.register_error_handler(AuthError, handle_auth_error)
        for status in (401, 403, 404):
            app.register_error_handler(status, handle_http_error)
        self._apps.add(app)
        _install_hook(app)
        openapi.auto_document(app, self)  # an APIFlask app documents its guards by itself
        from .cli import authgate_cli

        if "authgate" not in app.cli.commands:
            app.cli.add_command(authgate_cli)

    def document(self, api: t.Any, *, token_url: str = "/token") -> None:
        """Write the guards into the OpenAPI spec of ``api`` (flask-smorest or flask-restx ``Api``).

        An APIFlask app is documented by ``init_app`` on its own. See
        :func:`flask_authgate.openapi.document` and ``docs/openapi.md``.

        .. versionadded:: 0.2
        """
        openapi.document(api, token_url=token_url)

    def protect(
        self,
        blueprint: Blueprint,
        *,
        roles: cabc.Iterable[str] = (),
        any_roles: cabc.Iterable[str] = (),
        scopes: cabc.Iterable[str] = (),
    ) -> None:
        """Put a requirement on every view of ``blueprint``.

        Every view needs an identity; with ``roles`` all of them, with
        ``any_roles`` one of them, with ``scopes`` all of them. A view marked
        :func:`~flask_authgate.public` is left out; a view's own guards add to
        the rule. Call it before or after the blueprint is registered.

        .. versionadded:: 0.1
        """
        for name, value in (("roles", roles), ("any_roles", any_roles), ("scopes", scopes)):
            if isinstance(value, str):
                raise TypeError(f"protect({name}=...) takes a list of names, not one string")
        roles, any_roles, scopes = tuple(roles), tuple(any_roles), tuple(scopes)
        rule = Requirement.login()
        if roles:
            rule = rule.merge(Requirement.roles(names("protect(roles)", roles)))
        if any_roles:
            rule = rule.merge(Requirement.any_role(names("protect(any_roles)", any_roles)))
        if scopes:
            rule = rule.merge(Requirement.scopes(names("scopes_required", scopes)))
        self._rules.add(blueprint.name, rule)
        for app in list(self._apps):
            _install_hook(app)  # back in an app that took it out (nothing needed it then)

    # -- registrars --------------------------------------------------------

    def user_loader(self, f: UserLoader) -> UserLoader:
        """Register the function that turns an :class:`Identity` into your user object.

        It takes the identity and returns the user (``current_user``), or
        ``None`` when the user no longer exists, which fails the request with
        401 ``identity_not_found``. It may be ``async def``.
        """
        self._callbacks.user_loader = f
        return f

    def roles_loader(self, f: RolesLoader) -> RolesLoader:
        """Register ``identity -> role names`` for roles kept in a database.

        The returned roles replace the token's roles for the request. It may be ``async def``.
        """
        self._callbacks.roles_loader = f
        return f

    def api_key_loader(self, f: ApiKeyLoader) -> ApiKeyLoader:
        """Register ``raw key -> Identity`` (or ``None`` for an unknown key: 401 ``api_key_invalid``).

        Turns on API keys in the ``AUTHGATE_API_KEY_HEADER`` header. Compare
        digests with :func:`~flask_authgate.verify_api_key`, never raw keys
        with ``==``. It may be ``async def``.
        """
        self._callbacks.api_key_loader = f
        return f

    def error_renderer(self, f: ErrorRenderer) -> ErrorRenderer:
        """Register ``AuthError -> response value`` to change the error body.

        The status, the ``WWW-Authenticate`` challenges, ``Cache-Control:
        no-store`` and ``Retry-After`` are still set by the extension.

        .. versionchanged:: 0.2
            It also renders the app's own errors (:meth:`error_response`): the
            :class:`AuthError` it receives then carries the app's code and message.
        """
        self._callbacks.error_renderer = f
        return f

    # -- the app's own errors ------------------------------------------------

    def error_response(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: cabc.Mapping[str, str] | cabc.Iterable[tuple[str, str]] | None = None,
    ) -> Response:
        """Answer an error of the app's own (a wrong password ...) the way the extension answers its own.

        The same body (``{"error", "code", "message", "status"}``, or RFC 9457
        problem details with ``AUTHGATE_ERROR_FORMAT = "problem"``), the same
        ``error_renderer`` if one is registered, ``Cache-Control: no-store``,
        ``Retry-After`` (``AUTHGATE_RETRY_AFTER``) on a 503, and on a 401 the
        bare challenges of every scheme this app speaks (``Bearer`` and/or
        ``DPoP`` with its ``algs``, ``ApiKey``, the realm, ``resource_metadata``),
        exactly those of a 401 ``token_missing``. A 401 is never turned into the
        ``AUTHGATE_LOGIN_VIEW`` redirect: the app chose this answer. For a
        renderer, the :class:`AuthError` it receives has ``code == status``,
        ``error_code == code`` and ``message == message``.

        :param status: A 4xx or 5xx status.
        :param code: The machine code: a lowercase word (``[a-z][a-z0-9_]{0,63}``)
            that is not one of the extension's own codes (the Error codes page), so an
            app cannot answer ``token_expired`` for a token it never checked.
        :param message: A fixed sentence for the client, sent in the body only
            (never in a header): no control characters, no line breaks.
        :param headers: Further headers (a mapping or ``(name, value)`` pairs):
            ``Allow`` on a 405, ``Retry-After`` on a 429 (it replaces the 503
            default). ``Content-Type`` and ``Content-Length`` in them are dropped
            (they describe another body), so ``err.get_headers()`` of a Werkzeug
            ``HTTPException`` can be passed as it is.
        :raises TypeError: An argument of the wrong type.
        :raises ValueError: A status outside 4xx/5xx, a malformed or reserved
            code, a message with a control character, a header name that is not
            an RFC 9110 token, a header value with a control character, or a
            ``WWW-Authenticate`` or ``Cache-Control`` header (those are the
            extension's).
        :raises RuntimeError: No app context, or the extension is not set up on the app.

        .. versionadded:: 0.2
        """
        err = app_error(status, code, message)
        extra = extra_headers(headers)
        return t.cast(Response, render_error(err, get_state(), extra))

    # -- tokens ------------------------------------------------------------

    @staticmethod
    def _tokens() -> TokenService:
        return get_state().tokens

    def _csrf(self) -> str | None:
        return secrets.token_urlsafe(24) if get_state().cookie_name is not None else None

    def create_access_token(
        self,
        subject: str,
        *,
        roles: cabc.Iterable[str] = (),
        scopes: cabc.Iterable[str] = (),
        claims: cabc.Mapping[str, t.Any] | None = None,
        expires_in: float | None = None,
        fresh: bool = False,
        dpop_jkt: str | None = None,
    ) -> str:
        """Issue an access token for the current app.

        :param subject: The ``sub`` claim: a non-empty string.
        :param roles: Role names, stored in ``AUTHGATE_ROLES_CLAIM``.
        :param scopes: Scopes, stored space-separated in ``AUTHGATE_SCOPES_CLAIM``.
        :param claims: Extra claims; the reserved ones (``sub``, ``exp``...) are refused.
        :param expires_in: Seconds (default ``AUTHGATE_ACCESS_TOKEN_EXPIRES``).
        :param fresh: ``True`` only at a real login (password checked now).
        :param dpop_jkt: The RFC 7638 thumbprint of the client's DPoP key: the token is then
            bound to it (``cnf.jkt``, RFC 9449 §6) and accepted only with a proof of that key.
        """
        return self._tokens().issue(
            subject, "access", roles=roles, scopes=scopes, claims=claims, expires_in=expires_in, fresh=fresh,
            csrf=self._csrf(), dpop_jkt=dpop_jkt,
        )  # fmt: skip

    def create_refresh_token(
        self,
        subject: str,
        *,
        roles: cabc.Iterable[str] = (),
        scopes: cabc.Iterable[str] = (),
        claims: cabc.Mapping[str, t.Any] | None = None,
        expires_in: float | None = None,
        dpop_jkt: str | None = None,
    ) -> str:
        """Issue a refresh token (``type: "refresh"``), the start of a new token family.

        :param dpop_jkt: Bind it to the client's DPoP key (RFC 9449 §5): it is then accepted
            only with a proof of that key (a proof without ``ath``, as at a token endpoint).
        """
        return self._tokens().issue(
            subject, "refresh", roles=roles, scopes=scopes, claims=claims, expires_in=expires_in,
            family=secrets.token_urlsafe(12), csrf=self._csrf(), dpop_jkt=dpop_jkt,
        )  # fmt: skip

    def create_token_pair(
        self,
        subject: str,
        *,
        roles: cabc.Iterable[str] = (),
        scopes: cabc.Iterable[str] = (),
        claims: cabc.Mapping[str, t.Any] | None = None,
        fresh: bool = False,
        dpop_jkt: str | None = None,
        _family: str | None = None,
    ) -> TokenPair:
        """Issue an access and a refresh token of one family (what a login endpoint returns).

        Revoking the family (refresh-token reuse) ends both. With ``dpop_jkt``
        (the thumbprint :meth:`dpop_thumbprint` returns at the login) both are
        bound to the client's DPoP key and ``token_type`` is ``"DPoP"``
        (RFC 9449 §5).
        """
        tokens = self._tokens()
        family = _family or secrets.token_urlsafe(12)
        csrf = self._csrf()
        roles, scopes = list(roles), list(scopes)
        common: dict[str, t.Any] = {"roles": roles, "scopes": scopes, "claims": claims, "family": family, "csrf": csrf}
        access = tokens.issue(subject, "access", fresh=fresh, dpop_jkt=dpop_jkt, **common)
        refresh = tokens.issue(subject, "refresh", dpop_jkt=dpop_jkt, **common)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "DPoP" if dpop_jkt is not None else "Bearer",
            "expires_in": int(tokens.settings.tokens.access_expires),
        }

    def dpop_thumbprint(self) -> str | None:
        """At a token endpoint (a login view): verify the request's ``DPoP`` proof, return its key's thumbprint.

        ``None`` when the request carries no ``DPoP`` header (a bearer client).
        Pass the thumbprint to :meth:`create_token_pair` (or
        :meth:`create_access_token`) as ``dpop_jkt`` to bind the new tokens to
        the client's key (RFC 9449 §5). The proof is checked for this request's
        method and URL, with no ``ath`` (no token is presented), and its ``jti``
        is remembered in the revocation store, so it cannot be replayed.

        :raises AuthError: 401 ``dpop_proof_invalid`` for a bad proof (or two).
        :raises RuntimeError: ``AUTHGATE_DPOP`` is off.

        .. versionadded:: 0.2
        """
        state = get_state()
        if state.dpop is None:
            raise RuntimeError("dpop_thumbprint() needs AUTHGATE_DPOP = 'allowed' or 'required'")
        _app, req = pipeline.current()
        if "HTTP_DPOP" not in req.environ:
            return None
        proof = credentials.dpop_proof(req.environ)
        return state.dpop.verify(proof, method=req.method, url=req.url, access_token=None).jkt

    def rotate_refresh_token(self) -> TokenPair:
        """In a ``@refresh_token_required`` view: use up the refresh token and issue a new pair.

        The presented refresh token is revoked; presenting it again revokes
        its whole family (access tokens included) and answers 401
        ``token_revoked`` (OWASP refresh-token reuse detection). The new
        access token is not fresh. A refresh token bound to a DPoP key (its
        proof was checked with the request) gives a pair bound to the same key.
        """
        app, req = pipeline.current()
        identity = pipeline.authenticate(app, get_state(app), req, "refresh")
        tokens = self._tokens()
        settings = tokens.settings
        claims = identity.claims
        family = claims.get("fam") if isinstance(claims.get("fam"), str) else None
        if identity.token_id is None or not tokens.revocations.consume(identity.token_id, float(claims["exp"])):
            if family is not None:
                tokens.revocations.revoke_family(family)
            raise AuthError("token_revoked", token_type="refresh", reason="refresh_reused")
        skip = RESERVED | {settings.tokens.roles_claim, settings.tokens.scopes_claim}
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, cabc.Mapping) and isinstance(cnf.get("jkt"), str) else None
        return self.create_token_pair(
            identity.subject,
            roles=claims.get(settings.tokens.roles_claim) or (),
            scopes=identity.scopes,
            claims={k: thaw(v) for k, v in claims.items() if k not in skip},
            dpop_jkt=jkt,
            _family=family,
        )

    def revoke(self, token: str) -> None:
        """Revoke one token (access or refresh) by its ``jti``, in every process sharing the store.

        :raises AuthError: 401 if the token is not valid for this app; 503 if the store is down.
        :raises ValueError: The token has no ``jti`` (use :meth:`revoke_subject`).
        """
        tokens = self._tokens()
        entry = tokens.inspect(token)
        if entry is None:
            return  # expired already: nothing left to revoke
        if entry.identity.token_id is None:
            raise ValueError("this token has no jti, so it cannot be revoked alone; use revoke_subject()")
        tokens.revocations.revoke_token(entry.identity.token_id, entry.exp)
        tokens.cache.discard(token)

    def revoke_subject(self, subject: str) -> None:
        """Revoke every token of ``subject`` issued until now ("log out everywhere")."""
        self._tokens().revocations.revoke_subject(subject)

    def jwks(self) -> dict[str, list[dict[str, t.Any]]]:
        """The public JWK Set of this app's verification keys, to publish at ``/.well-known/jwks.json``."""
        return self._tokens().codec.jwks()

    def current_token(self, token_type: str = "access") -> str | None:
        """The raw token the current request carries, or ``None``; it is not verified here.

        ``"access"``: the ``Authorization`` token (``Bearer`` or ``DPoP``), else
        the access-token cookie. ``"refresh"``: the refresh-token cookie. For a
        logout view that revokes what it was called with:
        ``gate.revoke(gate.current_token())``.

        .. versionadded:: 0.2
        """
        state = get_state()
        _app, req = pipeline.current()
        cookie_name = state.cookie_names.get(token_type)
        try:
            creds = credentials.find(
                req.environ,
                req.cookies if cookie_name is not None else None,
                header=state.header_on and token_type == "access",
                cookie_name=cookie_name,
                api_key_environ=None,
                dpop=state.settings.resource.dpop,
            )
        except AuthError:
            return None
        return creds.value if creds is not None else None

    # -- cookies -----------------------------------------------------------

    def set_token_cookies(self, response: Response, access_token: str, refresh_token: str | None = None) -> Response:
        """Set the token cookies (``HttpOnly``, ``Secure``, ``SameSite``) and the CSRF cookie.

        Needs ``"cookies"`` in ``AUTHGATE_TOKEN_LOCATIONS`` (the tokens then
        carry the CSRF value the client must echo in ``AUTHGATE_CSRF_HEADER``
        on unsafe methods).
        """
        state = get_state()
        settings = state.settings
        if state.cookie_name is None:
            raise RuntimeError("set_token_cookies needs 'cookies' in AUTHGATE_TOKEN_LOCATIONS")
        try:
            claims = state.tokens.codec.peek(access_token)
        except Exception:  # each codec fails its own way on a foreign token
            claims = {}
        csrf = claims.get("csrf") if isinstance(claims, dict) else None
        if not isinstance(csrf, str):
            raise ValueError("this access token carries no CSRF value; issue it with this app")
        common: dict[str, t.Any] = {
            "secure": settings.cookies.secure,
            "samesite": settings.cookies.samesite,
            "domain": settings.cookies.domain,
        }
        response.set_cookie(
            settings.cookies.access_name,
            access_token,
            max_age=int(settings.tokens.access_expires),
            httponly=True,
            path=settings.cookies.path,
            **common,
        )
        response.set_cookie(
            settings.cookies.csrf_name, csrf, max_age=int(settings.tokens.refresh_expires), path="/", **common
        )
        if refresh_token is not None:
            response.set_cookie(
                settings.cookies.refresh_name,
                refresh_token,
                max_age=int(settings.tokens.refresh_expires),
                httponly=True,
                path=settings.cookies.refresh_path,
                **common,
            )
        return response

    def unset_token_cookies(self, response: Response) -> Response:
        """Delete the token and CSRF cookies (logout)."""
        settings = get_state().settings
        for name, path in (
            (settings.cookies.access_name, settings.cookies.path),
            (settings.cookies.refresh_name, settings.cookies.refresh_path),
            (settings.cookies.csrf_name, "/"),
        ):
            response.delete_cookie(
                name,
                path=path,
                domain=settings.cookies.domain,
                secure=settings.cookies.secure,
                samesite=settings.cookies.samesite,
            )
        return response
