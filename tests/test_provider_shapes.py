"""Each provider recipe, with that provider's real token and JWK Set shapes (``tests/providers``).

The test provider publishes its key in the provider's JWK shape, signs the
provider's documented claims with it, and the recipe's configuration (parsed by
:func:`parse_trusted_issuers`, as ``init_app`` will) must produce the subject,
roles and scopes the provider means — and refuse that provider's other tokens.
"""

from __future__ import annotations

import time

import pytest
from idp_server import IdentityProvider
from providers import Shape
from providers import all_shapes

from flask_authgate.errors import AuthError
from flask_authgate.issuer_config import IssuerDefaults
from flask_authgate.issuer_config import parse_trusted_issuers
from flask_authgate.issuers import IssuerSet

SHAPES = all_shapes()


def test_every_provider_of_the_issue_has_a_shape() -> None:
    names = " ".join(s.name for s in SHAPES)
    for provider in (
        "keycloak",
        "auth0",
        "okta",
        "entra-v1",
        "entra-v2-single",
        "entra-v2-multi",
        "cognito",
        "google",
        "firebase",
    ):
        assert provider in names


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_provider_shape(shape: Shape) -> None:
    with IdentityProvider(issuer_path=shape.issuer_path, trailing_slash=shape.trailing_slash) as idp:
        idp.add_key("key-1", shape.alg)
        idp.jwk_transform = shape.jwk_shape
        if shape.extra_jwks is not None:
            idp.extra_jwks = [extra for jwk in idp.jwks()["keys"] for extra in shape.extra_jwks(jwk)]
        entries = parse_trusted_issuers(shape.config(idp), defaults=IssuerDefaults(audience=shape.app_audience))
        issuers = IssuerSet(entries)
        claims = shape.claims(idp, int(time.time()))

        verified = issuers.verify(idp.token(claims, typ=shape.typ))
        assert verified.claims["sub"] == shape.subject
        assert verified.roles() == shape.roles
        assert verified.scopes() == shape.scopes

        for rejected in shape.rejected:
            typ = shape.typ if rejected.typ == "keep" else rejected.typ
            token = idp.token({**claims, **rejected.changes}, typ=typ)
            with pytest.raises(AuthError) as info:
                other = issuers.verify(token)
                other.roles()
                other.scopes()
            assert info.value.error_code == "token_invalid", rejected.name
            assert info.value.reason == rejected.reason, rejected.name

        for extra in idp.extra_jwks:  # keys published for anything but verifying never verify
            token = idp.token(claims, typ=shape.typ, kid=extra["kid"], key=idp.keys["key-1"][1])
            with pytest.raises(AuthError) as info:
                issuers.verify(token)
            assert info.value.reason == "unknown_kid"
