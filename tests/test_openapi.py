# The frameworks come through pytest.importorskip, so their decorators are untyped here.
# mypy: disable-error-code="untyped-decorator,name-defined,misc,unused-ignore"
"""OpenAPI: real specs built by APIFlask, flask-smorest and flask-restx, validated, say what the guards enforce."""

from __future__ import annotations

import json
import typing as t

import pytest
from conftest import SECRET
from conftest import make_app
from flask import Blueprint
from flask import Flask
from flask import abort
from flask.views import MethodView
from kit import add_view
from kit import bearer
from kit import login
from werkzeug.exceptions import HTTPException

from flask_authgate import AuthGate
from flask_authgate import Identity
from flask_authgate import authorize
from flask_authgate import ip_allowed
from flask_authgate import login_required
from flask_authgate import openapi
from flask_authgate import public
from flask_authgate import refresh_token_required
from flask_authgate import roles_required
from flask_authgate import scopes_accepted
from flask_authgate import scopes_required
from flask_authgate.responses import body

apiflask = pytest.importorskip("apiflask")
flask_smorest = pytest.importorskip("flask_smorest")
flask_restx = pytest.importorskip("flask_restx")
validator = pytest.importorskip("openapi_spec_validator")

ISSUER = "https://idp.example.test/realms/main"
LOGIN: list[dict[str, list[str]]] = [{"authgateBearer": []}]
ERR = {"400", "401", "403", "404", "503"}


def apiflask_app(config: dict[str, t.Any] | None = None) -> tuple[t.Any, AuthGate]:
    app = apiflask.APIFlask("openapi_test")
    app.config.update(TESTING=True, SECRET_KEY=SECRET, **(config or {}))
    gate = AuthGate(app)
    openapi.auto_document(app, gate)  # the line init_app runs
    return app, gate


def spec_of(app: t.Any) -> dict[str, t.Any]:
    spec = t.cast(dict[str, t.Any], app._get_spec("json", force_update=True))
    validator.validate(spec)
    return spec


def op(spec: dict[str, t.Any], path: str, method: str = "get") -> dict[str, t.Any]:
    return t.cast(dict[str, t.Any], spec["paths"][path][method])


def errors(operation: dict[str, t.Any]) -> set[str]:
    return set(operation["responses"]) & ERR


def contract(code: t.Any, fmt: str = "json") -> tuple[bytes, str]:
    return body(code, fmt)


def issued(app: Flask) -> str:
    """An access token for alice, issued by the app's own token service (the framework apps keep no gate)."""
    with app.app_context():
        return t.cast(str, app.extensions["authgate"].tokens.issue("alice", "access"))


Case = tuple[str, str, dict[str, str], str]


def assert_contract_bodies(
    client: t.Any, prefix: str, auth: dict[str, str], cases: list[Case], fmt: str = "json"
) -> None:
    """Each ``(method, path, headers, code)`` of ``cases`` is answered with the contract's ``code`` body, not cached;
    so are the framework app's ``prefix/forbidden`` (authorize(False)) and ``prefix/missing`` (a 404) views, with
    ``auth``, and a URL no route matches."""
    for method, path, headers, code in [
        *cases,
        ("GET", f"{prefix}/forbidden", auth, "forbidden"),
        ("GET", f"{prefix}/missing", auth, "not_found"),
        ("GET", "/nowhere", {}, "not_found"),
    ]:
        rv = client.open(path, method=method, headers=headers)
        assert (rv.data, rv.mimetype) == contract(code, fmt), (method, path)
        assert rv.headers["Cache-Control"] == "no-store", (method, path)


# -- schemes -------------------------------------------------------------------------------


def test_bearer_only_by_default() -> None:
    app, _ = apiflask_app()

    add_view(app, "/me", login_required, returns={})

    spec = spec_of(app)
    assert spec["components"]["securitySchemes"] == {
        "authgateBearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A bearer access token",
        }
    }
    assert op(spec, "/me")["security"] == LOGIN


