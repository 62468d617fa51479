"""Render every refusal: one JSON (or RFC 9457 problem) body, the right headers.

The body is ``{"error", "code", "message", "status"}`` (or, with
``AUTHGATE_ERROR_FORMAT = "problem"``, ``{"type", "title", "status", "detail",
"code"}`` as ``application/problem+json``). An ``error_renderer`` may replace
the body; the status-specific headers are added after it, so they are never
lost: the ``WWW-Authenticate`` challenges, ``Cache-Control: no-store`` on
every error, and ``Retry-After`` on 503.
"""

from __future__ import annotations

import collections.abc as cabc
import functools
import inspect
import json
import logging
import re
import typing as t
import urllib.parse

from flask import current_app
from flask import has_app_context
from flask import has_request_context
from flask import redirect
from flask import request
from flask import url_for
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response as WerkzeugResponse

from .challenges import challenges
from .errors import ERRORS
from .errors import PLAIN_CODES
from .errors import AuthError
from .errors import ErrorCode
from .errors import message_for
from .errors import reason_phrase
from .pipeline import call

if t.TYPE_CHECKING:
    from flask import Response

    from ._state import GateState

log = logging.getLogger("flask_authgate")


@functools.lru_cache(maxsize=128)
def body(error_code: ErrorCode, error_format: str, token_type: str = "access") -> tuple[bytes, str]:
    """The default body (bytes) and content type for a code."""
    return encode(ERRORS[error_code].status, error_code, message_for(error_code, token_type), error_format)


def encode(status: int, code: str, message: str, error_format: str) -> tuple[bytes, str]:
    """The body of every error (the extension's and the app's own) and its content type."""
    if error_format == "problem":
        data: dict[str, t.Any] = {
            "type": "about:blank",
            "title": reason_phrase(status),
            "status": status,
            "detail": message,
            "code": code,
        }
        mimetype = "application/problem+json"
    else:
        data = {"error": reason_phrase(status), "code": code, "message": message, "status": status}
        mimetype = "application/json"
    return json.dumps(data, separators=(",", ":")).encode() + b"\n", mimetype


def _state() -> GateState | None:
    if not has_app_context():
        return None
    return t.cast("GateState | None", current_app.extensions.get("authgate"))


def _login_redirect(state: GateState) -> WerkzeugResponse | None:
    view = state.settings.errors.login_view
    if view is None or not has_request_context():
        return None
    # Only a client that prefers HTML (a browser navigating) is redirected; a
    # JSON or unspecified client always gets the JSON 401.
    accept = request.accept_mimetypes
    if accept.best_match(["application/json", "text/html"]) != "text/html":
        return None
    if accept["text/html"] <= accept["application/json"]:
        return None
    # The path (under the app's script root) and query are percent-encoded and the
    # target is relative, so it can neither break the Location header nor point
    # to another site.
    target = "/" + urllib.parse.quote(request.script_root + request.path, safe="/").lstrip("/")
    query = request.query_string.decode("latin-1")
    if query:
        # The query is already percent-encoded on the wire: keep it as sent (quoting it
        # again would turn %26 into %2526), escaping only what a URL may not hold.
        target += "?" + urllib.parse.quote(query, safe="=&%+;/:,@!$'()*~-._")
    try:
        location = view if view.startswith("/") else url_for(view)
    except BuildError:
        # Fail closed to the JSON 401 rather than a 500; say which key is wrong.
        log.error("authgate: AUTHGATE_LOGIN_VIEW %r is not an endpoint of this app; answering 401", view)
        return None
    location += ("&" if "?" in location else "?") + urllib.parse.urlencode({"next": target})
    return redirect(location, 302)


#: The app's part of a default error response: ``(error_format, realm, api_key, dpop, dpop_algs,
#: resource_metadata)``, built once per app; the error's part is ``(error_code, scopes,
#: token_type, params, scheme)``. Both are plain tuples, cheap to hash on every refusal.
AppCase = tuple[str, str, bool, t.Any, tuple[str, ...], str | None]
ErrorCase = tuple[ErrorCode, tuple[str, ...], str, tuple[tuple[str, str], ...], str | None]

_NO_APP: AppCase = ("json", "api", False, False, (), None)


def app_case(state: GateState | None) -> AppCase:
    """The app's part of the cache key (the defaults when no app is set up)."""
    if state is None:
        return _NO_APP
    settings = state.settings
    return (
        settings.errors.format,
        settings.errors.realm,
        state.api_keys_on,
        settings.resource.dpop,
        settings.resource.dpop_algorithms,
        state.metadata_url,
    )


