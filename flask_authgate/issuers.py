"""Trusted issuers: route a JWT by its ``iss`` to exactly one, and verify it with that issuer's keys.

:class:`IssuerSet` reads the token's ``iss`` *before* verifying (it only
selects where to look; nothing of the unverified payload is trusted), finds
the one :class:`TrustedIssuer` with exactly that issuer, and verifies the
token with PyJWT against that issuer's keys, algorithms, audience and
``typ`` — one issuer's keys never verify another issuer's tokens. A token
whose ``iss`` is not listed is 401 ``token_invalid`` (reason
``issuer_not_trusted``).

Time claims (``exp``, ``nbf``, ``iat``) are not checked here: like
:class:`~.jwt_tokens.JwtCodec`, PyJWT runs with them off and
:mod:`.tokens` checks them with the extension's clock, so that verdicts can
be cached.

The configuration shapes that build :class:`TrustedIssuer` entries
(``AUTHGATE_TRUSTED_ISSUERS``, ``AUTHGATE_OIDC_ISSUER``, ``AUTHGATE_JWT_ISSUER``)
are parsed by :mod:`.issuer_config`.
"""

from __future__ import annotations

import base64
import collections.abc as cabc
import json
import logging
import re
import time
import typing as t

from ._http import MAX_BYTES
from ._pyjwt import CLAIM_TYPE_ERRORS
from ._pyjwt import InvalidAlgorithmError
from ._pyjwt import InvalidAudienceError
from ._pyjwt import InvalidIssuerError
from ._pyjwt import InvalidKeyError
from ._pyjwt import InvalidSignatureError
from ._pyjwt import MissingRequiredClaimError
from ._pyjwt import PyJWK
from ._pyjwt import PyJWT
from ._pyjwt import PyJWTError
from ._pyjwt import decoder
from .discovery import Discovery
from .errors import AuthError
from .issuer_config import TrustedIssuer
from .jwks import JwksClient
from .jwks import UrlSource

log = logging.getLogger("flask_authgate")


class VerifiedToken(t.NamedTuple):
    """A token verified by :meth:`IssuerSet.verify`."""

    claims: dict[str, t.Any]
    issuer: TrustedIssuer
    #: :attr:`IssuerSet.generation` when the token was verified (tag cache entries with it).
    generation: int

    def roles(self) -> frozenset[str]:
        return self.issuer.roles.extract(self.claims)

    def scopes(self) -> frozenset[str]:
        return self.issuer.scopes.extract(self.claims)


def _refuse(reason: str) -> t.NoReturn:
    log.debug("authgate: token refused (%s)", reason)
    err = AuthError("token_invalid")
    err.reason = reason
    raise err


#: A compact JWS: header and payload non-empty, the signature possibly empty (then ``alg`` decides).
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def _b64json(segment: str) -> t.Any:
    try:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, TypeError, RecursionError):
        return None


