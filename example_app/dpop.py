"""DPoP at the example's own token endpoints (RFC 9449 §5).

The extension checks the proof of every request that presents a DPoP-bound
access token (``Authorization: DPoP <token>`` plus a ``DPoP`` header). What
it cannot do by itself is the *token endpoint* side: ``POST /auth/login`` and
``POST /auth/refresh`` carry no access token, yet the client proves its key
there, so that the tokens issued are bound to it. This module does that with
the public building blocks of :mod:`flask_authgate.dpop`:

* :func:`init_app` builds a :class:`~flask_authgate.dpop.DpopVerifier` with
  the app's own ``AUTHGATE_DPOP_*`` settings, its replay records kept in a
  store like the app's revocation store (Redis when the app uses Redis, so a
  replayed login proof is caught by every process);
* :func:`proven_key` verifies the one ``DPoP`` header of a token-endpoint
  request for the request's own URL (``request.url``, which honours
  ``ProxyFix``) and returns the RFC 7638 thumbprint of its key, which the
  view passes to ``gate.create_access_token(..., dpop_jkt=...)``.

A proof that fails any check is the extension's own 401
``dpop_proof_invalid`` (the ``AuthError`` propagates and is rendered with the
``DPoP`` challenge).
"""

from __future__ import annotations

import datetime
import logging
import typing as t

from flask import Flask
from flask import current_app
from flask import request

from flask_authgate import AuthError
from flask_authgate import MemoryStore
from flask_authgate import RedisStore
from flask_authgate import RevocationStore
from flask_authgate.dpop import DEFAULT_ALGORITHMS
from flask_authgate.dpop import DpopVerifier

log = logging.getLogger("example_app")

_EXTENSION = "example_app.dpop"
#: Prefix of the replay records of token-endpoint proofs (apart from the extension's own).
REPLAY_PREFIX = "example-dpop:"

Mode = t.Literal[False, "allowed", "required"]


def _seconds(value: t.Any) -> float:
    # AUTHGATE_* durations may be numbers or timedeltas (the extension has validated them already).
    return value.total_seconds() if isinstance(value, datetime.timedelta) else float(value)


def _replay_store(setting: t.Any) -> RevocationStore:
    """A store like ``AUTHGATE_REVOCATION_STORE``: its own in memory, the same Redis, or the same object."""
    if setting == "memory":
        return MemoryStore()
    if isinstance(setting, str):
        return RedisStore(setting)
    return t.cast(RevocationStore, setting)


def init_app(app: Flask) -> None:
    """Build the token-endpoint verifier when ``AUTHGATE_DPOP`` is on (call after ``gate.init_app``)."""
    mode: Mode = app.config.get("AUTHGATE_DPOP", False)
    if not mode:
        app.extensions[_EXTENSION] = None
        return
    store = _replay_store(app.config.get("AUTHGATE_REVOCATION_STORE", "memory"))

    def remember_once(key: str, expires_at: float) -> bool:
        return store.put_if_absent(REPLAY_PREFIX + key, 1.0, expires_at)

    app.extensions[_EXTENSION] = DpopVerifier(
        algorithms=list(app.config.get("AUTHGATE_DPOP_ALGORITHMS", DEFAULT_ALGORITHMS)),
        lifetime=_seconds(app.config.get("AUTHGATE_DPOP_PROOF_LIFETIME", 60)),
        leeway=_seconds(app.config.get("AUTHGATE_JWT_LEEWAY", 0)),
        replay=remember_once,
    )


def mode() -> Mode:
    """``AUTHGATE_DPOP`` of the current app."""
    return t.cast(Mode, current_app.config.get("AUTHGATE_DPOP", False))


def algorithms() -> tuple[str, ...]:
    """The proof algorithms accepted (for the ``algs`` of a ``DPoP`` challenge)."""
    verifier: DpopVerifier | None = current_app.extensions.get(_EXTENSION)
    return verifier.algorithms if verifier is not None else ()


def _refuse(reason: str) -> AuthError:
    log.debug("example: token-endpoint DPoP proof refused (%s)", reason)
    return AuthError("dpop_proof_invalid", reason=reason)


def proven_key() -> str | None:
    """The thumbprint of the key this token-endpoint request proves, or ``None`` without a proof.

    :raises AuthError: ``dpop_proof_invalid`` for two ``DPoP`` headers, a proof
        that fails a check of RFC 9449 §4.3 (a replayed one included), or no
        proof in ``"required"`` mode.
    """
    verifier: DpopVerifier | None = current_app.extensions.get(_EXTENSION)
    if verifier is None:
        return None  # DPoP off: RFC 9449 §5, a server without DPoP ignores the header (token_type Bearer)
    proofs = request.headers.getlist("DPoP")
    if not proofs or proofs == [""]:
        if mode() == "required":
            raise _refuse("dpop_missing")
        return None
    if len(proofs) > 1 or "," in proofs[0]:
        raise _refuse("dpop_multiple")  # RFC 9449 §4.3 step 1: exactly one DPoP header
    # No access token at a token endpoint, so no ath (RFC 9449 §4.2).
    return verifier.verify(proofs[0], method=request.method, url=request.url, access_token=None).jkt
