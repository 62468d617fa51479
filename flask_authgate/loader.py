"""Turn a request's credentials into an :class:`~flask_authgate.Identity`.

Verification is lazy: nothing is verified until a guard, ``current_identity``
or ``current_user`` first needs it, so a public view pays nothing for a token
it never reads. The result (identity or failure) is kept on ``g._authgate``
for the rest of the request: a bad token on a public view is simply
anonymous, and the failure is reported by the first guard that needs an
identity.

The user-supplied callbacks (``api_key_loader``, ``roles_loader``,
``user_loader``) may be ``async def``. The steps are written once, as a
generator that yields each callback to call, and driven either synchronously
(``ensure_sync``) or from an ``async def`` view (``await``).
"""

from __future__ import annotations

import asyncio
import collections.abc as cabc
import concurrent.futures
import contextvars
import dataclasses
import hmac
import inspect
import logging
import typing as t

from flask import after_this_request
from flask import has_request_context

from . import credentials
from . import signals
from ._compat import request_objects
from ._state import GateState
from ._state import get_state
from .errors import AuthError
from .identity import Identity

if t.TYPE_CHECKING:
    from flask import Response

log = logging.getLogger("flask_authgate")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

_Step = tuple[cabc.Callable[..., t.Any], t.Any]
_Steps = cabc.Generator[_Step, t.Any, Identity]


class RequestAuth:
    """What the extension knows about the current request (``g._authgate``)."""

    __slots__ = ("identity", "plan_done", "reported", "results", "user")

    def __init__(self) -> None:
        #: token type -> the identity or the failure it resolved to.
        self.results: dict[str, Identity | AuthError] = {}
        #: The identity the last successful guard established.
        self.identity: Identity | None = None
        self.user: t.Any = None
        self.plan_done = False
        #: Token types whose failure was logged and signalled (once per request).
        self.reported: set[str] = set()


def request_auth(gobj: t.Any = None) -> RequestAuth:
    """The :class:`RequestAuth` of the current request (created on first use)."""
    if gobj is None:
        gobj = request_objects()[2]
    ra: RequestAuth | None = gobj.__dict__.get("_authgate")
    if ra is None:
        ra = gobj._authgate = RequestAuth()
    return ra


def _private_response(header: str) -> cabc.Callable[[Response], Response]:
    def mark(response: Response) -> Response:
        # RFC 9110 §16.4.2: only Authorization makes caches treat a response as
        # private; an API key or a cookie needs it said explicitly.
        cache_control = response.headers.get("Cache-Control", "")
        if "no-store" not in cache_control and "private" not in cache_control:
            response.headers["Cache-Control"] = "private" if not cache_control else f"private, {cache_control}"
        response.vary.add(header)
        return response

    return mark


def _steps(state: GateState, token_type: str, ra: RequestAuth, req: t.Any) -> _Steps:
    settings = state.settings
    callbacks = state.callbacks
    api_key_on = callbacks.api_key_loader is not None
    cookie_name = state.cookie_names.get(token_type) if state.cookie_name is not None else None
    creds = credentials.find(
        req.environ,
        req.cookies if cookie_name is not None else None,
        header=state.header_on,
        cookie_name=cookie_name,
        api_key_environ=state.api_key_environ if api_key_on else None,
    )
    if creds is None:
        raise AuthError("token_missing")
    if creds.source == "api_key":
        if token_type != "access":
            raise AuthError("token_type_invalid")
        loaded = yield (t.cast(cabc.Callable[..., t.Any], callbacks.api_key_loader), creds.value)
        if loaded is None:
            raise AuthError("api_key_invalid")
        if not isinstance(loaded, Identity):
            raise TypeError("api_key_loader must return an Identity or None")
        identity = loaded if loaded.scheme == "api_key" else dataclasses.replace(loaded, scheme="api_key")
    else:
        entry = state.tokens.verify(creds.value, token_type)
        identity = entry.identity
        if creds.source == "cookie" and req.method not in SAFE_METHODS:
            sent = req.headers.get(settings.csrf_header, "")
            expected = entry.csrf or ""
            # Double submit, compared in constant time; the value is bound to the token.
            if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
                raise AuthError("csrf_failed")
    if callbacks.roles_loader is not None:
        roles = yield (callbacks.roles_loader, identity)
        if isinstance(roles, str) or not isinstance(roles, cabc.Iterable):
            raise TypeError("roles_loader must return an iterable of role names, not a string")
        identity = dataclasses.replace(identity, roles=frozenset(roles))
    if callbacks.user_loader is not None:
        user = yield (callbacks.user_loader, identity)
        if user is None:
            raise AuthError("identity_not_found")
        ra.user = user
    if creds.source == "api_key":
        after_this_request(_private_response(settings.api_key_header))
    elif creds.source == "cookie":
        after_this_request(_private_response("Cookie"))
    return identity


def failed(err: AuthError, identity: Identity | None = None, app: t.Any = None, req: t.Any = None) -> None:
    """Log a refusal and send ``authentication_failed`` (400/401/503) or ``access_denied`` (403/404)."""
    if app is None or req is None:
        app, req, _ = request_objects()
    endpoint = req.endpoint
    log.info("authgate: %s %s on endpoint %s", err.code, err.error_code, endpoint)
    signal = signals.access_denied if err.code in (403, 404) else signals.authentication_failed
    if signal.receivers:
        signal.send(app, identity=identity, error_code=err.error_code, endpoint=endpoint)


