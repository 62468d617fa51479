"""Protected-resource metadata (RFC 9728): configuration checks, the well-known path, the document."""

from __future__ import annotations

import json
import typing as t

import pytest

from flask_authgate.errors import ConfigError
from flask_authgate.resource_metadata import COMPUTED_FIELDS
from flask_authgate.resource_metadata import build_metadata
from flask_authgate.resource_metadata import metadata_path
from flask_authgate.resource_metadata import metadata_url
from flask_authgate.resource_metadata import validate_extra
from flask_authgate.resource_metadata import validate_resource

ALGS = ("ES256", "PS256", "RS256", "EdDSA")


@pytest.mark.parametrize(
    ("resource", "path", "url"),
    [
        # RFC 9728 §3.1's two examples.
        (
            "https://resource.example.com",
            "/.well-known/oauth-protected-resource",
            "https://resource.example.com/.well-known/oauth-protected-resource",
        ),
        (
            "https://resource.example.com/resource1",
            "/.well-known/oauth-protected-resource/resource1",
            "https://resource.example.com/.well-known/oauth-protected-resource/resource1",
        ),
        (
            "https://api.example.com/",
            "/.well-known/oauth-protected-resource",
            "https://api.example.com/.well-known/oauth-protected-resource",
        ),
        (
            "https://api.example.com:8443/v1/mcp",
            "/.well-known/oauth-protected-resource/v1/mcp",
            "https://api.example.com:8443/.well-known/oauth-protected-resource/v1/mcp",
        ),
        (
            "http://localhost:5000",
            "/.well-known/oauth-protected-resource",
            "http://localhost:5000/.well-known/oauth-protected-resource",
        ),
    ],
)
def test_metadata_location(resource: str, path: str, url: str) -> None:
    assert validate_resource(resource) == resource
    assert metadata_path(resource) == path
    assert metadata_url(resource) == url


