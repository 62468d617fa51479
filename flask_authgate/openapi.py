"""OpenAPI documents that say what the guards enforce: schemes, requirements, error responses.

:func:`document` hooks into the spec an API framework builds (an APIFlask
app, a flask-smorest ``Api``, a flask-restx ``Api``; each is duck-typed and
none is imported here) and writes into it, every time the spec is built:

* the security schemes the app accepts (``Bearer`` JWT, ``DPoP``, the
  API-key header, the token cookie, one ``openIdConnect`` scheme per trusted
  issuer, and an ``oauth2`` scheme when scopes are used without an issuer);
* for every documented operation, the requirement the app enforces and the
  error responses its guards can produce, found with the functions the
  request path itself uses (:func:`~flask_authgate.rules.compute_plan`,
  :func:`~flask_authgate.requirements.requirement_of`), so the document and
  the enforcement cannot drift apart;
* one shared error schema (``AuthGateError``: the JSON body, or the RFC 9457
  problem body with ``AUTHGATE_ERROR_FORMAT = "problem"``) and one shared
  response per status, referenced by every operation.

:func:`check` compares a built spec with the guards (``flask authgate
routes --check-openapi``).
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import itertools
import re
import threading
import typing as t

from flask import current_app
from flask import has_app_context
from werkzeug.exceptions import HTTPException

from ._state import get_state
from .errors import ERRORS
from .errors import PLAIN_CODES
from .errors import AuthError
from .requirements import Requirement
from .requirements import is_public
from .requirements import requirement_of
from .revocation import MemoryStore
from .rules import compute_plan
from .rules import is_static
from .rules import scopes_in_use

if t.TYPE_CHECKING:
    from flask import Flask

    from ._state import GateState

F = t.TypeVar("F", bound=cabc.Callable[..., t.Any])
Spec = dict[str, t.Any]
SecurityRequirement = dict[str, list[str]]

#: Where :func:`document` records what it documented, for :func:`check`.
EXTENSION_KEY = "authgate_openapi"
#: The attribute :func:`refuses` sets.
REFUSES_ATTR = "__authgate_refuses__"

BEARER = "authgateBearer"
DPOP = "authgateDPoP"
API_KEY = "authgateApiKey"
COOKIE = "authgateCookie"
REFRESH_COOKIE = "authgateRefreshCookie"
OIDC = "authgateOIDC"
OAUTH2 = "authgateOAuth2"
SCHEMA = "AuthGateError"

#: The statuses the extension answers with (DESIGN.md "Error responses").
STATUSES = (400, 401, 403, 404, 503)
#: ``@scopes_accepted`` groups become one requirement per combination; more than this many
#: are documented as the scopes every combination needs (``scopes_required``'s) alone.
MAX_ALTERNATIVES = 32
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The converter syntax every framework rewrites the same way: <int:pet_id> -> {pet_id}.
_RULE_VAR = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")

_DESCRIPTIONS = {
    400: "Credentials were sent more than once",
    401: "Authentication is needed, or the credentials were refused",
    403: "The caller may not do this",
    404: "Not found (or hidden from this caller)",
    503: "An authentication backend is unavailable; retry after Retry-After seconds",
}


def refuses(*statuses: int) -> cabc.Callable[[F], F]:
    """Document refusals a view makes itself: ``authorize()`` or ``require_owner()`` inside it.

    Guards are found on their own; a check inside the view is not, so say
    ``@refuses(403)`` (or ``@refuses(403, 404)`` with ``hide=True``) and the
    operation documents those responses too.

    :param statuses: Some of 400, 401, 403, 404, 503.
    :raises ValueError: For another status.

    .. versionadded:: 0.2
    """
    bad = [s for s in statuses if s not in STATUSES]
    if not statuses or bad:
        raise ValueError(f"refuses() takes some of {STATUSES}, not {bad or 'nothing'}")

    def decorator(view: F) -> F:
        setattr(view, REFUSES_ATTR, frozenset(statuses) | getattr(view, REFUSES_ATTR, frozenset()))
        return view

    return decorator


# -- what the app enforces --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Operation:
    """What one endpoint and method enforce, as an OpenAPI operation says it."""

    #: The alternatives of the ``security`` requirement; empty for an open operation.
    security: list[SecurityRequirement]
    #: The error statuses the guards can answer with.
    statuses: frozenset[int]
    #: ``security: []`` is written explicitly (a ``@public`` view under deny-by-default).
    explicit_public: bool = False


def requirement(app: Flask, state: GateState, endpoint: str, method: str) -> Requirement | None:
    """What the app enforces on ``endpoint`` for ``method``: the app-wide plan and the view's guards."""
    view = app.view_functions.get(endpoint)
    if view is None or is_static(state, view):
        return None
    plan = compute_plan(app, state, endpoint, method)
    own = requirement_of(view, method)
    if plan is None:
        return own
    return plan if own is None else plan.merge(own)


