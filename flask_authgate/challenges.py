"""``WWW-Authenticate`` values, built from configuration alone.

Werkzeug's ``WWWAuthenticate.to_header()`` leaves a token-like realm unquoted
(RFC 9110 §11.5 says a sender MUST quote it), so the challenges are built
here: ``Bearer`` (RFC 6750 §3), ``DPoP`` (RFC 9449 §7.1), step-up parameters
(RFC 9470 §3), ``resource_metadata`` (RFC 9728 §5.1) and ``ApiKey``. Every
value placed in a quoted string (the realm, algorithm names, the metadata
URL, ``acr_values``, ``max_age``, scopes, and the fixed messages of
:data:`~flask_authgate.errors.ERRORS`) was validated where it entered to hold
no ``"``, ``\\`` or control character, and is checked again here, so nothing
is escaped and nothing from the request can reach a header.

Challenge parameter order: ``realm``, ``algs`` (DPoP only), ``error``,
``error_description``, ``scope`` / ``acr_values`` / ``max_age``,
``resource_metadata``.
"""

from __future__ import annotations

import collections.abc as cabc
import functools
import re
import typing as t

from .errors import ERRORS
from .errors import ErrorCode
from .errors import message_for

Scheme = t.Literal["Bearer", "DPoP"]
DpopMode = t.Literal[False, "allowed", "required"]

# RFC 9110 §5.6.4 qdtext minus "\" (and so without quoted-pairs): printable ASCII and space, no ".
_QUOTABLE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


def _q(value: str) -> str:
    """``value`` as a quoted string; refuses what would need escaping."""
    if not isinstance(value, str) or not _QUOTABLE.fullmatch(value):
        raise ValueError('a challenge value must be printable ASCII without " or \\')
    return f'"{value}"'


def challenge(
    scheme: Scheme,
    realm: str,
    *,
    algs: cabc.Sequence[str] = (),
    error: str | None = None,
    error_description: str | None = None,
    params: cabc.Sequence[tuple[str, str]] = (),
    resource_metadata: str | None = None,
) -> str:
    """One challenge line: ``DPoP realm="api", algs="ES256", error="...", ...``.

    :param scheme: ``"Bearer"`` (RFC 6750 §3) or ``"DPoP"`` (RFC 9449 §7.1).
    :param realm: The configured realm.
    :param algs: The DPoP proof algorithms (``DPoP`` only: RFC 9449 §7.1 ``algs``).
    :param error: The ``error`` value, or ``None`` for a bare challenge.
    :param error_description: Sent only together with ``error``.
    :param params: Further ``(name, value)`` parameters: ``scope``,
        ``acr_values``, ``max_age`` (the names are fixed by the caller).
    :param resource_metadata: The RFC 9728 metadata URL, when a resource is configured.
    :raises ValueError: For a value that would need escaping.
    """
    parts = [f"{scheme} realm={_q(realm)}"]
    if scheme == "DPoP" and algs:
        parts.append(f"algs={_q(' '.join(algs))}")
    if error is not None:
        parts.append(f"error={_q(error)}")
        if error_description is not None:
            parts.append(f"error_description={_q(error_description)}")
    for name, value in params:
        parts.append(f"{name}={_q(value)}")
    if resource_metadata is not None:
        parts.append(f"resource_metadata={_q(resource_metadata)}")
    return ", ".join(parts)