@pytest.mark.parametrize(
    ("config", "schemes", "security"),
    [
        pytest.param(
            {"AUTHGATE_TOKEN_LOCATIONS": ["headers", "cookies"], "AUTHGATE_ACCESS_COOKIE_NAME": "at"},
            {"authgateBearer", "authgateCookie", "authgateRefreshCookie"},
            [{"authgateBearer": []}, {"authgateCookie": []}],
            id="cookies",
        ),
        pytest.param(
            {"AUTHGATE_TOKEN_LOCATIONS": ["cookies"]},
            {"authgateCookie", "authgateRefreshCookie"},
            [{"authgateCookie": []}],
            id="cookies-only",
        ),
        pytest.param(
            {"AUTHGATE_DPOP": "allowed"},
            {"authgateBearer", "authgateDPoP"},
            [{"authgateBearer": []}, {"authgateDPoP": []}],
            id="dpop-allowed",
        ),
        pytest.param({"AUTHGATE_DPOP": "required"}, {"authgateDPoP"}, [{"authgateDPoP": []}], id="dpop-required"),
        pytest.param(
            {"AUTHGATE_OIDC_ISSUER": ISSUER},
            {"authgateBearer", "authgateOIDC"},
            [{"authgateBearer": []}, {"authgateOIDC": []}],
            id="oidc",
        ),
    ],
)
def test_enabled_schemes(config: dict[str, t.Any], schemes: set[str], security: list[dict[str, list[str]]]) -> None:
    app, _ = apiflask_app(config)

    add_view(app, "/me", login_required, returns={})

    spec = spec_of(app)
    found = spec["components"]["securitySchemes"]
    assert set(found) == schemes
    assert op(spec, "/me")["security"] == security
    if "authgateCookie" in found:
        assert found["authgateCookie"]["in"] == "cookie"
        assert found["authgateCookie"]["name"] == config.get("AUTHGATE_ACCESS_COOKIE_NAME", "authgate_access")
    if "authgateDPoP" in found:
        assert found["authgateDPoP"]["type"] == "http"
        assert found["authgateDPoP"]["scheme"] == "DPoP"
    if "authgateOIDC" in found:
        assert found["authgateOIDC"] == {
            "type": "openIdConnect",
            "openIdConnectUrl": ISSUER + "/.well-known/openid-configuration",
        }
        assert errors(op(spec, "/me")) == {"400", "401", "503"}  # discovery and JWKS can be down


def test_api_key_header_once_a_loader_is_registered() -> None:
    app, gate = apiflask_app({"AUTHGATE_API_KEY_HEADER": "X-Key"})

    add_view(app, "/me", login_required, returns={})

    assert "authgateApiKey" not in spec_of(app)["components"]["securitySchemes"]

    @gate.api_key_loader
    def load(key: str) -> Identity | None:
        return None

    spec = spec_of(app)
    assert spec["components"]["securitySchemes"]["authgateApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Key",
        "description": "An API key",
    }
    assert op(spec, "/me")["security"] == [{"authgateBearer": []}, {"authgateApiKey": []}]


def test_scopes_are_an_oauth2_scheme_and_listed_per_operation() -> None:
    app, _ = apiflask_app()

    add_view(app, "/read", scopes_required("pets:read"), returns={})
    add_view(app, "/either", scopes_required("base"), scopes_accepted("a", "b"), returns={})

    spec = spec_of(app)
    oauth2 = spec["components"]["securitySchemes"]["authgateOAuth2"]
    assert oauth2["flows"] == {
        "clientCredentials": {
            "tokenUrl": "/token",
            "scopes": {
                "a": "The a scope",
                "b": "The b scope",
                "base": "The base scope",
                "pets:read": "The pets:read scope",
            },
        }
    }
    assert op(spec, "/read")["security"] == [{"authgateBearer": []}, {"authgateOAuth2": ["pets:read"]}]
    assert op(spec, "/either")["security"] == [
        {"authgateBearer": []},
        {"authgateOAuth2": ["a", "base"]},
        {"authgateOAuth2": ["b", "base"]},
    ]
    assert errors(op(spec, "/read")) == {"400", "401", "403"}


