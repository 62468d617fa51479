"""Auth0: RFC 9068 access token profile (``typ: at+jwt``), RBAC ``permissions``, namespaced roles.

Sources: https://auth0.com/docs/secure/tokens/access-tokens/access-token-profiles
(the "RFC 9068 profile sample token": ``iss`` with a trailing slash, ``aud`` a
list with the userinfo URL, ``client_id``, ``jti``, ``scope``);
https://auth0.com/docs/get-started/apis/enable-role-based-access-control-for-apis
(``permissions``); https://auth0.com/docs/secure/tokens/json-web-tokens/create-custom-claims
(namespaced custom claims such as ``https://example.com/roles``, set by an Action).
"""

from __future__ import annotations

import typing as t

from . import Claims
from . import Rejected
from . import Shape

if t.TYPE_CHECKING:
    from idp_server import IdentityProvider


def _claims(idp: IdentityProvider, now: int) -> Claims:
    return {
        "iss": idp.issuer,
        "sub": "auth0|123456",
        "aud": ["https://api.example.com", idp.issuer + "userinfo"],
        "client_id": "my_client_id",
        "exp": now + 300,
        "iat": now,
        "jti": "73WakrfVbNJBaAmhQtEeDv",
        "scope": "openid profile read:patients read:admin",
        "permissions": ["read:patients", "read:admin", "write:patients"],
        "https://example.com/roles": ["admin"],
    }


def _jwk(jwk: Claims) -> Claims:
    return {**jwk, "x5t": "dGh1bWJwcmludA", "x5c": ["TUlJQy4uLg=="]}


SHAPES = [
    Shape(
        name="auth0-rfc9068-permissions-namespaced-roles",
        source="https://auth0.com/docs/secure/tokens/access-tokens/access-token-profiles",
        issuer_path="",
        trailing_slash=True,
        config=lambda idp: [
            {
                "issuer": idp.issuer,  # "https://<tenant>.auth0.com/", trailing slash included
                "audience": "https://api.example.com",
                "typ": "at+jwt",
                "roles_claim": "https://example.com/roles",
                "scopes_claim": ["scope", "permissions"],
            }
        ],
        claims=_claims,
        subject="auth0|123456",
        roles=frozenset({"admin"}),
        scopes=frozenset({"openid", "profile", "read:patients", "read:admin", "write:patients"}),
        typ="at+jwt",
        jwk_shape=_jwk,
        rejected=(
            Rejected("id-token-or-default-profile", {}, "typ", typ="JWT"),
            Rejected("token-for-another-api", {"aud": ["https://other.example.com"]}, "audience"),
        ),
    ),
]
