"""Finding the raw credentials of a request: the strict ``Authorization`` parser, cookies, API keys, DPoP."""

from __future__ import annotations

import typing as t

import pytest
from werkzeug.datastructures import MultiDict

from flask_authgate.credentials import MAX_CREDENTIAL_LENGTH
from flask_authgate.credentials import Credentials
from flask_authgate.credentials import find
from flask_authgate.credentials import parse_authorization
from flask_authgate.credentials import present
from flask_authgate.errors import AuthError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("Bearer abc.def.ghi", ("Bearer", "abc.def.ghi"), id="bearer"),
        pytest.param("bearer   abc", ("Bearer", "abc"), id="case-and-spaces"),
        pytest.param("BEARER a+b/c=", ("Bearer", "a+b/c="), id="b64token-chars"),
        pytest.param("Basic Zm9vOmJhcg==", None, id="other-scheme"),
        pytest.param("Bearer", None, id="scheme-alone"),
        pytest.param("Bearer    ", None, id="scheme-and-spaces"),
        pytest.param("", None, id="empty"),
        pytest.param("DPoP abc", None, id="dpop-not-spoken"),
    ],
)
def test_parse_authorization(value: str, expected: tuple[str, str] | None) -> None:
    assert parse_authorization(value) == expected


def refusal(value: str) -> str:
    """The error code ``parse_authorization`` refuses ``value`` with."""
    with pytest.raises(AuthError) as info:
        parse_authorization(value)
    return info.value.error_code


@pytest.mark.parametrize(
    "value",
    [
        pytest.param('Bearer abc,error="x"', id="parameters"),
        pytest.param("Bearer a b", id="space-inside"),
        pytest.param("Bearer " + "a" * MAX_CREDENTIAL_LENGTH, id="too-long"),
        pytest.param("Bearer caf\u00e9", id="non-ascii"),
    ],
)
def test_parse_authorization_refuses_a_malformed_token(value: str) -> None:
    assert refusal(value) == "token_invalid"


@pytest.mark.parametrize(
    "value", ["Bearer abc, Bearer def", "Bearer abc, Basic Zm9v"], ids=["two-lines", "two-schemes"]
)
def test_parse_authorization_refuses_credentials_sent_twice(value: str) -> None:
    assert refusal(value) == "invalid_request"


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        pytest.param("allowed", "DPoP abc", ("DPoP", "abc"), id="allowed-dpop"),
        pytest.param("allowed", "Bearer abc", ("Bearer", "abc"), id="allowed-bearer"),
        pytest.param("required", "dpop abc", ("DPoP", "abc"), id="required-dpop"),
        pytest.param("required", "Bearer abc", None, id="required-bearer-not-spoken"),
    ],
)
def test_dpop_modes(mode: t.Any, value: str, expected: tuple[str, str] | None) -> None:
    assert parse_authorization(value, mode) == expected


def environ(**headers: str) -> dict[str, t.Any]:
    return {"HTTP_" + k.upper(): v for k, v in headers.items()}


def test_find_returns_the_one_credential() -> None:
    found = find(environ(authorization="Bearer abc"), None, cookie_name=None, api_key_environ=None)
    assert found == Credentials("abc", "header", "Bearer", None)
    cookies = MultiDict([("authgate_access", "tok")])
    assert find({}, cookies, cookie_name="authgate_access", api_key_environ=None) == Credentials("tok", "cookie")
    key = find(environ(x_api_key="k-1"), None, cookie_name=None, api_key_environ="HTTP_X_API_KEY")
    assert key == Credentials("k-1", "api_key")
    assert find({}, None, cookie_name=None, api_key_environ=None) is None


@pytest.mark.parametrize(
    ("env", "cookies", "code"),
    [
        pytest.param(
            environ(authorization="Bearer abc"), [("authgate_access", "tok")], "invalid_request", id="header-and-cookie"
        ),
        pytest.param({}, [("authgate_access", "a"), ("authgate_access", "b")], "invalid_request", id="cookie-twice"),
        pytest.param(environ(x_api_key="a, b"), [], "invalid_request", id="api-key-twice"),
        pytest.param(environ(x_api_key="k\x01"), [], "api_key_invalid", id="api-key-control-char"),
        pytest.param({}, [("authgate_access", "a b")], "token_invalid", id="cookie-not-b64token"),
        pytest.param(environ(authorization="DPoP abc"), [], "dpop_proof_invalid", id="dpop-without-proof"),
        pytest.param(environ(authorization="DPoP abc", dpop="a.b.c, a.b.c"), [], "dpop_proof_invalid", id="two-proofs"),
    ],
)
def test_find_refuses(env: dict[str, t.Any], cookies: list[tuple[str, str]], code: str) -> None:
    with pytest.raises(AuthError) as info:
        find(
            env,
            MultiDict(cookies),
            cookie_name="authgate_access",
            api_key_environ="HTTP_X_API_KEY",
            dpop="allowed",
        )
    assert info.value.error_code == code


def test_the_dpop_proof_travels_with_the_token() -> None:
    found = find(
        environ(authorization="DPoP abc", dpop="p.r.f"), None, cookie_name=None, api_key_environ=None, dpop="allowed"
    )
    assert found == Credentials("abc", "header", "DPoP", "p.r.f")


def test_header_off_ignores_the_authorization_header() -> None:
    assert find(environ(authorization="Bearer abc"), None, header=False, cookie_name=None, api_key_environ=None) is None


def test_present_is_what_a_preflight_looks_at() -> None:
    assert present(environ(authorization="x"), cookie_name=None, api_key_environ=None)
    assert present({"HTTP_COOKIE": "authgate_access=t"}, cookie_name="authgate_access", api_key_environ=None)
    assert not present({"HTTP_COOKIE": "other=t"}, cookie_name="authgate_access", api_key_environ=None)
    assert not present({}, cookie_name=None, api_key_environ="HTTP_X_API_KEY")
