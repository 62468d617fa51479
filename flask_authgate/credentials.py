"""Find the raw credentials of a request; never verify them.

The ``Authorization`` header is parsed strictly here, not with Werkzeug's
``request.authorization`` (which reads ``Bearer abc,error="x"`` as parameters):
the scheme is case-insensitive, one or more spaces follow it, and the token
is an RFC 6750 §2.1 ``b64token``. ``Proxy-Authorization`` is never read
(RFC 9110 §11.7.2), nor are tokens in the query string or the body (RFC 6750
§2.3, §5.3).
"""

from __future__ import annotations

import re
import typing as t

from .errors import AuthError

if t.TYPE_CHECKING:
    from werkzeug.datastructures import MultiDict

#: Longest ``Authorization`` value or cookie token considered (RFC 9110 §5.4).
MAX_CREDENTIAL_LENGTH = 8192
MAX_API_KEY_LENGTH = 1024

_SCHEMES = re.compile(r"([Bb][Ee][Aa][Rr][Ee][Rr]|[Dd][Pp][Oo][Pp]) +([A-Za-z0-9\-._~+/]+=*)")
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_API_KEY = re.compile(r"[\x21-\x7e]+")
# Two header lines arrive joined by ", ": a comma, then another "scheme credentials".
_SECOND_CREDENTIAL = re.compile(r",\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+ +\S")

Source = t.Literal["header", "cookie", "api_key"]
#: The token schemes of ``Authorization`` (RFC 6750 ``Bearer``, RFC 9449 ``DPoP``).
Scheme = t.Literal["Bearer", "DPoP"]
#: ``AUTHGATE_DPOP``: off, beside Bearer, or the only scheme.
DpopMode = t.Literal[False, "allowed", "required"]


class Credentials(t.NamedTuple):
    """What the request presented: a token (from a header or cookie) or an API key."""

    value: str
    source: Source
    #: How the token was presented: ``"Bearer"`` (also for cookies) or ``"DPoP"``.
    scheme: Scheme = "Bearer"
    #: The one ``DPoP`` proof header, for the ``DPoP`` scheme.
    proof: str | None = None


def parse_authorization(value: str | None, dpop: DpopMode = False) -> tuple[Scheme, str] | None:
    """The scheme and token of an ``Authorization`` value, ``None`` if it holds none for us.

    ``DPoP`` is a scheme of ours only with ``dpop`` on; with ``"required"``,
    ``Bearer`` is not (RFC 9449 §7.1: the app does not speak it, so no
    credentials were sent).

    :raises AuthError: ``invalid_request`` for two credentials in one header
        (two header lines), ``token_invalid`` for a malformed token.
    """
    if not value:
        return None
    if len(value) > MAX_CREDENTIAL_LENGTH:
        raise AuthError("token_invalid", reason="header_too_long")
    spoken = ("dpop",) if dpop == "required" else ("bearer", "dpop") if dpop else ("bearer",)
    match = _SCHEMES.fullmatch(value)
    if match is not None:
        name = match.group(1).lower()
        if name not in spoken:
            return None  # a scheme this app does not speak: no credentials for us
        return ("DPoP" if name == "dpop" else "Bearer"), match.group(2)
    if _SECOND_CREDENTIAL.search(value):
        raise AuthError("invalid_request", reason="credentials_twice")  # RFC 6750 §3.1, RFC 9110 §5.3
    scheme, _, rest = value.partition(" ")
    if scheme.lower() not in spoken:
        return None  # another scheme (Basic ...): no credentials we speak (RFC 6750 §3.1)
    if not rest.strip():
        return None  # "Bearer" with nothing after it: no credentials
    raise AuthError("token_invalid", reason="malformed_header")


def dpop_proof(environ: dict[str, t.Any]) -> str:
    """The one ``DPoP`` proof header of a request.

    :raises AuthError: ``dpop_proof_invalid`` when there is none, or more than
        one (RFC 9449 §4.3 step 1; two header lines arrive joined by ``", "``).
    """
    proof = environ.get("HTTP_DPOP")
    if not proof:
        raise AuthError("dpop_proof_invalid", reason="dpop_missing")
    if "," in proof:
        raise AuthError("dpop_proof_invalid", reason="dpop_multiple")
    return t.cast(str, proof)


def find(
    environ: dict[str, t.Any],
    cookies: MultiDict[str, str] | None,
    *,
    header: bool = True,
    cookie_name: str | None,
    api_key_environ: str | None,
    dpop: DpopMode = False,
) -> Credentials | None:
    """The one set of credentials a request carries, or ``None``.

    :param environ: The WSGI environ.
    :param header: Whether the ``Authorization`` header is a token location.
    :param cookies: The request cookies, when cookies are a token location.
    :param cookie_name: The access-token cookie name, when cookies are a token location.
    :param api_key_environ: The environ key of the API-key header, when API keys are on.
    :param dpop: ``AUTHGATE_DPOP``: whether the ``DPoP`` scheme is spoken (and ``Bearer``).
    :raises AuthError: ``invalid_request`` when more than one is present
        (RFC 6750 §2: one method per request); ``token_invalid`` or
        ``api_key_invalid`` when the one present is malformed.
    """
    found: list[Credentials] = []
    parsed = parse_authorization(environ.get("HTTP_AUTHORIZATION"), dpop) if header else None
    if parsed is not None:
        scheme, token = parsed
        proof = None
        if scheme == "DPoP":
            proof = dpop_proof(environ)
        found.append(Credentials(token, "header", scheme, proof))
    if api_key_environ is not None:
        key = environ.get(api_key_environ)
        if key:
            if ", " in key:
                # Two header lines arrive joined by ", " (an API key never holds a space).
                raise AuthError("invalid_request", reason="api_key_twice")
            found.append(Credentials(key, "api_key"))
    if cookie_name is not None and cookies:
        sent = cookies.getlist(cookie_name)
        if len(sent) > 1:
            # Two cookies of one name: a sibling subdomain (or a man in the middle on plain
            # http) can plant its own beside the victim's ("cookie tossing"), and which one
            # comes first is not the server's to decide. Credentials sent twice: 400.
            raise AuthError("invalid_request", reason="cookie_twice")
        if sent and sent[0]:
            found.append(Credentials(sent[0], "cookie"))
    if not found:
        return None
    if len(found) > 1:
        raise AuthError("invalid_request", reason="credentials_twice")
    creds = found[0]
    if creds.source == "api_key":
        if len(creds.value) > MAX_API_KEY_LENGTH or not _API_KEY.fullmatch(creds.value):
            raise AuthError("api_key_invalid", reason="malformed_api_key")
    elif creds.source == "cookie" and (
        len(creds.value) > MAX_CREDENTIAL_LENGTH or not _B64TOKEN.fullmatch(creds.value)
    ):
        raise AuthError("token_invalid", reason="malformed_cookie")
    return creds


def present(environ: dict[str, t.Any], *, cookie_name: str | None, api_key_environ: str | None) -> bool:
    """Whether the request carries anything that looks like credentials (for preflights)."""
    if environ.get("HTTP_AUTHORIZATION") or (api_key_environ and environ.get(api_key_environ)):
        return True
    return bool(cookie_name and cookie_name in environ.get("HTTP_COOKIE", ""))