def unverified_issuer(token: str) -> str | None:
    """The ``iss`` of a compact JWS, read without verifying (for routing only), or ``None``."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = _b64json(parts[1])
    iss = payload.get("iss") if isinstance(payload, dict) else None
    return iss if isinstance(iss, str) else None


class IssuerSet:
    """The trusted issuers of one app, each with its own keys.

    :param issuers: The entries; issuers must be distinct.
    :param lifespan: JWKS and discovery cache lifespan, seconds.
    :param cooldown: JWKS and discovery cooldown, seconds.
    :param timeout: Total seconds of one fetch.
    :param retry_after: ``Retry-After`` of a 503.
    :param max_bytes: Largest JWK Set or metadata document.
    :param on_keys_changed: Called when any issuer's keys drop or change.
    :param clock: Monotonic clock of the caches.
    :raises ValueError: Two entries have the same issuer.
    """

    def __init__(
        self,
        issuers: cabc.Sequence[TrustedIssuer],
        *,
        lifespan: float = 300,
        cooldown: float = 30,
        timeout: float = 2,
        retry_after: int = 5,
        max_bytes: int = MAX_BYTES,
        on_keys_changed: cabc.Callable[[], None] | None = None,
        clock: cabc.Callable[[], float] = time.monotonic,
    ) -> None:
        self._by_issuer: dict[str, TrustedIssuer] = {}
        self._discovery: dict[str, Discovery] = {}
        self._jwks: dict[str, JwksClient] = {}
        shared: dict[tuple[str, tuple[str, ...]], JwksClient] = {}
        self._clients: list[JwksClient] = []
        common: dict[str, t.Any] = {
            "lifespan": lifespan,
            "cooldown": cooldown,
            "timeout": timeout,
            "retry_after": retry_after,
        }
        for entry in issuers:
            if entry.issuer in self._by_issuer:
                raise ValueError(f"issuer {entry.issuer!r} is listed twice")
            self._by_issuer[entry.issuer] = entry
            url: UrlSource
            if entry.jwks_url is None:
                discovery = Discovery(entry.issuer, max_bytes=max_bytes, clock=clock, **common)
                self._discovery[entry.issuer] = discovery
                url, share_key = discovery.jwks_uri, None
            else:
                # Issuers that publish one JWK Set (Entra tenants, Google's two issuers) share one cache.
                url, share_key = entry.jwks_url, (entry.jwks_url, entry.algorithms)
            client = shared.get(share_key) if share_key is not None else None
            if client is None:
                client = JwksClient(
                    url,
                    algorithms=entry.algorithms,
                    max_bytes=max_bytes,
                    on_keys_changed=on_keys_changed,
                    clock=clock,
                    **common,
                )
                self._clients.append(client)
                if share_key is not None:
                    shared[share_key] = client
            self._jwks[entry.issuer] = client
        self._decoders: dict[str, PyJWT] = {}
        for entry in issuers:
            self._decoders[entry.issuer] = decoder(entry.required_claims)

    @property
    def issuers(self) -> cabc.Mapping[str, TrustedIssuer]:
        return self._by_issuer

    def __len__(self) -> int:
        return len(self._by_issuer)

    def jwks(self, issuer: str) -> JwksClient:
        return self._jwks[issuer]

    def discovery(self, issuer: str) -> Discovery | None:
        return self._discovery.get(issuer)

    @property
    def generation(self) -> int:
        """Increases whenever any issuer drops or re-keys a key (the sum of the JWKS generations)."""
        return sum(client.generation for client in self._clients)

    def refresh_if_stale(self, issuer: str | None = None) -> None:
        """The scheduled JWKS refresh, for one issuer or all (call it before a cache hit)."""
        clients = [self._jwks[issuer]] if issuer is not None and issuer in self._jwks else self._clients
        for client in clients:
            client.refresh_if_stale()

    def route(self, token: str) -> TrustedIssuer:
        """The entry the token's unverified ``iss`` selects; 401 ``issuer_not_trusted`` if none."""
        iss = unverified_issuer(token)
        entry = self._by_issuer.get(iss) if iss is not None else None
        if entry is None:
            # The iss is the sender's text: it is not logged.
            _refuse("issuer_not_trusted")
        return entry

    def verify(self, token: str) -> VerifiedToken:
        """Verify ``token`` against the issuer it names.

        :raises AuthError: 401 ``token_invalid`` with a reason (``malformed``,
            ``issuer_not_trusted``, ``algorithm``, ``unknown_kid``, ``signature``,
            ``audience``, ``issuer``, ``missing_claim``, ``typ``, ``client_id``,
            ``key_unusable``), or 503 ``auth_unavailable`` when the issuer's
            keys cannot be fetched.
        """
        if not _COMPACT.fullmatch(token):
            _refuse("malformed")  # RFC 7515 §2, §7.1: three unpadded base64url segments
        header = _b64json(token.split(".", 1)[0])
        if not isinstance(header, dict):
            _refuse("malformed")
        entry = self.route(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in entry.algorithms:
            _refuse("algorithm")
        kid = header.get("kid")
        if kid is None:
            _refuse("unknown_kid")
        if not isinstance(kid, str) or not kid:
            _refuse("malformed")
        key = self._jwks[entry.issuer].get_key(kid, alg)
        claims = self._decode(token, key, alg, entry)
        if entry.types:
            typ = header.get("typ")
            if not isinstance(typ, str) or typ.lower() not in entry.types:
                _refuse("typ")
        if entry.client_ids is not None:
            client_id = claims.get("client_id", claims.get("azp"))
            if not isinstance(client_id, str) or client_id not in entry.client_ids:
                _refuse("client_id")
        return VerifiedToken(claims, entry, self.generation)

    def _decode(self, token: str, key: PyJWK, alg: str, entry: TrustedIssuer) -> dict[str, t.Any]:
        try:
            complete = self._decoders[entry.issuer].decode_complete(
                token,
                key,
                algorithms=[alg],
                audience=list(entry.audience) if entry.audience else None,
                issuer=entry.issuer,
            )
        except InvalidSignatureError:
            _refuse("signature")
        except InvalidAudienceError:
            _refuse("audience")
        except InvalidIssuerError:
            _refuse("issuer")
        except MissingRequiredClaimError as exc:
            _refuse({"aud": "audience", "iss": "issuer"}.get(exc.claim, "missing_claim"))
        except InvalidAlgorithmError:
            _refuse("algorithm")
        except CLAIM_TYPE_ERRORS:
            _refuse("claim_type")  # sub or jti that is not a string
        except InvalidKeyError as exc:
            log.warning("authgate: a key of issuer %s is unusable (%s)", entry.issuer, type(exc).__name__)
            _refuse("key_unusable")
        except (PyJWTError, ValueError, TypeError, RecursionError, KeyError, AttributeError):
            _refuse("malformed")
        payload = complete.get("payload")
        if not isinstance(payload, dict):
            _refuse("malformed")
        return payload
