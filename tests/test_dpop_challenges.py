"""The WWW-Authenticate lines for DPoP, step-up and resource_metadata (merged into challenges.py by the lead)."""

from __future__ import annotations

import typing as t

import pytest

from flask_authgate.challenges import challenge
from flask_authgate.challenges import challenges
from flask_authgate.challenges import use_dpop_nonce_challenge
from flask_authgate.errors import ERRORS
from flask_authgate.resource_metadata import metadata_url

ALGS = ("ES256", "PS256", "RS256", "EdDSA")
META = metadata_url("https://api.example.com")
RM = f'resource_metadata="{META}"'
BEARER = 'Bearer realm="api"'
DPOP = 'DPoP realm="api", algs="ES256 PS256 RS256 EdDSA"'
#: DESIGN.md, "DPoP (RFC 9449)": the exact challenge of a bad proof.
PROOF_INVALID = (
    'DPoP realm="api", algs="ES256 PS256 RS256 EdDSA", error="invalid_dpop_proof", '
    'error_description="The DPoP proof is invalid"'
)
DPOP_TOKEN_INVALID = f'{DPOP}, error="invalid_token", error_description="The access token is invalid"'
BEARER_TOKEN_INVALID = f'{BEARER}, error="invalid_token", error_description="The access token is invalid"'


def _legacy(error_code: t.Any, realm: str, api_key: bool, scopes: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The challenge builder of version 0.1, kept as the oracle of "same as today"."""
    info = ERRORS[error_code]
    kind = info.challenge
    if kind is None:
        return ()
    bearer = f'Bearer realm="{realm}"'
    if kind == "insufficient_scope":
        scope = f', scope="{" ".join(scopes)}"' if scopes else ""
        return (f'{bearer}, error="insufficient_scope"{scope}',)
    if kind == "invalid_request":
        return (f'{bearer}, error="invalid_request"',)
    api = f'ApiKey realm="{realm}"'
    if kind == "invalid_token":
        bearer += f', error="invalid_token", error_description="{info.message}"'
    elif kind == "invalid_key":
        api += f', error="invalid_key", error_description="{info.message}"'
    return (bearer, api) if api_key else (bearer,)


@pytest.mark.parametrize("code", sorted(set(ERRORS) - {"dpop_proof_invalid", "insufficient_user_authentication"}))
@pytest.mark.parametrize("api_key", [False, True])
def test_same_as_today_without_the_new_features(code: t.Any, api_key: bool) -> None:
    scopes = ("read", "write") if code == "insufficient_scope" else ()
    assert challenges(code, "api", api_key=api_key, scopes=scopes) == _legacy(code, "api", api_key, scopes)


@pytest.mark.parametrize(
    ("code", "scheme", "mode", "expected"),
    [
        # "required": DPoP only.
        ("token_missing", None, "required", [DPOP]),
        ("token_missing", "Bearer", "required", [DPOP]),
        ("dpop_proof_invalid", "DPoP", "required", [PROOF_INVALID]),
        ("token_invalid", "DPoP", "required", [DPOP_TOKEN_INVALID]),
        (
            "token_expired",
            "DPoP",
            "required",
            [f'{DPOP}, error="invalid_token", error_description="The access token expired"'],
        ),
        ("invalid_request", None, "required", [f'{DPOP}, error="invalid_request"']),
        ("insufficient_role", "DPoP", "required", []),
        ("auth_unavailable", "DPoP", "required", []),
        # "allowed": a Bearer and a DPoP line on every 401, the error on the scheme used.
        ("token_missing", None, "allowed", [BEARER, DPOP]),
        ("unauthorized", None, "allowed", [BEARER, DPOP]),
        ("dpop_proof_invalid", "DPoP", "allowed", [BEARER, PROOF_INVALID]),
        ("dpop_proof_invalid", None, "allowed", [BEARER, PROOF_INVALID]),
        ("token_invalid", "Bearer", "allowed", [BEARER_TOKEN_INVALID, DPOP]),
        ("token_invalid", None, "allowed", [BEARER_TOKEN_INVALID, DPOP]),
        ("token_invalid", "DPoP", "allowed", [BEARER, DPOP_TOKEN_INVALID]),
        ("invalid_request", "DPoP", "allowed", [f'{DPOP}, error="invalid_request"']),
        ("invalid_request", None, "allowed", [f'{BEARER}, error="invalid_request"']),
    ],
)
def test_dpop_modes(code: t.Any, scheme: t.Any, mode: t.Any, expected: list[str]) -> None:
    assert list(challenges(code, "api", dpop=mode, dpop_algs=ALGS, scheme=scheme)) == expected


def test_insufficient_scope_on_the_scheme_used() -> None:
    assert challenges(
        "insufficient_scope", "api", dpop="allowed", dpop_algs=ALGS, scheme="DPoP", scopes=("write",)
    ) == (f'{DPOP}, error="insufficient_scope", scope="write"',)
    assert challenges("insufficient_scope", "api", dpop="allowed", dpop_algs=ALGS, scheme="Bearer") == (
        f'{BEARER}, error="insufficient_scope"',
    )


def test_resource_metadata_on_every_oauth_challenge() -> None:
    assert challenges("token_missing", "api", api_key=True, dpop="allowed", dpop_algs=ALGS, resource_metadata=META) == (
        f"{BEARER}, {RM}",
        f"{DPOP}, {RM}",
        'ApiKey realm="api"',  # RFC 9728 §5.1 is about OAuth schemes
    )
    assert challenges("dpop_proof_invalid", "api", dpop="required", dpop_algs=ALGS, resource_metadata=META) == (
        f"{PROOF_INVALID}, {RM}",
    )
    assert challenges("insufficient_scope", "api", scopes=("a", "b"), resource_metadata=META) == (
        f'{BEARER}, error="insufficient_scope", scope="a b", {RM}',
    )
    assert challenges("insufficient_role", "api", resource_metadata=META) == ()


def test_api_key_errors_keep_oauth_lines_bare() -> None:
    assert challenges("api_key_invalid", "api", api_key=True, dpop="allowed", dpop_algs=ALGS) == (
        BEARER,
        DPOP,
        'ApiKey realm="api", error="invalid_key", error_description="The API key is invalid"',
    )


def test_use_dpop_nonce() -> None:
    assert use_dpop_nonce_challenge("api", algs=ALGS, resource_metadata=META) == (
        f'{DPOP}, error="use_dpop_nonce", error_description="The DPoP proof must carry the server nonce", {RM}'
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"realm": 'a"b'},
        {"realm": "a\\b"},
        {"realm": "a\r\nX-Injected: 1"},
        {"algs": ('ES256"',)},
        {"resource_metadata": 'https://x/"'},
        {"params": (("acr_values", "a\\b"),)},
        {"error_description": "caf\u00e9"},
    ],
)
def test_values_that_would_need_escaping_are_refused(kwargs: dict[str, t.Any]) -> None:
    args: dict[str, t.Any] = {"realm": "api", "algs": ALGS, "error": "invalid_token", **kwargs}
    with pytest.raises(ValueError, match="printable ASCII"):
        challenge("DPoP", args.pop("realm"), **args)


def test_every_fixed_message_is_quotable() -> None:
    for info in ERRORS.values():
        challenge("Bearer", "api", error="x", error_description=info.message)