@functools.lru_cache(maxsize=512)
def _headers(app: AppCase, err: ErrorCase) -> tuple[tuple[str, str], ...]:
    """Every header of a default error response, built once per case."""
    error_format, realm, api_key, dpop, dpop_algs, resource_metadata = app
    error_code, scopes, token_type, params, scheme = err
    data, mimetype = body(error_code, error_format, token_type)
    lines = [("Content-Type", mimetype), ("Content-Length", str(len(data)))]
    found = challenges(
        error_code,
        realm,
        api_key=api_key,
        dpop=dpop,
        dpop_algs=dpop_algs,
        scheme=t.cast(t.Any, scheme),
        scopes=scopes,
        step_up=params,
        resource_metadata=resource_metadata,
        token_type=token_type,
    )
    lines += [("WWW-Authenticate", line) for line in found]
    lines.append(("Cache-Control", "no-store"))
    return tuple(lines)


@functools.lru_cache(maxsize=512)
def _default(app: AppCase, err: ErrorCase) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    """The default body and headers of one case, in one cached look-up."""
    return body(err[0], app[0], err[2])[0], _headers(app, err)


#: The case of a plain 401 (``abort(401)``): bare challenges, no ``error``.
_BARE: ErrorCase = ("unauthorized", (), "access", (), None)


@functools.lru_cache(maxsize=64)
def _app_headers(app: AppCase, status: int) -> tuple[tuple[str, str], ...]:
    """The challenge lines of an app-defined error: on a 401 those of a plain 401, else none.

    Cached per app and status only, never per message: an app's message may vary per request.
    """
    return _headers(app, _BARE)[2:-1] if status == 401 else ()


def _app_default(app: AppCase, status: int, code: str, message: str) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    """The body and headers of an app-defined error (:meth:`AuthGate.error_response`).

    A 401 carries the bare challenges of every scheme the app speaks, as
    ``token_missing`` does: the app's code is not an RFC 6750 ``error`` value.
    """
    data, mimetype = encode(status, code, message, app[0])
    lines = (("Content-Type", mimetype), ("Content-Length", str(len(data))), *_app_headers(app, status))
    return data, (*lines, ("Cache-Control", "no-store"))


#: Headers an app-defined error may not set: the challenges and ``no-store`` are the extension's.
_OWNED_HEADERS = frozenset({"www-authenticate", "cache-control"})
#: Headers that described another body (an ``HTTPException``'s), dropped from ``headers=``.
_BODY_HEADERS = frozenset({"content-type", "content-length"})
#: Headers that frame the message or belong to one connection (RFC 9110 §7.6.1, RFC 9112 §6.1;
#: PEP 3333 forbids the hop-by-hop ones in an app's response), or that would lie about the body.
_FRAMING_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-encoding",
    }
)
#: RFC 9110 §5.6.2 ``token``: a header name.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: RFC 9110 §5.5 field value, as Latin-1 text: visible characters, space and tab; no controls.
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\xa0-\xff]*")


def extra_headers(
    headers: cabc.Mapping[str, str] | cabc.Iterable[tuple[str, str]] | None,
) -> tuple[tuple[str, str], ...]:
    """The checked ``headers=`` of :meth:`AuthGate.error_response`.

    :raises TypeError: Not a mapping or pairs of ``str``.
    :raises ValueError: A name that is not an RFC 9110 token, a value with a
        control character (CR, LF ...), or ``WWW-Authenticate`` / ``Cache-Control``.
    """
    if headers is None:
        return ()
    if isinstance(headers, (str, bytes)):
        raise TypeError("headers= takes a mapping or (name, value) pairs, not a string")
    pairs = headers.items() if isinstance(headers, cabc.Mapping) else headers
    found: list[tuple[str, str]] = []
    for pair in pairs:
        if not isinstance(pair, tuple) or len(pair) != 2 or not all(isinstance(part, str) for part in pair):
            raise TypeError(f"each header must be a (name, value) pair of str, not {pair!r}")
        name, value = pair
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a header name")
        if not _HEADER_VALUE.fullmatch(value):
            raise ValueError(f"the value of {name} holds a control character or a non-Latin-1 one")
        lowered = name.lower()
        if lowered in _OWNED_HEADERS:
            raise ValueError(f"{name} is set by flask-authgate on every error response; it cannot be replaced")
        if lowered in _FRAMING_HEADERS:
            raise ValueError(f"{name} frames the message or the connection; an error response cannot set it")
        if lowered not in _BODY_HEADERS:
            found.append((name, value))
    return tuple(found)