def test_scopes_go_on_the_issuer_scheme_when_there_is_one() -> None:
    app, _ = apiflask_app({"AUTHGATE_OIDC_ISSUER": ISSUER})

    add_view(app, "/read", scopes_required("pets:read"), returns={})

    spec = spec_of(app)
    assert "authgateOAuth2" not in spec["components"]["securitySchemes"]
    assert op(spec, "/read")["security"] == [{"authgateBearer": []}, {"authgateOIDC": ["pets:read"]}]


# -- per operation -------------------------------------------------------------------------------


def test_per_operation_requirements_and_responses() -> None:
    app, _ = apiflask_app({"AUTHGATE_TOKEN_LOCATIONS": ["headers", "cookies"]})

    add_view(app, "/open", returns={}, endpoint="open_view")
    add_view(app, "/admin", roles_required("admin"), returns={})
    add_view(app, "/office", ip_allowed("10.0.0.0/8"), returns={})
    add_view(app, "/write", login_required, methods=["POST"], returns={})
    add_view(app, "/refresh", refresh_token_required, methods=["POST"], returns={})

    @app.get("/mine")
    @login_required
    @openapi.refuses(403, 404)
    def mine() -> dict[str, str]:
        authorize(True, hide=True)
        return {}

    @roles_required("ops")  # above the route: the route serves the bare function, the hook enforces it
    @app.get("/misplaced")
    def misplaced() -> dict[str, str]:
        return {}

    class Pets(MethodView):
        def get(self) -> dict[str, str]:
            return {}

        @login_required
        def post(self) -> dict[str, str]:
            return {}

    app.add_url_rule("/pets", view_func=Pets.as_view("pets"))

    spec = spec_of(app)
    cookie: list[dict[str, list[str]]] = [{"authgateBearer": []}, {"authgateCookie": []}]
    assert "security" not in op(spec, "/open")
    assert errors(op(spec, "/open")) == set()
    assert op(spec, "/admin")["security"] == cookie
    assert errors(op(spec, "/admin")) == {"400", "401", "403"}
    assert "security" not in op(spec, "/office")
    assert errors(op(spec, "/office")) == {"403"}  # ip_allowed refuses without credentials
    assert errors(op(spec, "/write", "post")) == {"400", "401", "403"}  # csrf_failed on unsafe methods
    assert op(spec, "/refresh", "post")["security"] == [{"authgateBearer": []}, {"authgateRefreshCookie": []}]
    assert errors(op(spec, "/mine")) == {"400", "401", "403", "404"}
    assert op(spec, "/misplaced")["security"] == cookie
    assert errors(op(spec, "/misplaced")) == {"400", "401", "403"}
    assert "security" not in op(spec, "/pets")
    assert op(spec, "/pets", "post")["security"] == cookie
    assert op(spec, "/admin")["responses"]["401"] == {"$ref": "#/components/responses/AuthGate401"}


def test_default_deny_guards_everything_but_public() -> None:
    app, _ = apiflask_app({"AUTHGATE_DEFAULT_DENY": True})

    add_view(app, "/open", public, returns={}, endpoint="open_view")
    add_view(app, "/plain", returns={})

    spec = spec_of(app)
    assert op(spec, "/open")["security"] == []  # explicit: open although everything else is guarded
    assert errors(op(spec, "/open")) == set()
    assert op(spec, "/plain")["security"] == LOGIN
    assert errors(op(spec, "/plain")) == {"400", "401"}


def test_blueprint_rules_and_the_app_allow_list() -> None:
    app, gate = apiflask_app({"AUTHGATE_IP_ALLOWLIST": ["127.0.0.0/8"]})
    bp = apiflask.APIBlueprint("admin", __name__, url_prefix="/admin")

    add_view(bp, "/users", returns={})

    gate.protect(bp, scopes=["admin"])
    app.register_blueprint(bp)

    add_view(app, "/open", returns={}, endpoint="open_view")

    spec = spec_of(app)
    assert op(spec, "/admin/users")["security"] == [{"authgateBearer": []}, {"authgateOAuth2": ["admin"]}]
    assert errors(op(spec, "/open")) == {"403"}  # the app-wide allow list refuses on every route


