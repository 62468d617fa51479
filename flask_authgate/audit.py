"""Structured audit logging: one JSON line per decision (``AUTHGATE_AUDIT_LOG``; see docs/audit-log.md).

:class:`AuditLog` is a decision hook that writes, for each request a guard
or rule decided, one INFO record on the ``flask_authgate.audit`` logger whose
message is one JSON object on one line::

    {"time": "2026-12-01T19:20:00.123Z", "event": "authgate.decision", "outcome": "denied",
     "code": "insufficient_role", "reason": "insufficient_role", "status": 403, "scheme": "jwt",
     "method": "DELETE", "endpoint": "admin.delete_user", "subject": "alice", "client": "203.0.113.9"}

What is never in it: tokens, API keys, secrets, DPoP proofs, claims other
than the subject, header values, the path or the query string. The subject
is personal data: the point of an audit log is who did what.

Every value comes out of :func:`json.dumps` with ``ensure_ascii``: a control
character, a line break (``\\n``, ``\\r``, U+2028, U+2029) or a quote in a
subject or a method is escaped, so nothing a client or a token carries can end
the line early or forge a second record. The method and the client address
(the only values read from the request itself) are clipped to a fixed
length, as is the subject.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime
import json
import logging
import time
import typing as t

from flask import has_request_context
from flask import request

if t.TYPE_CHECKING:
    from .pipeline import Decision

__all__ = ["AUDIT_LOGGER", "AuditLog", "audit_record"]

#: The logger the audit lines go to (a child of ``flask_authgate``).
AUDIT_LOGGER = "flask_authgate.audit"

#: Longest kept value of each request-controlled field; longer ones end in "…".
#: RFC 9110 §9.1 methods are short tokens; an address, even IPv6 with a zone, is under 64.
_LIMITS = {"method": 32, "client": 64, "subject": 1024}


def _clip(value: t.Any, limit: int) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[:limit] + "\u2026"


def _timestamp(seconds: float) -> str:
    """RFC 3339 §5.6 UTC date-time with milliseconds, e.g. ``2026-12-01T19:20:00.123Z``."""
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def audit_record(decision: Decision, *, when: float, client: str | None) -> dict[str, t.Any]:
    """The audit record of ``decision`` as a dict (what :class:`AuditLog` serialises).

    :param when: The wall-clock time of the decision (seconds since the epoch).
    :param client: The client address (``request.remote_addr``), or ``None``.
    """
    return {
        "time": _timestamp(when),
        "event": "authgate.decision",
        "outcome": decision.outcome,
        "code": decision.code,
        "reason": decision.reason,
        "status": decision.status,
        "scheme": decision.scheme,
        "method": _clip(decision.method, _LIMITS["method"]),
        "endpoint": decision.endpoint,
        "subject": _clip(decision.subject, _LIMITS["subject"]),
        "client": _clip(client, _LIMITS["client"]),
    }


class AuditLog:
    """A decision hook that logs one JSON line per decision.

    :param logger: Where the lines go; by default the ``flask_authgate.audit``
        logger. The library adds no handler: attach one (with a
        ``%(message)s`` formatter for bare JSON lines) and set the level to
        ``INFO``. Nothing is serialised while the logger would drop the record.
    :param level: The records' level (``logging.INFO``).
    :param clock: Wall-clock time in seconds since the epoch (``time.time``).

    Each record also carries the dict as ``record.authgate_audit``, for
    structured-logging handlers that format fields themselves.
    """

    __slots__ = ("_clock", "_level", "_logger")

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        level: int = logging.INFO,
        clock: cabc.Callable[[], float] = time.time,
    ) -> None:
        self._logger = logger if logger is not None else logging.getLogger(AUDIT_LOGGER)
        self._level = level
        self._clock = clock

    def __call__(self, decision: Decision) -> None:
        if not self._logger.isEnabledFor(self._level):
            return
        client = request.remote_addr if has_request_context() else None
        record = audit_record(decision, when=self._clock(), client=client)
        # ensure_ascii: every control character and every non-ASCII character is escaped,
        # so the line holds exactly one JSON object whatever the subject or method holds.
        line = json.dumps(record, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
        # No args: the message is never %-formatted, so a "%" in a value is just a character.
        self._logger.log(self._level, line, extra={"authgate_audit": record})
