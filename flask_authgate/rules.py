"""App-wide rules, checked in ``before_request``: the IP allow list, deny by default and blueprint rules.

For each endpoint the rules that apply are merged once into a "plan" (a
:class:`~.authorization.Requirement`) and cached per app: the blueprint
rules of ``AuthGate.protect``, ``AUTHGATE_DEFAULT_DENY`` and the view's own
guards (so an ``@ip_allowed`` on the view still answers 403 before a 401).
``@public`` views, static files, Flask's automatic ``OPTIONS`` answers and
unknown URLs (404/405) are left alone.
"""

from __future__ import annotations

import typing as t

from . import credentials
from ._compat import default_options_response
from ._compat import request_objects
from ._state import GateState
from ._state import get_state
from .authorization import Requirement
from .authorization import check_networks
from .authorization import enforce
from .decorators import is_public
from .decorators import requirement_of
from .loader import request_auth

if t.TYPE_CHECKING:
    from flask import Flask
    from flask import Response

_LOGIN = Requirement(login=True)


def _blueprint_names(endpoint: str) -> list[str]:
    parts = endpoint.split(".")[:-1]
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def blueprint_rule(app: Flask, rules: dict[str, t.Any], name: str) -> Requirement | None:
    """The ``protect`` rule of the blueprint registered in ``app`` as ``name`` (``"parent.child"``).

    The rule is found through the registered blueprint object, so a blueprint
    registered twice (``name="v2"``) or nested is protected under every name.
    """
    bp = app.blueprints.get(name)
    return t.cast("Requirement | None", rules.get(bp.name if bp is not None else name.rpartition(".")[2]))


def compute_plan(app: Flask, state: GateState, endpoint: str, method: str | None = None) -> Requirement | None:
    """The merged requirement the app-wide rules put on ``endpoint`` (``None``: nothing to check).

    ``method`` selects the guards of a ``MethodView`` method (``requirement_of``).
    """
    if endpoint == "static" or endpoint.endswith(".static"):
        return None
    view = app.view_functions.get(endpoint)
    if view is None or is_public(view):
        return None
    plan: Requirement | None = None
    rules = state.callbacks.blueprint_rules
    for name in _blueprint_names(endpoint):
        rule = blueprint_rule(app, rules, name)
        if rule is not None:
            plan = rule if plan is None else plan.merge(rule)
    if state.settings.default_deny:
        plan = _LOGIN if plan is None else plan.merge(_LOGIN)
    if plan is None:
        return None
    own = requirement_of(view, method)
    return plan.merge(own) if own is not None else plan


def enforce_endpoint(app: t.Any = None, req: t.Any = None, state: GateState | None = None) -> Response | None:
    """Apply the plan of the current endpoint (looked up first: most endpoints have none)."""
    if app is None or req is None:
        app, req, _ = request_objects()
    endpoint = req.endpoint
    if endpoint is None:
        return None  # no route: Flask answers 404/405 as it would without us
    if state is None:
        state = get_state(app)
    version = state.callbacks.rules_version
    if state.plans_version != version:
        state.plans = {}
        state.plans_version = version
    method = req.method
    key = (method, endpoint)  # MethodView methods carry their own guards
    try:
        plan = state.plans[key]
    except KeyError:
        plan = state.plans[key] = compute_plan(app, state, endpoint, method)
    if plan is None:
        return None
    ra = request_auth()
    if ra.plan_done:
        return None
    ra.plan_done = True
    if method == "OPTIONS":
        rule = req.url_rule
        automatic = rule is not None and getattr(rule, "provide_automatic_options", False)
        if automatic or not credentials.present(
            req.environ,
            cookie_name=state.cookie_name,
            api_key_environ=state.api_key_environ if state.api_keys_on else None,
        ):
            if plan.networks:
                check_networks(plan.networks)
            # Flask answers an automatic OPTIONS without calling the view; for a
            # view that lists OPTIONS itself, a preflight gets the default answer.
            return None if automatic else default_options_response(app)
    enforce(plan)
    return None


def before_request() -> Response | None:
    """The app-wide hook: IP allow list first, then the endpoint's plan."""
    app, req, _ = request_objects()
    state: GateState = app.extensions["authgate"]
    allow = state.settings.ip_allowlist
    if allow is not None:
        check_networks((allow,))
    if not (state.settings.default_deny or state.callbacks.blueprint_rules):
        return None
    return enforce_endpoint(app, req, state)
