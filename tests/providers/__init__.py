"""Token and JWK Set shapes of real identity providers, from their published documentation.

Each provider module defines :data:`SHAPES`: the claims its tokens carry, the
header it sends, how its JWK Set entries look, and the
``AUTHGATE_TRUSTED_ISSUERS`` entry of its recipe in ``docs/provider-recipes.md``
— with the issuer and key URLs pointed at the test provider on loopback, which
signs the claims with its own real keys. ``tests/test_provider_shapes.py`` runs
them. Values in angle brackets in the docs (tenant ids, client ids) are the
example values the providers' documentation uses.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import typing as t

if t.TYPE_CHECKING:
    from idp_server import IdentityProvider

Claims = dict[str, t.Any]


@dataclasses.dataclass(frozen=True)
class Rejected:
    """A token of this provider that must be refused (another token type, another client ...)."""

    name: str
    changes: Claims
    reason: str
    typ: str | None = "keep"


@dataclasses.dataclass(frozen=True)
class Shape:
    #: ``provider-variant``, used as the test id.
    name: str
    #: Where the shapes come from.
    source: str
    #: The issuer path on the test provider ("" when the issuer is a literal, see ``issuer``).
    issuer_path: str
    #: The recipe's ``AUTHGATE_TRUSTED_ISSUERS`` entries, given the running provider.
    config: cabc.Callable[[IdentityProvider], list[Claims]]
    #: The token's claims, given the provider and ``now``.
    claims: cabc.Callable[[IdentityProvider, int], Claims]
    subject: str
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    typ: str | None = "JWT"
    alg: str = "RS256"
    trailing_slash: bool = False
    #: Rewrites each published JWK into this provider's shape.
    jwk_shape: cabc.Callable[[Claims], Claims] | None = None
    #: Extra entries the provider's JWK Set carries (e.g. an encryption key).
    extra_jwks: cabc.Callable[[Claims], list[Claims]] | None = None
    #: App-wide audience (``AUTHGATE_JWT_AUDIENCE``) the recipe sets, if any.
    app_audience: tuple[str, ...] | None = None
    rejected: tuple[Rejected, ...] = ()


def literal_issuer(*issuers: str, **fields: t.Any) -> cabc.Callable[[IdentityProvider], list[Claims]]:
    """The ``config`` of a recipe whose issuer is a literal, not a URL on the test provider: one entry
    per issuer, each with ``fields`` and ``jwks_url`` (the provider's real key URL) on the test provider."""
    return lambda idp: [{"issuer": issuer, **fields, "jwks_url": idp.jwks_url} for issuer in issuers]


def all_shapes() -> list[Shape]:
    from . import auth0
    from . import cognito
    from . import entra
    from . import firebase
    from . import google
    from . import keycloak
    from . import okta

    return [s for module in (keycloak, auth0, okta, entra, cognito, google, firebase) for s in module.SHAPES]
