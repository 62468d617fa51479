"""App-wide rules, checked in ``before_request``: the IP allow list, deny by default, blueprint rules.

For each endpoint the rules that apply are merged once into a "plan" (a
:class:`~.requirements.Requirement`) and cached per app: the blueprint rules
of ``AuthGate.protect``, ``AUTHGATE_DEFAULT_DENY``, the view's own guards (so
an ``@ip_allowed`` on the view still answers 403 before a 401), and the guard
of a view whose guard was written above ``@app.route`` (enforced anyway).
``@public`` views, Flask's static file views (recognised by what they are,
never by their endpoint name), Flask's automatic ``OPTIONS`` answers and
unknown URLs (404/405) are left alone.
"""

from __future__ import annotations

import logging
import typing as t

from flask import Blueprint

from . import pipeline
from ._compat import default_options_response
from .requirements import Requirement
from .requirements import is_public
from .requirements import misplaced_requirement
from .requirements import requirement_of

if t.TYPE_CHECKING:
    from flask import Flask
    from flask import Request
    from werkzeug.wrappers import Response

    from ._state import GateState

log = logging.getLogger("flask_authgate")


class BlueprintRules:
    """The rules ``AuthGate.protect`` put on blueprints, shared by the gate's apps."""

    def __init__(self) -> None:
        #: blueprint name -> its requirement.
        self.by_name: dict[str, Requirement] = {}
        #: Bumped on every change, so each app recomputes its plans.
        self.version = 0

    def __bool__(self) -> bool:
        return bool(self.by_name)

    def add(self, name: str, requirement: Requirement) -> None:
        self.by_name[name] = requirement
        self.version += 1

    def for_endpoint(self, app: Flask, endpoint: str) -> Requirement | None:
        """The merged rules of every blueprint (and parent blueprint) ``endpoint`` belongs to.

        The rule is found through the registered blueprint object, so a
        blueprint registered twice (``name="v2"``) or nested is protected
        under every name.
        """
        plan: Requirement | None = None
        for name in blueprint_names(endpoint):
            rule = self.rule_of(app, name)
            if rule is not None:
                plan = rule if plan is None else plan.merge(rule)
        return plan

    def rule_of(self, app: Flask, name: str) -> Requirement | None:
        """The rule of the blueprint registered in ``app`` as ``name`` (``"parent.child"``)."""
        bp = app.blueprints.get(name)
        return self.by_name.get(bp.name if bp is not None else name.rpartition(".")[2])


def blueprint_names(endpoint: str) -> list[str]:
    """``"a.b.view"`` -> ``["a", "a.b"]``: the registered names of the blueprints of an endpoint."""
    parts = endpoint.split(".")[:-1]
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def static_views(app: Flask) -> tuple[t.Any, ...]:
    """The app's own static file view, taken at ``init_app`` (Flask registers it as a lambda)."""
    view = app.view_functions.get("static") if app.has_static_folder else None
    return (view,) if view is not None else ()


def is_static(state: GateState, view: t.Any) -> bool:
    """Whether ``view`` is Flask's static file view of the app or of a blueprint.

    Recognised by the object, never by the name: a blueprint view written as
    ``def static():`` is an ordinary view.
    """
    if any(view is v for v in state.static_views):
        return True
    owner = getattr(view, "__self__", None)
    return isinstance(owner, Blueprint) and getattr(view, "__func__", None) is getattr(
        type(owner), "send_static_file", None
    )


def compute_plan(app: Flask, state: GateState, endpoint: str, method: str | None = None) -> Requirement | None:
    """The merged requirement the app-wide rules put on ``endpoint`` (``None``: nothing to check).

    ``method`` selects the guards of a ``MethodView`` method (``requirement_of``).
    """
    view = app.view_functions.get(endpoint)
    if view is None or is_static(state, view):
        return None
    misplaced = misplaced_requirement(view)
    if misplaced is not None:
        log.warning(
            "authgate: the guard of view %r is written above its route decorator, so the route "
            "registered the unguarded function; the guard is enforced anyway. Put guards below @app.route.",
            endpoint,
        )
    if is_public(view):
        return misplaced
    plan = state.rules.for_endpoint(app, endpoint)
    if state.settings.access.default_deny:
        plan = Requirement.login() if plan is None else plan.merge(Requirement.login())
    if misplaced is not None:
        plan = misplaced if plan is None else plan.merge(misplaced)
    if plan is None:
        return None
    own = requirement_of(view, method)
    return plan.merge(own) if own is not None else plan


def plan_for(app: Flask, state: GateState, req: Request) -> Requirement | None:
    """The cached plan of the request's endpoint and method."""
    endpoint = req.endpoint
    if endpoint is None:
        return None  # no route: Flask answers 404/405 as it would without us
    rules = state.rules
    if state.plans_version != rules.version:
        state.plans = {}
        state.plans_version = rules.version
    key = (req.method, endpoint)  # MethodView methods carry their own guards
    try:
        return state.plans[key]
    except KeyError:
        plan = state.plans[key] = compute_plan(app, state, endpoint, req.method)
        return plan


def needs_hook(app: Flask, state: GateState) -> bool:
    """Whether anything app-wide applies: an allow list, deny by default, a rule, a misplaced guard."""
    settings = state.settings
    if settings.access.ip_allowlist is not None or settings.access.default_deny or state.rules:
        return True
    return any(misplaced_requirement(view) is not None for view in app.view_functions.values())


def _retire(app: Flask) -> None:
    """Take the hook out of an app that needs none (a new list: a request iterating the old one is safe)."""
    hooks = app.before_request_funcs.get(None, [])
    app.before_request_funcs[None] = [h for h in hooks if h is not before_request]


def before_request() -> Response | None:
    """The app-wide hook: IP allow list first, then the endpoint's plan.

    Installed on every app, it looks at the app once, at its first request
    (when Flask no longer accepts new routes): an app with no allow list, no
    deny by default, no blueprint rule and no guard written above its route
    takes the hook out again, and pays nothing per request from then on.
    ``protect()`` puts it back.
    """
    app, req = pipeline.current()
    state: GateState = app.extensions["authgate"]
    if not state.hook_checked:
        state.hook_checked = True
        if not needs_hook(app, state):
            _retire(app)
            return None
    allow = state.settings.access.ip_allowlist
    if allow is not None:
        pipeline.check_networks(app, req, (allow,))
    plan = plan_for(app, state, req)
    if plan is None:
        return None
    ra = pipeline.request_auth(req)
    if ra.plan_done:
        return None
    ra.plan_done = True
    if req.method == "OPTIONS":
        rule = req.url_rule
        if rule is not None and getattr(rule, "provide_automatic_options", False):
            # Flask answers an automatic OPTIONS without calling the view.
            if plan.networks:
                pipeline.check_networks(app, req, plan.networks)
            return None
        if pipeline.preflight(app, state, req, plan):
            # A view that lists OPTIONS itself: a preflight gets the default answer.
            return default_options_response(app)
    pipeline.check(app, state, req, plan)
    return None


def scopes_in_use(app: Flask, state: GateState) -> list[str]:
    """Every scope a guard or a ``protect()`` rule of the app requires, sorted (RFC 9728 ``scopes_supported``)."""
    found: set[str] = set()
    for endpoint, view in app.view_functions.items():
        for requirement in (
            requirement_of(view),
            misplaced_requirement(view),
            state.rules.for_endpoint(app, endpoint),
        ):
            if requirement is not None:
                found |= requirement.all_scopes
    return sorted(found)