def test_problem_format_content_type_and_schema() -> None:
    app, _ = apiflask_app({"AUTHGATE_ERROR_FORMAT": "problem"})

    add_view(app, "/me", login_required, returns={})

    spec = spec_of(app)
    response = spec["components"]["responses"]["AuthGate401"]
    assert response["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/AuthGateError"}}
    }
    schema = spec["components"]["schemas"]["AuthGateError"]
    assert schema["required"] == ["type", "title", "status", "detail", "code"]
    # The schema describes the body the app really sends.
    data = json.loads(contract("token_missing", "problem")[0])
    assert set(data) == set(schema["properties"])
    assert data["code"] in schema["properties"]["code"]["enum"]


def test_json_schema_matches_the_real_body() -> None:
    app, _ = apiflask_app()

    add_view(app, "/me", login_required, returns={})

    spec = spec_of(app)
    schema = spec["components"]["schemas"]["AuthGateError"]
    rv = app.test_client().get("/me")
    data = rv.get_json()
    assert set(data) == set(schema["required"]) == set(schema["properties"])
    assert data["code"] in schema["properties"]["code"]["enum"]
    assert data["status"] in schema["properties"]["status"]["enum"]
    assert set(spec["components"]["responses"]) == {f"AuthGate{s}" for s in (400, 401, 403, 404, 503)}


def test_document_refuses_other_objects() -> None:
    with pytest.raises(TypeError):
        openapi.document(object())
    with pytest.raises(ValueError):
        openapi.refuses(418)


# -- flask-smorest ---------------------------------------------------------------------------------


def smorest_app(config: dict[str, t.Any] | None = None) -> tuple[Flask, t.Any, t.Any]:
    app, _ = make_app({"API_TITLE": "pets", "API_VERSION": "1", "OPENAPI_VERSION": "3.0.3", **(config or {})})
    api = flask_smorest.Api(app)
    blp = flask_smorest.Blueprint("pets", __name__, url_prefix="/pets")

    @blp.route("/<int:pet_id>")
    class Pet(MethodView):
        @login_required
        def get(self, pet_id: int) -> dict[str, str]:
            return {}

        @roles_required("admin")
        def delete(self, pet_id: int) -> dict[str, str]:
            return {}

    add_view(blp, "/open", public, returns={}, endpoint="open_view")

    @blp.route("/forbidden")
    @login_required
    def forbidden() -> dict[str, str]:
        authorize(False)
        return {}

    @blp.route("/missing")
    def missing() -> dict[str, str]:
        flask_smorest.abort(404, message="no such pet")
        return {}

    api.register_blueprint(blp)
    openapi.document(api)
    return app, api, blp


def test_smorest_spec() -> None:
    _app, api, _ = smorest_app({"AUTHGATE_DEFAULT_DENY": True})
    spec = api.spec.to_dict()
    validator.validate(spec)
    assert spec["components"]["securitySchemes"]["authgateBearer"]["scheme"] == "bearer"
    assert op(spec, "/pets/{pet_id}")["security"] == LOGIN
    assert errors(op(spec, "/pets/{pet_id}")) == {"400", "401"}
    assert errors(op(spec, "/pets/{pet_id}", "delete")) == {"400", "401", "403"}
    assert op(spec, "/pets/open")["security"] == []
    assert op(spec, "/pets/missing")["security"] == LOGIN  # deny by default


def test_smorest_error_bodies_are_the_contract() -> None:
    app, _, _ = smorest_app({"AUTHGATE_DEFAULT_DENY": True})
    assert_contract_bodies(app.test_client(), "/pets", bearer(issued(app)), [("GET", "/pets/1", {}, "token_missing")])


# -- flask-restx ----------------------------------------------------------------------------------------


