"""``WWW-Authenticate`` values, built from configuration alone.

Werkzeug's ``WWWAuthenticate.to_header()`` leaves a token-like realm unquoted
(RFC 9110 §11.5 says a sender MUST quote it), so the challenges are built here.
Nothing from the request reaches these strings: the realm, the API-key header
name and the scopes were validated at ``init_app`` or decoration time, and the
descriptions come from the fixed table in :mod:`flask_authgate.errors`.
"""

from __future__ import annotations

import functools

from .errors import ERRORS
from .errors import ErrorCode
from .errors import message_for


def quote(value: str) -> str:
    """Quote a value as an RFC 9110 §5.6.4 quoted-string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@functools.lru_cache(maxsize=512)
def challenges(
    error_code: ErrorCode,
    realm: str,
    api_key: bool,
    scopes: tuple[str, ...] = (),
    token_type: str = "access",
    params: tuple[tuple[str, str], ...] = (),
) -> tuple[str, ...]:
    """The challenge lines for an error: one per enabled scheme, or none.

    :param error_code: The machine code of the error.
    :param realm: The configured realm.
    :param api_key: Whether API keys are accepted (adds an ``ApiKey`` challenge to 401s).
    :param scopes: For ``insufficient_scope``: the scopes the request needed.
    :param token_type: The token the ``error_description`` names.
    :param params: Extra ``name="value"`` parameters a guard adds (step-up's
        ``acr_values`` and ``max_age``), validated where the guard was built.
    """
    info = ERRORS[error_code]
    kind = info.challenge
    if kind is None:
        return ()
    bearer = f"Bearer realm={quote(realm)}"
    if kind == "insufficient_scope":
        # RFC 6750 §3: a 403 for a missing scope MAY name the scopes needed.
        scope = f", scope={quote(' '.join(scopes))}" if scopes else ""
        return (f'{bearer}, error="insufficient_scope"{scope}',)
    if kind == "invalid_request":
        return (f'{bearer}, error="invalid_request"',)
    api = f"ApiKey realm={quote(realm)}"
    description = quote(message_for(error_code, token_type))
    if kind in ("invalid_token", "insufficient_user_authentication", "invalid_dpop_proof"):
        bearer += f', error="{kind}", error_description={description}'
        bearer += "".join(f", {name}={quote(value)}" for name, value in params)
    elif kind == "invalid_key":
        api += f', error="invalid_key", error_description={description}'
    # RFC 9110 §11.6.1: one challenge per field line, for interoperability.
    return (bearer, api) if api_key else (bearer,)
