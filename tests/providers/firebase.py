"""Firebase Authentication ID tokens: ``iss`` https://securetoken.google.com/<project>, ``aud`` the project.

Source: https://firebase.google.com/docs/auth/admin/verify-id-tokens#verify_id_tokens_using_a_third-party_jwt_library
(header ``alg`` RS256 and ``kid``; payload ``exp``, ``iat``, ``aud`` = project id,
``iss`` = "https://securetoken.google.com/<projectId>", ``sub`` = the uid,
``auth_time``) and https://firebase.google.com/docs/auth/admin/custom-claims
(custom claims such as ``roles`` are top-level claims of the ID token).
"""

from __future__ import annotations

import typing as t

from . import Claims
from . import Rejected
from . import Shape
from . import literal_issuer

if t.TYPE_CHECKING:
    from idp_server import IdentityProvider

PROJECT = "my-project-1234"


def _claims(idp: IdentityProvider, now: int) -> Claims:
    return {
        "iss": f"https://securetoken.google.com/{PROJECT}",
        "aud": PROJECT,
        "auth_time": now - 60,
        "user_id": "Xk893u23H9SI893",
        "sub": "Xk893u23H9SI893",
        "iat": now,
        "exp": now + 3600,
        "email": "user@example.com",
        "email_verified": True,
        "firebase": {"identities": {"email": ["user@example.com"]}, "sign_in_provider": "password"},
        "roles": ["editor"],
    }


SHAPES = [
    Shape(
        name="firebase-id-token-custom-claims",
        source="https://firebase.google.com/docs/auth/admin/verify-id-tokens",
        issuer_path="",
        # jwks_url: https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com
        config=literal_issuer(f"https://securetoken.google.com/{PROJECT}", audience=PROJECT),
        claims=_claims,
        subject="Xk893u23H9SI893",
        roles=frozenset({"editor"}),
        rejected=(
            Rejected("another-project", {"aud": "other-project"}, "audience"),
            Rejected("roles-as-a-string", {"roles": "editor"}, "claim_type"),
        ),
    ),
]