def restx_app(config: dict[str, t.Any] | None = None, *, documented: bool = True) -> tuple[Flask, t.Any]:
    app, _ = make_app(config)
    api = flask_restx.Api(app, prefix="/v1", doc=False)
    ns = api.namespace("pets")

    @ns.route("/<int:pet_id>")
    class Pet(flask_restx.Resource):
        def get(self, pet_id: int) -> dict[str, str]:
            return {}

        @roles_required("admin")
        def delete(self, pet_id: int) -> dict[str, str]:
            return {}

    @ns.route("/forbidden")
    class Forbidden(flask_restx.Resource):
        def get(self) -> dict[str, str]:
            authorize(False)
            return {}

    @ns.route("/missing")
    class Missing(flask_restx.Resource):
        def get(self) -> dict[str, str]:
            abort(404)

    @ns.route("/open")
    class Open(flask_restx.Resource):
        @public
        def get(self) -> dict[str, str]:
            return {}

    if documented:
        openapi.document(api)
    return app, api


def restx_spec(app: Flask, api: t.Any) -> dict[str, t.Any]:
    with app.test_request_context():
        spec = t.cast(dict[str, t.Any], api.__schema__)
    validator.validate(spec)
    return spec


def test_restx_spec_is_swagger2() -> None:
    app, api = restx_app({"AUTHGATE_DEFAULT_DENY": True, "AUTHGATE_ERROR_FORMAT": "problem"})
    spec = restx_spec(app, api)
    assert spec["swagger"] == "2.0"
    assert spec["securityDefinitions"] == {
        "authgateBearer": {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "A bearer token: `Authorization: Bearer <token>`",
        }
    }
    get = op(spec, "/pets/{pet_id}")
    assert get["security"] == LOGIN
    assert get["responses"]["401"] == {"$ref": "#/responses/AuthGate401"}
    assert "application/problem+json" in get["produces"]
    assert spec["responses"]["AuthGate401"]["schema"] == {"$ref": "#/definitions/AuthGateError"}
    assert errors(op(spec, "/pets/{pet_id}", "delete")) == {"400", "401", "403"}
    # @public on the Resource's method: restx views are MethodViews, the class carries no mark.
    assert op(spec, "/pets/open")["security"] == LOGIN


def test_restx_without_document_answers_its_own_body() -> None:
    """The bug: restx's handle_error builds {"message": ...} for the extension's 401."""
    app, _ = restx_app({"AUTHGATE_DEFAULT_DENY": True}, documented=False)
    rv = app.test_client().get("/v1/pets/1")
    assert rv.status_code == 401
    assert rv.data != contract("token_missing")[0]


@pytest.mark.parametrize("fmt", ["json", "problem"])
def test_restx_error_bodies_are_the_contract(fmt: str) -> None:
    app, _ = restx_app({"AUTHGATE_DEFAULT_DENY": True, "AUTHGATE_ERROR_FORMAT": fmt})
    client = app.test_client()
    auth = bearer(issued(app))
    cases = [
        ("GET", "/v1/pets/1", {}, "token_missing"),
        ("GET", "/v1/pets/1", bearer("x.y.z"), "token_invalid"),
        ("DELETE", "/v1/pets/1", auth, "insufficient_role"),
    ]
    assert_contract_bodies(client, "/v1/pets", auth, cases, fmt)
    assert client.get("/v1/pets/1").headers.getlist("WWW-Authenticate") == ['Bearer realm="api"']


def test_restx_handlers_of_the_app_still_win() -> None:
    app, api = restx_app({"AUTHGATE_DEFAULT_DENY": True})

    @api.errorhandler(HTTPException)
    def mine(err: Exception) -> tuple[dict[str, str], int]:
        return {"mine": "yes"}, 401

    assert app.test_client().get("/v1/pets/1").get_json()["mine"] == "yes"


# -- APIFlask error bodies ----------------------------------------------------------------------------------


def test_apiflask_error_bodies_are_the_contract() -> None:
    app, gate = apiflask_app({"AUTHGATE_DEFAULT_DENY": True})

    @app.get("/forbidden")
    def forbidden() -> dict[str, str]:
        authorize(False)
        return {}

    @app.get("/missing")
    def missing() -> dict[str, str]:
        abort(404)

    assert_contract_bodies(app.test_client(), "", login(app, gate), [("GET", "/forbidden", {}, "token_missing")])


