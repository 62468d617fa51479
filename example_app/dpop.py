"""DPoP at the example's own token endpoints (RFC 9449 §5).

The extension checks the proof of every request that presents a DPoP-bound
token. At the *token endpoint* (``POST /auth/login``) the client proves its
key without presenting any token; ``gate.dpop_thumbprint()`` verifies that
proof (for the request's own URL, its ``jti`` remembered in the app's
revocation store) and returns the key's thumbprint, which the login passes to
``gate.create_token_pair(..., dpop_jkt=...)`` so that both tokens are bound to
it. A bound refresh token needs a proof of the same key at ``POST
/auth/refresh``, which the extension checks too, and ``gate.rotate_refresh_token()``
binds the new pair to the same key.
"""

from __future__ import annotations

import typing as t

from flask import current_app

from flask_authgate import AuthError

from .extensions import gate

Mode = t.Literal[False, "allowed", "required"]


def mode() -> Mode:
    """``AUTHGATE_DPOP`` of the current app."""
    return t.cast(Mode, current_app.config.get("AUTHGATE_DPOP", False))


def proven_key() -> str | None:
    """The thumbprint of the key this login proves, or ``None`` without a proof (a bearer client).

    :raises AuthError: ``dpop_proof_invalid`` for a bad proof, two of them, or
        none in ``"required"`` mode.
    """
    if not mode():
        return None  # DPoP off: RFC 9449 §5, a server without DPoP ignores the header (token_type Bearer)
    jkt = gate.dpop_thumbprint()
    if jkt is None and mode() == "required":
        raise AuthError("dpop_proof_invalid", reason="dpop_missing")
    return jkt
