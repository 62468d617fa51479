"""The one request pipeline: credentials → verifier → identity → requirement → refusal.

Every entry point calls into this module — the app-wide rules
(:mod:`.rules`), the guards (:mod:`.decorators`), ``authorize()`` /
``require_owner()`` (:mod:`.authorization`) and the identity proxies — and
every refusal is logged and signalled here, once, by :func:`report`.

* **Per-request state belongs to the request.** What the pipeline learns
  (identity, failure, user) is kept on the request object itself, never on
  ``flask.g``: ``g`` belongs to the app context, which Flask reuses when a
  request is pushed inside one that is already active (a ``with
  app.app_context():`` test fixture, a sub-request), and would carry one
  request's identity into the next.
* **Lazy.** Nothing is verified until a guard, ``current_identity`` or
  ``current_user`` needs it, so a public view pays nothing for a token it
  never reads; a bad token there is simply anonymous.
* **One mechanism for sync and async.** The pipeline is synchronous. User
  callbacks (``api_key_loader``, ``roles_loader``, ``user_loader``) may be
  ``async def``; :func:`call` runs them with ``app.ensure_sync`` or, inside a
  running event loop (an ``async def`` view), on one long-lived helper loop.
"""

from __future__ import annotations

import asyncio
import collections.abc as cabc
import concurrent.futures
import contextvars
import hmac
import inspect
import logging
import os
import threading
import time
import typing as t

from flask import after_this_request
from flask import current_app
from flask import has_request_context
from flask import request
from werkzeug.local import LocalProxy

from . import credentials
from . import signals
from ._state import GateState
from ._state import get_state
from .dpop import token_is_bound
from .errors import AuthError
from .identity import Identity
from .requirements import Requirement
from .requirements import address_allowed
from .requirements import parse_address
from .requirements import refusal

if t.TYPE_CHECKING:
    from flask import Flask
    from flask import Request
    from werkzeug.wrappers import Response

    from .dpop import DpopVerifier

log = logging.getLogger("flask_authgate")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

#: Codes whose message names the token type.
_ABOUT_THE_TOKEN = frozenset({"token_invalid", "token_expired", "token_revoked"})

#: The request attribute that holds the request's :class:`RequestAuth`.
_ATTR = "authgate_auth"


class RequestAuth:
    """What the extension knows about one request (kept on the request object).

    The fields that most requests never change are class-level defaults, so a
    request that is refused at once pays for two containers only.
    """

    #: The identity the last successful check established.
    identity: Identity | None = None
    user: t.Any = None
    #: Whether the app-wide rules already ran for this request.
    plan_done = False
    #: The scheme the request's token came with (``"Bearer"`` or ``"DPoP"``), once known.
    scheme: str | None = None
    #: With decision hooks: when the first check began, and the outcome so far.
    started: float | None = None
    decision: tuple[AuthError | None, Identity | None, float] | None = None
    #: While the callbacks run: a callback reading ``current_identity`` sees ``None``
    #: instead of starting the same authentication again (and again).
    identifying = False

    def __init__(self) -> None:
        #: token type -> the identity or the failure it resolved to.
        self.results: dict[str, Identity | AuthError] = {}
        #: The failures already logged and signalled (each once per request).
        self.reported: list[AuthError] = []


def current() -> tuple[Flask, Request]:
    """The current app and request, each read once through Flask's public proxies."""
    return (
        current_app._get_current_object(),  # type: ignore[attr-defined]
        request._get_current_object(),  # type: ignore[attr-defined]
    )


def request_auth(req: Request) -> RequestAuth:
    """The :class:`RequestAuth` of ``req`` (created on first use)."""
    ra: RequestAuth | None = req.__dict__.get(_ATTR)
    if ra is None:
        ra = RequestAuth()
        req.__dict__[_ATTR] = ra
    return ra


# -- callbacks: one mechanism for sync and async --------------------------------------


