"""Claim mapping (``flask_authgate.claims``): names of any spelling, dotted paths, unions, callables."""

from __future__ import annotations

import collections.abc as cabc
import types
import typing as t

import pytest

from flask_authgate.claims import ClaimMapping
from flask_authgate.claims import lookup
from flask_authgate.claims import parse_scope_string
from flask_authgate.errors import AuthError
from flask_authgate.errors import ConfigError

KEYCLOAK = {
    "sub": "f:1",
    "realm_access": {"roles": ["offline_access", "admin"]},
    "resource_access": {"my-app": {"roles": ["editor"]}, "account": {"roles": ["view-profile"]}},
    "scope": "openid profile orders:read",
}


def roles(spec: t.Any, claims: cabc.Mapping[str, t.Any]) -> frozenset[str]:
    return ClaimMapping.parse(spec, key="AUTHGATE_ROLES_CLAIM", kind="roles").extract(claims)


def scopes(spec: t.Any, claims: cabc.Mapping[str, t.Any]) -> frozenset[str]:
    return ClaimMapping.parse(spec, key="AUTHGATE_SCOPES_CLAIM", kind="scopes").extract(claims)


def refused(fn: cabc.Callable[[], t.Any]) -> str:
    with pytest.raises(AuthError) as info:
        fn()
    assert info.value.error_code == "token_invalid"
    assert info.value.code == 401
    return t.cast(str, info.value.reason)


@pytest.mark.parametrize(
    ("spec", "claims", "expected"),
    [
        pytest.param("roles", {"roles": ["a", "b"]}, {"a", "b"}, id="plain"),
        pytest.param("cognito:groups", {"cognito:groups": ["admins"]}, {"admins"}, id="colon"),
        pytest.param(
            "https://example.com/roles", {"https://example.com/roles": ["admin"]}, {"admin"}, id="namespaced-url"
        ),
        pytest.param("realm_access.roles", KEYCLOAK, {"offline_access", "admin"}, id="realm-path"),
        pytest.param("resource_access.my-app.roles", KEYCLOAK, {"editor"}, id="client-path"),
        pytest.param(
            ["realm_access.roles", "resource_access.my-app.roles"],
            KEYCLOAK,
            {"offline_access", "admin", "editor"},
            id="union",
        ),
        pytest.param("roles", {}, set(), id="absent"),
        pytest.param("roles", {"roles": None}, set(), id="null"),
        pytest.param("roles", {"roles": []}, set(), id="empty-list"),
        pytest.param("realm_access.roles", {"sub": "x"}, set(), id="path-absent"),
        pytest.param("realm_access.roles", {"realm_access": None}, set(), id="path-through-null"),
        pytest.param("realm_access.roles", {"realm_access": {}}, set(), id="path-leaf-absent"),
        pytest.param(
            "realm_access.roles",
            {"realm_access.roles": ["top"], "realm_access": {"roles": ["nested"]}},
            {"top"},
            id="exact-top-level-name-wins",
        ),
        pytest.param(
            "https://example.com/roles",
            {"https://example": {"com/roles": ["path"]}},
            {"path"},
            id="url-name-as-path-when-absent",
        ),
        pytest.param("a..b", {"a": {"": {"b": ["x"]}}}, set(), id="empty-segment-is-no-path"),
        pytest.param("roles", types.MappingProxyType({"roles": ("a",)}), {"a"}, id="frozen-claims"),
        pytest.param("r.x", {"r": types.MappingProxyType({"x": ["a"]})}, {"a"}, id="frozen-nested"),
    ],
)
def test_roles_mapping(spec: t.Any, claims: dict[str, t.Any], expected: set[str]) -> None:
    assert roles(spec, claims) == expected


@pytest.mark.parametrize(
    ("claims", "spec"),
    [
        pytest.param({"roles": "admin"}, "roles", id="a-bare-string"),
        pytest.param({"roles": ["admin", 1]}, "roles", id="a-number-inside"),
        pytest.param({"roles": [["admin"]]}, "roles", id="nested-list"),
        pytest.param({"roles": {"admin": True}}, "roles", id="an-object"),
        pytest.param({"roles": True}, "roles", id="a-boolean"),
        pytest.param({"realm_access": "admin"}, "realm_access.roles", id="path-through-a-string"),
        pytest.param({"realm_access": ["roles"]}, "realm_access.roles", id="path-through-a-list"),
        pytest.param({"a": ["x"], "b": "y"}, ["a", "b"], id="one-bad-member-of-a-union"),
    ],
)
def test_roles_of_the_wrong_type_are_token_invalid(claims: dict[str, t.Any], spec: t.Any) -> None:
    assert refused(lambda: roles(spec, claims)) == "claim_type"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("read write", {"read", "write"}, id="two"),
        pytest.param("orders:read https://api.example.com/x", {"orders:read", "https://api.example.com/x"}, id="uri"),
        pytest.param("", set(), id="empty"),
        pytest.param(["read", "write"], {"read", "write"}, id="a-list"),
        pytest.param("a!#[]~", {"a!#[]~"}, id="edges-of-the-grammar"),
    ],
)
def test_scopes(value: t.Any, expected: set[str]) -> None:
    assert scopes("scope", {"scope": value}) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("read\tadmin", id="tab"),
        pytest.param("read  admin", id="double-space"),
        pytest.param(" read", id="leading-space"),
        pytest.param("read ", id="trailing-space"),
        pytest.param("read\nadmin", id="newline"),
        pytest.param("read\u00a0admin", id="nbsp"),
        pytest.param('re"ad', id="quote"),
        pytest.param("re\\ad", id="backslash"),
        pytest.param("réad", id="non-ascii"),
        pytest.param(["read admin"], id="space-inside-a-list-item"),
        pytest.param(["read\tadmin"], id="tab-inside-a-list-item"),
        pytest.param([""], id="empty-list-item"),
        pytest.param(["read", 5], id="number-in-list"),
        pytest.param(5, id="number"),
        pytest.param({"read": True}, id="object"),
    ],
)
def test_scopes_outside_the_rfc6749_grammar_are_token_invalid(value: t.Any) -> None:
    assert refused(lambda: scopes("scope", {"scope": value})) == "claim_type"