def _backend(state: GateState) -> bool:
    """Whether a decision can depend on a backend that may be down (503 ``auth_unavailable``)."""
    s = state.settings
    store = s.revocation.store
    shared = store != "memory" and not isinstance(store, MemoryStore)
    return bool(shared or s.keys.jwks_url or s.providers.trusted_issuers or s.providers.introspection is not None)


def _scope_sets(req: Requirement) -> list[list[str]]:
    groups = [sorted(g) for g in req.scopes_any]
    size = 1
    for g in groups:
        size *= len(g)
    if size > MAX_ALTERNATIVES:
        return [sorted(req.scopes_all)]
    out: list[list[str]] = []
    for combo in itertools.product(*groups):
        scopes = sorted(req.scopes_all | set(combo))
        if scopes not in out:
            out.append(scopes)
    return out


def operation(app: Flask, endpoint: str, method: str, *, swagger2: bool = False) -> Operation:
    """The documented shape of ``endpoint`` for ``method`` (``"GET"`` ...)."""
    state = get_state(app)
    settings = state.settings
    method = method.upper()
    req = requirement(app, state, endpoint, method)
    view = app.view_functions.get(endpoint)
    statuses: set[int] = set(_marked(view, method))
    if settings.access.ip_allowlist is not None:
        statuses.add(403)  # the app-wide allow list refuses before anything else, on every route
    security: list[SecurityRequirement] = []
    if req is not None:
        if req.networks:
            statuses.add(403)
        if req.needs_login:
            statuses |= {400, 401}  # RFC 6750 §3.1: any location can carry credentials twice
            if req.roles_all or req.roles_any or req.scopes_all or req.scopes_any:
                statuses.add(403)
            if state.cookie_name is not None and method in _UNSAFE:
                statuses.add(403)  # csrf_failed
            if _backend(state):
                statuses.add(503)
            security = _security(state, req, swagger2=swagger2)
    # Open although a rule would guard it: deny-by-default, or a protect()ed blueprint.
    public = bool(
        view is not None
        and is_public(view)
        and (settings.access.default_deny or state.rules.for_endpoint(app, endpoint) is not None)
    )
    return Operation(security, frozenset(statuses), explicit_public=public and not security)


def _marked(view: t.Any, method: str) -> frozenset[int]:
    found: frozenset[int] = getattr(view, REFUSES_ATTR, frozenset())
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        found |= getattr(view_class, REFUSES_ATTR, frozenset())
        found |= getattr(getattr(view_class, method.lower(), None), REFUSES_ATTR, frozenset())
    return found


def _oidc_names(state: GateState) -> list[str]:
    n = len(state.settings.providers.trusted_issuers)
    return [OIDC if i == 0 else f"{OIDC}{i + 1}" for i in range(n)]


def _security(state: GateState, req: Requirement, *, swagger2: bool) -> list[SecurityRequirement]:
    settings = state.settings
    refresh = req.token_type == "refresh"
    plain: list[str] = []
    scoped: list[str] = []
    if state.header_on:
        if settings.resource.dpop != "required":
            plain.append(BEARER)
        if settings.resource.dpop:
            plain.append(DPOP)
        if not refresh:
            # The provider's tokens carry its scopes; the app's own refresh tokens come from no provider.
            scoped += [] if swagger2 else _oidc_names(state)
            if not settings.providers.trusted_issuers and req.all_scopes:
                scoped.append(OAUTH2)
    if state.api_keys_on and not refresh:
        plain.append(API_KEY)
    if state.cookie_name is not None and not swagger2:
        plain.append(REFRESH_COOKIE if refresh else COOKIE)
    out: list[SecurityRequirement] = [{name: []} for name in plain]
    for scopes in _scope_sets(req):
        out += [{name: list(scopes)} for name in scoped]
    return out


