"""The test helper kit: token headers, the contract's error bodies, a frozen clock.

Import what a test needs (``from kit import bearer, body``) instead of writing
another copy in the test file.
"""

from __future__ import annotations

import typing as t
from http import HTTPStatus

from flask_authgate.errors import ERRORS
from flask_authgate.errors import message_for


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header that sends ``token``."""
    return {"Authorization": f"Bearer {token}"}


def body(code: str, token_type: str = "access") -> dict[str, t.Any]:
    """The contract's JSON body for ``code`` (its message naming ``token_type``)."""
    info = ERRORS[code]
    return {
        "error": HTTPStatus(info.status).phrase,
        "code": code,
        "message": message_for(code, token_type),
        "status": info.status,
    }


class FakeClock:
    """A clock that stands still until moved: ``clock()`` is the time, ``clock.advance(s)`` moves it."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
