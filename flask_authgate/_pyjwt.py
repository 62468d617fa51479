"""The one module importing PyJWT (``jwt``): the decoder configuration and the names the others use.

PyJWT checks the signature, the algorithm allow list, ``crit``, the audience,
the issuer, the required claims and the types of ``sub`` and ``jti``; the time
claims (``exp``, ``nbf``, ``iat``) are checked by :mod:`.tokens` with the
extension's own clock, so that a verified token can be cached.

Everything else in the package reaches PyJWT through the names below
(:mod:`.jwt_tokens`, :mod:`.issuers`, :mod:`.jwks`, :mod:`.dpop`,
:mod:`.testing`); they are PyJWT's own objects, bound once at import, so a
call through this module costs what a call to PyJWT costs.
"""

from __future__ import annotations

import collections.abc as cabc
import typing as t

import jwt
import jwt.exceptions
from jwt import PyJWK as PyJWK
from jwt import PyJWT as PyJWT
from jwt import encode as encode
from jwt import get_unverified_header as get_unverified_header
from jwt.algorithms import get_default_algorithms as get_default_algorithms
from jwt.exceptions import DecodeError as DecodeError
from jwt.exceptions import InvalidAlgorithmError as InvalidAlgorithmError
from jwt.exceptions import InvalidAudienceError as InvalidAudienceError
from jwt.exceptions import InvalidIssuerError as InvalidIssuerError
from jwt.exceptions import InvalidKeyError as InvalidKeyError
from jwt.exceptions import InvalidSignatureError as InvalidSignatureError
from jwt.exceptions import InvalidTokenError as InvalidTokenError
from jwt.exceptions import MissingRequiredClaimError as MissingRequiredClaimError
from jwt.exceptions import PyJWKClientConnectionError as PyJWKClientConnectionError
from jwt.exceptions import PyJWTError as PyJWTError

#: PyJWT's errors for a ``sub`` or ``jti`` of the wrong type (the PyJWT versions that have them).
CLAIM_TYPE_ERRORS: tuple[type[Exception], ...] = tuple(
    getattr(jwt.exceptions, name)
    for name in ("InvalidSubjectError", "InvalidJTIError")
    if hasattr(jwt.exceptions, name)
)


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


def unverified_claims(token: str) -> dict[str, t.Any]:
    """The payload of ``token`` decoded without any check (only for a token this app just issued)."""
    claims: dict[str, t.Any] = jwt.decode(token, options={"verify_signature": False})
    return claims
