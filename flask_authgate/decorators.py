"""The view guards: thin, all built on one private :func:`_guard`.

Stacked guards merge into a single wrapper around the original view, so the
checks run once, in the fixed order, whatever order the decorators were
written in. Each guard works on plain views, ``async def`` views and
``MethodView`` (``decorators = [...]``, or on a method). An ``OPTIONS``
request without credentials never runs a guarded view: it gets Flask's
default ``OPTIONS`` answer (a CORS preflight never carries credentials).
"""

from __future__ import annotations

import collections.abc as cabc
import functools
import inspect
import typing as t

from . import credentials
from ._compat import default_options_response
from ._compat import request_objects
from ._state import get_state
from .authorization import Requirement
from .authorization import check_networks
from .authorization import enforce
from .authorization import enforce_async
from .config import SCOPE_RE
from .config import parse_networks
from .errors import AuthError
from .loader import nothing_sent
from .responses import respond

F = t.TypeVar("F", bound=cabc.Callable[..., t.Any])

_REQ = "__authgate__"
_INNER = "__authgate_view__"
_SELF = "__authgate_wrapper__"
PUBLIC = "__authgate_public__"


def requirement_of(view: t.Any, http_method: str | None = None) -> Requirement | None:
    """The requirement guards put on ``view`` (or on its ``MethodView`` methods), if any.

    With ``http_method``, only the guards of the ``MethodView`` method that
    handles it count (``HEAD`` falls back to ``get``, as ``MethodView`` does);
    without it, the guards of every method are merged.
    """
    req = getattr(view, _REQ, None)
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        names = (getattr(view_class, "methods", None) or ()) if http_method is None else (http_method,)
        for name in names:
            method = getattr(view_class, name.lower(), None)
            if method is None and name.upper() == "HEAD":
                method = getattr(view_class, "get", None)
            more = getattr(method, _REQ, None)
            if more is not None:
                req = more if req is None else req.merge(more)
    return t.cast("Requirement | None", req)


def is_public(view: t.Any) -> bool:
    return bool(getattr(view, PUBLIC, False) or getattr(getattr(view, "view_class", None), PUBLIC, False))


def _preflight(req: Requirement, app: t.Any, rq: t.Any) -> t.Any:
    """Flask's default OPTIONS answer for a request without credentials; else ``None``."""
    state = get_state(app)
    if credentials.present(
        rq.environ,
        cookie_name=state.cookie_name,
        api_key_environ=state.api_key_environ if state.api_keys_on else None,
    ):
        return None
    if req.networks:
        check_networks(req.networks)
    return default_options_response(app)


def _answer_early(req: Requirement, plain: bool, app: t.Any, rq: t.Any) -> t.Any:
    """What a guard answers before any token is read: a preflight, or the 401 of a bare request."""
    if rq.method == "OPTIONS":
        return _preflight(req, app, rq)
    if plain and "HTTP_AUTHORIZATION" not in rq.environ:
        missing = nothing_sent(app, rq)
        if missing is not None:
            return respond(missing, app, rq)
    return None


def _guard(req: Requirement) -> cabc.Callable[[F], F]:
    def decorator(view: F) -> F:
        original: cabc.Callable[..., t.Any] = view
        merged = req
        if getattr(view, _SELF, None) is view:  # our own wrapper directly below: merge into one
            original = getattr(view, _INNER)
            merged = getattr(view, _REQ).merge(req)
        elif isinstance(getattr(view, _REQ, None), Requirement):
            # Our guard under a foreign decorator (functools.wraps copied its requirement up):
            # check it all here too, so the order of the checks never depends on the stack.
            merged = getattr(view, _REQ).merge(req)

        # Needs an identity and nothing checked before it: "no credentials" may short-cut.
        plain = merged.login and not merged.networks
        if inspect.iscoroutinefunction(original):

            @functools.wraps(original)
            async def async_wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
                app, rq, _ = request_objects()
                answer = _answer_early(merged, plain, app, rq)
                if answer is not None:
                    return answer
                try:
                    await enforce_async(merged)
                except AuthError as err:
                    return respond(err, app, rq)
                return await original(*args, **kwargs)

            wrapper: t.Any = async_wrapper
        else:

            @functools.wraps(original)
            def sync_wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
                app, rq, _ = request_objects()
                answer = _answer_early(merged, plain, app, rq)
                if answer is not None:
                    return answer
                try:
                    enforce(merged)
                except AuthError as err:
                    return respond(err, app, rq)
                return original(*args, **kwargs)

            wrapper = sync_wrapper
        setattr(wrapper, _REQ, merged)
        setattr(wrapper, _INNER, original)
        setattr(wrapper, _SELF, wrapper)
        return t.cast(F, wrapper)

    return decorator


