"""Trusted issuers (``flask_authgate.issuers``): routing by ``iss``, per-issuer keys, and the config shapes.

Three real providers run on loopback; each test signs real tokens with their keys.
"""

from __future__ import annotations

import base64
import collections.abc as cabc
import json
import time
import typing as t

import jwt
import pytest
from idp_server import IdentityProvider
from joserfc import jwt as jose_jwt
from joserfc.jwk import OctKey

from flask_authgate.claims import ClaimMapping
from flask_authgate.errors import AuthError
from flask_authgate.errors import ConfigError
from flask_authgate.issuer_config import ASYMMETRIC_DEFAULT
from flask_authgate.issuer_config import IntrospectionSettings
from flask_authgate.issuer_config import IssuerDefaults
from flask_authgate.issuer_config import TrustedIssuer
from flask_authgate.issuer_config import build_issuers
from flask_authgate.issuer_config import parse_introspection
from flask_authgate.issuer_config import parse_jwt_issuer
from flask_authgate.issuer_config import parse_oidc_issuer
from flask_authgate.issuer_config import parse_trusted_issuers
from flask_authgate.issuers import IssuerSet
from flask_authgate.issuers import unverified_issuer

API = "https://api.example.test"


@pytest.fixture(scope="module")
def providers() -> cabc.Iterator[tuple[IdentityProvider, IdentityProvider, IdentityProvider]]:
    a = IdentityProvider(issuer_path="/a")
    b = IdentityProvider(issuer_path="/b")
    c = IdentityProvider(issuer_path="/realms/c")
    a.add_key("k1", "RS256")
    b.add_key("k1", "ES256")  # the same kid as a's: keys must still never cross issuers
    c.add_key("c1", "RS256")
    try:
        yield a, b, c
    finally:
        for p in (a, b, c):
            p.stop()


@pytest.fixture(autouse=True)
def _reset(providers: tuple[IdentityProvider, ...]) -> None:
    for p in providers:
        p.reset()


def entry(issuer: str, **fields: t.Any) -> TrustedIssuer:
    values: dict[str, t.Any] = {
        "issuer": issuer,
        "audience": (API,),
        "algorithms": ("RS256", "ES256"),
        "jwks_url": None,
        "roles": ClaimMapping(("roles",), kind="roles"),
        "scopes": ClaimMapping(("scope",), kind="scopes"),
    }
    values.update(fields)
    return TrustedIssuer(**values)


@pytest.fixture
def issuers(providers: tuple[IdentityProvider, IdentityProvider, IdentityProvider]) -> IssuerSet:
    a, b, c = providers
    return IssuerSet(
        [
            entry(a.issuer, jwks_url=a.jwks_url, algorithms=("RS256",)),
            entry(b.issuer, jwks_url=b.jwks_url, algorithms=("ES256",)),
            entry(c.issuer, roles=ClaimMapping(("realm_access.roles",), kind="roles")),  # discovered
        ]
    )


def refused(issuers: IssuerSet, token: str) -> str:
    with pytest.raises(AuthError) as info:
        issuers.verify(token)
    assert info.value.error_code == "token_invalid"
    return t.cast(str, info.value.reason)


def test_each_issuer_verifies_its_own_tokens(
    issuers: IssuerSet, providers: tuple[IdentityProvider, IdentityProvider, IdentityProvider]
) -> None:
    a, b, c = providers
    for provider, sub in ((a, "alice"), (b, "bob"), (c, "carol")):
        token = provider.token({"aud": API, "sub": sub, "roles": ["r"], "realm_access": {"roles": ["kc"]}})
        verified = issuers.verify(token)
        assert verified.claims["sub"] == sub
        assert verified.issuer.issuer == provider.issuer
        assert verified.generation == 0
    assert issuers.verify(c.token({"aud": API, "realm_access": {"roles": ["kc"]}})).roles() == {"kc"}
    assert issuers.verify(a.token({"aud": API, "scope": "x y"})).scopes() == {"x", "y"}