def _report(ra: RequestAuth, token_type: str, err: AuthError, app: t.Any, req: t.Any, report: bool) -> None:
    # Only a refusal is reported: reading current_identity on a public view
    # without (valid) credentials is not an authentication failure.
    if report and token_type not in ra.reported:
        ra.reported.add(token_type)
        failed(err, None, app, req)


def _loaded(ra: RequestAuth, token_type: str, identity: Identity, app: t.Any, req: t.Any) -> Identity:
    ra.results[token_type] = identity
    ra.identity = identity
    if signals.identity_loaded.receivers:
        signals.identity_loaded.send(app, identity=identity, endpoint=req.endpoint)
    return identity


def resolve(token_type: str = "access", *, report: bool = True) -> Identity:
    """The identity of this request for ``token_type`` tokens; raise the failure otherwise.

    With ``report``, the failure is logged and signalled (once per request).
    """
    app, req, gobj = request_objects()
    return resolve_with(app, req, gobj, token_type, report=report)


def call_sync(app: t.Any, callback: cabc.Callable[..., t.Any], arg: t.Any) -> t.Any:
    """Call a user callback from synchronous code, awaiting it if it is ``async def``.

    Flask's ``ensure_sync`` runs a coroutine with asgiref, which refuses when
    this thread already runs an event loop — as inside an ``async def`` view
    that reads ``current_identity`` or calls ``authorize()`` with no guard to
    have loaded the identity first. There the coroutine runs to completion on
    a helper thread, in a copy of this context (so the request context goes
    with it), while this thread waits.
    """
    if not inspect.iscoroutinefunction(callback):
        return callback(arg)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return app.ensure_sync(callback)(arg)
    context = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(context.run, asyncio.run, callback(arg)).result()


def bare(state: GateState | None, req: t.Any) -> bool:
    """Whether the request plainly carries no credentials: the header is the only place one
    could be (no cookies, no API keys) and it is absent. The shortcut for the common 401."""
    return (
        state is not None
        and state.header_only
        and state.callbacks.api_key_loader is None
        and not req.environ.get("HTTP_AUTHORIZATION")
    )


def nothing_sent(app: t.Any, req: t.Any) -> AuthError | None:
    """The ``token_missing`` failure (reported) for a :func:`bare` request, else ``None``."""
    if not bare(app.extensions.get("authgate"), req):
        return None
    err = AuthError("token_missing")
    failed(err, None, app, req)
    return err


def _earlier(ra: RequestAuth, token_type: str, app: t.Any, req: t.Any, report: bool) -> Identity | None:
    """What this request already resolved ``token_type`` to: the identity, or its failure raised again."""
    done = ra.results.get(token_type)
    if done is None:
        return None
    if isinstance(done, Identity):
        ra.identity = done
        return done
    _report(ra, token_type, done, app, req, report)
    raise done


def resolve_with(app: t.Any, req: t.Any, gobj: t.Any, token_type: str, *, report: bool = True) -> Identity:
    """:func:`resolve` with the request objects already at hand (the hot path)."""
    ra = request_auth(gobj)
    done = _earlier(ra, token_type, app, req, report)
    if done is not None:
        return done
    state = get_state(app)
    if bare(state, req):
        # Nothing to look at: the common 401, without the loader's steps.
        err = AuthError("token_missing")
        ra.results[token_type] = err
        _report(ra, token_type, err, app, req, report)
        raise err
    gen = _steps(state, token_type, ra, req)
    try:
        try:
            step = next(gen)
            while True:
                callback, arg = step
                step = gen.send(call_sync(app, callback, arg))
        except StopIteration as stop:
            identity: Identity = stop.value
    except AuthError as err:
        ra.results[token_type] = err
        _report(ra, token_type, err, app, req, report)
        raise
    return _loaded(ra, token_type, identity, app, req)


async def resolve_async(token_type: str = "access") -> Identity:
    """:func:`resolve` for ``async def`` views: async callbacks are awaited."""
    app, req, gobj = request_objects()
    ra = request_auth(gobj)
    done = _earlier(ra, token_type, app, req, True)
    if done is not None:
        return done
    gen = _steps(get_state(app), token_type, ra, req)
    try:
        try:
            step = next(gen)
            while True:
                callback, arg = step
                result = callback(arg)
                if inspect.isawaitable(result):
                    result = await result
                step = gen.send(result)
        except StopIteration as stop:
            identity: Identity = stop.value
    except AuthError as err:
        ra.results[token_type] = err
        _report(ra, token_type, err, app, req, True)
        raise
    return _loaded(ra, token_type, identity, app, req)


def resolve_optional() -> Identity | None:
    """The identity a guard established, else the access-token identity, else ``None``."""
    if not has_request_context():
        return None
    ra = request_auth()
    if ra.identity is not None:
        return ra.identity
    try:
        return resolve("access", report=False)
    except AuthError:
        return None


def load_optional_user() -> t.Any:
    """What the ``user_loader`` returned for this request's identity, or ``None``."""
    if resolve_optional() is None:
        return None
    return request_auth().user