def _names(kind: str, values: tuple[t.Any, ...]) -> frozenset[str]:
    if not values:
        raise TypeError(f"{kind}() needs at least one name, e.g. @{kind}('admin')")
    out: set[str] = set()
    for value in values:
        if callable(value):
            raise TypeError(f"{kind}() takes names, not a function: write @{kind}('name'), not @{kind}")
        if not isinstance(value, str) or not value.strip():
            raise TypeError(f"{kind}() names must be non-empty strings, not {value!r}")
        out.update(value.split() if kind.startswith("scopes") else [value])
    if kind.startswith("scopes"):
        bad = [s for s in out if not SCOPE_RE.match(s)]
        if bad:
            raise ValueError(f"{kind}(): {bad[0]!r} is not a valid scope (RFC 6750 §3 characters)")
    return frozenset(out)


@t.overload
def login_required(view: F, /) -> F: ...
@t.overload
def login_required() -> cabc.Callable[[F], F]: ...
def login_required(view: F | None = None, /) -> F | cabc.Callable[[F], F]:
    """Require any authenticated identity; usable as ``@login_required`` and ``@login_required()``.

    No credentials: 401 ``token_missing``; bad ones: 401 with their code.

    .. versionadded:: 0.1
    """
    decorator: cabc.Callable[[F], F] = _guard(Requirement(login=True))
    return decorator(view) if view is not None else decorator


def roles_required(*roles: str) -> cabc.Callable[[F], F]:
    """Require the identity to hold every one of ``roles``.

    A missing identity fails with 401 (the stored failure, or ``token_missing``);
    a present identity without a role fails with 403 ``insufficient_role``.

    :param roles: Role names; at least one.
    :raises TypeError: When called with a function instead of role names.

    .. versionadded:: 0.1
    """
    return _guard(Requirement(login=True, roles_all=_names("roles_required", roles)))


def roles_accepted(*roles: str) -> cabc.Callable[[F], F]:
    """Require the identity to hold at least one of ``roles`` (403 ``insufficient_role`` otherwise).

    .. versionadded:: 0.1
    """
    return _guard(Requirement(login=True, roles_any=(_names("roles_accepted", roles),)))


def scopes_required(*scopes: str) -> cabc.Callable[[F], F]:
    """Require every one of the OAuth ``scopes`` (a space-separated string counts as several).

    A missing scope fails with 403 ``insufficient_scope`` and the RFC 6750
    challenge ``Bearer realm="api", error="insufficient_scope", scope="..."``.

    .. versionadded:: 0.1
    """
    return _guard(Requirement(login=True, scopes=_names("scopes_required", scopes)))


def ip_allowed(*networks: str) -> cabc.Callable[[F], F]:
    """Require the client address (``request.remote_addr``) to be in one of ``networks``.

    403 ``ip_denied`` otherwise, even without credentials. Networks use
    :mod:`ipaddress` notation and are parsed strictly now, so a typo fails at
    import time. Behind a proxy, configure Werkzeug's ``ProxyFix``;
    ``X-Forwarded-For`` is never read by the extension.

    .. versionadded:: 0.1
    """
    for value in networks:
        if callable(value):
            raise TypeError("ip_allowed() takes networks, e.g. @ip_allowed('10.0.0.0/8')")
    parsed = parse_networks(f"ip_allowed{networks!r}", networks)
    return _guard(Requirement(networks=(parsed,)))


def refresh_token_required(view: F) -> F:
    """Accept only a refresh token (an access token gets 401 ``token_type_invalid``).

    .. versionadded:: 0.1
    """
    return _guard(Requirement(login=True, token_type="refresh"))(view)


def fresh_login_required(view: F) -> F:
    """Accept only an access token issued with ``fresh=True`` at a real login.

    Others get 401 ``fresh_token_required``: the client should ask for the
    password again.

    .. versionadded:: 0.1
    """
    return _guard(Requirement(login=True, fresh=True))(view)


def public(view: F) -> F:
    """Mark a view open when ``AUTHGATE_DEFAULT_DENY`` is on or its blueprint is protected.

    The view's own guards, if any, still apply.

    .. versionadded:: 0.1
    """
    setattr(view, PUBLIC, True)
    return view
