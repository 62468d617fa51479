"""Where roles and scopes live in a token: claim mapping.

A mapping spec (``AUTHGATE_ROLES_CLAIM``, ``AUTHGATE_SCOPES_CLAIM``, or the
``roles_claim`` / ``scopes_claim`` of a trusted issuer) is one of:

* a claim name of any spelling: ``"roles"``, ``"cognito:groups"``,
  ``"https://example.com/roles"``;
* a dotted path into nested objects: ``"realm_access.roles"``,
  ``"resource_access.my-app.roles"``. A top-level claim whose name is exactly
  the spec wins over the path (so ``"https://example.com/roles"`` is read as
  one claim when the token has it);
* a list of those: the union of what each finds;
* a callable ``claims -> iterable of str``.

Values are checked strictly, because a lenient reading turns into a grant:

* roles are a JSON array of strings; a bare string is never iterated letter
  by letter, and anything else is 401 ``token_invalid`` (reason ``claim_type``);
* scopes are a space-separated string (RFC 6749 §3.3: ``scope-token`` is
  ``1*( %x21 / %x23-5B / %x5D-7E )``, tokens separated by single spaces —
  a tab, a double space or a leading space makes the whole value invalid,
  so ``"read\\tadmin"`` never becomes two scopes) or an array of valid
  scope tokens (Okta's ``scp``, Auth0's ``permissions``);
* a claim that is absent or ``null`` gives nothing; a path through something
  that is not an object (``"realm_access": "x"``) is ``claim_type``.

The spec itself is validated once, at configuration time:
:meth:`ClaimMapping.parse` raises :class:`~.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import logging
import re
import typing as t

from .errors import AuthError
from .errors import ConfigError

log = logging.getLogger("flask_authgate")

Kind = t.Literal["roles", "scopes"]
ClaimsCallable = cabc.Callable[[cabc.Mapping[str, t.Any]], cabc.Iterable[str]]
#: RFC 6749 §3.3 ``scope-token``.
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
#: A claim name or path: printable, no control characters (they could only be a typo or an attack).
_SPEC = re.compile(r"[^\x00-\x1f\x7f]+")


def _invalid(reason: str = "claim_type") -> t.NoReturn:
    err = AuthError("token_invalid")
    err.reason = reason
    raise err


def parse_scope_string(value: str) -> frozenset[str]:
    """Split an RFC 6749 §3.3 ``scope`` value; raise 401 ``token_invalid`` when it breaks the grammar."""
    if value == "":
        return frozenset()
    tokens = value.split(" ")
    if not all(SCOPE_TOKEN.fullmatch(token) for token in tokens):
        _invalid()
    return frozenset(tokens)


def _values(value: t.Any, kind: Kind) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        if kind == "scopes":
            return parse_scope_string(value)
        _invalid()  # roles: never iterate a string letter by letter
    # A tuple too: claims that were deep-frozen after verification hold tuples, not lists.
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        _invalid()
    if kind == "scopes" and not all(SCOPE_TOKEN.fullmatch(v) for v in value):
        _invalid()
    return frozenset(value)


def lookup(claims: cabc.Mapping[str, t.Any], name: str) -> t.Any:
    """The value of claim ``name``: the top-level claim of exactly that name, else the dotted path."""
    if name in claims:
        return claims[name]
    segments = name.split(".")
    if len(segments) < 2 or not all(segments):
        return None
    node: t.Any = claims
    for segment in segments:
        if node is None:
            return None
        if not isinstance(node, cabc.Mapping):
            _invalid()
        node = node.get(segment)
    return node


@dataclasses.dataclass(frozen=True, slots=True)
class ClaimMapping:
    """Where one kind of value (roles or scopes) is read from the claims.

    Build it with :meth:`parse`; call :meth:`extract` on verified claims.
    """

    #: Claim names or dotted paths, read in order and united.
    names: tuple[str, ...] = ()
    #: A function of the claims, used instead of ``names`` when set.
    function: ClaimsCallable | None = None
    kind: Kind = "roles"

    @classmethod
    def parse(cls, value: t.Any, *, key: str, kind: Kind) -> ClaimMapping:
        """Validate a mapping spec.

        :param value: A claim name or dotted path, a list of them, or a callable.
        :param key: The configuration key, for the error message
            (``"AUTHGATE_ROLES_CLAIM"``, ``"AUTHGATE_TRUSTED_ISSUERS[1].roles_claim"``).
        :param kind: ``"roles"`` or ``"scopes"``.
        :raises ConfigError: The spec is not one of the accepted shapes.
        """
        if isinstance(value, ClaimMapping):
            return dataclasses.replace(value, kind=kind)
        if callable(value):
            return cls(function=value, kind=kind)
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, (list, tuple)) or not names:
            raise ConfigError(
                f"{key} must be a claim name (e.g. 'roles', 'cognito:groups'), a dotted path "
                "(e.g. 'realm_access.roles'), a non-empty list of those, or a function of the claims"
            )
        for i, name in enumerate(names):
            where = key if isinstance(value, str) else f"{key}[{i}]"
            if not isinstance(name, str) or not _SPEC.fullmatch(name):
                raise ConfigError(f"{where} must be a non-empty claim name without control characters")
            if name != name.strip():
                raise ConfigError(f"{where} has leading or trailing spaces: {name!r}")
        if len(set(names)) != len(names):
            raise ConfigError(f"{key} names the same claim twice")
        return cls(names=tuple(names), kind=kind)

    def extract(self, claims: cabc.Mapping[str, t.Any]) -> frozenset[str]:
        """The roles or scopes in ``claims``.

        :raises AuthError: 401 ``token_invalid`` (reason ``claim_type``) when a
            value has the wrong shape, or the function returns one.
        """
        if self.function is not None:
            return self._call(self.function, claims)
        found: set[str] = set()
        for name in self.names:
            found |= _values(lookup(claims, name), self.kind)
        return frozenset(found)

    def _call(self, function: ClaimsCallable, claims: cabc.Mapping[str, t.Any]) -> frozenset[str]:
        try:
            result = function(claims)
            if result is None:
                return frozenset()
            if isinstance(result, (str, bytes)) or not isinstance(result, cabc.Iterable):
                _invalid()
            values = list(result)
        except AuthError:
            raise
        except Exception as exc:
            # A bug in the app's function: logged, and the token is refused (never a 500 with its text).
            log.error("authgate: the %s claim function raised %s", self.kind, type(exc).__name__)
            _invalid("claim_mapping")
        if not all(isinstance(v, str) for v in values):
            _invalid()
        if self.kind == "scopes" and not all(SCOPE_TOKEN.fullmatch(v) for v in values):
            _invalid()
        return frozenset(values)

    def describe(self) -> str:
        """A short text for logs and docs (``"realm_access.roles"``, ``"<function>"``)."""
        if self.function is not None:
            return "<function>"
        return " + ".join(self.names)