# -- the CLI check ----------------------------------------------------------------------------------------------


def run_check(app: Flask) -> t.Any:
    return app.test_cli_runner().invoke(args=["authgate", "routes", "--check-openapi"])


def test_check_passes_on_consistent_apps() -> None:
    app, _ = apiflask_app({"AUTHGATE_DEFAULT_DENY": True})

    add_view(app, "/me", returns={})
    add_view(app, "/open", public, returns={}, endpoint="open_view")

    result = run_check(app)
    assert result.exit_code == 0, result.output
    for other in (smorest_app({"AUTHGATE_DEFAULT_DENY": True})[0], restx_app({"AUTHGATE_DEFAULT_DENY": True})[0]):
        result = run_check(other)
        assert result.exit_code == 0, result.output


def test_check_fails_when_the_apiflask_spec_is_edited() -> None:
    app, _ = apiflask_app()

    @app.get("/pets/<int:pet_id>")
    @roles_required("admin")
    def get_pet(pet_id: int) -> dict[str, str]:
        return {}

    add_view(app, "/open", returns={}, endpoint="open_view")

    @app.spec_processor
    def edit(spec: dict[str, t.Any]) -> dict[str, t.Any]:
        del spec["paths"]["/pets/{pet_id}"]["get"]["security"]
        del spec["paths"]["/pets/{pet_id}"]["get"]["responses"]["403"]
        spec["paths"]["/open"]["get"]["responses"]["401"] = {"description": "stale"}
        return spec

    result = run_check(app)
    assert result.exit_code == 1
    assert "GET /pets/{pet_id} (endpoint 'get_pet'): security documented as []" in result.output
    assert "GET /pets/{pet_id} (endpoint 'get_pet'): does not document 403" in result.output
    assert "GET /open (endpoint 'open_view'): documents 401, but the guards never answer 401" in result.output


def test_check_fails_when_the_restx_and_smorest_specs_are_edited() -> None:
    app, api = restx_app({"AUTHGATE_DEFAULT_DENY": True})
    spec = restx_spec(app, api)
    spec["paths"]["/pets/{pet_id}"]["get"]["security"] = []  # the cached schema, edited
    result = run_check(app)
    assert result.exit_code == 1
    assert "flask-restx: GET /pets/{pet_id}" in result.output

    app, sapi, _ = smorest_app()
    to_dict = sapi.spec.to_dict

    def edited() -> dict[str, t.Any]:
        out = t.cast(dict[str, t.Any], to_dict())
        del out["paths"]["/pets/{pet_id}"]["delete"]["responses"]["401"]
        return out

    sapi.spec.to_dict = edited
    result = run_check(app)
    assert result.exit_code == 1
    assert "flask-smorest: DELETE /pets/{pet_id} (endpoint 'pets.Pet'): does not document 401" in result.output


def test_check_fails_when_nothing_is_documented() -> None:
    app, _ = make_app()
    result = run_check(app)
    assert result.exit_code == 1
    assert "call gate.document(api)" in result.output


def test_restx_api_on_a_blueprint() -> None:
    # Blueprint-based restx Api: document() records it when the blueprint is registered.
    app, _ = make_app()
    bp = Blueprint("api", __name__, url_prefix="/api")
    api = flask_restx.Api(bp, doc=False)
    ns = api.namespace("pets")

    @ns.route("/")
    class Pets(flask_restx.Resource):
        @login_required
        def get(self) -> dict[str, str]:
            return {}

    openapi.document(api)
    app.register_blueprint(bp)
    assert run_check(app).exit_code == 0
    spec = restx_spec(app, api)
    assert op(spec, "/pets/")["security"] == LOGIN


def test_public_view_of_a_protected_blueprint_is_explicitly_open() -> None:
    app, gate = apiflask_app()
    bp = apiflask.APIBlueprint("shop", __name__, url_prefix="/shop")

    add_view(bp, "/items", returns={})
    add_view(bp, "/about", public, returns={})

    gate.protect(bp)
    app.register_blueprint(bp)

    add_view(app, "/plain", returns={})

    spec = spec_of(app)
    assert op(spec, "/shop/items")["security"] == LOGIN
    assert op(spec, "/shop/about")["security"] == []
    assert "security" not in op(spec, "/plain")  # nothing would guard it: no explicit []


