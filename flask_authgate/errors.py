"""The error family: one :class:`AuthError` per failure, one table of codes.

Every refusal the extension makes is an :class:`AuthError` built from a machine
code (``error_code``). The HTTP status, the fixed message and the kind of
``WWW-Authenticate`` challenge all follow from that code through
:data:`ERRORS`, so no call site invents a status or a sentence.
"""

from __future__ import annotations

import collections.abc as cabc
import json
import re
import typing as t
import unicodedata
from http import HTTPStatus

from flask import current_app
from flask import has_app_context
from werkzeug.exceptions import BadRequest
from werkzeug.exceptions import Forbidden
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import NotFound
from werkzeug.exceptions import ServiceUnavailable
from werkzeug.exceptions import Unauthorized

if t.TYPE_CHECKING:
    from werkzeug.sansio.response import Response as SansIOResponse
    from werkzeug.wrappers.request import Request as WSGIRequest

ErrorCode = t.Literal[
    "token_missing",
    "invalid_request",
    "token_invalid",
    "token_expired",
    "token_revoked",
    "token_type_invalid",
    "api_key_invalid",
    "identity_not_found",
    "fresh_token_required",
    "insufficient_role",
    "insufficient_scope",
    "not_owner",
    "forbidden",
    "unauthorized",
    "not_found",
    "ip_denied",
    "csrf_failed",
    "auth_unavailable",
    "dpop_proof_invalid",
    "insufficient_user_authentication",
]

#: What the ``WWW-Authenticate`` challenge carries for a code: ``None`` for no
#: challenge at all, ``""`` for a bare challenge (RFC 6750 §3.1: no error when
#: no credentials were presented), otherwise the RFC 6750 ``error`` value.
ChallengeKind = t.Literal[
    None,
    "",
    "invalid_request",
    "invalid_token",
    "insufficient_scope",
    "invalid_key",
    "invalid_dpop_proof",
    "insufficient_user_authentication",
]


class ErrorInfo(t.NamedTuple):
    status: int
    message: str
    challenge: ChallengeKind


#: The closed set of machine codes. Messages are fixed, safe sentences: never an
#: exception's text, a secret or an echo of the request. They contain no ``"``
#: or ``\`` because they are also sent as ``error_description`` (RFC 6750 §3).
ERRORS: dict[str, ErrorInfo] = {
    "token_missing": ErrorInfo(401, "No authentication token was provided", ""),
    "invalid_request": ErrorInfo(400, "The request sent credentials more than once", "invalid_request"),
    "token_invalid": ErrorInfo(401, "The access token is invalid", "invalid_token"),
    "token_expired": ErrorInfo(401, "The access token expired", "invalid_token"),
    "token_revoked": ErrorInfo(401, "The access token was revoked", "invalid_token"),
    "token_type_invalid": ErrorInfo(401, "The token is of the wrong type for this request", "invalid_token"),
    "api_key_invalid": ErrorInfo(401, "The API key is invalid", "invalid_key"),
    "identity_not_found": ErrorInfo(401, "The identity of the token no longer exists", "invalid_token"),
    "fresh_token_required": ErrorInfo(401, "This request needs a token from a fresh login", "invalid_token"),
    "insufficient_role": ErrorInfo(403, "You do not have a role this request requires", None),
    "insufficient_scope": ErrorInfo(403, "The access token lacks a scope this request requires", "insufficient_scope"),
    "not_owner": ErrorInfo(403, "You do not own this resource", None),
    "forbidden": ErrorInfo(403, "You do not have permission to access this resource", None),
    "unauthorized": ErrorInfo(401, "Authentication is required to access this resource", ""),
    "not_found": ErrorInfo(404, "The requested resource was not found", None),
    "ip_denied": ErrorInfo(403, "Your network address is not allowed to access this resource", None),
    "csrf_failed": ErrorInfo(403, "The CSRF token is missing or does not match", None),
    "auth_unavailable": ErrorInfo(503, "The authentication service is temporarily unavailable", None),
    "dpop_proof_invalid": ErrorInfo(401, "The DPoP proof is invalid", "invalid_dpop_proof"),
    "insufficient_user_authentication": ErrorInfo(
        401, "A stronger or more recent authentication is required", "insufficient_user_authentication"
    ),
}

