"""The cases and the targets, as data. ``fixtures.py`` turns a :class:`Spec` into timed entries.

A case's *kind* names its requests (``fixtures.Bench.environs``):

=================  ==========================================================
``admin``          one token with the role, sent again and again (repeated)
``admin-pool``     a pool of distinct tokens larger than the token cache (first-seen)
``user``           one token without the role (403); ``user-pool`` its pool
``none``           no credentials (401)
``public-admin``   the unguarded route, a valid token attached
``trusted``        an RS256 token from the second of three trusted issuers (``-pool``: first-seen)
``opaque``         one opaque token, introspected (``opaque-distinct``: a new one per request)
``issued``         a token from the app's own ``create_access_token`` as Bearer (``-pool``)
``dpop``           a DPoP-bound token with a fresh proof per request (``-pool``)
=================  ==========================================================
"""

from __future__ import annotations

import dataclasses

from contenders import PEERS

#: Per-request signature work a case must show (``timing.prove``): a first-seen token is verified
#: every time, a repeated one never again. ``posts``: requests to the introspection endpoint.
Checks = dict[str, dict[str, int]]


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str
    title: str
    alg: str
    kind: str
    contenders: tuple[str, ...]
    fmt: str = "jwt"
    #: Contender -> kind, where one differs from the case's (the floor of an introspection case).
    kinds: tuple[tuple[str, str], ...] = ()
    #: The contender the overheads are divided by.
    floor: str | None = "floor"
    checks: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()
    #: Skipped by ``--quick``.
    full: bool = False
    #: A server the case needs: "redis" (skipped by ``--no-redis``).
    needs: str | None = None
    #: The contender ``--profile`` profiles.
    subject: str = "authgate"

    def kind_of(self, contender: str) -> str:
        return dict(self.kinds).get(contender, self.kind)

    def checks_of(self, contender: str) -> dict[str, int] | None:
        found = dict(self.checks).get(contender)
        return dict(found) if found is not None else None


def each(kind: str, *contenders: str) -> tuple[tuple[str, tuple[tuple[str, int], ...]], ...]:
    """Every one of ``contenders`` makes one ``kind`` check per request."""
    return tuple((c, ((kind, 1),)) for c in contenders)


SIGNED = ("plain", "floor-signed", "authgate-signed")
STORES = ("plain", "floor", "authgate", "authgate-redis")
P = tuple(PEERS)

CASES: list[Spec] = [
    Spec("hs256-200-repeated", "200, HS256, repeated token", "HS256", "admin", P),
    Spec("hs256-200-first-seen", "200, HS256, first-seen token", "HS256", "admin-pool", P,
         checks=each("hmac", "authgate")),
    Spec("hs256-401-no-header", "401, no credentials", "HS256", "none", P),
    Spec("hs256-403-repeated", "403, missing role, repeated token", "HS256", "user", P),
    Spec("hs256-403-first-seen", "403, missing role, first-seen token", "HS256", "user-pool", P,
         checks=each("hmac", "authgate")),
    Spec("hs256-public-with-token", "public route, valid token attached", "HS256", "public-admin",
         (*P, "authgate-deny")),
    Spec("rs256-200-repeated", "200, RS256, repeated token", "RS256", "admin", P, full=True),
    Spec("rs256-200-first-seen", "200, RS256, first-seen token", "RS256", "admin-pool", P, full=True,
         checks=each("rsa", "authgate")),
    Spec("es256-200-repeated", "200, ES256, repeated token", "ES256", "admin", P, full=True),
    Spec("es256-200-first-seen", "200, ES256, first-seen token", "ES256", "admin-pool", P, full=True,
         checks=each("ec", "authgate")),
    Spec("signed-200-repeated", "200, signed format, repeated token", "HS256", "admin", SIGNED, "signed",
         floor="floor-signed", subject="authgate-signed"),
    Spec("signed-200-first-seen", "200, signed format, first-seen token", "HS256", "admin-pool", SIGNED, "signed",
         floor="floor-signed", checks=each("hmac", "authgate-signed"), subject="authgate-signed"),
    Spec("signed-403-repeated", "403, signed format, repeated token", "HS256", "user", SIGNED, "signed",
         floor="floor-signed", subject="authgate-signed"),
    Spec("revocation-10k-repeated", "200, HS256, repeated, memory store holding 10,000 revocations", "HS256",
         "admin", ("plain", "floor", "authgate", "authgate-revoked"), subject="authgate-revoked"),
    Spec("redis-200-repeated", "200, HS256, repeated, memory vs Redis store", "HS256", "admin", STORES,
         needs="redis", subject="authgate-redis"),
    Spec("redis-200-first-seen", "200, HS256, first-seen, memory vs Redis store", "HS256", "admin-pool", STORES,
         needs="redis", checks=each("hmac", "authgate", "authgate-redis"), subject="authgate-redis"),
    # issue 11: a trusted issuer among three (JWKS on loopback), and RFC 7662 introspection
    Spec("trusted-200-repeated", "200, RS256 from the 2nd of 3 trusted issuers, repeated token", "RS256",
         "trusted", ("plain", "floor", "authgate-trusted"), full=True,
         checks=(("authgate-trusted", (("rsa", 0),)),), subject="authgate-trusted"),
    Spec("trusted-200-first-seen", "200, RS256 from the 2nd of 3 trusted issuers, first-seen token", "RS256",
         "trusted-pool", ("plain", "floor", "authgate-trusted"), full=True,
         checks=each("rsa", "authgate-trusted"), subject="authgate-trusted"),
    Spec("introspection-200-first", "200, opaque token introspected, first (a new token per request)", "HS256",
         "opaque-distinct", ("plain", "floor-introspect", "authgate-introspect"), floor="floor-introspect",
         checks=each("posts", "authgate-introspect"), subject="authgate-introspect"),
    Spec("introspection-200-cached", "200, opaque token introspected, cached (the same token)", "HS256",
         "opaque", ("plain", "floor", "floor-introspect", "authgate-introspect"), kinds=(("floor", "admin"),),
         checks=(("authgate-introspect", (("posts", 0),)),), subject="authgate-introspect"),
    # issue 12: DPoP-bound tokens, a fresh proof per request, against Bearer in the same app configuration
    Spec("dpop-200-repeated", "200, HS256, DPoP-bound repeated token + fresh ES256 proof vs Bearer", "HS256",
         "dpop", ("plain", "floor", "authgate-bearer", "authgate-dpop"),
         kinds=(("floor", "admin"), ("authgate-bearer", "issued")),
         checks=(("authgate-bearer", (("hmac", 0),)), ("authgate-dpop", (("hmac", 0), ("ec", 1)))),
         subject="authgate-dpop"),
    Spec("dpop-200-first-seen", "200, HS256, DPoP-bound first-seen token + fresh ES256 proof vs Bearer", "HS256",
         "dpop-pool", ("plain", "floor", "authgate-bearer", "authgate-dpop"),
         kinds=(("floor", "admin-pool"), ("authgate-bearer", "issued-pool")),
         checks=(("authgate-bearer", (("hmac", 1),)), ("authgate-dpop", (("hmac", 1), ("ec", 1)))),
         subject="authgate-dpop"),
]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Target:
    """One figure of a run, compared with ``limit`` (``None``: reported, no target).

    ``how``: ``ratio`` (overhead / the case's floor overhead), ``overhead`` (µs
    over plain Flask), ``over`` (``contender``'s overhead / ``other``'s),
    ``below`` (``contender``'s overhead ≤ ``other``'s), ``difference``
    (``contender``'s overhead minus ``other``'s, µs), ``round-trips`` (Redis
    commands per request, ``case`` is the token kind).
    """

    label: str
    how: str
    case: str
    contender: str
    limit: float | None
    other: str | None = None
    issue: int = 6


