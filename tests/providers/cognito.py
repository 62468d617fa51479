"""Amazon Cognito user pools: access tokens without ``aud``, with ``client_id`` and ``cognito:groups``.

Source: https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-access-token.html
(the example payload: ``sub``, ``cognito:groups``, ``iss``
"https://cognito-idp.us-west-2.amazonaws.com/us-west-2_EXAMPLE", ``version`` 2,
``client_id``, ``origin_jti``, ``event_id``, ``token_use`` "access", ``scope``,
``auth_time``, ``exp``, ``iat``, ``jti``, ``username``; the header has ``kid``
and ``alg`` only) and .../amazon-cognito-user-pools-using-the-id-token.html (ID
tokens carry ``aud`` = the app client id and ``token_use`` "id").
"""

from __future__ import annotations

import typing as t

from . import Claims
from . import Rejected
from . import Shape

if t.TYPE_CHECKING:
    from idp_server import IdentityProvider

CLIENT_ID = "1example23456789"


def _claims(idp: IdentityProvider, now: int) -> Claims:
    return {
        "sub": "aaaaaaaa-bbbb-cccc-dddd-example",
        "cognito:groups": ["admin"],
        "iss": idp.issuer,
        "version": 2,
        "client_id": CLIENT_ID,
        "origin_jti": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "event_id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "token_use": "access",
        "scope": "phone openid profile resourceserver.1/appclient2 email",
        "auth_time": now - 30,
        "exp": now + 3600,
        "iat": now,
        "jti": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "username": "my-test-user",
    }


SHAPES = [
    Shape(
        name="cognito-access-token",
        source="https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-access-token.html",
        issuer_path="/us-west-2_EXAMPLE",
        app_audience=("https://api.example.com",),
        config=lambda idp: [
            {
                "issuer": idp.issuer,
                "audience": None,  # access tokens carry no aud, whatever AUTHGATE_JWT_AUDIENCE says
                "client_id": CLIENT_ID,
                "roles_claim": "cognito:groups",
            }
        ],
        claims=_claims,
        subject="aaaaaaaa-bbbb-cccc-dddd-example",
        roles=frozenset({"admin"}),
        scopes=frozenset({"phone", "openid", "profile", "resourceserver.1/appclient2", "email"}),
        typ=None,
        rejected=(
            Rejected("id-token", {"aud": CLIENT_ID, "token_use": "id", "client_id": None}, "audience"),
            Rejected("another-app-client", {"client_id": "9other9client9"}, "client_id"),
        ),
    ),
]