#: The token types a message can name: the sentences of :data:`ERRORS` are about access
#: tokens, and say "refresh token" instead when a refresh token was refused.
TOKEN_TYPES = ("access", "refresh")

#: RFC 6749 §3.3 ``scope-token``: what one scope may hold (no space, ``"`` or ``\``).
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def message_for(error_code: str, token_type: str = "access") -> str:
    """The fixed sentence of a code, naming the token type where the sentence is about a token."""
    message = ERRORS[error_code].message
    return message.replace("access token", "refresh token") if token_type == "refresh" else message


#: Codes for the plain ``abort(status)`` of other code in the app.
PLAIN_CODES: dict[int, ErrorCode] = {401: "unauthorized", 403: "forbidden", 404: "not_found"}


class ConfigError(ValueError):
    """A bad ``AUTHGATE_*`` value, raised by ``init_app``; the text names the key and the fix."""


class AuthError(HTTPException):
    """The base of every error the extension raises.

    ``AuthError("token_expired")`` returns an instance of the subclass for the
    code's status, which is also Werkzeug's exception for that status
    (:class:`~werkzeug.exceptions.Unauthorized` for 401 ...), so ``.code`` stays
    the integer status and an app's own ``errorhandler(401)`` still sees it.

    :param error_code: One of the machine codes in :data:`ERRORS`.
    :param scopes: For ``insufficient_scope``: the scopes the request needed,
        sent in the challenge's ``scope`` attribute. Each must be an RFC 6749
        §3.3 ``scope-token`` (``ValueError`` otherwise): these values reach a
        header, so they are checked where they enter.
    :param retry_after: Seconds for ``Retry-After`` (``auth_unavailable``);
        the app's ``AUTHGATE_RETRY_AFTER`` when not given.
    :param reason: Why the request was refused, in a few words
        (``"audience"``, ``"unknown_kid"`` ...): logged and sent to the
        signals' receivers, never to the client.
    :param token_type: ``"access"`` or ``"refresh"``: the token the message
        is about (``"The refresh token was revoked"``).

    .. versionadded:: 0.1


    .. versionchanged:: 0.2
        ``reason`` and ``token_type``; ``scopes`` are validated.
    """

    #: The machine code: one of :data:`ERRORS`, or the app's own code in an error of
    #: :meth:`~flask_authgate.AuthGate.error_response` (never one of them): a renderer
    #: reads :attr:`message` and ``code``, it does not look the code up in :data:`ERRORS`.
    error_code: ErrorCode | str
    #: The scopes a request needed (``insufficient_scope`` only).
    scopes: tuple[str, ...]
    #: Seconds for ``Retry-After`` (``auth_unavailable`` only).
    retry_after: int | None
    #: Why the request was refused (logs and signals only), or ``None``.
    reason: str | None
    #: The token type the message names.
    token_type: str
    #: The scheme the refused credentials came with (``"Bearer"`` or ``"DPoP"``), or ``None``:
    #: the challenge puts its ``error`` on that scheme.
    scheme: str | None = None
    #: Extra challenge parameters set by a guard (``acr_values``, ``max_age`` for step-up),
    #: built from the guard's own validated arguments, never from the request.
    challenge_params: tuple[tuple[str, str], ...]

    _by_status: t.ClassVar[dict[int, type[AuthError]]] = {}

    def __new__(cls, error_code: ErrorCode, **kwargs: t.Any) -> AuthError:
        info = ERRORS.get(error_code)
        if info is None:
            raise ValueError(f"unknown authgate error code {error_code!r}")
        sub = AuthError._by_status[info.status]
        if cls is not AuthError and not issubclass(sub, cls):
            sub = cls
        instance: AuthError = Exception.__new__(sub)
        return instance

    def __init__(
        self,
        error_code: ErrorCode,
        *,
        scopes: cabc.Iterable[str] = (),
        retry_after: int | None = None,
        reason: str | None = None,
        token_type: str = "access",
        challenge_params: cabc.Iterable[tuple[str, str]] = (),
    ) -> None:
        if isinstance(scopes, str):
            raise TypeError("AuthError(scopes=...) takes a list of scopes, not one string")
        scopes = tuple(scopes)
        for scope in scopes:
            if not isinstance(scope, str) or not SCOPE_TOKEN.fullmatch(scope):
                raise ValueError(f"{scope!r} is not an RFC 6749 scope-token (it would reach WWW-Authenticate)")
        if token_type not in TOKEN_TYPES:
            raise ValueError(f"token_type must be one of {TOKEN_TYPES}")
        # Straight to HTTPException: Unauthorized.__init__ imports on every call,
        # and this runs on every refusal. Its attributes are set here instead.
        HTTPException.__init__(self, description=message_for(error_code, token_type))
        if isinstance(self, Unauthorized):
            self.__dict__["www_authenticate"] = []  # the extension builds its own challenges
        self.error_code = error_code
        self.scopes = scopes
        self.retry_after = retry_after
        self.reason = reason
        self.token_type = token_type
        self.challenge_params = tuple(challenge_params)

    def __reduce__(self) -> tuple[t.Any, ...]:
        if self.error_code not in ERRORS:
            return (app_error, (self.code, self.error_code, self.description))
        return (
            _rebuild,
            (self.error_code, self.scopes, self.retry_after, self.reason, self.token_type, self.challenge_params),
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.code} {self.error_code!r}>"

    @property
    def message(self) -> str:
        """The fixed, safe sentence for :attr:`error_code` (an app-defined error's own message)."""
        if self.error_code not in ERRORS:
            return t.cast(str, self.description)
        return message_for(self.error_code, self.token_type)

    def get_response(  # type: ignore[override]
        self,
        environ: WSGIRequest | dict[str, t.Any] | None = None,
        scope: dict[str, t.Any] | None = None,
    ) -> SansIOResponse:
        """Render as the extension's handler does, even when no handler ran.

        The app's state renders it (its realm, format and renderer); outside an
        app that has the extension, a plain JSON body is all there is to say.
        """
        state = current_app.extensions.get("authgate") if has_app_context() else None
        if state is not None:
            return t.cast("SansIOResponse", state.render(self))
        return super().get_response(environ)

    def get_body(
        self,
        environ: WSGIRequest | dict[str, t.Any] | None = None,
        scope: dict[str, t.Any] | None = None,
    ) -> str:
        """The contract's JSON body (used only where no app renders the error)."""
        status = t.cast(int, self.code)
        return json.dumps(
            {"error": reason_phrase(status), "code": self.error_code, "message": self.message, "status": status}
        )

    def get_headers(
        self,
        environ: WSGIRequest | dict[str, t.Any] | None = None,
        scope: dict[str, t.Any] | None = None,
    ) -> list[tuple[str, str]]:
        headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        info = ERRORS.get(self.error_code)
        kind = info.challenge if info is not None else "" if self.code == 401 else None
        if kind is not None:
            # The default realm and no other scheme: no app configured anything else.
            line = 'Bearer realm="api"'
            if kind == "insufficient_scope":
                line += ', error="insufficient_scope"' + (f', scope="{" ".join(self.scopes)}"' if self.scopes else "")
            elif kind:
                line += f', error="{kind}", error_description="{self.message}"'
            headers.append(("WWW-Authenticate", line))
        return headers


