"""Helpers for Flask-Limiter and Flask-Caching on guarded views (see docs/rate-limiting.md).

Neither extension is imported here: the helpers are plain callables that
their APIs accept.

* :func:`rate_limit_key`: a Flask-Limiter ``key_func`` that counts requests
  per identity (per caller address for anonymous requests).
* :func:`too_many_requests`: an error handler that answers 429 with the same
  JSON (or RFC 9457) body as every other refusal.
* :func:`identity_cache_key`: a Flask-Caching ``make_cache_key`` that keeps
  one user's cached response away from another.
"""

from __future__ import annotations

import collections.abc as cabc
import hashlib
import ipaddress
import typing as t

from flask import Response
from flask import current_app
from flask import has_app_context
from flask import request

from .errors import RATE_LIMITED as RATE_LIMITED
from .errors import app_error
from .pipeline import get_identity
from .responses import encode
from .responses import render_error

if t.TYPE_CHECKING:
    from werkzeug.exceptions import HTTPException

__all__ = ["RATE_LIMITED", "identity_cache_key", "rate_limit_key", "too_many_requests"]

#: The machine code of a 429 answered by :func:`too_many_requests`.
#: Its fixed message: never the limit's text, which may name the limit or the key.
RATE_LIMITED_MESSAGE = "Too many requests; try again later"


def _digest(subject: str) -> str:
    # A fixed-length key whatever the subject: storage keys stay bounded, and a subject
    # holding the backend's separators (":" in Redis keys) cannot collide with another.
    return hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _address(remote_addr: str | None) -> str:
    try:
        ip = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)  # ::ffff:192.0.2.1 is 192.0.2.1
        # One IPv6 host usually holds a whole /64 (RFC 4291 §2.5.1): count the network, or a
        # client would get a fresh bucket with every address it picks from it.
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def rate_limit_key() -> str:
    """A Flask-Limiter ``key_func``: one bucket per identity, else one per client address.

    ``Limiter(rate_limit_key, app=app)``. An authenticated request counts
    against ``"authgate:sub:<digest of the subject>"`` (the same bucket for
    the user's tokens, cookies and API keys that name the same subject), so
    users behind one NAT do not share a limit. A request without valid
    credentials — none, expired, forged — counts against
    ``"authgate:ip:<remote_addr>"``: sending garbage tokens never buys a fresh
    bucket. The address is ``request.remote_addr`` (configure Werkzeug's
    ``ProxyFix`` behind a proxy; ``X-Forwarded-For`` is never read here); an
    IPv6 address counts for its whole ``/64``, an IPv4-mapped one as the IPv4
    address, and one that does not parse as ``"unknown"``.

    Reading the identity verifies the token once for the request (the guards
    reuse the result); it never raises.

    .. versionadded:: 0.2
    """
    identity = get_identity()
    if identity is not None:
        return "authgate:sub:" + _digest(identity.subject)
    return "authgate:ip:" + _address(request.remote_addr)


def too_many_requests(error: HTTPException | None = None, *, problem: bool | None = None) -> Response:
    """Answer 429 with the body every refusal has: register it for 429.

    ``app.register_error_handler(429, too_many_requests)``. The body is
    ``{"error": "Too Many Requests", "code": "rate_limited", "message":
    "Too many requests; try again later", "status": 429}`` (or RFC 9457
    problem details with ``AUTHGATE_ERROR_FORMAT = "problem"``), rendered by
    the extension's one renderer, so a registered ``error_renderer`` renders
    it too; it carries ``Cache-Control: no-store``. Flask-Limiter's own
    headers (``Retry-After``, ``X-RateLimit-*``) are added to it when
    ``RATELIMIT_HEADERS_ENABLED`` is on. The exception's description (the
    limit, such as ``"2 per 1 minute"``) is not sent.

    :param error: The 429 exception (``RateLimitExceeded``); unused, so the
        function also works as a plain view helper.
    :param problem: ``True`` or ``False`` to choose the format whatever the
        app's ``AUTHGATE_ERROR_FORMAT`` (and without its ``error_renderer``);
        by default the app's format.

    .. versionadded:: 0.2
    """
    state = current_app.extensions.get("authgate") if has_app_context() else None
    if problem is None and state is not None:
        return t.cast(Response, render_error(app_error(429, RATE_LIMITED, RATE_LIMITED_MESSAGE, extension=True), state))
    data, mimetype = encode(429, RATE_LIMITED, RATE_LIMITED_MESSAGE, "problem" if problem else "json")
    response = Response(data, status=429, mimetype=mimetype)
    response.headers["Cache-Control"] = "no-store"
    return response


def identity_cache_key(*, prefix: str = "authgate-view", query_string: bool = True) -> cabc.Callable[..., str]:
    """A Flask-Caching ``make_cache_key`` that includes who is asking.

    Flask-Caching's default key for ``@cache.cached()`` is the path alone, so
    the first user's response is served to everyone who asks next. Use::

        @app.get("/me")
        @login_required                                  # the guard first (outermost)
        @cache.cached(make_cache_key=identity_cache_key())
        def me(): ...

    The key is ``prefix`` and a digest of the identity (its scheme, subject,
    roles and scopes, so a role change is not answered from the cache of
    the old role; ``"anonymous"`` without one), the method, the path and,
    with ``query_string``, the sorted query arguments.
    The guard must stay above the cache decorator: below it, a cached answer
    would be returned before any guard ran.

    :param prefix: Starts every key (to clear them by prefix, or tell apps apart).
    :param query_string: Let ``?page=2`` and ``?page=3`` be cached apart.

    .. versionadded:: 0.2
    """

    def make_cache_key(*args: t.Any, **kwargs: t.Any) -> str:
        identity = get_identity()
        if identity is None:
            who = ["anonymous"]
        else:
            who = [
                identity.scheme,
                identity.subject,
                " ".join(sorted(identity.roles)),
                " ".join(sorted(identity.scopes)),
            ]
        parts = [*who, request.method, request.path]
        if query_string:
            parts.append("&".join(f"{k}={v}" for k, v in sorted(request.args.items(multi=True))))
        digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
        return f"{prefix}:{digest}"

    return make_cache_key
