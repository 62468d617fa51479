"""Authorization: requirements, their checks, ``authorize()`` and ``require_owner()``.

The decision order is fixed (``reference/standards.md`` Part 3 §6): the IP
allow list first (403 ``ip_denied`` even without credentials), then
authentication (401), then the token's freshness, then roles, then scopes,
then ownership or ``authorize()`` (403 or a hidden 404). Authentication
failures never become 403 and authorization failures never become 401.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import ipaddress
import typing as t

from flask import request

from ._compat import request_objects
from ._state import get_state
from .config import IPNetwork
from .errors import AuthError
from .errors import ErrorCode
from .identity import Identity
from .loader import failed
from .loader import request_auth
from .loader import resolve
from .loader import resolve_async
from .loader import resolve_with


@dataclasses.dataclass(frozen=True, slots=True)
class Requirement:
    """What a guarded view needs; stacked guards merge into one requirement."""

    #: An identity is needed.
    login: bool = False
    #: Every one of these roles.
    roles_all: frozenset[str] = frozenset()
    #: For each group, at least one of its roles (one group per ``roles_accepted``).
    roles_any: tuple[frozenset[str], ...] = ()
    #: Every one of these scopes.
    scopes: frozenset[str] = frozenset()
    #: For each group, the client address must be in one of its networks.
    networks: tuple[tuple[IPNetwork, ...], ...] = ()
    #: ``"access"``, or ``"refresh"`` for ``refresh_token_required``.
    token_type: str = "access"
    #: Only a token from a fresh login.
    fresh: bool = False

    def merge(self, other: Requirement) -> Requirement:
        return Requirement(
            login=self.login or other.login,
            roles_all=self.roles_all | other.roles_all,
            roles_any=self.roles_any + tuple(g for g in other.roles_any if g not in self.roles_any),
            scopes=self.scopes | other.scopes,
            networks=self.networks + tuple(n for n in other.networks if n not in self.networks),
            token_type="refresh" if "refresh" in (self.token_type, other.token_type) else "access",
            fresh=self.fresh or other.fresh,
        )


def client_address() -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The client's address from ``request.remote_addr`` only (use ``ProxyFix`` behind a proxy)."""
    raw = request.remote_addr
    if not raw:
        return None
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    return address


def check_networks(groups: cabc.Iterable[tuple[IPNetwork, ...]]) -> None:
    """403 ``ip_denied`` unless the client address is in one network of every group."""
    address = client_address()
    for networks in groups:
        if address is None or not any(address in net for net in networks):
            _deny("ip_denied", None)


def _deny(code: ErrorCode, identity: Identity | None, **kwargs: t.Any) -> t.NoReturn:
    err = AuthError(code, **kwargs)
    failed(err, identity)
    raise err


def effective_roles(identity: Identity, hierarchy: cabc.Mapping[str, frozenset[str]] | None = None) -> frozenset[str]:
    """The identity's roles plus every role they imply in ``AUTHGATE_ROLE_HIERARCHY``."""
    if hierarchy is None:
        hierarchy = get_state().settings.role_hierarchy
    roles = identity.roles
    if not hierarchy:
        return roles
    out = set(roles)
    for role in roles:
        implied = hierarchy.get(role)
        if implied:
            out |= implied
    return frozenset(out)


def check_identity(
    identity: Identity, req: Requirement, hierarchy: cabc.Mapping[str, frozenset[str]] | None = None
) -> None:
    """The checks after authentication: freshness (401), roles and scopes (403)."""
    if req.fresh and identity.claims.get("fresh") is not True:
        err = AuthError("fresh_token_required")
        failed(err)
        raise err
    if req.roles_all or req.roles_any:
        roles = effective_roles(identity, hierarchy)
        if not req.roles_all <= roles or not all(roles & group for group in req.roles_any):
            _deny("insufficient_role", identity)
    if req.scopes and not req.scopes <= identity.scopes:
        _deny("insufficient_scope", identity, scopes=sorted(req.scopes))


def enforce(req: Requirement) -> Identity | None:
    """Check ``req`` for the current request; raise the :class:`AuthError` that refuses it."""
    if req.networks:
        check_networks(req.networks)
    if not req.login:
        return None
    app, rq, gobj = request_objects()
    identity = resolve_with(app, rq, gobj, req.token_type)
    if req.fresh or req.roles_all or req.roles_any or req.scopes:
        check_identity(identity, req, app.extensions["authgate"].settings.role_hierarchy)
    return identity


async def enforce_async(req: Requirement) -> Identity | None:
    """:func:`enforce` from an ``async def`` view."""
    if req.networks:
        check_networks(req.networks)
    if not req.login:
        return None
    identity = await resolve_async(req.token_type)
    check_identity(identity, req)
    return identity


def authorize(allowed: bool, *, hide: bool = False) -> None:
    """Refuse the request unless ``allowed``; call it inside a view for any rule.

    An anonymous caller gets 401 first (the stored failure or
    ``token_missing``), so whether a record exists is never revealed to
    someone who has not authenticated. Then, if ``allowed`` is false: 403
    ``forbidden``, or 404 ``not_found`` with ``hide=True`` — the same body and
    headers as the app's own 404 for a missing record.

    Works in sync and ``async def`` views (it only reads the identity, which
    a guard on the view has normally loaded already).

    .. versionadded:: 0.1
    """
    identity = request_auth().identity or resolve("access")
    if not allowed:
        _deny("not_found" if hide else "forbidden", identity)


def require_owner(owner_id: object, *, hide: bool = False) -> None:
    """Refuse the request unless ``owner_id`` is the caller's subject.

    401 for an anonymous caller, then 403 ``not_owner`` (or 404 ``not_found``
    with ``hide=True``) when ``str(owner_id)`` differs from
    :attr:`Identity.subject <flask_authgate.Identity.subject>`. For roles that
    may bypass ownership (an admin reading anyone's record) write the rule
    explicitly: ``authorize(owner == me or "admin" in current_identity.roles)``.

    .. versionadded:: 0.1
    """
    identity = request_auth().identity or resolve("access")
    if owner_id is None or str(owner_id) != identity.subject:
        _deny("not_found" if hide else "not_owner", identity)