def test_nothing_is_fetched_until_needed(providers: tuple[IdentityProvider, ...]) -> None:
    a, _, c = providers
    IssuerSet([entry(a.issuer, jwks_url=a.jwks_url), entry(c.issuer)])
    assert all(p.count("/jwks") == 0 for p in providers)
    assert c.count(c.oidc_path) == 0


def test_one_issuers_keys_never_verify_anothers_tokens(
    issuers: IssuerSet, providers: tuple[IdentityProvider, IdentityProvider, IdentityProvider]
) -> None:
    a, b, _ = providers
    # Signed by a's "k1", claiming to come from b (whose key is also called "k1").
    forged = a.token({"aud": API, "iss": b.issuer})
    assert refused(issuers, forged) == "algorithm"  # b accepts ES256 only
    both = IssuerSet(
        [entry(a.issuer, jwks_url=a.jwks_url), entry(b.issuer, jwks_url=b.jwks_url)]
    )  # now b would accept RS256 too: its k1 is an EC key, which never verifies an RS256 token
    assert refused(both, forged) == "algorithm"
    assert b.count("/jwks") == 1 and a.count("/jwks") == 0


def test_same_kid_same_alg_across_issuers_is_a_signature_failure() -> None:
    with IdentityProvider(issuer_path="/x") as x, IdentityProvider(issuer_path="/y") as y:
        x.add_key("shared", "RS256")
        y.add_key("shared", "RS256")
        issuers = IssuerSet([entry(x.issuer, jwks_url=x.jwks_url), entry(y.issuer, jwks_url=y.jwks_url)])
        assert issuers.verify(x.token({"aud": API})).issuer.issuer == x.issuer
        assert refused(issuers, x.token({"aud": API, "iss": y.issuer})) == "signature"


@pytest.mark.parametrize(
    "iss",
    [
        pytest.param("https://evil.example/", id="unlisted"),
        pytest.param(None, id="missing"),
        pytest.param(5, id="a-number"),
        pytest.param(["x"], id="a-list"),
    ],
)
def test_untrusted_issuers_are_refused_without_any_fetch(
    issuers: IssuerSet, providers: tuple[IdentityProvider, ...], iss: t.Any
) -> None:
    token = providers[0].token({"aud": API, "iss": iss})
    assert refused(issuers, token) == "issuer_not_trusted"
    assert all(p.count("/jwks") == 0 for p in providers)


def test_issuer_is_compared_exactly(issuers: IssuerSet, providers: tuple[IdentityProvider, ...]) -> None:
    a = providers[0]
    for variant in (a.issuer + "/", a.issuer.upper(), a.issuer.replace("http", "https")):
        assert refused(issuers, a.token({"aud": API, "iss": variant})) == "issuer_not_trusted"


def test_audience(providers: tuple[IdentityProvider, ...]) -> None:
    a = providers[0]
    issuers = IssuerSet([entry(a.issuer, jwks_url=a.jwks_url, audience=(API, "other"))])
    assert issuers.verify(a.token({"aud": ["x", "other"]}))
    assert refused(issuers, a.token({"aud": "https://elsewhere"})) == "audience"
    assert refused(issuers, a.token({})) == "audience"
    no_aud = IssuerSet([entry(a.issuer, jwks_url=a.jwks_url, audience=None)])
    assert no_aud.verify(a.token({})).claims["sub"] == "user-1"
    assert refused(no_aud, a.token({"aud": API})) == "audience"  # RFC 7519 §4.1.3


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        pytest.param({"exp": None}, "missing_claim", id="no-exp"),
        pytest.param({"sub": None}, "missing_claim", id="no-sub"),
        pytest.param({"sub": 42}, "claim_type", id="sub-a-number"),
        pytest.param({"jti": 7}, "claim_type", id="jti-a-number"),
    ],
)
def test_required_claims_and_types(
    issuers: IssuerSet, providers: tuple[IdentityProvider, ...], claims: dict[str, t.Any], reason: str
) -> None:
    assert refused(issuers, providers[0].token({"aud": API, **claims})) == reason