# -- what goes into the document ----------------------------------------------------------


def security_schemes(app: Flask, *, swagger2: bool = False, token_url: str = "/token") -> dict[str, t.Any]:
    """The security schemes the app accepts, by name (``securitySchemes`` / ``securityDefinitions``)."""
    state = get_state(app)
    settings = state.settings
    schemes: dict[str, t.Any] = {}
    scopes = {s: f"The {s} scope" for s in scopes_in_use(app, state)}
    if state.header_on:
        if settings.resource.dpop != "required":
            if swagger2:
                # Swagger 2.0 has no http schemes: the header, with the scheme in the description.
                schemes[BEARER] = _header_v2("Authorization", "A bearer token: `Authorization: Bearer <token>`")
            else:
                schemes[BEARER] = {"type": "http", "scheme": "bearer", "description": "A bearer access token"}
                if settings.providers.introspection is None:
                    schemes[BEARER]["bearerFormat"] = "JWT"
        if settings.resource.dpop:
            # OpenAPI has no DPoP type: an http scheme named as RFC 9449 §7.1 registers it.
            description = (
                "A DPoP-bound access token (RFC 9449): `Authorization: DPoP <token>` and a `DPoP` proof "
                f"header signed with one of {', '.join(settings.resource.dpop_algorithms)}"
            )
            schemes[DPOP] = _header_v2("Authorization", description) if swagger2 else {
                "type": "http", "scheme": "DPoP", "description": description,
            }  # fmt: skip
        if not swagger2:
            for name, issuer in zip(_oidc_names(state), settings.providers.trusted_issuers, strict=True):
                # OpenID Connect Discovery §4: the metadata of the issuer, trailing "/" removed.
                url = issuer.issuer.rstrip("/") + "/.well-known/openid-configuration"
                schemes[name] = {"type": "openIdConnect", "openIdConnectUrl": url}
        if scopes and not settings.providers.trusted_issuers:
            description = "The scopes this API's guards require, carried by the bearer token"
            if swagger2:
                schemes[OAUTH2] = {"type": "oauth2", "flow": "application", "tokenUrl": token_url, "scopes": scopes}
            else:
                schemes[OAUTH2] = {
                    "type": "oauth2",
                    "description": description,
                    "flows": {"clientCredentials": {"tokenUrl": token_url, "scopes": scopes}},
                }
    if state.api_keys_on:
        header = settings.tokens.api_key_header
        schemes[API_KEY] = _header_v2(header, "An API key") if swagger2 else {
            "type": "apiKey", "in": "header", "name": header, "description": "An API key",
        }  # fmt: skip
    if state.cookie_name is not None and not swagger2:  # Swagger 2.0 cannot describe a cookie
        csrf = f"; unsafe methods also need the `{settings.cookies.csrf_header}` header (CSRF double submit)"
        schemes[COOKIE] = {
            "type": "apiKey", "in": "cookie", "name": settings.cookies.access_name,
            "description": "The access-token cookie" + csrf,
        }  # fmt: skip
        schemes[REFRESH_COOKIE] = {
            "type": "apiKey", "in": "cookie", "name": settings.cookies.refresh_name,
            "description": "The refresh-token cookie" + csrf,
        }  # fmt: skip
    return schemes


def _header_v2(name: str, description: str) -> dict[str, t.Any]:
    return {"type": "apiKey", "in": "header", "name": name, "description": description}


def error_schema(error_format: str) -> dict[str, t.Any]:
    """The JSON Schema of every error body (``"json"``, or ``"problem"`` for RFC 9457)."""
    codes = {"type": "string", "enum": sorted(ERRORS), "description": "The machine code (never renamed)"}
    status = {"type": "integer", "enum": sorted({e.status for e in ERRORS.values()})}
    if error_format == "problem":
        return {
            "type": "object",
            "description": "An RFC 9457 problem (application/problem+json)",
            "required": ["type", "title", "status", "detail", "code"],
            "properties": {
                "type": {"type": "string", "enum": ["about:blank"]},
                "title": {"type": "string", "description": "The HTTP reason phrase"},
                "status": status,
                "detail": {"type": "string", "description": "A fixed, safe sentence"},
                "code": codes,
            },
        }
    return {
        "type": "object",
        "description": "The error body of every refusal",
        "required": ["error", "code", "message", "status"],
        "properties": {
            "error": {"type": "string", "description": "The HTTP reason phrase"},
            "code": codes,
            "message": {"type": "string", "description": "A fixed, safe sentence"},
            "status": status,
        },
    }


