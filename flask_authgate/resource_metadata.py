"""OAuth 2.0 Protected Resource Metadata (RFC 9728): the document and where it lives.

Pure functions over explicit values: :func:`validate_resource` and
:func:`validate_extra` check configuration (raising
:class:`~flask_authgate.errors.ConfigError` naming the key),
:func:`metadata_path` / :func:`metadata_url` say where the document is
served and what every challenge's ``resource_metadata`` holds, and
:func:`build_metadata` builds the JSON object.
"""

from __future__ import annotations

import collections.abc as cabc
import json
import re
import typing as t
import urllib.parse

from .errors import ConfigError

#: RFC 9728 §3: the well-known URI suffix (registered in §8.3).
WELL_KNOWN = "/.well-known/oauth-protected-resource"

#: Fields :func:`build_metadata` computes; ``extra`` may not set them. ``signed_metadata``
#: (RFC 9728 §2.2) would let a signed copy of every field take precedence, so it is refused too.
COMPUTED_FIELDS = frozenset(
    {
        "resource",
        "authorization_servers",
        "bearer_methods_supported",
        "scopes_supported",
        "dpop_signing_alg_values_supported",
        "dpop_bound_access_tokens_required",
        "signed_metadata",
    }
)
#: RFC 9728 §2 fields ``extra`` may set, with the JSON type each must have.
_STRING_FIELDS = frozenset({"resource_name"})
_URL_FIELDS = frozenset({"jwks_uri", "resource_documentation", "resource_policy_uri", "resource_tos_uri"})
_STRING_LIST_FIELDS = frozenset({"resource_signing_alg_values_supported", "authorization_details_types_supported"})
_BOOL_FIELDS = frozenset({"tls_client_certificate_bound_access_tokens"})
_FIELD_NAME = re.compile(r"[A-Za-z0-9_.:#-]{1,128}")
#: Hosts for which ``http://`` is accepted: a development server on this machine only.
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_MAX_EXTRA_BYTES = 16384
#: RFC 3986 §3.3 path characters without percent-encodings: the path also names a Flask route,
#: where "%XX" would need decoding and "<...>" would be read as a converter.
_RESOURCE_PATH = re.compile(r"(/[A-Za-z0-9\-._~!$&'()*+,;=:@]*)*")


def _url_problem(value: str, *, allow_query: bool = False) -> str | None:
    """Why ``value`` is not an acceptable https URL (or loopback http URL), or ``None``."""
    if not value or len(value) > 2048:
        return "must be a non-empty URL of at most 2048 characters"
    if any(ord(c) < 0x21 or ord(c) > 0x7E or c in '"\\' for c in value):
        return 'must be printable ASCII without spaces, " or \\'
    try:
        parts = urllib.parse.urlsplit(value)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and parts.hostname in _LOOPBACK_HOSTS):
        return "must be an https URL (http only for localhost, 127.0.0.1 or [::1])"
    if not parts.hostname or not value.lower().startswith(scheme + "://"):
        return "must be an absolute URL with a host"
    if "@" in parts.netloc:
        return "must not hold user information"
    if not allow_query and (parts.query or "?" in value):
        return "must not have a query"
    if parts.fragment or "#" in value:
        return "must not have a fragment"
    if port == 0:
        return "has a bad port"
    return None


def validate_resource(value: t.Any, key: str = "AUTHGATE_RESOURCE") -> str:
    """Check this API's resource identifier; return it unchanged.

    RFC 9728 §1.2: an ``https`` URL without a fragment (and, as RFC 8707 §2
    says it SHOULD, without a query: this extension refuses one). The value
    is kept exactly as given, because §3.3 makes clients compare it
    character for character with the URL they used. For development,
    ``http://localhost``, ``http://127.0.0.1`` and ``http://[::1]`` (any
    port) are accepted too; every other ``http`` URL is refused.

    :raises ConfigError: Naming ``key``, for anything else (also user
        information, ``"``, ``\\``, spaces or non-ASCII characters, which
        could not be sent in a challenge's quoted ``resource_metadata``; and a
        path with percent-encodings, ``<``, ``>`` or dot segments, because it
        also names the metadata route).

    .. versionadded:: 0.2
    """
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string (an https URL), not {type(value).__name__}")
    problem = _url_problem(value)
    if problem is not None:
        raise ConfigError(f"{key} {problem} (RFC 9728 §1.2)")
    path = urllib.parse.urlsplit(value).path
    if not _RESOURCE_PATH.fullmatch(path) or any(seg in (".", "..") for seg in path.split("/")):
        raise ConfigError(
            f"{key} has an unusable path: only letters, digits and -._~!$&'()*+,;=:@ between slashes "
            "are allowed (no percent-encodings, no . or .. segments)"
        )
    return value


def metadata_path(resource: str) -> str:
    """The path the metadata document is served at (RFC 9728 §3.1).

    ``/.well-known/oauth-protected-resource`` for a resource without a path
    (or with just ``/``), else that path appended:
    ``https://api.example.com/v1`` -> ``/.well-known/oauth-protected-resource/v1``.
    """
    path = urllib.parse.urlsplit(resource).path
    # RFC 9728 §3.1: a terminating "/" after the host is removed before the suffix is inserted.
    return WELL_KNOWN if path in ("", "/") else WELL_KNOWN + path