@pytest.mark.parametrize(
    "value",
    ["https://api.example.com", "https://API.example.com/Mixed/Case", "http://127.0.0.1:8000/api", "http://[::1]:5000"],
)
def test_resource_is_kept_exactly(value: str) -> None:
    # RFC 9728 §3.3: clients compare the resource with the URL they used, character for character.
    assert validate_resource(value) == value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (None, "must be a string"),
        (b"https://api.example.com", "must be a string"),
        ("", "non-empty"),
        ("api.example.com", "https URL"),
        ("/api", "https URL"),
        ("http://api.example.com", "https URL"),
        ("http://localhost.evil.example", "https URL"),
        ("ftp://api.example.com", "https URL"),
        ("https://", "host"),
        ("https:api.example.com", "host"),
        ("https://api.example.com?x=1", "query"),
        ("https://api.example.com/?", "query"),
        ("https://api.example.com#x", "fragment"),
        ("https://api.example.com/#", "fragment"),
        ("https://user:pw@api.example.com", "user information"),
        ("https://api.example.com:99999", "valid URL"),
        ("https://api.example.com:0", "bad port"),
        ('https://api.example.com/"x', '"'),
        ("https://api.example.com/a\\b", '"'),
        ("https://api.example.com/a b", '"'),
        ("https://api.example.com/\r\n", '"'),
        ("https://exämple.com", '"'),
        ("https://api.example.com/" + "a" * 3000, "2048"),
        ("https://api.example.com/<int:x>", "unusable path"),
        ("https://api.example.com/a%20b", "unusable path"),
        ("https://api.example.com/a/../b", "unusable path"),
        ("https://api.example.com/./b", "unusable path"),
        ("https://api.example.com/{x}", "unusable path"),
    ],
)
def test_validate_resource_refuses(value: t.Any, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_resource(value)
    message = str(info.value)
    assert message.startswith("AUTHGATE_RESOURCE ")
    assert fragment in message


def test_validate_resource_names_the_given_key() -> None:
    with pytest.raises(ConfigError, match=r"^MY_RESOURCE "):
        validate_resource("http://api.example.com", key="MY_RESOURCE")


def test_rfc9728_example_shape() -> None:
    """RFC 9728 §3.2's example response, built from the same inputs."""
    doc = build_metadata(
        resource="https://resource.example.com",
        authorization_servers=["https://as1.example.com", "https://as2.example.net"],
        scopes=["profile", "email", "phone"],
        dpop_algs=None,
        dpop_required=False,
        extra=validate_extra({"resource_documentation": "https://resource.example.com/resource_documentation.html"}),
    )
    assert doc == {
        "resource": "https://resource.example.com",
        "authorization_servers": ["https://as1.example.com", "https://as2.example.net"],
        # The RFC's example lists "header" and "body"; tokens are only read from the header here.
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["email", "phone", "profile"],
        "resource_documentation": "https://resource.example.com/resource_documentation.html",
    }
    assert json.loads(json.dumps(doc)) == doc


def test_empty_values_are_omitted() -> None:
    # RFC 9728 §3.2: parameters with zero values MUST be omitted.
    doc = build_metadata(
        resource="https://api.example.com",
        authorization_servers=[],
        scopes=[],
        dpop_algs=None,
        dpop_required=False,
        extra={},
    )
    assert doc == {"resource": "https://api.example.com", "bearer_methods_supported": ["header"]}


def test_scopes_are_sorted_and_deduplicated() -> None:
    doc = build_metadata(
        resource="https://api.example.com",
        authorization_servers=["https://idp.example.com", "https://idp.example.com"],
        scopes=iter(["write", "read", "write", "admin:all"]),
        dpop_algs=None,
        dpop_required=False,
        extra={},
    )
    assert doc["scopes_supported"] == ["admin:all", "read", "write"]
    assert doc["authorization_servers"] == ["https://idp.example.com"]


@pytest.mark.parametrize("required", [False, True])
def test_dpop_fields(required: bool) -> None:
    doc = build_metadata(
        resource="https://api.example.com",
        authorization_servers=[],
        scopes=["read"],
        dpop_algs=ALGS,
        dpop_required=required,
        extra={"resource_name": "Example API"},
    )
    assert doc == {
        "resource": "https://api.example.com",
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["read"],
        "dpop_signing_alg_values_supported": ["ES256", "PS256", "RS256", "EdDSA"],
        "dpop_bound_access_tokens_required": required,
        "resource_name": "Example API",
    }


@pytest.mark.parametrize("field", sorted(COMPUTED_FIELDS))
def test_extra_cannot_change_computed_fields(field: str) -> None:
    with pytest.raises(ValueError, match=repr(field)):
        build_metadata(
            resource="https://api.example.com",
            authorization_servers=[],
            scopes=[],
            dpop_algs=None,
            dpop_required=False,
            extra={field: "https://evil.example"},
        )
    with pytest.raises(ConfigError) as info:
        validate_extra({field: "https://evil.example"})
    assert str(info.value).startswith(f"AUTHGATE_RESOURCE_METADATA[{field!r}]")


def test_validate_extra_accepts_the_rfc_fields() -> None:
    nested: list[t.Any] = [1, 2.5, None, True]
    extra: dict[str, t.Any] = {
        "resource_name": "Example API",
        "resource_documentation": "https://docs.example.com/api?lang=en",
        "resource_policy_uri": "https://example.com/policy",
        "resource_tos_uri": "https://example.com/tos",
        "jwks_uri": "https://api.example.com/jwks.json",
        "resource_signing_alg_values_supported": ["ES256"],
        "authorization_details_types_supported": ["payment_initiation"],
        "tls_client_certificate_bound_access_tokens": False,
        "x_custom": {"nested": nested},
        "resource_name#fr": "API d'exemple",
    }
    copied = validate_extra(extra)
    assert copied == extra
    nested.append("later")
    assert copied["x_custom"] == {"nested": [1, 2.5, None, True]}
    assert validate_extra(None) == {}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (["resource_name"], "must be a mapping"),
        ("resource_name=x", "must be a mapping"),
        ({1: "x"}, "is not a metadata field name"),
        ({"": "x"}, "is not a metadata field name"),
        ({"a b": "x"}, "is not a metadata field name"),
        ({"resource_name": ""}, "non-empty string"),
        ({"resource_name": 5}, "non-empty string"),
        ({"resource_documentation": "http://docs.example.com"}, "https URL"),
        ({"resource_documentation": 5}, "must be a URL"),
        ({"resource_policy_uri": "https://example.com/#x"}, "fragment"),
        ({"jwks_uri": "https://example.com/jwks?x=1"}, "query"),
        ({"resource_signing_alg_values_supported": "ES256"}, "list of strings"),
        ({"resource_signing_alg_values_supported": [1]}, "list of strings"),
        ({"tls_client_certificate_bound_access_tokens": "yes"}, "true or false"),
        ({"x": float("nan")}, "JSON values"),
        ({"x": {1, 2}}, "JSON values"),
        ({"x": object()}, "JSON values"),
        ({"x": "y" * 20000}, "larger than"),
    ],
)
def test_validate_extra_refuses(value: t.Any, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_extra(value)
    assert str(info.value).startswith("AUTHGATE_RESOURCE_METADATA")
    assert fragment in str(info.value)