def _response(status: int, mimetype: str, *, swagger2: bool) -> dict[str, t.Any]:
    codes = ", ".join(f"`{c}`" for c, e in ERRORS.items() if e.status == status)
    headers: dict[str, t.Any] = {"Cache-Control": {"description": "Always `no-store`"}}
    if status in (400, 401, 403):
        # RFC 9110 §11.6.1: one challenge per scheme on a 401; RFC 6750 §3 on 400 and 403 (scope).
        headers["WWW-Authenticate"] = {"description": "The challenge(s), one line per scheme"}
    if status == 503:
        headers["Retry-After"] = {"description": "Seconds to wait before retrying"}
    for name, header in headers.items():
        header.update({"type": "integer" if name == "Retry-After" else "string"} if swagger2 else {
            "schema": {"type": "integer" if name == "Retry-After" else "string"},
        })  # fmt: skip
    out: dict[str, t.Any] = {"description": f"{_DESCRIPTIONS[status]}. Codes: {codes}", "headers": headers}
    ref = f"#/definitions/{SCHEMA}" if swagger2 else f"#/components/schemas/{SCHEMA}"
    if swagger2:
        out["schema"] = {"$ref": ref}
    else:
        out["content"] = {mimetype: {"schema": {"$ref": ref}}}
    return out


def _response_ref(status: int, *, swagger2: bool) -> dict[str, str]:
    where = "#/responses/" if swagger2 else "#/components/responses/"
    return {"$ref": f"{where}AuthGate{status}"}


def _index(app: Flask) -> dict[tuple[str, str], str]:
    """``(OpenAPI path, METHOD) -> endpoint`` for every URL rule of the app."""
    out: dict[tuple[str, str], str] = {}
    for rule in app.url_map.iter_rules():
        path = _RULE_VAR.sub(r"{\1}", rule.rule)
        for method in rule.methods or ():
            out.setdefault((path, method), rule.endpoint)
    return out