TARGETS: list[Target] = [
    Target("200, HS256, first-seen token (x floor)", "ratio", "hs256-200-first-seen", "authgate", 1.05),
    Target("200, HS256, repeated token (x floor)", "ratio", "hs256-200-repeated", "authgate", 0.35),
    Target("200, RS256, repeated token (x floor)", "ratio", "rs256-200-repeated", "authgate", 0.2),
    Target("200, ES256, repeated token (x floor)", "ratio", "es256-200-repeated", "authgate", 0.2),
    Target("401, no credentials (µs, ≤ Flask-HTTPAuth's)", "below", "hs256-401-no-header", "authgate", None,
           other="httpauth"),
    Target("403, missing role, first-seen (x floor)", "ratio", "hs256-403-first-seen", "authgate", 1.05),
    Target("403, missing role, repeated (x floor)", "ratio", "hs256-403-repeated", "authgate", 0.35),
    Target("public route, valid token attached (µs)", "overhead", "hs256-public-with-token", "authgate", 3.0),
    Target("extra: public route, deny-by-default + @public (µs)", "overhead", "hs256-public-with-token",
           "authgate-deny", 3.0),
    Target("memory revocation check, 10,000 entries (µs, through requests)", "difference",
           "revocation-10k-repeated", "authgate-revoked", 2.0, other="authgate"),
    Target("Redis round trips per request (repeated)", "round-trips", "admin", "authgate-redis", 1.0),
    Target("Redis round trips per request (first-seen)", "round-trips", "admin-pool", "authgate-redis", 1.0),
    Target("trusted issuer (2nd of 3), RS256, repeated (x floor)", "ratio", "trusted-200-repeated",
           "authgate-trusted", 0.35, issue=11),
    Target("trusted issuer (2nd of 3), RS256, first-seen (x floor)", "ratio", "trusted-200-first-seen",
           "authgate-trusted", None, issue=11),
    Target("introspection, first (x the POST-every-time floor)", "ratio", "introspection-200-first",
           "authgate-introspect", None, issue=11),
    Target("introspection, cached (x the repeated HS256 floor)", "ratio", "introspection-200-cached",
           "authgate-introspect", 0.35, issue=11),
    Target("introspection, cached (x the POST-every-time floor)", "over", "introspection-200-cached",
           "authgate-introspect", None, other="floor-introspect", issue=11),
    Target("DPoP, repeated token, fresh proof (x Bearer)", "over", "dpop-200-repeated", "authgate-dpop", None,
           other="authgate-bearer", issue=12),
    Target("DPoP, first-seen token, fresh proof (x Bearer)", "over", "dpop-200-first-seen", "authgate-dpop", None,
           other="authgate-bearer", issue=12),
    Target("DPoP, repeated token: extra over Bearer (µs)", "difference", "dpop-200-repeated", "authgate-dpop", None,
           other="authgate-bearer", issue=12),
    Target("DPoP, first-seen token: extra over Bearer (µs)", "difference", "dpop-200-first-seen", "authgate-dpop",
           None, other="authgate-bearer", issue=12),
]  # fmt: skip
