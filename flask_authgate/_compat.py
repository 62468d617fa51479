"""Differences between Flask versions, kept in one place."""

from __future__ import annotations

import inspect

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