def metadata_url(resource: str) -> str:
    """The metadata document's URL: what every challenge's ``resource_metadata`` holds (RFC 9728 §5.1)."""
    parts = urllib.parse.urlsplit(resource)
    return f"{parts.scheme}://{parts.netloc}{metadata_path(resource)}"


def validate_extra(value: t.Any, key: str = "AUTHGATE_RESOURCE_METADATA") -> dict[str, t.Any]:
    """Check the extra metadata fields; return a copy.

    A mapping of field names to JSON values (at most 16 KiB as JSON). The
    fields RFC 9728 §2 defines must have their types (``resource_name`` a
    string; ``resource_documentation``, ``resource_policy_uri``,
    ``resource_tos_uri`` and ``jwks_uri`` https URLs; the ``*_supported``
    lists lists of strings; ``tls_client_certificate_bound_access_tokens`` a
    boolean). :data:`COMPUTED_FIELDS` are refused: the extension sets them.

    :raises ConfigError: Naming ``key`` and the field.

    .. versionadded:: 0.2
    """
    if value is None:
        return {}
    if not isinstance(value, cabc.Mapping):
        raise ConfigError(f"{key} must be a mapping of metadata field names to values")
    out: dict[str, t.Any] = {}
    for name, field in value.items():
        if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
            raise ConfigError(f"{key}: {name!r} is not a metadata field name")
        where = f"{key}[{name!r}]"
        if name in COMPUTED_FIELDS:
            raise ConfigError(f"{where} is set by the extension and cannot be changed here")
        if name in _STRING_FIELDS and (not isinstance(field, str) or not field):
            raise ConfigError(f"{where} must be a non-empty string")
        if name in _URL_FIELDS:
            # Documentation pages may have a query; the jwks_uri is a plain https URL.
            problem = _url_problem(field, allow_query=name != "jwks_uri") if isinstance(field, str) else "must be a URL"
            if problem is not None:
                raise ConfigError(f"{where} {problem}")
        if name in _STRING_LIST_FIELDS and (
            not isinstance(field, list) or not all(isinstance(v, str) and v for v in field)
        ):
            raise ConfigError(f"{where} must be a list of strings")
        if name in _BOOL_FIELDS and not isinstance(field, bool):
            raise ConfigError(f"{where} must be true or false")
        out[name] = field
    try:
        encoded = json.dumps(out, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise ConfigError(f"{key} must hold only JSON values (strings, numbers, booleans, lists, mappings)") from None
    if len(encoded) > _MAX_EXTRA_BYTES:
        raise ConfigError(f"{key} is larger than {_MAX_EXTRA_BYTES} bytes as JSON")
    # A fresh copy: later changes to the configured objects cannot reach the served document.
    copied: dict[str, t.Any] = json.loads(encoded)
    return copied


def build_metadata(
    *,
    resource: str,
    authorization_servers: cabc.Sequence[str],
    scopes: cabc.Iterable[str],
    dpop_algs: cabc.Sequence[str] | None,
    dpop_required: bool,
    extra: cabc.Mapping[str, t.Any],
) -> dict[str, t.Any]:
    """The RFC 9728 §2 metadata document.

    :param resource: The resource identifier (validated by :func:`validate_resource`).
    :param authorization_servers: The issuers whose tokens are accepted; the
        field is omitted when empty (RFC 9728 §3.2: zero values are omitted).
    :param scopes: Every scope a guard or ``protect()`` rule requires;
        ``scopes_supported`` lists them sorted and deduplicated (omitted when none).
    :param dpop_algs: The accepted DPoP proof algorithms, or ``None`` when DPoP is off.
    :param dpop_required: Whether only DPoP-bound tokens are accepted (``"required"`` mode).
    :param extra: Further fields (validated by :func:`validate_extra`).
    :raises ValueError: When ``extra`` sets a computed field (the message names it).

    .. versionadded:: 0.2
    """
    clash = sorted(COMPUTED_FIELDS.intersection(extra))
    if clash:
        raise ValueError(f"extra metadata may not set {clash[0]!r}: the extension computes it")
    doc: dict[str, t.Any] = {"resource": resource}
    servers = list(dict.fromkeys(authorization_servers))
    if servers:
        doc["authorization_servers"] = servers
    # Tokens are read from the Authorization header only (RFC 6750 §2.2/2.3 body and query never).
    doc["bearer_methods_supported"] = ["header"]
    scope_list = sorted(set(scopes))
    if scope_list:
        doc["scopes_supported"] = scope_list
    if dpop_algs is not None:
        doc["dpop_signing_alg_values_supported"] = list(dpop_algs)
        doc["dpop_bound_access_tokens_required"] = bool(dpop_required)
    for name, value in extra.items():
        doc[name] = value
    return doc