class _HelperLoop:
    """One event loop on one daemon thread, started on first use in each process.

    Used only when an ``async def`` callback must run while this thread is
    already inside an event loop (an ``async def`` view), where Flask's
    ``ensure_sync`` cannot run it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0

    def on_own_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread and self._pid == os.getpid()

    def _get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # a forked worker starts its own
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="authgate-async", daemon=True)
                thread.start()
                self._loop, self._pid, self._thread = loop, os.getpid(), thread
            return self._loop

    def run(self, coro: cabc.Coroutine[t.Any, t.Any, t.Any]) -> t.Any:
        if self.on_own_thread():
            coro.close()
            # Waiting here for the loop this very thread runs would wait forever.
            raise RuntimeError("an async flask-authgate callback called another one: it would deadlock")
        loop = self._get()
        context = contextvars.copy_context()  # the request context goes with the coroutine
        result: concurrent.futures.Future[t.Any] = concurrent.futures.Future()

        def finished(task: asyncio.Task[t.Any]) -> None:
            if task.cancelled():
                result.cancel()
            elif task.exception() is not None:
                result.set_exception(t.cast(BaseException, task.exception()))
            else:
                result.set_result(task.result())

        def start() -> None:
            loop.create_task(coro, context=context).add_done_callback(finished)

        loop.call_soon_threadsafe(start)
        return result.result()


_helper_loop = _HelperLoop()


def call(app: Flask, callback: cabc.Callable[..., t.Any], arg: t.Any) -> t.Any:
    """Call a user callback, awaiting it if it is ``async def``.

    Outside an event loop, Flask's ``app.ensure_sync`` runs it (as Flask runs
    async views). Inside one — an ``async def`` view reading
    ``current_identity`` or calling a guard — this thread cannot block on the
    running loop, so the coroutine runs on the helper loop, with this
    context, while this thread waits.
    """
    if not inspect.iscoroutinefunction(callback):
        return callback(arg)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return app.ensure_sync(callback)(arg)
    return _helper_loop.run(callback(arg))


# -- reporting: every refusal is logged and signalled here --------------------------------


def report(app: Flask, req: Request, err: AuthError, identity: Identity | None, ra: RequestAuth | None = None) -> None:
    """Log a refusal and send ``authentication_failed`` (400/401/503) or ``access_denied`` (403/404).

    Each failure is reported once per request, however often it is raised.
    """
    reported = (ra if ra is not None else request_auth(req)).reported
    for earlier in reported:
        if earlier is err:
            return
    reported.append(err)
    state = app.extensions.get("authgate")
    if state is not None and state.decision_hooks:
        _decided(state, req, err, identity)
    signal = signals.access_denied if err.code in (403, 404) else signals.authentication_failed
    if signal.receivers or log.isEnabledFor(logging.INFO):
        endpoint = req.endpoint
        reason = err.reason or err.error_code
        log.info("authgate: %s %s (%s) on endpoint %s", err.code, err.error_code, reason, endpoint)
        if signal.receivers:
            signal.send(app, identity=identity, error_code=err.error_code, endpoint=endpoint, reason=reason)


class Decision(t.NamedTuple):
    """What the extension decided for one request: given to the decision hooks (metrics, audit)."""

    #: ``"allowed"`` or ``"denied"``.
    outcome: str
    #: The error code, or ``"ok"``.
    code: str
    #: The response's status code.
    status: int
    #: ``"jwt"``, ``"signed"``, ``"api_key"``, ``"introspection"``, or ``"none"``.
    scheme: str
    #: Seconds spent authenticating and authorizing.
    duration: float
    #: The refusal's reason (never sent to the client), or ``None``.
    reason: str | None
    endpoint: str | None
    method: str
    #: The identity's subject, or ``None``.
    subject: str | None


def _decided(state: GateState, req: Request, err: AuthError | None, identity: Identity | None) -> None:
    """Keep this request's decision (a refusal wins); :func:`emit_decision` gives it to the hooks."""
    ra = request_auth(req)
    if ra.decision is None or (err is not None and ra.decision[0] is None):
        ra.decision = (err, identity, time.perf_counter())  # the duration ends at the decision


def add_decision_hook(app: Flask, hook: cabc.Callable[[Decision], None]) -> None:
    """Call ``hook`` with the :class:`Decision` of every decided request of ``app`` (metrics, audit)."""
    state = get_state(app)
    if not state.decision_hooks:
        app.after_request(emit_decision)
    state.decision_hooks.append(hook)


