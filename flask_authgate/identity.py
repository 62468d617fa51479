"""The :class:`Identity` of a request: who made it, immutable all the way down.

The proxies that reach the current request's identity (``current_identity``,
``current_user``, ``get_identity``) live in :mod:`flask_authgate.pipeline`,
which owns the per-request state; this module is a leaf.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import types
import typing as t

Scheme = t.Literal["jwt", "signed", "api_key"]


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """Who made the request: immutable, built once per credential.

    :param subject: The ``sub`` claim, or the owner of an API key.
    :param roles: Role names from the token's roles claim (or the roles loader).
    :param scopes: OAuth scopes from the token's scope claim.
    :param claims: Every claim of the token, read-only all the way down:
        nested objects are read-only mappings and arrays are tuples.
    :param scheme: ``"jwt"``, ``"signed"`` or ``"api_key"``.
    :param token_id: The ``jti`` claim, or ``None``.
    :param token_type: ``"access"`` or ``"refresh"``.
    :param issuer: The outside issuer that vouched for this identity (a trusted
        issuer's ``iss``, or the introspection endpoint's answer), or ``None``
        for this app's own tokens and API keys. Subjects are only unique per
        issuer: compare ``(issuer, subject)`` where both kinds meet.

    .. versionadded:: 0.1

    .. versionchanged:: 0.2
        ``issuer``.
    """

    subject: str
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    claims: cabc.Mapping[str, t.Any] = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))
    scheme: str = "jwt"
    token_id: str | None = None
    token_type: str = "access"
    issuer: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.subject, str) or not self.subject:
            raise TypeError("Identity.subject must be a non-empty string")
        for name in ("roles", "scopes"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise TypeError(f"Identity.{name} must be a collection of strings, not one string")
            if not isinstance(value, frozenset):
                object.__setattr__(self, name, frozenset(value))
        # Deeply immutable: a cached identity is shared by every request with the
        # same token, so a view must not be able to change what the next one sees.
        object.__setattr__(self, "claims", freeze(self.claims))

    def replace(self, *, roles: cabc.Iterable[str] | None = None, scheme: str | None = None) -> Identity:
        """A copy with other ``roles`` (a roles loader's) or another ``scheme``.

        The claims are shared, not copied again: they are immutable already.

        .. versionadded:: 0.2
        """
        copy = object.__new__(Identity)
        for field in dataclasses.fields(self):
            object.__setattr__(copy, field.name, getattr(self, field.name))
        if roles is not None:
            if isinstance(roles, str):
                raise TypeError("Identity.roles must be a collection of strings, not one string")
            object.__setattr__(copy, "roles", frozenset(roles))
        if scheme is not None:
            object.__setattr__(copy, "scheme", scheme)
        return copy

    @property
    def fresh(self) -> bool:
        """Whether this app issued the token at a real login (``fresh=True``).

        An outside issuer's ``fresh`` claim means nothing here: never fresh.
        """
        return self.issuer is None and self.claims.get("fresh") is True


def freeze(value: t.Any) -> t.Any:
    """A deeply read-only copy of JSON-like data: mappings become read-only mappings, lists tuples."""
    if isinstance(value, cabc.Mapping):
        return types.MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(freeze(v) for v in value)
    return value


def thaw(value: t.Any) -> t.Any:
    """Plain ``dict`` / ``list`` copies of frozen claims (for ``jsonify`` or re-issuing a token)."""
    if isinstance(value, cabc.Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [thaw(v) for v in value]
    return value
