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

from . import pipeline
from ._compat import default_options_response
from ._state import get_state
from .config import parse_networks
from .errors import SCOPE_TOKEN
from .errors import AuthError
from .requirements import PUBLIC_ATTR
from .requirements import REQUIREMENT_ATTR
from .requirements import WRAPPED_ATTR
from .requirements import Requirement
from .responses import respond
from .step_up import step_up_params
from .step_up import validate_acr_values
from .step_up import validate_max_age

if t.TYPE_CHECKING:
    from flask import Flask
    from flask import Request

F = t.TypeVar("F", bound=cabc.Callable[..., t.Any])

_INNER = "__authgate_view__"
_SELF = "__authgate_wrapper__"


def _gate(requirement: Requirement, app: Flask, req: Request) -> t.Any:
    """What a guard answers instead of the view, or ``None`` to run the view."""
    state = get_state(app)
    try:
        if pipeline.preflight(app, state, req, requirement):
            return default_options_response(app)
        found = pipeline.decide(app, state, req, requirement)
    except AuthError as err:  # the preflight's IP check, or a callback's own refusal
        return respond(err, app, req, state)
    if isinstance(found, AuthError):
        return respond(found, app, req, state)
    return None


def _guard(requirement: Requirement) -> cabc.Callable[[F], F]:
    def decorator(view: F) -> F:
        original: cabc.Callable[..., t.Any] = view
        merged = requirement
        if getattr(view, _SELF, None) is view:  # our own wrapper directly below: merge into one
            original = getattr(view, _INNER)
            merged = getattr(view, REQUIREMENT_ATTR).merge(requirement)
        elif isinstance(getattr(view, REQUIREMENT_ATTR, None), Requirement):
            # Our guard under a foreign decorator (functools.wraps copied its requirement up):
            # check it all here too, so the order of the checks never depends on the stack.
            merged = getattr(view, REQUIREMENT_ATTR).merge(requirement)

        if inspect.iscoroutinefunction(original):

            @functools.wraps(original)
            async def async_wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
                answer = _gate(merged, *pipeline.current())
                if answer is not None:
                    return answer
                return await original(*args, **kwargs)

            wrapper: t.Any = async_wrapper
        else:

            @functools.wraps(original)
            def sync_wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
                answer = _gate(merged, *pipeline.current())
                if answer is not None:
                    return answer
                return original(*args, **kwargs)

            wrapper = sync_wrapper
        setattr(wrapper, REQUIREMENT_ATTR, merged)
        setattr(wrapper, _INNER, original)
        setattr(wrapper, _SELF, wrapper)
        # What this guard wrapped carries the requirement too: a guard written above
        # @app.route leaves the route serving the object it was given (a bare function,
        # a wrapper of other guards, a foreign decorator's wrapper), and the app-wide
        # rules enforce the requirement there anyway (requirements.misplaced_requirement).
        for obj in {id(o): o for o in (view, original, *_unwrapped(view))}.values():
            _mark(obj, merged)
        return t.cast(F, wrapper)

    return decorator


def _unwrapped(view: t.Any) -> list[t.Any]:
    """What ``view`` wraps, by ``__wrapped__`` (``functools.wraps``) and our own wrapper's link."""
    found: list[t.Any] = []
    current = view
    while len(found) < 64:
        current = getattr(current, _INNER, None) or getattr(current, "__wrapped__", None)
        if current is None or any(current is f for f in found):
            break
        found.append(current)
    return found


def _mark(view: t.Any, requirement: Requirement) -> None:
    earlier = getattr(view, WRAPPED_ATTR, None)
    if isinstance(earlier, Requirement):
        requirement = earlier.merge(requirement)
    try:
        setattr(view, WRAPPED_ATTR, requirement)
    except (AttributeError, TypeError):  # pragma: no cover - a callable that takes no attributes
        pass


def names(kind: str, values: tuple[t.Any, ...]) -> frozenset[str]:
    """Validate the role or scope names a guard (or ``protect()``) was given."""
    if not values:
        raise TypeError(f"{kind}() needs at least one name, e.g. @{kind}('admin')")
    scopes = kind.startswith("scopes")
    out: set[str] = set()
    for value in values:
        if callable(value):
            raise TypeError(f"{kind}() takes names, not a function: write @{kind}('name'), not @{kind}")
        if not isinstance(value, str) or not value.strip():
            raise TypeError(f"{kind}() names must be non-empty strings, not {value!r}")
        out.update(value.split(" ") if scopes else [value])
    if scopes:
        bad = [s for s in out if not SCOPE_TOKEN.fullmatch(s)]
        if bad:
            raise ValueError(f"{kind}(): {bad[0]!r} is not a valid scope (RFC 6749 §3.3 scope-token)")
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
    decorator: cabc.Callable[[F], F] = _guard(Requirement.login())
    return decorator(view) if view is not None else decorator