@functools.lru_cache(maxsize=1024)
def challenges(
    error_code: ErrorCode,
    realm: str,
    *,
    api_key: bool = False,
    dpop: DpopMode = False,
    dpop_algs: tuple[str, ...] = (),
    scheme: Scheme | None = None,
    scopes: tuple[str, ...] = (),
    step_up: tuple[tuple[str, str], ...] = (),
    resource_metadata: str | None = None,
    token_type: str = "access",
) -> tuple[str, ...]:
    """The challenge lines for an error: one per enabled scheme (RFC 9110 §11.6.1), or none.

    * ``dpop=False``: ``Bearer`` only. ``"required"``: ``DPoP`` only (RFC
      9449 §7.1; ``Bearer`` is a scheme the app does not speak).
      ``"allowed"``: every 401 carries a ``Bearer`` and a ``DPoP`` challenge,
      one per line (RFC 9110 §11.6.1); the ``error`` goes on the one
      ``scheme`` the failing request used, the other stays bare.
    * ``dpop_proof_invalid`` always goes on ``DPoP``
      (``error="invalid_dpop_proof"``); ``token_invalid`` and the other
      ``invalid_token`` codes go on ``scheme`` (figure 16 of RFC 9449 for a
      binding that does not match).
    * ``insufficient_user_authentication`` (401, RFC 9470 §3) carries the
      ``step_up`` parameters (from :func:`flask_authgate.step_up.step_up_params`).
    * ``insufficient_scope`` (403) and ``invalid_request`` (400) are one
      challenge, on ``scheme``.
    * An ``ApiKey`` challenge follows on 401s when API keys are on; it never
      carries ``resource_metadata`` (RFC 9728 §5.1 is about OAuth schemes).

    :param error_code: The machine code of the error.
    :param realm: The configured realm.
    :param api_key: Whether API keys are accepted.
    :param dpop: The DPoP mode.
    :param dpop_algs: The accepted DPoP proof algorithms (the ``algs`` parameter).
    :param scheme: The scheme of the failing request's credentials; ``None``
        when there were none or they were not ours (then ``DPoP`` in
        ``"required"`` mode, else ``Bearer``).
    :param scopes: For ``insufficient_scope``: the scopes needed.
    :param step_up: For ``insufficient_user_authentication``: the parameters.
    :param resource_metadata: :func:`flask_authgate.resource_metadata.metadata_url`, when configured.
    :param token_type: The token the ``error_description`` names (``"refresh"``).
    """
    info = ERRORS[error_code]
    kind = info.challenge
    if kind is None:
        return ()
    schemes: tuple[Scheme, ...] = ("DPoP",) if dpop == "required" else ("Bearer", "DPoP") if dpop else ("Bearer",)
    used: Scheme = "DPoP" if kind == "invalid_dpop_proof" else scheme or schemes[0]
    if used not in schemes:
        used = schemes[0]

    def line(
        name: Scheme,
        *,
        error: str | None = None,
        description: bool = False,
        params: cabc.Sequence[tuple[str, str]] = (),
    ) -> str:
        return challenge(
            name,
            realm,
            algs=dpop_algs,
            error=error,
            error_description=message_for(error_code, token_type) if description else None,
            params=params,
            resource_metadata=resource_metadata,
        )

    if kind == "insufficient_scope":
        # RFC 6750 §3: a 403 for a missing scope MAY name the scopes needed.
        params = (("scope", " ".join(scopes)),) if scopes else ()
        return (line(used, error="insufficient_scope", params=params),)
    if kind == "invalid_request":
        return (line(used, error="invalid_request"),)
    lines: list[str] = []
    for name in schemes:
        if name != used or kind in ("", "invalid_key"):
            lines.append(line(name))
        elif kind == "insufficient_user_authentication":
            lines.append(line(name, error=kind, description=True, params=step_up))
        else:  # invalid_token, invalid_dpop_proof
            lines.append(line(name, error=kind, description=True))
    if api_key:
        api = f"ApiKey realm={_q(realm)}"
        if kind == "invalid_key":
            api += f", error={_q('invalid_key')}, error_description={_q(message_for(error_code))}"
        lines.append(api)
    return tuple(lines)


#: The fixed ``error_description`` of a ``use_dpop_nonce`` challenge.
NONCE_MESSAGE = "The DPoP proof must carry the server nonce"


def use_dpop_nonce_challenge(realm: str, *, algs: tuple[str, ...], resource_metadata: str | None = None) -> str:
    """The challenge for a proof without the current server nonce (RFC 9449 §9).

    Send it with the 401 and a ``DPoP-Nonce: <NonceSource.current()>`` header,
    for a refusal whose reason is ``dpop_nonce``.
    """
    return challenge(
        "DPoP",
        realm,
        algs=algs,
        error="use_dpop_nonce",
        error_description=NONCE_MESSAGE,
        resource_metadata=resource_metadata,
    )