class SharedStore:
    """A revocation store of another process (not the in-memory one): it can be down."""

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        return [None for _ in keys]

    def put(self, key: str, value: bytes, ttl: float) -> None:
        pass

    def put_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        return True


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"AUTHGATE_REVOCATION_STORE": SharedStore()}, id="shared-store"),
        pytest.param(
            {"AUTHGATE_JWKS_URL": "https://idp.example.test/jwks.json", "AUTHGATE_JWT_ALGORITHMS": ["RS256"]},
            id="jwks",
        ),
    ],
)
def test_backends_document_503(config: dict[str, t.Any]) -> None:
    app, _ = apiflask_app(config)

    add_view(app, "/me", login_required, returns={})
    add_view(app, "/open", returns={}, endpoint="open_view")

    spec = spec_of(app)
    assert errors(op(spec, "/me")) == {"400", "401", "503"}
    assert errors(op(spec, "/open")) == set()  # an open view never consults a backend
    assert "Retry-After" in spec["components"]["responses"]["AuthGate503"]["headers"]


def test_smorest_openapi_2_and_top_level_security() -> None:
    app, _ = make_app(
        {
            "API_TITLE": "pets",
            "API_VERSION": "1",
            "OPENAPI_VERSION": "2.0",
            "API_SPEC_OPTIONS": {"security": [{"other": []}], "securityDefinitions": {"other": _header("X-Other")}},
        }
    )
    api = flask_smorest.Api(app)
    blp = flask_smorest.Blueprint("pets", __name__, url_prefix="/pets")

    add_view(blp, "/", login_required, returns=lambda: [], endpoint="pets")
    add_view(blp, "/open", returns={}, endpoint="open_view")

    api.register_blueprint(blp)
    openapi.document(api)
    spec = api.spec.to_dict()
    validator.validate(spec)
    assert spec["swagger"] == "2.0"
    assert op(spec, "/pets/")["security"] == LOGIN
    assert op(spec, "/pets/")["responses"]["401"] == {"$ref": "#/responses/AuthGate401"}
    # Open, and said so: it must not inherit the document's top-level requirement.
    assert op(spec, "/pets/open")["security"] == []
    assert run_check(app).exit_code == 0


def _header(name: str) -> dict[str, str]:
    return {"type": "apiKey", "in": "header", "name": name}


def test_swagger2_schemes() -> None:
    app, gate = make_app({"AUTHGATE_TOKEN_LOCATIONS": ["headers", "cookies"], "AUTHGATE_DPOP": "allowed"})

    @gate.api_key_loader
    def load(key: str) -> Identity | None:
        return None

    api = flask_restx.Api(app, doc=False)

    @api.route("/read")
    class Read(flask_restx.Resource):
        @scopes_required("pets:read")
        def get(self) -> dict[str, str]:
            return {}

        @login_required
        @openapi.refuses(404)
        def put(self) -> dict[str, str]:
            return {}

    openapi.document(api, token_url="https://auth.example.test/token")
    spec = restx_spec(app, api)
    assert set(spec["securityDefinitions"]) == {"authgateBearer", "authgateDPoP", "authgateOAuth2", "authgateApiKey"}
    assert spec["securityDefinitions"]["authgateOAuth2"] == {
        "type": "oauth2",
        "flow": "application",
        "tokenUrl": "https://auth.example.test/token",
        "scopes": {"pets:read": "The pets:read scope"},
    }
    assert op(spec, "/read")["security"] == [
        {"authgateBearer": []},
        {"authgateDPoP": []},
        {"authgateApiKey": []},
        {"authgateOAuth2": ["pets:read"]},
    ]
    # Cookies: CSRF on unsafe methods; @refuses on the Resource method.
    assert errors(op(spec, "/read", "put")) == {"400", "401", "403", "404"}
    assert run_check(app).exit_code == 0