def _rebuild(
    error_code: ErrorCode,
    scopes: tuple[str, ...],
    retry_after: int | None,
    reason: str | None = None,
    token_type: str = "access",
    challenge_params: tuple[tuple[str, str], ...] = (),
) -> AuthError:
    return AuthError(
        error_code,
        scopes=scopes,
        retry_after=retry_after,
        reason=reason,
        token_type=token_type,
        challenge_params=challenge_params,
    )


class BadRequestAuthError(AuthError, BadRequest):
    """400: credentials sent more than once (``invalid_request``)."""


class UnauthorizedAuthError(AuthError, Unauthorized):
    """401: we do not know who this is."""


class ForbiddenAuthError(AuthError, Forbidden):
    """403: we know who this is, and the answer is no."""


class NotFoundAuthError(AuthError, NotFound):
    """404: a resource hidden from this caller."""


class UnavailableAuthError(AuthError, ServiceUnavailable):  # type: ignore[misc]
    """503: an auth backend could not be reached; the request fails closed."""


AuthError._by_status.update(
    {
        400: BadRequestAuthError,
        401: UnauthorizedAuthError,
        403: ForbiddenAuthError,
        404: NotFoundAuthError,
        503: UnavailableAuthError,
    }
)


def reason_phrase(status: int) -> str:
    """The HTTP reason phrase (``"Unauthorized"``) for a status."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


#: What the machine code of an app-defined error may look like: a lowercase word (``login_failed``).
APP_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")

#: Unicode categories a message may not hold: control characters (CR, LF, NUL, DEL, C1) and
#: the line and paragraph separators.
_FORBIDDEN_IN_MESSAGE = frozenset({"Cc", "Zl", "Zp"})


#: Codes of the extension that are not refusals of :data:`ERRORS` (the 429 of
#: :func:`~flask_authgate.integrations.too_many_requests`): an app's error may not take them either.
RATE_LIMITED = "rate_limited"
#: The longest message an app's error may carry (it is a fixed sentence, not a report).
MAX_APP_MESSAGE = 500


def app_error(status: int, code: str, message: str, *, extension: bool = False) -> AuthError:
    """An :class:`AuthError` for an error the app defines (:meth:`~flask_authgate.AuthGate.error_response`).

    Its ``code`` is ``status``, its ``error_code`` the app's ``code`` (never
    one of :data:`ERRORS`, so an app cannot forge ``token_expired``) and its
    :attr:`~AuthError.message` the app's ``message``. Every argument is checked
    here, at the call: a bad one is a programming error, not a response.

    :param extension: ``True`` only for the extension's own errors outside
        :data:`ERRORS` (:data:`RATE_LIMITED`), which an app may not take.
    :raises TypeError: ``status`` is not an ``int``, or ``code`` or ``message`` not a ``str``.
    :raises ValueError: ``status`` is not 4xx or 5xx; ``code`` does not match
        :data:`APP_CODE` or is one of the extension's codes; ``message`` is empty,
        longer than :data:`MAX_APP_MESSAGE` or holds a control character or a line break.
    """
    if not isinstance(status, int) or isinstance(status, bool):
        raise TypeError(f"status must be an int, not {type(status).__name__}")
    status = int(status)  # an HTTPStatus member too
    if not 400 <= status <= 599:
        raise ValueError(f"status {status} is not an error status (4xx or 5xx)")
    if not isinstance(code, str):
        raise TypeError(f"code must be a str, not {type(code).__name__}")
    if not APP_CODE.fullmatch(code):
        raise ValueError(f"code {code!r} is not a lowercase machine word matching {APP_CODE.pattern}")
    if code in ERRORS or (code == RATE_LIMITED and not extension):
        raise ValueError(f"code {code!r} is one of flask-authgate's own codes; give the app's error a code of its own")
    if not isinstance(message, str):
        raise TypeError(f"message must be a str, not {type(message).__name__}")
    if not message or len(message) > MAX_APP_MESSAGE:
        raise ValueError(f"message must be a sentence of 1 to {MAX_APP_MESSAGE} characters")
    if any(unicodedata.category(char) in _FORBIDDEN_IN_MESSAGE for char in message):
        raise ValueError("message must be a non-empty sentence without control characters or line breaks")
    err: AuthError = Exception.__new__(AuthError._by_status.get(status, AuthError))
    HTTPException.__init__(err, description=message)
    if isinstance(err, Unauthorized):
        err.__dict__["www_authenticate"] = []  # the extension builds its own challenges
    err.code = status
    err.error_code = t.cast(ErrorCode, code)
    err.scopes = ()
    err.retry_after = None
    err.reason = None
    err.token_type = "access"
    err.challenge_params = ()
    return err