def test_time_claims_are_left_to_the_token_service(issuers: IssuerSet, providers: tuple[IdentityProvider, ...]) -> None:
    token = providers[0].token({"aud": API, "exp": 1, "nbf": time.time() + 3600})
    assert issuers.verify(token).claims["exp"] == 1


def test_algorithm_allow_list(issuers: IssuerSet, providers: tuple[IdentityProvider, ...]) -> None:
    a, b, _ = providers
    assert refused(issuers, b.token({"aud": API, "iss": a.issuer})) == "algorithm"  # ES256 at an RS256-only issuer
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": "k1"}).encode()).rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps({"iss": a.issuer, "sub": "x", "aud": API}).encode()).rstrip(b"=")
    assert refused(issuers, f"{header}.{body.decode()}.") == "algorithm"


def test_hmac_with_the_public_key_as_secret_is_refused(
    issuers: IssuerSet, providers: tuple[IdentityProvider, ...]
) -> None:
    a = providers[0]
    public = json.dumps(a.jwks()["keys"][0]).encode()
    key = OctKey.import_key(public)
    claims = {"iss": a.issuer, "sub": "x", "aud": API, "exp": int(time.time()) + 60}
    token = jose_jwt.encode({"alg": "HS256", "kid": "k1"}, claims, key, algorithms=["HS256"])
    assert refused(issuers, token) == "algorithm"


def test_kid_naming_a_key_of_another_type(providers: tuple[IdentityProvider, ...]) -> None:
    a = providers[0]
    issuers = IssuerSet([entry(a.issuer, jwks_url=a.jwks_url, algorithms=("RS256", "ES256"))])
    with IdentityProvider() as other:
        ec = other.add_key("k1", "ES256")
        token = a.token({"aud": API}, kid="k1", key=ec, alg="ES256")
    assert refused(issuers, token) == "algorithm"  # a's k1 is RSA: never used for ES256


def test_unknown_kid(issuers: IssuerSet, providers: tuple[IdentityProvider, ...]) -> None:
    a = providers[0]
    with IdentityProvider() as other:
        stranger = other.add_key("zz")
        assert refused(issuers, a.token({"aud": API}, kid="zz", key=stranger)) == "unknown_kid"
        assert refused(issuers, a.token({"aud": API}, kid="k1", key=stranger)) == "signature"


@pytest.mark.parametrize("header", ["jku", "x5u"])
def test_key_url_headers_are_never_followed(
    issuers: IssuerSet, providers: tuple[IdentityProvider, ...], header: str
) -> None:
    a = providers[0]
    with IdentityProvider() as attacker:
        evil = attacker.add_key("evil")
        token = a.token({"aud": API}, kid="evil", key=evil, header={header: attacker.jwks_url})
        assert refused(issuers, token) == "unknown_kid"
        assert attacker.count("/jwks") == 0


def test_embedded_jwk_is_never_trusted(issuers: IssuerSet, providers: tuple[IdentityProvider, ...]) -> None:
    a = providers[0]
    with IdentityProvider() as attacker:
        evil = attacker.add_key("k1")
    token = a.token({"aud": API}, key=evil, header={"jwk": evil.as_dict(private=False)})
    assert refused(issuers, token) == "signature"


def test_typ_check(providers: tuple[IdentityProvider, ...]) -> None:
    a = providers[0]
    issuers = IssuerSet([entry(a.issuer, jwks_url=a.jwks_url, types=frozenset({"at+jwt", "application/at+jwt"}))])
    assert issuers.verify(a.token({"aud": API}, typ="at+jwt"))
    assert issuers.verify(a.token({"aud": API}, typ="AT+JWT"))
    assert refused(issuers, a.token({"aud": API}, typ="JWT")) == "typ"


