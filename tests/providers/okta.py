"""Okta custom authorization server: ``scp`` as a JSON array, ``cid``, ``uid``, a ``groups`` claim.

Sources: https://developer.okta.com/docs/api/openapi/okta-oauth/guides/overview/
(access token payload: ``ver``, ``jti`` "AT.…", ``iss``
"https://{yourOktaDomain}/oauth2/default", ``aud`` "api://default", ``cid``,
``uid``, ``scp`` array, ``sub``) and
https://developer.okta.com/docs/guides/customize-tokens-groups-claim/ (a
``groups`` claim added to access tokens). Okta's access token header carries
``kid`` and ``alg`` only.
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
        "ver": 1,
        "jti": "AT.0mP4JKAZX1iACIT4vbEDF7LpvDVjxypPMf0D7uX39RE",
        "iss": idp.issuer,
        "aud": "api://default",
        "iat": now,
        "exp": now + 3600,
        "cid": "0oaoesxtxmPf08QHk0h7",
        "uid": "00uoeu8s6fKE0IQ2k0h7",
        "scp": ["openid", "email", "orders.read"],
        "auth_time": now - 60,
        "sub": "john.doe@example.com",
        "groups": ["Everyone", "order-admins"],
    }


SHAPES = [
    Shape(
        name="okta-scp-array-groups",
        source="https://developer.okta.com/docs/api/openapi/okta-oauth/guides/overview/",
        issuer_path="/oauth2/default",
        config=lambda idp: [
            {
                "issuer": idp.issuer,  # discovered
                "audience": "api://default",
                "roles_claim": "groups",
                "scopes_claim": "scp",
            }
        ],
        claims=_claims,
        subject="john.doe@example.com",
        roles=frozenset({"Everyone", "order-admins"}),
        scopes=frozenset({"openid", "email", "orders.read"}),
        typ=None,
        rejected=(Rejected("scp-with-a-tab", {"scp": ["orders.read\tadmin"]}, "claim_type"),),
    ),
]