def emit_decision(response: Response) -> Response:
    """The app's ``after_request`` function when it has decision hooks: one call per decided request."""
    req = request._get_current_object()  # type: ignore[attr-defined]
    ra: RequestAuth | None = req.__dict__.get(_ATTR)
    if ra is None or ra.decision is None:
        return response
    decided_err, who, ended = ra.decision
    started = ra.started if ra.started is not None else ended
    # Positional, through tuple.__new__: this runs on every decided request of a metered app.
    if decided_err is None:
        fields: tuple[t.Any, ...] = ("allowed", "ok", response.status_code)
        reason = None
    else:
        fields = ("denied", decided_err.error_code, response.status_code)
        reason = decided_err.reason or decided_err.error_code
    decision = Decision._make(
        (
            *fields,
            who.scheme if who is not None else "none",
            ended - started if ended > started else 0.0,
            reason,
            req.endpoint,
            req.method,
            who.subject if who is not None else None,
        )
    )
    for hook in current_app.extensions["authgate"].decision_hooks:
        try:
            hook(decision)
        except Exception:  # a metrics or log backend must never break the response
            log.exception("authgate: a decision hook raised")
    return response


def deny(err: AuthError, identity: Identity | None = None) -> t.NoReturn:
    """Report ``err`` for the current request and raise it."""
    app, req = current()
    report(app, req, err, identity)
    raise err


# -- authentication: credentials → verifier → identity ------------------------------------


def _private(header: str) -> cabc.Callable[[Response], Response]:
    def mark(response: Response) -> Response:
        # RFC 9110 §16.4.2: only Authorization makes caches treat a response as
        # private; an API key or a cookie needs it said explicitly.
        cache_control = response.headers.get("Cache-Control", "")
        if "no-store" not in cache_control and "private" not in cache_control:
            response.headers["Cache-Control"] = "private" if not cache_control else f"private, {cache_control}"
        response.vary.add(header)
        return response

    return mark


def bare(state: GateState, req: Request) -> bool:
    """Whether the request plainly carries no credentials: the ``Authorization`` header is the
    only place one could be (no cookies, no API keys) and it is absent. The common 401."""
    return state.header_only and state.callbacks.api_key_loader is None and "HTTP_AUTHORIZATION" not in req.environ


def _check_binding(state: GateState, req: Request, creds: credentials.Credentials, identity: Identity) -> None:
    """DPoP (RFC 9449): a bound token needs its proof, and a proof needs a bound token.

    Checked on every request, cached token or not: the proof is per request.
    A refresh token is presented at a token endpoint (RFC 9449 §5): its proof
    carries no ``ath``, whichever scheme the token came with.
    """
    bound = token_is_bound(identity.claims)
    verifier = state.dpop
    if identity.token_type == "refresh":
        if bound:
            if verifier is None:
                raise AuthError("token_invalid", reason="dpop_off")  # bound, and nothing here checks proofs
            proof = creds.proof if creds.proof is not None else credentials.dpop_proof(req.environ)
            verifier.verify(proof, method=req.method, url=req.url, access_token=None, token_claims=identity.claims)
        elif creds.scheme == "DPoP":
            raise AuthError("token_invalid", reason="dpop_unbound")
        return
    if creds.scheme != "DPoP" and state.settings.resource.dpop == "required":
        # Only DPoP-bound access tokens, whatever they came in (a cookie included).
        raise AuthError("token_invalid", reason="dpop_required")
    if creds.scheme == "DPoP":
        if not bound:
            raise AuthError("token_invalid", reason="dpop_unbound")  # RFC 9449 §7.1, figure 16
        t.cast("DpopVerifier", verifier).verify(
            t.cast(str, creds.proof),
            method=req.method,
            url=req.url,
            access_token=creds.value,
            token_claims=identity.claims,
        )
    elif bound:
        # A token bound to a key is worthless without its proof: a stolen copy sent as
        # Bearer (or in a cookie) is refused, whatever AUTHGATE_DPOP says.
        raise AuthError("token_invalid", reason="dpop_bound_as_bearer")


