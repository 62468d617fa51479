"""Google Sign-In ID tokens: two documented issuers, ``aud`` the OAuth client id.

Source: https://developers.google.com/identity/openid-connect/openid-connect#validatinganidtoken
("The value of iss in the ID token is equal to accounts.google.com or
https://accounts.google.com"; keys at https://www.googleapis.com/oauth2/v3/certs;
an ID token's claims: ``azp``, ``aud``, ``sub``, ``at_hash``, ``hd``, ``email``,
``email_verified``, ``iat``, ``exp``, ``nonce``).
"""

from __future__ import annotations

import typing as t

from . import Claims
from . import Rejected
from . import Shape
from . import literal_issuer

if t.TYPE_CHECKING:
    from idp_server import IdentityProvider

CLIENT = "1234987819200.apps.googleusercontent.com"


def _claims(issuer: str) -> t.Callable[[IdentityProvider, int], Claims]:
    def claims(idp: IdentityProvider, now: int) -> Claims:
        return {
            "iss": issuer,
            "azp": CLIENT,
            "aud": CLIENT,
            "sub": "10769150350006150715113082367",
            "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q",
            "hd": "example.com",
            "email": "jsmith@example.com",
            "email_verified": True,
            "iat": now,
            "exp": now + 3600,
            "nonce": "0394852-3190485-2490358",
        }

    return claims


SHAPES = [
    Shape(
        name=f"google-{name}",
        source="https://developers.google.com/identity/openid-connect/openid-connect#validatinganidtoken",
        issuer_path="",
        # jwks_url: https://www.googleapis.com/oauth2/v3/certs
        config=literal_issuer("https://accounts.google.com", "accounts.google.com", audience=CLIENT),
        claims=_claims(issuer),
        subject="10769150350006150715113082367",
        rejected=(Rejected("another-client", {"aud": "999.apps.googleusercontent.com"}, "audience"),),
    )
    for name, issuer in (("https-issuer", "https://accounts.google.com"), ("bare-issuer", "accounts.google.com"))
]
