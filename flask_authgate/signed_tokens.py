"""itsdangerous signed tokens (``AUTHGATE_TOKEN_FORMAT = "signed"``); the only module importing ``itsdangerous``.

URL-safe, timed tokens that carry the same claims as the JWTs. Access and
refresh tokens use distinct salts, so one can never pass for the other
(RFC 8725 §3.12). ``max_age`` is always applied (without it itsdangerous never
expires a token), a timestamp from the future is ``token_invalid`` (itsdangerous
reports it as expired), and the *first* key of a rotation list signs
(itsdangerous signs with the last, so the list is reversed). Signatures are
HMAC-SHA256 (itsdangerous defaults to SHA-1).
"""

from __future__ import annotations

import hashlib
import time
import typing as t

from itsdangerous import BadData
from itsdangerous import BadSignature
from itsdangerous import SignatureExpired
from itsdangerous import URLSafeTimedSerializer

from .config import Settings
from .errors import AuthError

#: The itsdangerous salt of each token type: a token of one type never verifies as the other.
SALTS = {"access": "flask-authgate.access", "refresh": "flask-authgate.refresh"}
#: Passed to every :class:`~itsdangerous.URLSafeTimedSerializer` (HMAC-SHA256 signatures).
SIGNER_KWARGS: dict[str, t.Any] = {"digest_method": hashlib.sha256}


class SignedCodec:
    """Encode and verify itsdangerous tokens for one app's settings."""

    format = "signed"
    can_sign = True

    def __init__(self, settings: Settings) -> None:
        keys = list(reversed(settings.keys.secrets))  # itsdangerous signs with the last key
        self._serializers = {
            kind: URLSafeTimedSerializer(keys, salt=salt, signer_kwargs=SIGNER_KWARGS) for kind, salt in SALTS.items()
        }
        self._max_age = int(settings.tokens.max_lifetime + settings.tokens.leeway) + 1
        self._leeway = settings.tokens.leeway

    def encode(self, payload: dict[str, t.Any], token_type: str) -> str:
        return self._serializers[token_type].dumps(payload)

    def peek(self, token: str) -> dict[str, t.Any]:
        """The claims of a token this app just issued, without verifying it."""
        for serializer in self._serializers.values():
            ok, payload = serializer.loads_unsafe(token)
            if ok:
                return t.cast(dict[str, t.Any], payload)
        raise ValueError("not a token of this app")

    def _loads(self, token: str, token_type: str) -> dict[str, t.Any]:
        try:
            payload, _signed_at = self._serializers[token_type].loads(
                token, max_age=self._max_age, return_timestamp=True
            )
        except SignatureExpired as exc:
            signed = exc.date_signed.timestamp() if exc.date_signed is not None else None
            if signed is not None and signed > time.time() + self._leeway:
                raise AuthError("token_invalid", reason="issued_in_future") from None  # from the future: not "expired"
            raise AuthError("token_expired", reason="expired") from None
        if not isinstance(payload, dict):
            raise AuthError("token_invalid", reason="malformed")
        return payload

    def decode(self, token: str, token_type: str) -> dict[str, t.Any]:
        """Verify ``token`` as a ``token_type`` token and return its claims."""
        try:
            return self._loads(token, token_type)
        except BadSignature:
            pass
        except (BadData, ValueError, TypeError, RecursionError, UnicodeError):
            raise AuthError("token_invalid", reason="signature") from None
        other = "refresh" if token_type == "access" else "access"
        try:
            self._loads(token, other)
        except (BadData, AuthError, ValueError, TypeError, RecursionError, UnicodeError):
            raise AuthError("token_invalid", reason="malformed") from None
        raise AuthError("token_type_invalid", reason="token_type")

    def jwks(self) -> dict[str, list[dict[str, t.Any]]]:
        return {"keys": []}