def test_client_id(providers: tuple[IdentityProvider, ...]) -> None:
    a = providers[0]
    issuers = IssuerSet([entry(a.issuer, jwks_url=a.jwks_url, audience=None, client_ids=("app-1",))])
    assert issuers.verify(a.token({"client_id": "app-1"}))
    assert issuers.verify(a.token({"azp": "app-1"}))
    assert refused(issuers, a.token({"client_id": "app-2"})) == "client_id"
    assert refused(issuers, a.token({})) == "client_id"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("a.b", id="two-segments"),
        pytest.param("a.b.c.d", id="four-segments"),
        pytest.param("bm90IGpzb24.e30.c2ln", id="header-not-json"),
        pytest.param("WzFd.e30.c2ln", id="header-a-list"),
        pytest.param("e30=.e30.c2ln", id="padded"),
        pytest.param("e3!0.e30.c2ln", id="outside-base64url"),
        pytest.param("e30.e3 0.c2ln", id="space"),
        pytest.param("", id="empty"),
    ],
)
def test_malformed(issuers: IssuerSet, token: str) -> None:
    assert refused(issuers, token) == "malformed"


def test_unknown_crit_header_is_refused(issuers: IssuerSet, providers: tuple[IdentityProvider, ...]) -> None:
    a = providers[0]
    pem = a.keys["k1"][1].as_pem(private=True)  # joserfc refuses to sign an unknown crit: PyJWT does
    claims = {"iss": a.issuer, "aud": API, "sub": "x", "exp": int(time.time()) + 60}
    token = jwt.encode(claims, pem, algorithm="RS256", headers={"kid": "k1", "crit": ["exp-ext"], "exp-ext": 1})
    assert refused(issuers, token) == "malformed"


def test_deeply_nested_payload_is_malformed(issuers: IssuerSet) -> None:
    body = base64.urlsafe_b64encode(b"[" * 5000).rstrip(b"=").decode()
    assert unverified_issuer(f"e30.{body}.c2ln") is None
    assert refused(issuers, f"e30.{body}.c2ln") == "issuer_not_trusted"


def test_provider_down_is_503(providers: tuple[IdentityProvider, ...]) -> None:
    with IdentityProvider(issuer_path="/down") as down:
        down.add_key("k1")
        token = down.token({"aud": API})
        issuers = IssuerSet([entry(down.issuer)])
    with pytest.raises(AuthError) as info:
        issuers.verify(token)
    assert info.value.error_code == "auth_unavailable"


def test_rekeying_bumps_the_generation() -> None:
    changes: list[int] = []
    with IdentityProvider(issuer_path="/r") as r:
        r.add_key("k1")
        clock = {"now": 0.0}
        issuers = IssuerSet(
            [entry(r.issuer, jwks_url=r.jwks_url)],
            on_keys_changed=lambda: changes.append(1),
            clock=lambda: clock["now"],
        )
        old = r.token({"aud": API})
        assert issuers.verify(old).generation == 0
        r.replace_key("k1")
        clock["now"] = 301.0
        issuers.refresh_if_stale(r.issuer)
        assert issuers.generation == 1
        assert changes == [1]
        assert refused(issuers, old) == "signature"
        assert issuers.verify(r.token({"aud": API})).generation == 1


def test_issuers_sharing_a_jwks_share_its_cache() -> None:
    with IdentityProvider() as google:
        google.add_key("g1")
        issuers = IssuerSet(
            [
                entry("accounts.google.com", jwks_url=google.jwks_url),
                entry("https://accounts.google.com", jwks_url=google.jwks_url),
            ]
        )
        for iss in ("accounts.google.com", "https://accounts.google.com"):
            assert issuers.verify(google.token({"aud": API, "iss": iss})).issuer.issuer == iss
        assert google.count("/jwks") == 1
        assert issuers.jwks("accounts.google.com") is issuers.jwks("https://accounts.google.com")


