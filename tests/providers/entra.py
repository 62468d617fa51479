"""Microsoft Entra ID: v2.0 and v1.0 access tokens, single- and multi-tenant.

Source: https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference
(``iss`` "https://login.microsoftonline.com/{tid}/v2.0" for v2.0 and
"https://sts.windows.net/{tid}/" for v1.0; ``aud`` the API's client id in v2.0,
the App ID URI in v1.0; delegated scopes in ``scp`` as a space-separated
string, app roles in ``roles``; ``oid``, ``tid``, ``azp``/``appid``, ``ver``).
Entra's JWK Set (``/common/discovery/v2.0/keys``) has no ``alg`` member and
carries ``x5t``, ``x5c`` and ``issuer`` members; all tenants share it.
"""

from __future__ import annotations

import typing as t

from . import Claims
from . import Rejected
from . import Shape
from . import literal_issuer

if t.TYPE_CHECKING:
    from idp_server import IdentityProvider

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
API_CLIENT_ID = "6e74172b-be56-4843-9ff4-e66a39bb12e3"


def _jwk(jwk: Claims) -> Claims:
    shaped = {k: v for k, v in jwk.items() if k != "alg"}
    shaped.update(
        {"x5t": shaped["kid"], "x5c": ["TUlJQy4uLg=="], "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0"}
    )
    return shaped


def _v2(tenant: str) -> t.Callable[[IdentityProvider, int], Claims]:
    def claims(idp: IdentityProvider, now: int) -> Claims:
        return {
            "aud": API_CLIENT_ID,
            "iss": f"{idp.base}/{tenant}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "aio": "AXQAi/8TAAAA",
            "azp": "b0e5bc6e-2b51-4b42-a3f2-4f6a0d5a9d10",
            "azpacr": "0",
            "name": "Abe Lincoln",
            "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
            "preferred_username": "abeli@microsoft.com",
            "rh": "I",
            "roles": ["Orders.Admin"],
            "scp": "Orders.Read Orders.Write",
            "sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ",
            "tid": tenant,
            "uti": "fqiBqXLPj0eQa82S-IYFAA",
            "ver": "2.0",
        }

    return claims


def _v1(idp: IdentityProvider, now: int) -> Claims:
    return {
        "aud": "api://orders",
        "iss": f"https://sts.windows.net/{TENANT}/",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "appid": "b0e5bc6e-2b51-4b42-a3f2-4f6a0d5a9d10",
        "appidacr": "0",
        "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
        "roles": ["Orders.Reader"],
        "scp": "user_impersonation",
        "sub": "l3_roISQU222bULS9yi2k0XpqpOiMz5H3ZACo1GeXA",
        "tid": TENANT,
        "unique_name": "abeli@microsoft.com",
        "upn": "abeli@microsoft.com",
        "ver": "1.0",
    }


def _v2_shape(
    name: str,
    source: str,
    tenant: str,
    config: t.Callable[[IdentityProvider], list[Claims]],
    rejected: tuple[Rejected, ...],
) -> Shape:
    """A v2.0 access token of ``tenant``: the same user, app roles and delegated scopes whatever the recipe."""
    return Shape(
        name=name,
        source=source,
        issuer_path=f"/{tenant}/v2.0",
        config=config,
        claims=_v2(tenant),
        subject="HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ",
        roles=frozenset({"Orders.Admin"}),
        scopes=frozenset({"Orders.Read", "Orders.Write"}),
        jwk_shape=_jwk,
        rejected=rejected,
    )


SHAPES = [
    _v2_shape(
        name="entra-v2-single-tenant",
        source="https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference",
        tenant=TENANT,
        config=lambda idp: [{"issuer": idp.issuer, "audience": API_CLIENT_ID, "scopes_claim": "scp"}],
        rejected=(
            Rejected(
                "another-tenant",
                {"iss": f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"},
                "issuer_not_trusted",
            ),
            Rejected("graph-token", {"aud": "00000003-0000-0000-c000-000000000000"}, "audience"),
        ),
    ),
    _v2_shape(
        name="entra-v2-multi-tenant",
        source="https://learn.microsoft.com/en-us/entra/identity-platform/howto-convert-app-to-be-multi-tenant",
        tenant=OTHER_TENANT,
        config=lambda idp: [
            # One entry per tenant you accept; all share Microsoft's common key set.
            {
                "issuer": f"{idp.base}/{tid}/v2.0",
                "audience": API_CLIENT_ID,
                "scopes_claim": "scp",
                "jwks_url": idp.jwks_url,
            }
            for tid in (TENANT, OTHER_TENANT)
        ],
        rejected=(
            Rejected(
                "unlisted-tenant",
                {"iss": "https://login.microsoftonline.com/00000000-1111-2222-3333-444444444444/v2.0"},
                "issuer_not_trusted",
            ),
        ),
    ),
    Shape(
        name="entra-v1-sts-windows-net",
        source="https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference",
        issuer_path="",
        # jwks_url: https://login.microsoftonline.com/common/discovery/keys
        config=literal_issuer(f"https://sts.windows.net/{TENANT}/", audience="api://orders", scopes_claim="scp"),
        claims=_v1,
        subject="l3_roISQU222bULS9yi2k0XpqpOiMz5H3ZACo1GeXA",
        roles=frozenset({"Orders.Reader"}),
        scopes=frozenset({"user_impersonation"}),
        jwk_shape=_jwk,
    ),
]
