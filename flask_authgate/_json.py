"""Reading JSON values strictly: what a claim of a token, a proof or an answer must be."""

from __future__ import annotations

import math
import typing as t


def json_number(value: t.Any) -> float | None:
    """``value`` as a finite float if it is a JSON number (RFC 7519 §2 NumericDate), else ``None``.

    Not a string, not a boolean (``True`` is an ``int`` in Python), not beyond a
    float's range (an integer like ``10**400`` would raise ``OverflowError``).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
