"""Step-up authentication (RFC 9470): is this login strong and recent enough?

:func:`check_step_up` compares an access token's ``acr`` and ``auth_time``
(RFC 9470 §4, claims an identity provider sets per login) with what a guard
asks for; :func:`step_up_params` builds the challenge parameters of RFC 9470
§3 (``acr_values``, ``max_age``) and validates them once, at decoration time,
so nothing unchecked ever reaches a header.

This is not :func:`~flask_authgate.fresh_login_required`: *fresh* means "this
app issued the token at a password login" (its own ``fresh`` claim); *step-up*
means "the identity provider says this login was of class ``acr`` and took
place at ``auth_time``".
"""

from __future__ import annotations

import collections.abc as cabc
import re
import typing as t

from ._json import json_number as _number

#: RFC 9470 §3 / RFC 6750 §3: a value goes into a quoted string and the list is space-separated,
#: so one value is printable ASCII without space, ``"`` or ``\``.
_ACR_VALUE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
#: Longest ``max_age`` accepted (ten years); a larger number is a configuration mistake.
MAX_MAX_AGE = 10 * 365 * 86400


def validate_acr_values(acr_values: cabc.Iterable[str]) -> tuple[str, ...]:
    """The ``acr`` values as a tuple, each checked: a non-empty token of printable ASCII.

    :raises TypeError: For one string where a list belongs, or a non-string value.
    :raises ValueError: For an empty value, or one holding whitespace, a
        control character, ``"`` or ``\\`` (it would break the challenge's
        quoted string or its space-separated list).
    """
    if isinstance(acr_values, str):
        raise TypeError("acr_values must be several arguments or a list, not one string")
    values = tuple(acr_values)
    for value in values:
        if not isinstance(value, str):
            raise TypeError(f"an acr value must be a string, not {type(value).__name__}")
        if not _ACR_VALUE.fullmatch(value):
            raise ValueError(
                f"the acr value {value!r} must be a non-empty token without whitespace, control characters, "
                '" or \\ (RFC 9470 §3: acr_values is a space-separated list)'
            )
    return values


def validate_max_age(max_age: int | None) -> int | None:
    """``max_age`` checked: ``None`` or a whole number of seconds, 0 to ten years.

    :raises TypeError: For a non-integer (``True`` and ``1.5`` included).
    :raises ValueError: For a negative or absurdly large number.
    """
    if max_age is None:
        return None
    if isinstance(max_age, bool) or not isinstance(max_age, int):
        raise TypeError("max_age must be a whole number of seconds")
    if not 0 <= max_age <= MAX_MAX_AGE:
        raise ValueError(f"max_age must be between 0 and {MAX_MAX_AGE} seconds")
    return max_age


def step_up_params(acr_values: cabc.Iterable[str], max_age: int | None) -> list[tuple[str, str]]:
    """The RFC 9470 §3 challenge parameters, in the order they are sent.

    ``[("acr_values", "mfa hwk"), ("max_age", "300")]``, each only when set.
    Call it at decoration time: it raises for a value that could not be sent.

    :raises TypeError: See :func:`validate_acr_values` and :func:`validate_max_age`.
    :raises ValueError: See :func:`validate_acr_values` and :func:`validate_max_age`.

    .. versionadded:: 0.2
    """
    values = validate_acr_values(acr_values)
    age = validate_max_age(max_age)
    params: list[tuple[str, str]] = []
    if values:
        params.append(("acr_values", " ".join(values)))
    if age is not None:
        params.append(("max_age", str(age)))
    return params


def check_step_up(
    claims: cabc.Mapping[str, t.Any],
    *,
    acr_values: tuple[str, ...],
    max_age: int | None,
    now: float,
    leeway: float,
) -> str | None:
    """Whether a token's login satisfies a step-up requirement.

    :param claims: The access token's claims (or an introspection answer).
    :param acr_values: The acceptable ``acr`` values; empty for "any".
    :param max_age: Seconds since ``auth_time`` allowed; ``None`` for "any".
    :param now: The current wall-clock time.
    :param leeway: Seconds of clock skew.
    :returns: ``None`` when satisfied, else the refusal reason:
        ``"step_up_acr"`` (no ``acr``, not a string, or not one of
        ``acr_values``) or ``"step_up_max_age"`` (no ``auth_time``, not a JSON
        number, older than ``max_age`` plus the leeway, or later than the
        leeway into the future). The caller raises
        ``insufficient_user_authentication`` for either.

    .. versionadded:: 0.2
    """
    if acr_values:
        acr = claims.get("acr")
        if type(acr) is not str or acr not in acr_values:
            return "step_up_acr"
    if max_age is not None:
        auth_time = _number(claims.get("auth_time"))
        # RFC 9470 §3: a token without auth_time cannot show a recent enough login.
        if auth_time is None or now - auth_time > max_age + leeway or auth_time > now + leeway:
            return "step_up_max_age"
    return None