def test_scope_union_of_string_and_permissions() -> None:
    claims = {"scope": "openid read:patients", "permissions": ["read:patients", "write:patients"]}
    assert scopes(["scope", "permissions"], claims) == {"openid", "read:patients", "write:patients"}


def test_parse_scope_string_is_strict() -> None:
    assert parse_scope_string("a b") == {"a", "b"}
    assert refused(lambda: parse_scope_string("a\tb")) == "claim_type"


# -- callables -------------------------------------------------------------------------------


def test_callable_mapping() -> None:
    def from_groups(claims: cabc.Mapping[str, t.Any]) -> cabc.Iterable[str]:
        return [g.removeprefix("role-") for g in claims.get("groups", []) if g.startswith("role-")]

    assert roles(from_groups, {"groups": ["role-admin", "staff"]}) == {"admin"}


def test_callable_may_return_a_generator_or_none() -> None:
    assert roles(lambda c: (r for r in ["a", "b"]), {}) == {"a", "b"}
    assert roles(lambda c: None, {}) == frozenset()


@pytest.mark.parametrize(
    "result",
    [
        pytest.param("admin", id="a-string"),
        pytest.param(b"admin", id="bytes"),
        pytest.param(["admin", 1], id="a-number-inside"),
        pytest.param(5, id="not-iterable"),
        pytest.param([None], id="none-inside"),
    ],
)
def test_callable_returning_non_strings_is_token_invalid(result: t.Any) -> None:
    assert refused(lambda: roles(lambda c: result, {})) == "claim_type"


def test_callable_scopes_are_checked_against_the_grammar() -> None:
    assert refused(lambda: scopes(lambda c: ["read\tadmin"], {})) == "claim_type"


def test_callable_that_raises_is_token_invalid_without_its_text(caplog: pytest.LogCaptureFixture) -> None:
    def broken(claims: cabc.Mapping[str, t.Any]) -> cabc.Iterable[str]:
        raise KeyError("secret-detail")

    assert refused(lambda: roles(broken, {})) == "claim_mapping"
    assert "KeyError" in caplog.text
    assert "secret-detail" not in caplog.text


def test_callable_may_raise_an_auth_error() -> None:
    def unavailable(claims: cabc.Mapping[str, t.Any]) -> cabc.Iterable[str]:
        raise AuthError("auth_unavailable", retry_after=5)

    with pytest.raises(AuthError) as info:
        roles(unavailable, {})
    assert info.value.error_code == "auth_unavailable"


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("", "AUTHGATE_ROLES_CLAIM must be a non-empty claim name", id="empty"),
        pytest.param([], "AUTHGATE_ROLES_CLAIM must be a claim name", id="empty-list"),
        pytest.param(5, "AUTHGATE_ROLES_CLAIM must be a claim name", id="number"),
        pytest.param({"a": 1}, "AUTHGATE_ROLES_CLAIM must be a claim name", id="mapping"),
        pytest.param(["roles", 5], "AUTHGATE_ROLES_CLAIM[1] must be a non-empty claim name", id="number-in-list"),
        pytest.param("roles\n", "AUTHGATE_ROLES_CLAIM must be a non-empty claim name", id="newline"),
        pytest.param(" roles", "AUTHGATE_ROLES_CLAIM has leading or trailing spaces", id="space"),
        pytest.param(["roles", "roles"], "AUTHGATE_ROLES_CLAIM names the same claim twice", id="duplicate"),
    ],
)
def test_bad_specs_are_config_errors_naming_the_key(value: t.Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ClaimMapping.parse(value, key="AUTHGATE_ROLES_CLAIM", kind="roles")


def test_key_passed_in_is_named() -> None:
    with pytest.raises(ConfigError, match=r"AUTHGATE_TRUSTED_ISSUERS\[1\]\.roles_claim"):
        ClaimMapping.parse(7, key="AUTHGATE_TRUSTED_ISSUERS[1].roles_claim", kind="roles")


def test_describe() -> None:
    assert ClaimMapping.parse(["a", "b.c"], key="K", kind="roles").describe() == "a + b.c"
    assert ClaimMapping.parse(lambda c: [], key="K", kind="roles").describe() == "<function>"


def test_lookup_prefers_the_exact_name() -> None:
    assert lookup({"a.b": 1, "a": {"b": 2}}, "a.b") == 1
    assert lookup({"a": {"b": 2}}, "a.b") == 2
    assert lookup({"a": {"b": 2}}, "a") == {"b": 2}
