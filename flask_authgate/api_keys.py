"""Helpers for API keys: generate a key, store only its digest, compare in constant time.

Keys are high-entropy random strings (256 bits) with a recognisable prefix,
so a leaked key is easy to spot by secret scanners. Store only
:func:`hash_api_key` of a key; a plain SHA-256 is right here because the key
itself is random, not a password (OWASP REST Security cheat sheet).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,15}$")


def generate_api_key(prefix: str = "ag") -> tuple[str, str]:
    """A new key and the digest to store: ``("ag_3q2...", "9f86d0...")``.

    Show the key to its owner once; keep only the digest.

    .. versionadded:: 0.1
    """
    if not _PREFIX.match(prefix):
        raise ValueError("prefix must be 1-16 letters and digits, starting with a letter")
    key = f"{prefix}_{secrets.token_urlsafe(32)}"
    return key, hash_api_key(key)


def hash_api_key(key: str) -> str:
    """The SHA-256 hex digest to store for ``key``."""
    return hashlib.sha256(key.encode()).hexdigest()


def verify_api_key(key: str, digest: str) -> bool:
    """Whether ``key`` matches a stored ``digest``, compared in constant time."""
    return hmac.compare_digest(hash_api_key(key).encode(), digest.encode())