def test_duplicate_entries_are_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        IssuerSet([entry("https://a.example"), entry("https://a.example")])


# -- configuration ------------------------------------------------------------------------------

DEFAULTS = IssuerDefaults(
    audience=(API,),
    algorithms=("RS256",),
    roles=ClaimMapping.parse("realm_access.roles", key="AUTHGATE_ROLES_CLAIM", kind="roles"),
)


def test_entries_take_the_app_wide_defaults() -> None:
    (one,) = parse_trusted_issuers([{"issuer": "https://sso.example.com/realms/acme"}], defaults=DEFAULTS)
    assert one.audience == (API,)
    assert one.algorithms == ("RS256",)
    assert one.roles.names == ("realm_access.roles",)
    assert one.scopes.names == ("scope",)
    assert one.jwks_url is None


def test_entries_override_each_field() -> None:
    (one,) = parse_trusted_issuers(
        [
            {
                "issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC",
                "audience": None,
                "jwks_url": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC/.well-known/jwks.json",
                "algorithms": ["RS256", "ES256"],
                "roles_claim": "cognito:groups",
                "scopes_claim": ["scope", "permissions"],
                "typ": "at+jwt",
                "client_id": ["app-1", "app-2"],
            }
        ],
        defaults=DEFAULTS,
    )
    assert one.audience is None
    assert one.algorithms == ("RS256", "ES256")
    assert one.roles.names == ("cognito:groups",)
    assert one.scopes.names == ("scope", "permissions")
    assert one.types == {"at+jwt", "application/at+jwt"}
    assert one.client_ids == ("app-1", "app-2")


def a_example(**fields: t.Any) -> list[dict[str, t.Any]]:
    """``AUTHGATE_TRUSTED_ISSUERS`` of one entry, for ``https://a.example``, with ``fields``."""
    return [{"issuer": "https://a.example", **fields}]


#: ``AUTHGATE_TRUSTED_ISSUERS`` values refused at start-up: test id -> (the value, a regex of the ConfigError).
BAD_TRUSTED_ISSUERS: dict[str, tuple[t.Any, str]] = {
    "a-string": ("https://a.example", "AUTHGATE_TRUSTED_ISSUERS must be a list of mappings"),
    "a-mapping": ({"issuer": "https://a.example"}, "must be a list of mappings"),
    "empty": ([], "must not be empty"),
    "item-a-string": (["https://a.example"], r"AUTHGATE_TRUSTED_ISSUERS\[0\] must be a mapping"),
    "no-issuer": ([{}], r"AUTHGATE_TRUSTED_ISSUERS\[0\]\.issuer is required"),
    "empty-issuer": ([{"issuer": ""}], r"\[0\]\.issuer must be a non-empty issuer"),
    "issuer-number": ([{"issuer": 5}], r"\[0\]\.issuer must be a non-empty issuer"),
    "issuer-space": ([{"issuer": "https://a .example"}], r"\[0\]\.issuer must be"),
    "unknown-field": (
        a_example(audiences="x"),
        r"AUTHGATE_TRUSTED_ISSUERS\[0\] has unknown field\(s\) \['audiences'\]",
    ),
    "audience-number": (
        [{"issuer": "https://a.example"}, {"issuer": "https://b.example", "audience": 5}],
        r"AUTHGATE_TRUSTED_ISSUERS\[1\]\.audience must be",
    ),
    "audience-empty-member": (a_example(audience=["x", ""]), r"AUTHGATE_TRUSTED_ISSUERS\[0\]\.audience\[1\] must be"),
    "duplicate": (
        [{"issuer": "https://a.example"}, {"issuer": "https://a.example"}],
        r"AUTHGATE_TRUSTED_ISSUERS\[1\]: the issuer 'https://a.example' is already listed as "
        r"AUTHGATE_TRUSTED_ISSUERS\[0\]",
    ),
    "jwks-ftp": (a_example(jwks_url="ftp://a.example/jwks"), r"\[0\]\.jwks_url must be an http:// or https:// URL"),
    "jwks-userinfo": (a_example(jwks_url="https://user:pw@a.example/jwks"), r"\[0\]\.jwks_url must be"),
    "not-discoverable": (
        [{"issuer": "accounts.google.com"}],
        r"\[0\]\.jwks_url is needed: the issuer 'accounts.google.com' is not an http\(s\) URL",
    ),
    "hmac": (
        a_example(algorithms=["HS256"]),
        r"\[0\]\.algorithms contains 'HS256'; an outside issuer's keys are public",
    ),
    "none": (a_example(algorithms=["RS256", "none"]), r"\[0\]\.algorithms contains 'none'"),
    "unknown-alg": (a_example(algorithms=["RS257"]), r"\[0\]\.algorithms contains the unknown algorithm 'RS257'"),
    "no-algs": (a_example(algorithms=[]), r"\[0\]\.algorithms must be a non-empty list"),
    "roles-claim": (a_example(roles_claim=5), r"AUTHGATE_TRUSTED_ISSUERS\[0\]\.roles_claim must be a claim name"),
    "scopes-claim": (
        a_example(scopes_claim=["scope", ""]),
        r"AUTHGATE_TRUSTED_ISSUERS\[0\]\.scopes_claim\[1\] must be",
    ),
    "client-id": (a_example(client_id=[]), r"\[0\]\.client_id must be"),
}


