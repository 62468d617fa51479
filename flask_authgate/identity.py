"""The :class:`Identity` of a request and the proxies that reach it."""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import types
import typing as t

from werkzeug.local import LocalProxy

Scheme = t.Literal["jwt", "signed", "api_key"]


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """Who made the request: immutable, built once per credential.

    :param subject: The ``sub`` claim, or the owner of an API key.
    :param roles: Role names from the token's roles claim (or the roles loader).
    :param scopes: OAuth scopes from the token's scope claim.
    :param claims: Every claim of the token, read-only.
    :param scheme: ``"jwt"``, ``"signed"`` or ``"api_key"``.
    :param token_id: The ``jti`` claim, or ``None``.
    :param token_type: ``"access"`` or ``"refresh"``.

    .. versionadded:: 0.1
    """

    subject: str
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    claims: cabc.Mapping[str, t.Any] = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))
    scheme: str = "jwt"
    token_id: str | None = None
    token_type: str = "access"

    def __post_init__(self) -> None:
        if not isinstance(self.subject, str) or not self.subject:
            raise TypeError("Identity.subject must be a non-empty string")
        for name in ("roles", "scopes"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise TypeError(f"Identity.{name} must be a collection of strings, not one string")
            if not isinstance(value, frozenset):
                object.__setattr__(self, name, frozenset(value))
        if not isinstance(self.claims, types.MappingProxyType):
            object.__setattr__(self, "claims", types.MappingProxyType(dict(self.claims)))

    @property
    def fresh(self) -> bool:
        """Whether the token was issued at a real login (``fresh=True``)."""
        return self.claims.get("fresh") is True


def _get_identity() -> Identity | None:
    from .loader import resolve_optional

    return resolve_optional()


def _get_user() -> t.Any:
    from .loader import load_optional_user

    return load_optional_user()


def get_identity() -> Identity | None:
    """The request's :class:`Identity`, or ``None`` when the caller is anonymous.

    A request whose credentials fail verification is anonymous here; the
    failure is reported by the first guard that needs an identity.
    """
    return _get_identity()


#: Proxy to the request's :class:`Identity`; falsy when anonymous. A proxy is
#: never ``is None``: write ``if not current_identity``.
current_identity: Identity = t.cast(Identity, LocalProxy(_get_identity))

#: Proxy to what the ``user_loader`` returned for this request, or ``None``.
current_user: t.Any = LocalProxy(_get_user)
