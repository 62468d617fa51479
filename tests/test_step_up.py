"""Step-up authentication (RFC 9470): the claim checks and the challenge parameters."""

from __future__ import annotations

import typing as t

import pytest

from flask_authgate.challenges import challenges
from flask_authgate.errors import ERRORS
from flask_authgate.errors import AuthError
from flask_authgate.step_up import check_step_up
from flask_authgate.step_up import step_up_params

NOW = 1_800_000_000.0


def check(
    claims: dict[str, t.Any], acr: tuple[str, ...] = (), max_age: int | None = None, leeway: float = 0
) -> str | None:
    return check_step_up(claims, acr_values=acr, max_age=max_age, now=NOW, leeway=leeway)


def test_nothing_required() -> None:
    assert check({}) is None
    assert check({"acr": 5, "auth_time": "yesterday"}) is None


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"acr": "mfa"}, None),
        ({"acr": "hwk"}, None),
        ({"acr": "pwd"}, "step_up_acr"),
        ({"acr": "MFA"}, "step_up_acr"),
        ({"acr": "mfa hwk"}, "step_up_acr"),
        ({}, "step_up_acr"),
        ({"acr": None}, "step_up_acr"),
        ({"acr": ["mfa"]}, "step_up_acr"),
        ({"acr": 1}, "step_up_acr"),
        ({"amr": ["mfa"]}, "step_up_acr"),
    ],
)
def test_acr(claims: dict[str, t.Any], expected: str | None) -> None:
    assert check(claims, acr=("mfa", "hwk")) == expected


@pytest.mark.parametrize(
    ("auth_time", "leeway", "expected"),
    [
        (NOW, 0, None),
        (NOW - 300, 0, None),
        (NOW - 301, 0, "step_up_max_age"),
        (NOW - 301, 5, None),
        (NOW - 306, 5, "step_up_max_age"),
        (NOW - 299.5, 0, None),
        (NOW + 1, 0, "step_up_max_age"),
        (NOW + 1, 5, None),
        (str(int(NOW)), 0, "step_up_max_age"),
        (True, 0, "step_up_max_age"),
        (None, 0, "step_up_max_age"),
        ([NOW], 0, "step_up_max_age"),
        (10**400, 0, "step_up_max_age"),
        (float("nan"), 0, "step_up_max_age"),
        (float("-inf"), 0, "step_up_max_age"),
    ],
)
def test_max_age(auth_time: t.Any, leeway: float, expected: str | None) -> None:
    assert check({"auth_time": auth_time}, max_age=300, leeway=leeway) == expected


def test_a_token_without_auth_time_fails_max_age() -> None:
    assert check({"acr": "mfa"}, acr=("mfa",), max_age=3600) == "step_up_max_age"
    assert check({"acr": "mfa", "auth_time": NOW - 10}, acr=("mfa",), max_age=0) == "step_up_max_age"
    assert check({"acr": "mfa", "auth_time": NOW}, acr=("mfa",), max_age=0) is None


def test_acr_is_checked_first() -> None:
    assert check({"acr": "pwd"}, acr=("mfa",), max_age=60) == "step_up_acr"


def test_step_up_params() -> None:
    assert step_up_params(("mfa", "hwk"), 300) == [("acr_values", "mfa hwk"), ("max_age", "300")]
    assert step_up_params((), 0) == [("max_age", "0")]
    assert step_up_params(["urn:mace:incommon:iap:silver"], None) == [("acr_values", "urn:mace:incommon:iap:silver")]
    assert step_up_params((), None) == []


@pytest.mark.parametrize(
    "value",
    ["", "mfa hwk", "a\tb", 'say"hi', "back\\slash", "line\nbreak", "nul\x00", "café", "\x7f"],
)
def test_step_up_params_refuse_bad_acr_values(value: str) -> None:
    with pytest.raises(ValueError, match="acr value"):
        step_up_params((value,), None)


@pytest.mark.parametrize(
    ("acr_values", "max_age", "error"),
    [
        ("mfa", None, TypeError),
        ((b"mfa",), None, TypeError),
        ((5,), None, TypeError),
        ((), True, TypeError),
        ((), 1.5, TypeError),
        ((), "300", TypeError),
        ((), -1, ValueError),
        ((), 10**12, ValueError),
    ],
)
def test_step_up_params_refuse_bad_types(acr_values: t.Any, max_age: t.Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        step_up_params(acr_values, max_age)


def test_error_code() -> None:
    info = ERRORS["insufficient_user_authentication"]
    assert info.status == 401
    assert info.message == "A stronger or more recent authentication is required"
    err = AuthError("insufficient_user_authentication")
    assert err.code == 401
    assert err.error_code == "insufficient_user_authentication"


def test_rfc9470_challenge() -> None:
    params = tuple(step_up_params(("mfa", "hwk"), 300))
    assert challenges("insufficient_user_authentication", "api", step_up=params) == (
        'Bearer realm="api", error="insufficient_user_authentication", '
        'error_description="A stronger or more recent authentication is required", '
        'acr_values="mfa hwk", max_age="300"',
    )
    only_age = tuple(step_up_params((), 5))
    assert challenges("insufficient_user_authentication", "api", step_up=only_age) == (
        'Bearer realm="api", error="insufficient_user_authentication", '
        'error_description="A stronger or more recent authentication is required", max_age="5"',
    )


def test_rfc9470_challenge_for_a_dpop_request() -> None:
    params = tuple(step_up_params(("mfa",), None))
    algs = ("ES256", "PS256", "RS256", "EdDSA")
    meta = "https://api.example.com/.well-known/oauth-protected-resource"
    # "required": DPoP is the only scheme.
    assert challenges("insufficient_user_authentication", "api", dpop="required", dpop_algs=algs, step_up=params) == (
        'DPoP realm="api", algs="ES256 PS256 RS256 EdDSA", error="insufficient_user_authentication", '
        'error_description="A stronger or more recent authentication is required", acr_values="mfa"',
    )
    # "allowed": the scheme the token came with carries the error; the other stays bare.
    assert challenges(
        "insufficient_user_authentication",
        "api",
        dpop="allowed",
        dpop_algs=algs,
        scheme="DPoP",
        step_up=params,
        resource_metadata=meta,
    ) == (
        f'Bearer realm="api", resource_metadata="{meta}"',
        'DPoP realm="api", algs="ES256 PS256 RS256 EdDSA", error="insufficient_user_authentication", '
        'error_description="A stronger or more recent authentication is required", acr_values="mfa", '
        f'resource_metadata="{meta}"',
    )