def roles_required(*roles: str) -> cabc.Callable[[F], F]:
    """Require the identity to hold every one of ``roles``.

    A missing identity fails with 401 (the stored failure, or ``token_missing``);
    a present identity without a role fails with 403 ``insufficient_role``.

    :param roles: Role names; at least one.
    :raises TypeError: When called with a function instead of role names.

    .. versionadded:: 0.1
    """
    return _guard(Requirement.roles(names("roles_required", roles)))


def roles_accepted(*roles: str) -> cabc.Callable[[F], F]:
    """Require the identity to hold at least one of ``roles`` (403 ``insufficient_role`` otherwise).

    .. versionadded:: 0.1
    """
    return _guard(Requirement.any_role(names("roles_accepted", roles)))


def scopes_required(*scopes: str) -> cabc.Callable[[F], F]:
    """Require every one of the OAuth ``scopes`` (a space-separated string counts as several).

    A missing scope fails with 403 ``insufficient_scope`` and the RFC 6750
    challenge ``Bearer realm="api", error="insufficient_scope", scope="..."``.

    .. versionadded:: 0.1
    """
    return _guard(Requirement.scopes(names("scopes_required", scopes)))


def scopes_accepted(*scopes: str) -> cabc.Callable[[F], F]:
    """Require at least one of the OAuth ``scopes`` (as :func:`roles_accepted` is for roles).

    Failure is 403 ``insufficient_scope`` whose challenge lists the accepted scopes.

    .. versionadded:: 0.2
    """
    return _guard(Requirement.any_scope(names("scopes_accepted", scopes)))


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
    return _guard(Requirement.network(parsed))


def refresh_token_required(view: F) -> F:
    """Accept only a refresh token (an access token gets 401 ``token_type_invalid``).

    .. versionadded:: 0.1
    """
    return _guard(Requirement.refresh())(view)


def fresh_login_required(view: F) -> F:
    """Accept only an access token issued with ``fresh=True`` at a real login.

    Others get 401 ``fresh_token_required``: the client should ask for the
    password again.

    .. versionadded:: 0.1
    """
    return _guard(Requirement.fresh_login())(view)


def step_up_required(*acr_values: str, max_age: int | None = None) -> cabc.Callable[[F], F]:
    """Require a login of one of ``acr_values`` (when given), at most ``max_age`` seconds old (RFC 9470).

    The token's ``acr`` must be one of ``acr_values`` and its ``auth_time``
    no older than ``max_age`` (a token without ``auth_time`` fails then).
    Failure is **401** ``insufficient_user_authentication`` with the challenge
    ``Bearer realm="api", error="insufficient_user_authentication",
    error_description="…", acr_values="mfa hwk", max_age="300"`` (each
    parameter only when set here), on the ``DPoP`` scheme for a DPoP-bound
    request. The client sends the user back to the identity provider with
    those values and retries with the new token.

    Compared with :func:`fresh_login_required`: *fresh* means "this app issued
    the token at a password login"; *step-up* means "the identity provider says
    this login was of strength X, within Y seconds". Both answer 401, since a
    new login helps.

    :raises TypeError: When used bare (``@step_up_required``) or with a function.
    :raises ValueError: For an ``acr`` value or ``max_age`` that could not be sent in a challenge.

    .. versionadded:: 0.2
    """
    for value in acr_values:
        if callable(value):
            raise TypeError(
                "step_up_required() takes acr values: write @step_up_required() or @step_up_required('mfa')"
            )
    if not acr_values and max_age is None:
        raise TypeError("step_up_required() needs acr values, max_age, or both")
    acr = validate_acr_values(acr_values)
    step_up_params(acr, validate_max_age(max_age))  # validated now, so a bad value fails at import time
    return _guard(Requirement.stepped_up(acr, max_age))


def public(view: F) -> F:
    """Mark a view open when ``AUTHGATE_DEFAULT_DENY`` is on or its blueprint is protected.

    The view's own guards, if any, still apply.

    .. versionadded:: 0.1
    """
    setattr(view, PUBLIC_ATTR, True)
    return view
