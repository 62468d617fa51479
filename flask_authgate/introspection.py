"""RFC 7662 token introspection for opaque (non-JWT) access tokens.

A bearer token that is not a JWT (see :func:`looks_like_jwt`) is POSTed to the
authorization server's introspection endpoint as
``token=…&token_type_hint=access_token`` with the resource server's client
credentials (HTTP Basic, RFC 7662 §2.1, RFC 6749 §2.3.1). The answer decides:

* ``"active": false`` → 401 ``token_invalid`` (reason ``introspection_inactive``);
* unreachable endpoint, non-2xx answer, or a malformed body (not a JSON object,
  ``active`` missing or not a JSON boolean — ``"true"`` as a string is
  malformed) → 503 ``auth_unavailable`` (reason ``introspection_failed``);
* ``"active": true`` → an :class:`IntrospectionResult`: the subject is ``sub``,
  else ``client_id``, else the token is ``token_invalid``; claim types are
  checked as for a JWT; ``aud`` and ``iss`` are checked when configured; an
  answer that marks the token as a refresh token is refused.

Answers, active or not, are cached for ``cache_ttl`` seconds and never past
the token's ``exp``. The cache is keyed by the SHA-256 of the token (the raw
token is never stored), bounded by ``max_entries``, and at most one call per
distinct token is made per TTL — also when many threads present the same new
token at once (the first asks, the others wait for its answer). Failures
(503) are not cached.
"""

from __future__ import annotations

import base64
import collections
import collections.abc as cabc
import dataclasses
import hashlib
import json
import logging
import re
import threading
import time
import types
import typing as t

from ._http import MAX_BYTES
from ._http import FetchError
from ._http import fetch_json
from ._json import json_number
from .errors import AuthError

log = logging.getLogger("flask_authgate")

_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")
#: RFC 6750 §2.1 ``b64token``.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: What some servers answer for a refresh token that was sent as an access token.
_REFRESH_MARKERS = (("token_use", "refresh_token"), ("token_type", "refresh_token"), ("typ", "Refresh"))

UrlSource = str | cabc.Callable[[], str]


def looks_like_jwt(token: str) -> bool:
    """Whether ``token`` is a JWT: three base64url segments whose first decodes to a JSON object."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not all(_SEGMENT.fullmatch(p) for p in parts):
        return False
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, RecursionError):
        return False
    return isinstance(header, dict)


def token_digest(token: str) -> str:
    """The SHA-256 of a token string, hex: the cache key and the fallback revocation key."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _freeze(value: t.Any) -> t.Any:
    # Cached answers are shared by requests: nothing a view does may change them.
    if isinstance(value, dict):
        return types.MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class IntrospectionResult:
    """An active token, as the introspection endpoint described it."""

    #: The answer's members (deeply read-only), for roles, scopes and the ``Identity``.
    claims: cabc.Mapping[str, t.Any]
    #: ``sub``, else ``client_id``.
    subject: str
    #: What ``revoke(token)`` keys on: the answer's ``jti``, else the token's SHA-256.
    token_id: str
    #: The answer's ``exp``, if any.
    expires_at: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class _Refusal:
    code: t.Literal["token_invalid", "token_expired", "auth_unavailable"]
    reason: str
    retry_after: int | None = None

    def error(self) -> AuthError:
        err = AuthError(self.code, retry_after=self.retry_after)
        err.reason = self.reason
        return err


Outcome = IntrospectionResult | _Refusal


class _Flight:
    __slots__ = ("done", "outcome")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.outcome: Outcome | None = None


def _number(answer: cabc.Mapping[str, t.Any], name: str) -> float | None:
    value = answer.get(name)
    if value is None:
        return None
    number = json_number(value)  # a 400-digit integer is no number of seconds either
    if number is None:
        raise ValueError(name)
    return number


