"""The one configuration PyJWT decodes with, for this app's tokens and for every trusted issuer's.

PyJWT checks the signature, the algorithm allow list, ``crit``, the audience,
the issuer, the required claims and the types of ``sub`` and ``jti``; the time
claims (``exp``, ``nbf``, ``iat``) are checked by :mod:`.tokens` with the
extension's own clock, so that a verified token can be cached.
"""

from __future__ import annotations

import collections.abc as cabc

import jwt


def decoder(required_claims: cabc.Iterable[str]) -> jwt.PyJWT:
    """A PyJWT decoder that checks everything but time, and requires ``required_claims``."""
    return jwt.PyJWT(
        options={
            "verify_signature": True,
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
            "verify_aud": True,
            "verify_iss": True,
            "verify_sub": True,
            "verify_jti": True,
            "require": list(required_claims),
        }
    )