def render_error(
    err: AuthError, state: GateState | None = None, extra: tuple[tuple[str, str], ...] = ()
) -> WerkzeugResponse:
    """The response for ``err``: the app's ``error_renderer`` or the default body, plus the headers.

    The one renderer: the Flask handler, the guards' direct answer,
    :meth:`AuthError.get_response` and :meth:`AuthGate.error_response` (an
    app-defined error, whose ``error_code`` is not in :data:`ERRORS`, with the
    checked ``extra`` headers) all end here.
    """
    if state is None:
        state = _state()
    app = app_case(state)  # per call: an api_key_loader may be registered after init_app
    status = t.cast(int, err.code)
    if err.error_code in ERRORS:
        code = t.cast(ErrorCode, err.error_code)
        case: ErrorCase = (code, err.scopes, err.token_type, err.challenge_params, err.scheme)
        data, headers = _default(app, case)
        redirect_401 = status == 401
    else:  # the app's own error: the app chose this answer, so a browser is never redirected
        data, headers = _app_default(app, status, err.error_code, err.message)
        redirect_401 = False
    if state is None:
        response = WerkzeugResponse(data, status=status, headers=list(headers))
    else:
        if redirect_401 and state.settings.errors.login_view is not None:
            redirected = _login_redirect(state)
            if redirected is not None:
                redirected.headers["Cache-Control"] = "no-store"
                return redirected
        renderer = state.callbacks.error_renderer
        if renderer is None:
            response = state.app.response_class(data, status=status, headers=list(headers))
        else:
            response = current_app.make_response(call(current_app, renderer, err))
            response.status_code = status
            # The renderer owns the body; the status-specific headers stay ours.
            for name, value in headers[2:]:
                if name == "Cache-Control":
                    response.headers[name] = value
                else:
                    response.headers.add(name, value)
    retry_after = err.retry_after
    if retry_after is None and status == 503 and state is not None:
        retry_after = state.settings.errors.retry_after  # a 503 always says when to come back
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    if extra:
        if any(name.lower() == "retry-after" for name, _value in extra):
            del response.headers["Retry-After"]  # the app's own (a 429's, an HTTPException's) wins
        for name, value in extra:
            response.headers.add(name, value)
    return response


def _direct(app: t.Any, req: t.Any, status: int) -> bool:
    spec = app.error_handler_spec
    for name in (*req.blueprints, None):
        by_code = spec.get(name)
        if by_code is None:
            continue
        handlers = by_code.get(status)
        if handlers and any(h is not handle_http_error for h in handlers.values()):
            return False
        classes = by_code.get(None)
        if name is not None and classes:
            return False  # a blueprint handler for a class such as HTTPException
        if classes and any(issubclass(c, AuthError) and h is not handle_auth_error for c, h in classes.items()):
            return False  # the app's own handler for AuthError (ours is more specific than HTTPException)
    return True


def respond(err: AuthError, app: t.Any, req: t.Any, state: GateState) -> WerkzeugResponse:
    """Answer ``err`` from inside a guard, without a trip through Flask's exception handling.

    Used only when the app (and the request's blueprints) has no error handler
    of its own for the status; otherwise the error is raised again so that
    handler sees it, as it would any ``abort()``. Flask refuses new handlers
    once the app has served a request, so the answer is cached per endpoint.
    """
    key = (req.endpoint, t.cast(int, err.code))
    direct = state.direct_errors.get(key)
    if direct is None:
        direct = state.direct_errors[key] = _direct(app, req, key[1])
    renderer = state.callbacks.error_renderer
    if not direct or (renderer is not None and inspect.iscoroutinefunction(renderer)):
        raise err  # Flask's handler runs it (an async renderer cannot run inside an async view's loop)
    return render_error(err, state)


def handle_auth_error(err: AuthError) -> Response:
    return t.cast("Response", render_error(err))


def handle_http_error(err: HTTPException) -> Response | HTTPException:
    """A plain ``abort(401)``, ``abort(403)`` or ``abort(404)``: the same body as ours."""
    if isinstance(err, AuthError):
        return handle_auth_error(err)
    code = PLAIN_CODES.get(t.cast(int, err.code))
    if code is None:  # pragma: no cover - only registered for these codes
        return err
    return handle_auth_error(AuthError(code))
