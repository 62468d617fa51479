"""Per-app state, kept at ``app.extensions["authgate"]``."""

from __future__ import annotations

import typing as t

from flask import current_app

if t.TYPE_CHECKING:
    from flask import Flask

    from .config import Settings
    from .dpop import DpopVerifier
    from .errors import AuthError
    from .jwks import JwksClient
    from .requirements import Requirement
    from .revocation import Revocations
    from .rules import BlueprintRules
    from .tokens import TokenService
    from .typing import Callbacks


class GateState:
    """Everything one app needs to authenticate: built once by ``init_app``."""

    __slots__ = (
        "api_key_environ",
        "app",
        "callbacks",
        "cookie_name",
        "cookie_names",
        "decision_hooks",
        "direct_errors",
        "dpop",
        "header_on",
        "header_only",
        "hook_checked",
        "jwks",
        "metadata_url",
        "plans",
        "plans_version",
        "render",
        "revocations",
        "rules",
        "settings",
        "static_views",
        "tokens",
    )

    def __init__(
        self,
        app: Flask,
        settings: Settings,
        tokens: TokenService,
        revocations: Revocations,
        jwks: JwksClient | None,
        callbacks: Callbacks,
        rules: BlueprintRules,
        render: t.Callable[[AuthError], t.Any],
        static_views: tuple[t.Any, ...] = (),
    ) -> None:
        self.app = app
        self.settings = settings
        self.tokens = tokens
        self.revocations = revocations
        self.jwks = jwks
        #: The registrars of the :class:`~flask_authgate.AuthGate` (shared by its apps).
        self.callbacks = callbacks
        #: The blueprint rules of the :class:`~flask_authgate.AuthGate` (shared by its apps).
        self.rules = rules
        #: Renders an :class:`~flask_authgate.AuthError` as this app's response (the one renderer).
        self.render = render
        #: The app's own static file view (recognised by object, not by name).
        self.static_views = static_views
        #: Called once per decided request with a :class:`~flask_authgate.pipeline.Decision`
        #: (metrics, audit log); empty by default, and then nothing is measured.
        self.decision_hooks: list[t.Callable[[t.Any], None]] = []
        #: The DPoP proof verifier (RFC 9449), when ``AUTHGATE_DPOP`` is on.
        self.dpop: DpopVerifier | None = None
        #: Whether the app-wide hook has looked at the app (at its first request).
        self.hook_checked = False
        #: The RFC 9728 metadata URL every Bearer and DPoP challenge names, when a resource is set.
        self.metadata_url: str | None = None
        cookies = "cookies" in settings.tokens.locations
        #: Whether bearer tokens are read from the ``Authorization`` header.
        self.header_on = "headers" in settings.tokens.locations
        #: The header is the only token location (the loader's shortcut for "no credentials").
        self.header_only = self.header_on and not cookies
        #: The access-token cookie, when cookies are a token location.
        self.cookie_name: str | None = settings.cookies.access_name if cookies else None
        #: token type -> its cookie, when cookies are a token location.
        self.cookie_names: dict[str, str] = (
            {"access": settings.cookies.access_name, "refresh": settings.cookies.refresh_name} if cookies else {}
        )
        #: The WSGI environ key of the API-key header (used once an api_key_loader is registered).
        self.api_key_environ = "HTTP_" + settings.tokens.api_key_header.upper().replace("-", "_")
        #: (method, endpoint) -> the requirement the app-wide rules put on it (or None).
        self.plans: dict[tuple[str, str], Requirement | None] = {}
        self.plans_version = -1
        #: (endpoint, status) -> whether a guard may answer directly (no app handler of its own).
        self.direct_errors: dict[tuple[str | None, int], bool] = {}

    @property
    def api_keys_on(self) -> bool:
        return self.callbacks.api_key_loader is not None

    @property
    def memory_revocations(self) -> bool:
        """Whether revocations live in this process only (the in-memory store)."""
        return bool(self.settings.revocation.store == "memory")


def get_state(app: Flask | None = None) -> GateState:
    """The state of ``app`` (default: the current app)."""
    app = app if app is not None else current_app
    state = app.extensions.get("authgate")
    if state is not None:
        return t.cast(GateState, state)
    raise RuntimeError(
        "flask-authgate is not set up on this app: call AuthGate(app) or gate.init_app(app) in your app factory"
    )