def _identify(app: Flask, state: GateState, req: Request, token_type: str, ra: RequestAuth) -> Identity:
    """Find the credentials, verify them and build the identity (callbacks included)."""
    callbacks = state.callbacks
    cookie_name = state.cookie_names.get(token_type)
    creds = credentials.find(
        req.environ,
        req.cookies if cookie_name is not None else None,
        header=state.header_on,
        cookie_name=cookie_name,
        api_key_environ=state.api_key_environ if callbacks.api_key_loader is not None else None,
        # A refresh token goes to a token endpoint, where Bearer is spoken in every DPoP mode
        # (the proof beside it binds it); "required" is about access tokens.
        dpop=state.settings.resource.dpop if token_type == "access" or not state.settings.resource.dpop else "allowed",
    )
    if creds is None:
        raise AuthError("token_missing", token_type=token_type, reason="no_credentials")
    if creds.source == "api_key":
        if token_type != "access":
            raise AuthError("token_type_invalid", token_type=token_type)
        loaded = call(app, t.cast(cabc.Callable[..., t.Any], callbacks.api_key_loader), creds.value)
        if loaded is None:
            raise AuthError("api_key_invalid", reason="unknown_api_key")
        if not isinstance(loaded, Identity):
            raise TypeError("api_key_loader must return an Identity or None")
        identity = loaded if loaded.scheme == "api_key" else loaded.replace(scheme="api_key")
        after_this_request(_private(state.settings.tokens.api_key_header))
    else:
        ra.scheme = creds.scheme
        try:
            entry = state.tokens.verify(creds.value, token_type)
            identity = entry.identity
            _check_binding(state, req, creds, identity)
        except AuthError as err:
            err.scheme = creds.scheme
            raise
        if creds.source == "cookie":
            if req.method not in SAFE_METHODS:
                sent = req.headers.get(state.settings.cookies.csrf_header, "")
                expected = entry.csrf or ""
                # Double submit, compared in constant time; the value is bound to the token.
                if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
                    raise AuthError("csrf_failed", reason="csrf")
            after_this_request(_private("Cookie"))
    if callbacks.roles_loader is not None:
        roles = call(app, callbacks.roles_loader, identity)
        if isinstance(roles, str) or not isinstance(roles, cabc.Iterable):
            raise TypeError("roles_loader must return an iterable of role names, not a string")
        identity = identity.replace(roles=roles)
    if callbacks.user_loader is not None:
        user = call(app, callbacks.user_loader, identity)
        if user is None:
            raise AuthError("identity_not_found", reason="user_loader")
        ra.user = user
    return identity


def authenticate(
    app: Flask, state: GateState, req: Request, token_type: str = "access", *, quiet: bool = False
) -> Identity:
    """The identity of ``req`` for ``token_type`` tokens, resolved once per request.

    :raises AuthError: Why there is none (reported unless ``quiet``: reading
        ``current_identity`` on a public view is not a refusal).
    """
    found = resolve(app, state, req, token_type, quiet=quiet)
    if isinstance(found, AuthError):
        raise found
    return found


def resolve(
    app: Flask, state: GateState, req: Request, token_type: str = "access", *, quiet: bool = False
) -> Identity | AuthError:
    """:func:`authenticate` that returns the refusal instead of raising it (a guard answers it directly)."""
    ra = request_auth(req)
    done = ra.results.get(token_type)
    if done is None and bare(state, req):
        # Nothing to look at: the common 401, answered without looking for credentials.
        done = ra.results[token_type] = AuthError("token_missing", token_type=token_type, reason="no_credentials")
    if done is None:
        try:
            ra.identifying = True
            try:
                identity = _identify(app, state, req, token_type, ra)
            finally:
                ra.identifying = False
        except AuthError as err:
            if token_type != "access" and err.error_code in _ABOUT_THE_TOKEN:
                err.token_type = token_type  # "The refresh token was revoked"
            done = ra.results[token_type] = err
        except Exception:
            # A callback failed (its database is down, a bug): fail closed, and never let
            # its text reach the client. The traceback goes to the log.
            log.exception("authgate: a callback raised while authenticating; answering 503")
            done = ra.results[token_type] = AuthError("auth_unavailable", reason="callback_error")
        else:
            ra.results[token_type] = ra.identity = identity
            if signals.identity_loaded.receivers:
                signals.identity_loaded.send(app, identity=identity, endpoint=req.endpoint)
            return identity
    if isinstance(done, Identity):
        ra.identity = done
        return done
    if not quiet:
        report(app, req, done, None, ra)
    return done


