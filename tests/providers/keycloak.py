"""Keycloak: realm roles in ``realm_access.roles``, client roles in ``resource_access.<client>.roles``.

Source: Keycloak Server Administration Guide, "OpenID Connect token and SAML
assertion mappers" / default "roles" client scope
(https://www.keycloak.org/docs/latest/server_admin/#_role_scope_mappings); the
access token layout is the one Keycloak 2x issues (``typ: Bearer`` claim,
``azp``, ``allowed-origins``, ``realm_access``, ``resource_access``). Its JWK Set
(``/realms/<realm>/protocol/openid-connect/certs``) also publishes an
``RSA-OAEP`` key with ``"use": "enc"``, which must never verify a signature.
"""

from __future__ import annotations

from . import Claims
from . import Rejected
from . import Shape


def _claims(idp: object, now: int) -> Claims:
    return {
        "exp": now + 300,
        "iat": now,
        "auth_time": now - 10,
        "jti": "onrtac:8c4b9f0e-3e51-4d1e-8a87-3a4c6d6c1f2b",
        "aud": ["orders-api", "account"],
        "sub": "f1b2c3d4-0000-4a5b-8c9d-112233445566",
        "typ": "Bearer",
        "azp": "orders-web",
        "sid": "6e0c1b2a-aaaa-bbbb-cccc-0123456789ab",
        "acr": "1",
        "allowed-origins": ["https://orders.example.com"],
        "realm_access": {"roles": ["offline_access", "uma_authorization", "default-roles-acme", "admin"]},
        "resource_access": {
            "orders-api": {"roles": ["orders-editor"]},
            "account": {"roles": ["manage-account", "view-profile"]},
        },
        "scope": "openid email profile",
        "email_verified": True,
        "preferred_username": "alice",
    }


def _jwk(jwk: Claims) -> Claims:
    return {**jwk, "x5t": "dGh1bWJwcmludA", "x5t#S256": "dGh1bWJwcmludC1zaGEyNTY"}


def _enc_key(jwk: Claims) -> list[Claims]:
    # The same material published for encryption under another kid: never a verification key.
    return [{**jwk, "kid": "enc-" + jwk["kid"], "use": "enc", "alg": "RSA-OAEP"}]


SHAPES = [
    Shape(
        name="keycloak-realm-and-client-roles",
        source="https://www.keycloak.org/docs/latest/server_admin/",
        issuer_path="/realms/acme",
        config=lambda idp: [
            {
                "issuer": idp.issuer,  # discovered: /realms/acme/.well-known/openid-configuration
                "audience": "orders-api",
                "roles_claim": ["realm_access.roles", "resource_access.orders-api.roles"],
            }
        ],
        claims=_claims,
        subject="f1b2c3d4-0000-4a5b-8c9d-112233445566",
        roles=frozenset({"offline_access", "uma_authorization", "default-roles-acme", "admin", "orders-editor"}),
        scopes=frozenset({"openid", "email", "profile"}),
        jwk_shape=_jwk,
        extra_jwks=_enc_key,
        rejected=(Rejected("another-client", {"aud": ["account"]}, "audience"),),
    ),
]