def _operations(app: Flask, spec: Spec) -> cabc.Iterator[tuple[str, str, str, dict[str, t.Any]]]:
    """``(path, METHOD, endpoint, operation object)`` for every documented operation of an app route."""
    base = spec.get("basePath", "").rstrip("/") if "swagger" in spec else ""
    index = _index(app)
    for path, item in (spec.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        for method, op in item.items():
            if method not in _METHODS or not isinstance(op, dict):
                continue
            endpoint = index.get((base + path, method.upper()))
            if endpoint is not None:
                yield path, method.upper(), endpoint, op


def apply(spec: Spec, app: Flask, *, token_url: str = "/token") -> Spec:
    """Write the schemes, requirements and error responses of ``app`` into ``spec`` (in place).

    ``spec`` is an OpenAPI 3.x document, or a Swagger 2.0 one (flask-restx);
    operations of paths that are not routes of ``app`` are left alone.
    """
    state = get_state(app)
    swagger2 = "swagger" in spec
    mimetype = "application/problem+json" if state.settings.errors.format == "problem" else "application/json"
    schemes = security_schemes(app, swagger2=swagger2, token_url=token_url)
    responses = {f"AuthGate{s}": _response(s, mimetype, swagger2=swagger2) for s in STATUSES}
    schema = error_schema(state.settings.errors.format)
    if swagger2:
        if schemes:
            spec.setdefault("securityDefinitions", {}).update(schemes)
        spec.setdefault("definitions", {})[SCHEMA] = schema
        spec.setdefault("responses", {}).update(responses)
    else:
        components = spec.setdefault("components", {})
        if schemes:
            components.setdefault("securitySchemes", {}).update(schemes)
        components.setdefault("schemas", {})[SCHEMA] = schema
        components.setdefault("responses", {}).update(responses)
    inherited = bool(spec.get("security"))
    for _path, method, endpoint, op in _operations(app, spec):
        found = operation(app, endpoint, method, swagger2=swagger2)
        if found.security:
            op["security"] = found.security
        elif found.explicit_public or inherited:
            op["security"] = []  # open, whatever the document's top-level requirement says
        documented = op.setdefault("responses", {})
        for status in sorted(found.statuses):
            documented[str(status)] = _response_ref(status, swagger2=swagger2)
        if swagger2 and found.statuses:
            produces: list[str] = list(op.get("produces") or spec.get("produces") or ["application/json"])
            if mimetype not in produces:
                op["produces"] = [*produces, mimetype]
    return spec


# -- the frameworks -------------------------------------------------------------------------


def _register(app: Flask, kind: str, load: cabc.Callable[[], Spec]) -> None:
    entries: list[tuple[str, cabc.Callable[[], Spec]]] = app.extensions.setdefault(EXTENSION_KEY, [])
    if all(k != kind or ld is not load for k, ld in entries):
        entries.append((kind, load))


def _is_apiflask(api: t.Any) -> bool:
    return hasattr(api, "_generate_spec") and hasattr(api, "spec_callback") and hasattr(api, "url_map")


def _is_restx(api: t.Any) -> bool:
    return hasattr(type(api), "__schema__") and hasattr(api, "handle_error") and hasattr(api, "namespaces")


def _is_smorest(api: t.Any) -> bool:
    return hasattr(api, "register_blueprint") and hasattr(api, "_app") and hasattr(api, "spec")


def document(api: t.Any, *, token_url: str = "/token") -> None:
    """Document what the guards enforce in the OpenAPI spec ``api`` builds, every time it builds it.

    :param api: An APIFlask app, a flask-smorest ``Api`` or a flask-restx ``Api``
        (after ``init_app``, which flask-authgate must have had too).
    :param token_url: The ``tokenUrl`` of the ``oauth2`` scheme written when
        guards require scopes and no outside issuer is configured (where your
        app, or its provider, issues tokens).
    :raises TypeError: ``api`` is none of these.
    :raises RuntimeError: The framework's ``Api`` or the extension is not initialised.

    .. versionadded:: 0.2
    """
    if getattr(api, "_authgate_documented", False):
        return
    if _is_apiflask(api):
        _apiflask(api, token_url)
    elif _is_restx(api):
        _restx(api, token_url)
    elif _is_smorest(api):
        _smorest(api, token_url)
    else:
        raise TypeError(f"document() takes an APIFlask app, a flask-smorest Api or a flask-restx Api, not {api!r}")
    api._authgate_documented = True


def auto_document(app: Flask, gate: t.Any = None) -> None:
    """Document an APIFlask app on its own (called by ``init_app``); other apps are left alone.

    .. versionadded:: 0.2
    """
    if _is_apiflask(app):
        document(app)


def _apiflask(app: t.Any, token_url: str) -> None:
    get_state(app)
    generate = app._generate_spec

    def generate_spec() -> t.Any:
        # Ours first, then the app's own spec_processor (it sees, and may change, what we wrote).
        spec_object = generate()
        to_dict = spec_object.to_dict
        spec_object.to_dict = lambda: apply(to_dict(), app, token_url=token_url)
        return spec_object

    app._generate_spec = generate_spec
    _register(app, "apiflask", lambda: t.cast(Spec, app._get_spec("json", force_update=True)))


def _smorest(api: t.Any, token_url: str) -> None:
    app = api._app
    if app is None or api.spec is None:
        raise RuntimeError("call document(api) after api.init_app(app)")
    get_state(app)
    spec = api.spec
    to_dict = spec.to_dict
    spec.to_dict = lambda: apply(to_dict(), app, token_url=token_url)
    _register(app, "flask-smorest", lambda: t.cast(Spec, api.spec.to_dict()))


def _restx(api: t.Any, token_url: str) -> None:
    cls = type(api)
    base = cls.__schema__  # restx's cached property: builds the Swagger 2.0 dict once
    lock = threading.Lock()

    def schema(self: t.Any) -> t.Any:
        value = base.fget(self)
        if isinstance(value, dict) and "paths" in value:
            with lock:  # restx builds the dict once, under its own lock; ours is written into it once
                if self.__dict__.get("_authgate_schema") is not value:
                    apply(value, current_app._get_current_object(), token_url=token_url)  # type: ignore[attr-defined]
                    self.__dict__["_authgate_schema"] = value
        return value

    api.__class__ = type(cls.__name__, (cls,), {"__schema__": property(schema), "__module__": cls.__module__})
    _wrap_restx_errors(api)

    def load() -> Spec:
        return t.cast(Spec, api.__schema__)

    app = getattr(api, "app", None)
    if getattr(api, "blueprint", None) is not None:  # Api(blueprint): the app is known at registration
        api.blueprint.record_once(lambda setup: _register(setup.app, "flask-restx", load))
    elif app is not None:
        get_state(app)
        _register(app, "flask-restx", load)
    else:
        raise RuntimeError("call document(api) after api.init_app(app)")


def _wrap_restx_errors(api: t.Any) -> None:
    """Answer refusals on restx routes with the contract's body, not restx's ``{"message": ...}``.

    restx routes every exception of its resources (and of ``before_request``
    hooks on them) through ``Api.handle_error``, which would build its own
    body for an :class:`~flask_authgate.AuthError` or a plain ``abort(401)``.
    The app's one renderer answers instead, unless a handler registered on
    the restx ``Api`` claims the exception.
    """
    handle_error = api.handle_error

    def authgate_handle_error(e: BaseException) -> t.Any:
        if isinstance(e, HTTPException) and has_app_context() and "authgate" in current_app.extensions:
            handlers = getattr(api, "_own_and_child_error_handlers", None) or getattr(api, "error_handlers", {})
            if not any(isinstance(e, cls) for cls in handlers):
                err = e if isinstance(e, AuthError) else None
                code = PLAIN_CODES.get(t.cast(int, e.code))
                if err is None and code is not None:
                    err = AuthError(code)
                if err is not None:
                    return get_state().render(err)
        return handle_error(e)

    api.handle_error = authgate_handle_error


# -- the check ----------------------------------------------------------------------------------


def _normal(security: t.Any) -> frozenset[frozenset[tuple[str, tuple[str, ...]]]]:
    if not isinstance(security, list):
        return frozenset()
    out = set()
    for alt in security:
        if isinstance(alt, dict):
            out.add(frozenset((str(k), tuple(sorted(map(str, v or ())))) for k, v in alt.items()))
    return frozenset(out - {frozenset()}) if out != {frozenset()} else frozenset()


def check_spec(app: Flask, spec: Spec, *, label: str = "spec") -> list[str]:
    """Every operation of ``spec`` whose security, 401 or 403 differs from what ``app`` enforces."""
    problems = []
    swagger2 = "swagger" in spec
    top = spec.get("security")
    for path, method, endpoint, op in _operations(app, spec):
        expected = operation(app, endpoint, method, swagger2=swagger2)
        where = f"{label}: {method} {path} (endpoint {endpoint!r})"
        documented = _normal(op.get("security", top))
        if documented != _normal(expected.security):
            problems.append(
                f"{where}: security documented as {op.get('security', top) or []}, enforced {expected.security}"
            )
        responses = op.get("responses") or {}
        for status in (401, 403):
            has, needs = str(status) in responses, status in expected.statuses
            if has != needs:
                problems.append(
                    f"{where}: {'documents' if has else 'does not document'} {status}, "
                    f"but the guards {'can' if needs else 'never'} answer {status}"
                )
    return problems


def check(app: Flask) -> list[str]:
    """Build every spec :func:`document` hooked into on ``app`` and compare it with the guards.

    :returns: One line per disagreement; a line saying nothing is documented
        when :func:`document` was never called for ``app``.
    """
    entries: list[tuple[str, cabc.Callable[[], Spec]]] = app.extensions.get(EXTENSION_KEY, [])
    if not entries:
        return ["no OpenAPI spec is documented: call gate.document(api) (APIFlask apps: init_app does)"]
    problems = []
    for kind, load in entries:
        with app.test_request_context():
            spec = load()
        if not isinstance(spec, dict) or "paths" not in spec:
            problems.append(f"{kind}: the framework could not build its spec")
            continue
        problems += check_spec(app, spec, label=kind)
    return problems