# -- requirements ------------------------------------------------------------------------------


def network_refusal(app: Flask, req: Request, groups: tuple[tuple[t.Any, ...], ...]) -> AuthError | None:
    """403 ``ip_denied`` (reported) unless the client address (``request.remote_addr`` only) is allowed."""
    if address_allowed(parse_address(req.remote_addr), groups):
        return None
    err = AuthError("ip_denied", reason="ip")
    report(app, req, err, None)
    return err


def check_networks(app: Flask, req: Request, groups: tuple[tuple[t.Any, ...], ...]) -> None:
    """:func:`network_refusal`, raised."""
    err = network_refusal(app, req, groups)
    if err is not None:
        raise err


def decide(app: Flask, state: GateState, req: Request, requirement: Requirement) -> Identity | AuthError | None:
    """Check ``requirement`` for ``req``: the IP lists, then the identity, then what it must hold.

    :returns: The identity (``None`` when the requirement needs none), or the
        refusal, already reported (returned, not raised: a guard answers it
        directly, and raising costs a traceback on every refusal).
    """
    if state.decision_hooks:
        ra = request_auth(req)
        if ra.started is None:
            ra.started = time.perf_counter()
    if requirement.networks:
        err = network_refusal(app, req, requirement.networks)
        if err is not None:
            return err
    if not requirement.needs_login:
        return None
    identity = resolve(app, state, req, requirement.token_type)
    if isinstance(identity, AuthError):
        return identity
    if requirement.checks_identity:
        err = refusal(
            identity,
            requirement,
            state.settings.access.role_hierarchy,
            state.tokens.clock(),
            state.settings.tokens.leeway,
        )
        if err is not None:
            err.scheme = request_auth(req).scheme
            report(app, req, err, identity)
            return err
    if state.decision_hooks:
        _decided(state, req, None, identity)
    return identity


def check(app: Flask, state: GateState, req: Request, requirement: Requirement) -> Identity | None:
    """:func:`decide`, with the refusal raised (for the app-wide hook: Flask's handler answers it)."""
    found = decide(app, state, req, requirement)
    if isinstance(found, AuthError):
        raise found
    return found


def preflight(app: Flask, state: GateState, req: Request, requirement: Requirement) -> bool:
    """Whether ``req`` is a CORS preflight to answer without credentials (after the IP lists).

    A preflight never carries credentials, so an ``OPTIONS`` request without
    any gets the default ``OPTIONS`` answer instead of the view — and an
    ``OPTIONS`` request *with* credentials is checked like any other.
    """
    if req.method != "OPTIONS" or credentials.present(
        req.environ,
        cookie_name=state.cookie_name,
        api_key_environ=state.api_key_environ if state.callbacks.api_key_loader is not None else None,
    ):
        return False
    if requirement.networks:
        check_networks(app, req, requirement.networks)
    return True


def identity_or_401() -> Identity:
    """The identity of the current request; raise its (reported) 401 when there is none."""
    app, req = current()
    ra = request_auth(req)
    if ra.identity is not None:
        return ra.identity
    return authenticate(app, get_state(app), req)


# -- the proxies -----------------------------------------------------------------------------


def get_identity() -> Identity | None:
    """The request's :class:`~flask_authgate.Identity`, or ``None`` when the caller is anonymous.

    A request whose credentials fail verification is anonymous here; the
    failure is reported by the first guard that needs an identity.

    .. versionadded:: 0.1
    """
    if not has_request_context():
        return None
    app, req = current()
    ra = request_auth(req)
    if ra.identity is not None:
        return ra.identity
    if ra.identifying:
        return None  # read from inside a loader: the identity is not established yet
    try:
        return authenticate(app, get_state(app), req, quiet=True)
    except AuthError:
        return None


def _get_user() -> t.Any:
    if get_identity() is None:
        return None
    return request_auth(request._get_current_object()).user  # type: ignore[attr-defined]


#: Proxy to the request's :class:`~flask_authgate.Identity`; falsy when anonymous.
#: A proxy is never ``is None``: write ``if not current_identity``.
current_identity: Identity = t.cast(Identity, LocalProxy(get_identity))

#: Proxy to what the ``user_loader`` returned for this request, or ``None``.
current_user: t.Any = LocalProxy(_get_user)
