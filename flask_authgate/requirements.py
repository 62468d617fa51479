"""What a view needs (:class:`Requirement`) and the pure checks of an identity against it.

A :class:`Requirement` is built by one of its constructors (one per guard),
merged when guards stack or app-wide rules apply, and checked by
:func:`flask_authgate.pipeline.check`. The checks here are pure: they take an
identity and return the refusal (an :class:`~flask_authgate.AuthError`, not
raised) or ``None``, so the pipeline reports every refusal in one place.

The decision order is fixed (``reference/standards.md`` Part 3 §6): the IP
allow list first (403 ``ip_denied`` even without credentials), then
authentication (401), then the token's freshness and step-up (401), then
roles, then scopes (403), then ownership or ``authorize()``. Authentication
failures never become 403 and authorization failures never become 401.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import ipaddress
import typing as t

from .config import IPNetwork
from .errors import AuthError
from .identity import Identity
from .step_up import check_step_up
from .step_up import step_up_params

#: The attribute a guard sets on its wrapper (and on the function it wrapped).
REQUIREMENT_ATTR = "__authgate__"
#: The attribute a guard sets on the function it wrapped: found on a registered view, it
#: means the guard was written above ``@app.route`` (the route registered the bare function).
WRAPPED_ATTR = "__authgate_wrapped_by__"
#: The attribute :func:`~flask_authgate.public` sets.
PUBLIC_ATTR = "__authgate_public__"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclasses.dataclass(frozen=True, slots=True)
class Requirement:
    """What a guarded view needs; stacked guards merge into one requirement.

    Build one with a constructor (:meth:`login`, :meth:`roles`, ...), never by
    hand: the constructors validate the names, so nothing unchecked reaches a
    challenge header.
    """

    #: An identity is needed.
    needs_login: bool = False
    #: Every one of these roles.
    roles_all: frozenset[str] = frozenset()
    #: For each group, at least one of its roles (one group per ``roles_accepted``).
    roles_any: tuple[frozenset[str], ...] = ()
    #: Every one of these scopes.
    scopes_all: frozenset[str] = frozenset()
    #: For each group, at least one of its scopes (one group per ``scopes_accepted``).
    scopes_any: tuple[frozenset[str], ...] = ()
    #: For each group, the client address must be in one of its networks.
    networks: tuple[tuple[IPNetwork, ...], ...] = ()
    #: ``"access"``, or ``"refresh"`` for ``refresh_token_required``.
    token_type: str = "access"
    #: Only a token from a fresh login.
    fresh: bool = False
    #: Step-up (RFC 9470): the ``acr`` values a challenge asks for (empty: any).
    acr_values: tuple[str, ...] = ()
    #: Step-up: for each stacked guard, the ``acr`` values it accepts; the token's ``acr``
    #: must be in every group (groups with nothing in common accept no token).
    acr_groups: tuple[tuple[str, ...], ...] = ()
    #: Step-up (RFC 9470): the most seconds since ``auth_time``.
    max_age: int | None = None
    #: Whether a step-up rule applies at all.
    step_up: bool = False

    # -- constructors --------------------------------------------------------

    @classmethod
    def login(cls) -> Requirement:
        return _LOGIN

    @classmethod
    def roles(cls, roles: frozenset[str]) -> Requirement:
        return cls(needs_login=True, roles_all=roles)

    @classmethod
    def any_role(cls, roles: frozenset[str]) -> Requirement:
        return cls(needs_login=True, roles_any=(roles,))

    @classmethod
    def scopes(cls, scopes: frozenset[str]) -> Requirement:
        return cls(needs_login=True, scopes_all=scopes)

    @classmethod
    def any_scope(cls, scopes: frozenset[str]) -> Requirement:
        return cls(needs_login=True, scopes_any=(scopes,))

    @classmethod
    def network(cls, networks: tuple[IPNetwork, ...]) -> Requirement:
        return cls(networks=(networks,))

    @classmethod
    def refresh(cls) -> Requirement:
        return cls(needs_login=True, token_type="refresh")

    @classmethod
    def fresh_login(cls) -> Requirement:
        return cls(needs_login=True, fresh=True)

    @classmethod
    def stepped_up(cls, acr_values: tuple[str, ...], max_age: int | None) -> Requirement:
        return cls(
            needs_login=True,
            acr_values=acr_values,
            acr_groups=(acr_values,) if acr_values else (),
            max_age=max_age,
            step_up=True,
        )

    # -- combining -------------------------------------------------------------

    def merge(self, other: Requirement) -> Requirement:
        """Both requirements at once (stacked guards, or a rule plus a view's guards)."""
        groups = self.acr_groups + tuple(g for g in other.acr_groups if g not in self.acr_groups)
        # What a challenge asks for: the values every group accepts (or, when they have
        # none in common, the first group's: no token passes anyway).
        common = tuple(a for a in groups[0] if all(a in g for g in groups[1:])) if groups else ()
        acr = common or (groups[0] if groups else ())
        ages = [a for a in (self.max_age, other.max_age) if a is not None]
        return Requirement(
            needs_login=self.needs_login or other.needs_login,
            roles_all=self.roles_all | other.roles_all,
            roles_any=self.roles_any + tuple(g for g in other.roles_any if g not in self.roles_any),
            scopes_all=self.scopes_all | other.scopes_all,
            scopes_any=self.scopes_any + tuple(g for g in other.scopes_any if g not in self.scopes_any),
            networks=self.networks + tuple(n for n in other.networks if n not in self.networks),
            token_type="refresh" if "refresh" in (self.token_type, other.token_type) else "access",
            fresh=self.fresh or other.fresh,
            acr_values=acr,
            acr_groups=groups,
            max_age=min(ages) if ages else None,
            step_up=self.step_up or other.step_up,
        )

    @property
    def checks_identity(self) -> bool:
        """Whether anything is checked after authentication."""
        return bool(
            self.fresh or self.step_up or self.roles_all or self.roles_any or self.scopes_all or self.scopes_any
        )

    @property
    def all_scopes(self) -> frozenset[str]:
        """Every scope this requirement names (for RFC 9728 ``scopes_supported`` and OpenAPI)."""
        out = set(self.scopes_all)
        for group in self.scopes_any:
            out |= group
        return frozenset(out)


_LOGIN = Requirement(needs_login=True)


# -- the pure checks -------------------------------------------------------------


def address_allowed(address: Address | None, groups: cabc.Iterable[tuple[IPNetwork, ...]]) -> bool:
    """Whether ``address`` is in one network of every group (an unknown address never is)."""
    for networks in groups:
        if address is None or not any(address in net for net in networks):
            return False
    return True


def parse_address(raw: str | None) -> Address | None:
    """The client address of ``request.remote_addr``; IPv4-mapped IPv6 normalised; ``None`` if unparseable."""
    if not raw:
        return None
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    return address


def effective_roles(identity: Identity, hierarchy: cabc.Mapping[str, frozenset[str]]) -> frozenset[str]:
    """The identity's roles plus every role they imply in ``AUTHGATE_ROLE_HIERARCHY``."""
    roles = identity.roles
    if not hierarchy:
        return roles
    out = set(roles)
    for role in roles:
        implied = hierarchy.get(role)
        if implied:
            out |= implied
    return frozenset(out)


def refusal(
    identity: Identity,
    req: Requirement,
    hierarchy: cabc.Mapping[str, frozenset[str]],
    now: float,
    leeway: float = 0,
) -> AuthError | None:
    """What refuses ``identity`` for ``req`` after authentication, or ``None`` when it passes.

    Freshness and step-up first (401: a new login helps), then roles and
    scopes (403: it does not).
    """
    if req.fresh and not identity.fresh:
        return AuthError("fresh_token_required", reason="not_fresh")
    if req.step_up:
        reason = None
        for acr_group in req.acr_groups or ((),):
            reason = check_step_up(identity.claims, acr_values=acr_group, max_age=req.max_age, now=now, leeway=leeway)
            if reason is not None:
                break
        if reason is not None:
            # RFC 9470 §3: 401, with what a new login must satisfy in the challenge.
            return AuthError(
                "insufficient_user_authentication",
                reason=reason,
                challenge_params=step_up_params(req.acr_values, req.max_age),
            )
    if req.roles_all or req.roles_any:
        roles = effective_roles(identity, hierarchy)
        if not req.roles_all <= roles or not all(roles & group for group in req.roles_any):
            return AuthError("insufficient_role", reason="role")
    if req.scopes_all and not req.scopes_all <= identity.scopes:
        return AuthError("insufficient_scope", scopes=sorted(req.scopes_all), reason="scope")
    for group in req.scopes_any:
        if not identity.scopes & group:
            return AuthError("insufficient_scope", scopes=sorted(group), reason="scope")
    return None


# -- what guards put on views --------------------------------------------------------


def requirement_of(view: t.Any, http_method: str | None = None) -> Requirement | None:
    """The requirement guards put on ``view`` (or on its ``MethodView`` methods), if any.

    With ``http_method``, only the guards of the ``MethodView`` method that
    handles it count (``HEAD`` falls back to ``get``, as ``MethodView`` does);
    without it, the guards of every method are merged.
    """
    req = getattr(view, REQUIREMENT_ATTR, None)
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        names = (getattr(view_class, "methods", None) or ()) if http_method is None else (http_method,)
        for name in names:
            method = getattr(view_class, name.lower(), None)
            if method is None and name.upper() == "HEAD":
                method = getattr(view_class, "get", None)
            more = getattr(method, REQUIREMENT_ATTR, None)
            if isinstance(more, Requirement):
                req = more if req is None else req.merge(more)
    return req if isinstance(req, Requirement) else None


def _chain(view: t.Any) -> cabc.Iterator[t.Any]:
    """``view`` and what it wraps (``__wrapped__``, as ``functools.wraps`` records it), bounded."""
    seen: set[int] = set()
    while view is not None and id(view) not in seen and len(seen) < 64:
        seen.add(id(view))
        yield view
        view = getattr(view, "__wrapped__", None)


def marks_of(view: t.Any) -> Requirement | None:
    """Every requirement a guard marked on ``view`` or on a function it wraps, merged."""
    found: Requirement | None = None
    for obj in _chain(view):
        mark = getattr(obj, WRAPPED_ATTR, None)
        if isinstance(mark, Requirement):
            found = mark if found is None else found.merge(mark)
    return found


def misplaced_requirement(view: t.Any) -> Requirement | None:
    """What guards put on ``view`` (or on what it wraps) beyond what its own requirement checks.

    ``@roles_required("admin")`` written *above* ``@app.get(...)`` wraps the
    function only after the route registered it, so the route serves the
    bare function — or a wrapper of its own guards, or a foreign decorator's
    wrapper. Every guard marks the objects it wrapped, so the requirement is
    still found here, and enforced; ``None`` when the registered view checks
    it all already.
    """
    marks = marks_of(view)
    if marks is None:
        return None
    own = requirement_of(view)
    if own is None:
        return marks
    return marks if own.merge(marks) != own else None


def is_public(view: t.Any) -> bool:
    """Whether ``view`` (or its ``MethodView`` class) is marked :func:`~flask_authgate.public`."""
    return bool(getattr(view, PUBLIC_ATTR, False) or getattr(getattr(view, "view_class", None), PUBLIC_ATTR, False))