class Introspector:
    """An RFC 7662 client with a bounded, deduplicating cache.

    :param url: The introspection endpoint, or a function returning it (e.g.
        :meth:`.discovery.Discovery.introspection_endpoint`, which may raise
        503 ``auth_unavailable``).
    :param client_id: The resource server's client id at the endpoint.
    :param client_secret: Its secret (sent with HTTP Basic).
    :param timeout: Total seconds of one call.
    :param cache_ttl: Seconds an answer is reused (never past the token's ``exp``).
    :param max_entries: Most answers kept.
    :param max_inflight: Most distinct tokens being introspected at once; beyond
        it, 503 ``auth_unavailable`` (reason ``introspection_busy``).
    :param audience: Accepted audiences; ``None``: the answer must carry no ``aud``.
    :param issuers: Accepted ``iss`` values; ``None``: not checked.
    :param leeway: Seconds of clock skew for ``exp`` and ``nbf``.
    :param retry_after: ``Retry-After`` of a 503.
    :param max_bytes: Largest answer accepted.
    :param max_token_length: Longest token sent (longer ones are refused unsent).
    :param clock: Wall clock (``exp`` is wall time).
    """

    def __init__(
        self,
        url: UrlSource,
        *,
        client_id: str,
        client_secret: str,
        timeout: float = 2,
        cache_ttl: float = 60,
        max_entries: int = 10_000,
        max_inflight: int = 1024,
        audience: tuple[str, ...] | None = None,
        issuers: tuple[str, ...] | None = None,
        leeway: float = 0,
        retry_after: int = 5,
        max_bytes: int = MAX_BYTES,
        max_token_length: int = 8192,
        clock: cabc.Callable[[], float] = time.time,
    ) -> None:
        self._url = url
        self._credentials = (client_id, client_secret)
        self._timeout = timeout
        self._ttl = cache_ttl
        self._max_entries = max_entries
        self._max_inflight = max_inflight
        self._audience = audience
        self._issuers = issuers
        self._leeway = leeway
        self._retry_after = retry_after
        self._max_bytes = max_bytes
        self._max_token_length = max_token_length
        #: The wall clock of the cache and of ``exp`` (replaceable in tests).
        self.clock = clock
        self._cache: collections.OrderedDict[bytes, tuple[float, Outcome]] = collections.OrderedDict()
        self._inflight: dict[bytes, _Flight] = {}
        self._lock = threading.Lock()
        #: Calls made to the endpoint.
        self.calls = 0

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def cache_ttl(self) -> float:
        """Seconds an answer is reused."""
        return self._ttl

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def introspect(self, token: str) -> IntrospectionResult:
        """The active token's description, from the cache or the endpoint.

        :raises AuthError: 401 ``token_invalid`` / ``token_expired`` or 503
            ``auth_unavailable``, with a ``reason``.
        """
        if not token or len(token) > self._max_token_length or not _B64TOKEN.fullmatch(token):
            raise _Refusal("token_invalid", "malformed").error()  # never sent
        key = hashlib.sha256(token.encode("ascii")).digest()
        outcome = self._outcome(key, token)
        if isinstance(outcome, _Refusal):
            raise outcome.error()
        return outcome

    def _outcome(self, key: bytes, token: str) -> Outcome:
        with self._lock:
            cached = self._cached(key)
            if cached is not None:
                return cached
            flight = self._inflight.get(key)
            leader = flight is None
            if flight is None:
                if len(self._inflight) >= self._max_inflight:
                    log.warning("authgate: too many introspections in flight; refusing (introspection_busy)")
                    return _Refusal("auth_unavailable", "introspection_busy", self._retry_after)
                flight = self._inflight[key] = _Flight()
        if not leader:
            # Another request is asking about this very token: wait for its answer (one call per token).
            if flight.done.wait(self._timeout + 1.0) and flight.outcome is not None:
                return flight.outcome
            return _Refusal("auth_unavailable", "introspection_failed", self._retry_after)
        outcome: Outcome | None = None
        try:
            outcome = self._ask(token)
        finally:
            with self._lock:
                if outcome is not None:
                    self._store(key, outcome)
                self._inflight.pop(key, None)
            flight.outcome = outcome
            flight.done.set()
        return outcome

    def _cached(self, key: bytes) -> Outcome | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        until, outcome = entry
        if self.clock() >= until:
            del self._cache[key]
            return None
        return outcome

    def _store(self, key: bytes, outcome: Outcome) -> None:
        if isinstance(outcome, _Refusal) and outcome.code == "auth_unavailable":
            return  # failures are retried on the next request
        now = self.clock()
        until = now + self._ttl
        if isinstance(outcome, IntrospectionResult) and outcome.expires_at is not None:
            until = min(until, outcome.expires_at + self._leeway)
        if until <= now or self._max_entries <= 0:
            return
        self._cache[key] = (until, outcome)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)

    def _fail(self, reason: str) -> _Refusal:
        log.warning("authgate: introspection failed (%s); answering 503", reason)
        return _Refusal("auth_unavailable", "introspection_failed", self._retry_after)

    def _ask(self, token: str) -> Outcome:
        self.calls += 1
        try:
            url = self._url if isinstance(self._url, str) else self._url()
            answer = fetch_json(
                url,
                timeout=self._timeout,
                method="POST",
                form={"token": token, "token_type_hint": "access_token"},
                basic_auth=self._credentials,
                max_bytes=self._max_bytes,
            )
        except FetchError as exc:
            return self._fail(exc.reason)
        except AuthError as exc:
            return self._fail(getattr(exc, "reason", None) or "discovery_failed")
        active = answer.get("active")
        if type(active) is not bool:
            # RFC 7662 §2.2: "active" is REQUIRED and a JSON boolean; "true" as a string is not.
            return self._fail("malformed_answer")
        if not active:
            log.debug("authgate: token refused (introspection_inactive)")
            return _Refusal("token_invalid", "introspection_inactive")
        try:
            return self._result(token, answer)
        except ValueError as exc:
            log.debug("authgate: token refused (%s)", exc.args[0])
            return _Refusal("token_invalid", exc.args[0])
        except _Expired:
            log.debug("authgate: token refused (expired)")
            return _Refusal("token_expired", "expired")

    def _result(self, token: str, answer: dict[str, t.Any]) -> IntrospectionResult:
        for name, marker in _REFRESH_MARKERS:
            if answer.get(name) == marker:
                raise ValueError("token_type")
        for name in ("sub", "client_id", "jti"):
            if name in answer and (not isinstance(answer[name], str) or not answer[name]):
                raise ValueError("claim_type")
        subject = answer.get("sub") or answer.get("client_id")
        if not subject:
            raise ValueError("missing_claim")
        try:
            exp, nbf = _number(answer, "exp"), _number(answer, "nbf")
            _number(answer, "iat")
        except ValueError:
            raise ValueError("claim_type") from None
        now = self.clock()
        if exp is not None and now >= exp + self._leeway:
            raise _Expired
        if nbf is not None and now + self._leeway < nbf:
            raise ValueError("not_yet_valid")
        aud = answer.get("aud")
        auds: list[t.Any] = [] if aud is None else [aud] if isinstance(aud, str) else aud
        if not isinstance(auds, list) or not all(isinstance(a, str) for a in auds):
            raise ValueError("claim_type")
        if self._audience is None:
            if auds:
                raise ValueError("audience")  # RFC 7519 §4.1.3, as for a JWT
        elif not any(a in self._audience for a in auds):
            raise ValueError("audience")
        if self._issuers is not None and answer.get("iss") not in self._issuers:
            raise ValueError("issuer")
        jti = answer.get("jti")
        return IntrospectionResult(
            claims=_freeze(answer),
            subject=subject,
            token_id=jti if jti else token_digest(token),
            expires_at=exp,
        )


class _Expired(Exception):
    pass
