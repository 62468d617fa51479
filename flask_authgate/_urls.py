"""What a URL from configuration or from an identity provider must look like: pure checks, no I/O.

``config`` validates configured URLs with these and ``_http`` / ``discovery``
re-check every URL they are about to fetch, so configuration never reaches the
fetching machinery to ask.
"""

from __future__ import annotations

import re
import typing as t
import urllib.parse

#: Printable ASCII without spaces: what a URL may hold (``fullmatch``: ``$`` would let a final newline in).
_URL_CHARS = re.compile(r"[\x21-\x7e]+")


def is_http_url(value: object) -> bool:
    """Whether ``value`` is an absolute ``http``/``https`` URL we are willing to fetch.

    It needs a host, no user information (``user:pass@``), no fragment, and
    printable ASCII only (no spaces, CR or LF).
    """
    if not isinstance(value, str) or not _URL_CHARS.fullmatch(value):
        return False
    try:
        parts = urllib.parse.urlsplit(value)
        port = parts.port  # raises ValueError for a bad port
    except ValueError:
        return False
    del port
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and "@" not in parts.netloc
        and not parts.fragment
        and "#" not in value
    )


def is_discoverable_issuer(issuer: object) -> bool:
    """Whether ``issuer`` can be discovered: an ``http(s)`` URL without query or fragment (RFC 8414 §2)."""
    if not is_http_url(issuer):
        return False
    parts = urllib.parse.urlsplit(t.cast(str, issuer))
    return not parts.query and not parts.fragment
