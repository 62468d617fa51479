"""Differences between Flask versions, kept in one place."""

from __future__ import annotations

import inspect
import typing as t

from flask import Flask
from flask import Response
from flask import request

_OPTIONS_TAKES_CTX = len(inspect.signature(Flask.make_default_options_response).parameters) > 1


def default_options_response(app: Flask) -> Response:
    """Flask's automatic ``OPTIONS`` answer (``Allow`` header, empty body).

    Flask 3.2 passes the app context to ``make_default_options_response``;
    earlier versions take no argument.
    """
    if _OPTIONS_TAKES_CTX:  # pragma: no cover - Flask >= 3.2
        from flask.globals import app_ctx

        ctx = app_ctx._get_current_object()  # type: ignore[attr-defined]
        return app.make_default_options_response(ctx)  # type: ignore[call-arg]
    response = app.make_default_options_response()
    if not response.allow and request.url_rule is not None and request.url_rule.methods:  # pragma: no cover
        response.allow.update(request.url_rule.methods)
    return response


try:  # Flask <= 3.1 keeps the request context in this ContextVar
    from flask.globals import _cv_app
    from flask.globals import _cv_request
except ImportError:  # pragma: no cover - a Flask that moved it: fall back to the proxies
    _cv_app = _cv_request = None  # type: ignore[assignment]


def request_objects() -> tuple[Flask, t.Any, t.Any]:
    """The current ``(app, request, g)`` objects, read once instead of through three proxies.

    Every guarded request goes through here, so it avoids the per-attribute
    cost of Flask's ``LocalProxy`` objects.
    """
    if _cv_request is not None:
        ctx = _cv_request.get(None)
        if ctx is not None:
            return ctx.app, ctx.request, _cv_app.get().g
    from flask import current_app
    from flask import g

    return (
        current_app._get_current_object(),  # type: ignore[attr-defined]
        request._get_current_object(),  # type: ignore[attr-defined]
        g._get_current_object(),
    )
