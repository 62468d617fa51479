"""The HMAC fast path: one pass over a canonical HS256/384/512 JWT, beside PyJWT.

Why it exists: PyJWT re-prepares the key and re-validates the base64 alphabet
in Python on every call, which is most of a first-seen HS256 token's cost
(``docs/performance.md``: the first-seen target is at most 1.05x the
hand-written floor that calls ``jwt.decode`` directly).

What it costs: a second reading of the same tokens, so it is fenced here and
proven equivalent: it handles only the common shape (three unpadded base64url
segments, a header of just ``alg`` — one of the app's —, ``typ`` and a known
``kid``, a signature of exactly the digest's length in canonical base64) and
runs every check PyJWT would: signature (constant time), JSON object payload,
required claims, audience, issuer and the types of ``sub`` and ``jti``.
Anything else (other header parameters such as ``crit``, ``jku`` or ``b64``,
padding, an unknown ``kid`` ...) returns ``None`` and goes through PyJWT, so the
outcome is the same either way. ``tests/test_fast_path.py`` checks that with a
differential fuzz test (hypothesis: mutated and random tokens against PyJWT).
It imports no JOSE library: ``hashlib``, ``hmac`` and ``json`` only.
"""

from __future__ import annotations

import base64
import collections.abc as cabc
import hashlib
import hmac
import json
import re
import typing as t

from .errors import AuthError

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_FAST_HEADER = frozenset({"alg", "typ", "kid"})
#: alg -> (hash, length of an unpadded base64url signature)
HMAC_SPECS = {
    "HS256": (hashlib.sha256, 43),
    "HS384": (hashlib.sha384, 64),
    "HS512": (hashlib.sha512, 86),
}
_B64_INDEX = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}


def _canonical(segment: str) -> bool:
    """Whether the unused low bits of the last character are zero (PyJWT refuses other segments)."""
    rem = len(segment) % 4
    return rem < 2 or not _B64_INDEX[segment[-1]] & (0xF if rem == 2 else 0x3)


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class HmacFastPath:
    """Decide canonical HMAC JWTs of one app's keys, or hand them to PyJWT (``None``).

    :param algorithms: The app's accepted algorithms (the HMAC ones are used).
    :param keys: ``kid`` -> secret.
    :param only_secret: The secret when the app has exactly one (a token without
        ``kid`` is tried with it, as PyJWT's path does).
    :param types: Accepted ``typ`` values, lower case; empty for no check.
    :param check_claims: The codec's own claim checks (shared with its PyJWT path).
    """

    def __init__(
        self,
        algorithms: cabc.Iterable[str],
        *,
        keys: cabc.Mapping[str, bytes],
        only_secret: bytes | None,
        types: frozenset[str],
        check_claims: cabc.Callable[[dict[str, t.Any]], None],
    ) -> None:
        self._specs = {a: HMAC_SPECS[a] for a in algorithms if a in HMAC_SPECS}
        self._keys = dict(keys)
        self._only_secret = only_secret
        self._types = types
        self._check_claims = check_claims

    def decode(self, token: str) -> dict[str, t.Any] | None:
        """The verified claims; ``None`` for anything this path does not handle."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        head, body, sig = parts
        if not (_SEGMENT.fullmatch(head) and _SEGMENT.fullmatch(body) and _SEGMENT.fullmatch(sig)):
            return None
        if not (_canonical(head) and _canonical(body)):
            return None  # non-canonical base64: PyJWT decides (and refuses)
        try:
            header = json.loads(_b64decode(head))
        except (ValueError, RecursionError):
            return None
        if type(header) is not dict or not header.keys() <= _FAST_HEADER:
            return None
        alg = header.get("alg")
        specs = self._specs
        spec = specs.get(alg) if type(alg) is str else None
        kid = header.get("kid")
        if spec is None or ("kid" in header and type(kid) is not str):
            return None  # a kid that is present must be a string (PyJWT refuses "kid": null)
        if "typ" in header and type(header["typ"]) is not str:
            return None
        # The key named by kid; with one secret, that secret whatever the kid (as PyJWT's path does).
        key = self._keys.get(kid) if kid is not None else None
        if key is None:
            key = self._only_secret
        digestmod, sig_len = spec
        if key is None or len(sig) != sig_len:
            return None
        signature = _b64decode(sig)
        if _b64encode(signature) != sig:
            return None  # non-canonical trailing bits: PyJWT decides
        expected = hmac.new(key, f"{head}.{body}".encode("ascii"), digestmod).digest()
        if not hmac.compare_digest(signature, expected):
            raise AuthError("token_invalid", reason="signature")
        if self._types:
            typ = header.get("typ")
            if not isinstance(typ, str) or typ.lower() not in self._types:
                raise AuthError("token_invalid", reason="typ")
        try:
            payload = json.loads(_b64decode(body))
        except (ValueError, RecursionError):
            raise AuthError("token_invalid", reason="malformed") from None
        if type(payload) is not dict:
            raise AuthError("token_invalid", reason="malformed")
        self._check_claims(payload)
        return payload