@pytest.mark.parametrize(("value", "message"), BAD_TRUSTED_ISSUERS.values(), ids=BAD_TRUSTED_ISSUERS.keys())
def test_bad_trusted_issuers(value: t.Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_trusted_issuers(value, defaults=DEFAULTS)


def test_none_means_unset() -> None:
    assert parse_trusted_issuers(None, defaults=DEFAULTS) == ()
    assert parse_oidc_issuer(None, defaults=DEFAULTS) is None
    assert parse_jwt_issuer(None) is None


@pytest.mark.parametrize(
    ("algorithms", "expected"),
    [
        pytest.param(None, ASYMMETRIC_DEFAULT, id="unset"),
        pytest.param(("HS256",), ASYMMETRIC_DEFAULT, id="hmac-app"),
        pytest.param(("ES256", "RS256"), ("ES256", "RS256"), id="public-key-app"),
    ],
)
def test_inherited_algorithms(algorithms: tuple[str, ...] | None, expected: tuple[str, ...]) -> None:
    defaults = IssuerDefaults(algorithms=algorithms)
    (one,) = parse_trusted_issuers([{"issuer": "https://a.example"}], defaults=defaults)
    assert one.algorithms == expected
    assert "none" not in one.algorithms and not any(a.startswith("HS") for a in one.algorithms)


def test_oidc_issuer_shorthand() -> None:
    one = parse_oidc_issuer("https://sso.example.com/realms/acme", defaults=DEFAULTS)
    assert one is not None
    assert (one.issuer, one.audience, one.algorithms, one.jwks_url) == (
        "https://sso.example.com/realms/acme",
        (API,),
        ("RS256",),
        None,
    )
    assert one.roles.names == ("realm_access.roles",)


@pytest.mark.parametrize("value", ["sso.example.com", "https://x.example/?a=1", 5, "", "https://x .example"])
def test_bad_oidc_issuer(value: t.Any) -> None:
    with pytest.raises(ConfigError, match="AUTHGATE_OIDC_ISSUER must be the issuer's http"):
        parse_oidc_issuer(value, defaults=DEFAULTS)


def test_an_issuer_in_both_settings_is_refused() -> None:
    oidc = parse_oidc_issuer("https://a.example", defaults=DEFAULTS)
    trusted = parse_trusted_issuers(
        [{"issuer": "https://b.example"}, {"issuer": "https://a.example"}], defaults=DEFAULTS
    )
    with pytest.raises(ConfigError, match=r"AUTHGATE_TRUSTED_ISSUERS\[1\]: the issuer .* AUTHGATE_OIDC_ISSUER"):
        build_issuers(oidc, trusted)
    assert [e.issuer for e in build_issuers(None, trusted)] == ["https://b.example", "https://a.example"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("https://accounts.google.com", ("https://accounts.google.com",), id="one"),
        pytest.param(
            ["accounts.google.com", "https://accounts.google.com"],
            ("accounts.google.com", "https://accounts.google.com"),
            id="google's-two",
        ),
    ],
)
def test_jwt_issuer(value: t.Any, expected: tuple[str, ...]) -> None:
    assert parse_jwt_issuer(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("", "AUTHGATE_JWT_ISSUER must be a non-empty issuer", id="empty"),
        pytest.param([], "AUTHGATE_JWT_ISSUER must be a string or a non-empty list", id="empty-list"),
        pytest.param(["a", 5], r"AUTHGATE_JWT_ISSUER\[1\] must be a non-empty issuer", id="number"),
        pytest.param(["a", "a"], "AUTHGATE_JWT_ISSUER lists the same issuer twice", id="duplicate"),
        pytest.param(5, "AUTHGATE_JWT_ISSUER must be", id="a-number"),
    ],
)
def test_bad_jwt_issuer(value: t.Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_jwt_issuer(value)


def test_pyjwt_accepts_the_issuer_list() -> None:
    # What the lead wires for AUTHGATE_JWT_ISSUER as a list: PyJWT takes a container.
    token = jwt.encode({"iss": "accounts.google.com", "sub": "x"}, "k" * 32, algorithm="HS256")
    claims = jwt.decode(
        token,
        "k" * 32,
        algorithms=["HS256"],
        issuer=list(parse_jwt_issuer(["accounts.google.com", "https://accounts.google.com"]) or ()),
    )
    assert claims["iss"] == "accounts.google.com"


# -- AUTHGATE_INTROSPECTION_* --------------------------------------------------------------------


def test_introspection_settings() -> None:
    assert parse_introspection(url=None, client_id=None, client_secret=None, can_discover=True) is None
    got = parse_introspection(
        url="https://sso.example.com/introspect", client_id="rs", client_secret="s", can_discover=False
    )
    assert got == IntrospectionSettings("https://sso.example.com/introspect", "rs", "s", 60.0, 10_000)
    discovered = parse_introspection(url=None, client_id="rs", client_secret="s", cache_ttl=0, can_discover=True)
    assert discovered is not None and discovered.url is None and discovered.cache_ttl == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"url": "ftp://x"}, "AUTHGATE_INTROSPECTION_URL must be an http", id="url"),
        pytest.param({"url": None}, "no endpoint: set AUTHGATE_INTROSPECTION_URL", id="nothing-to-discover"),
        pytest.param({"client_id": None}, "AUTHGATE_INTROSPECTION_CLIENT_ID must be set", id="no-client-id"),
        pytest.param({"client_secret": ""}, "AUTHGATE_INTROSPECTION_CLIENT_SECRET must be set", id="empty-secret"),
        pytest.param({"cache_ttl": -1}, "AUTHGATE_INTROSPECTION_CACHE_TTL must be", id="ttl-negative"),
        pytest.param({"cache_ttl": "60"}, "AUTHGATE_INTROSPECTION_CACHE_TTL must be", id="ttl-string"),
        pytest.param({"cache_size": 1.5}, "AUTHGATE_INTROSPECTION_CACHE_SIZE must be", id="size-float"),
    ],
)
def test_bad_introspection_settings(kwargs: dict[str, t.Any], message: str) -> None:
    values: dict[str, t.Any] = {"url": "https://sso.example.com/introspect", "client_id": "rs", "client_secret": "s"}
    values.update(kwargs)
    with pytest.raises(ConfigError, match=message):
        parse_introspection(**values, can_discover=False)
