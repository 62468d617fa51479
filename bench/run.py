"""flask-authgate against its peers: the per-request cost of authentication, in microseconds.

Every contender is a Flask app with the same two routes (``/api/admin``,
guarded by an ``admin`` role check, and ``/public``, unguarded), the same
key, the same token and the same JSON body. Each app is called directly as
a WSGI application (``app(environ, start_response)``, body consumed and
closed) with a prebuilt environ, copied with ``dict()`` for every call the
same way for all contenders, so the copy cancels out of every overhead.

Timing: for each case the contenders are run round-robin in short batches
(``--batch`` calls), for ``--rounds`` rounds, and the *minimum* per-call
time over the rounds is kept. These machines have stretches of 1.6-1.9x
slowdown; many short interleaved batches and the minimum are stable where
one long run or a median is not. Compare ratios within one run.

Usage::

    python bench/run.py            # the full run (a few minutes)
    python bench/run.py --quick    # a smoke run (seconds)
    python bench/run.py --profile hs256-200-repeated   # cProfile of flask-authgate on one case

Results: a markdown table on stdout and ``bench/results/run-<time>.json``.
See docs/performance.md.
"""

from __future__ import annotations

import argparse
import collections.abc as cabc
import cProfile
import dataclasses
import functools
import gc
import hashlib
import importlib.metadata
import json
import os
import platform
import pstats
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import typing as t
import warnings

import jwt
from flask import Flask
from flask import g
from flask import request
from werkzeug.test import EnvironBuilder

warnings.simplefilter("ignore")  # Authlib's deprecation notices are not what we measure

SECRET = "bench-" + "k" * 58  # 64 bytes: long enough for HS256..HS512
AUDIENCE = "https://api.example.test"
ISSUER = "https://issuer.example.test"
ROUTE = "/api/admin"
PUBLIC = "/public"
ROLE = "admin"
BODY = {"ok": True}
REALM = "api"
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")

# -- keys and tokens ----------------------------------------------------------


@dataclasses.dataclass
class KeySet:
    """One algorithm's keys, in every form the contenders want."""

    alg: str
    sign: t.Any  # what PyJWT signs with
    verify: t.Any  # what PyJWT verifies with (a loaded key object, or the HMAC secret)
    verify_pem: str | None  # what flask-authgate is configured with (asymmetric)
    jwk: t.Any  # a joserfc key, for Authlib


def make_keys(alg: str) -> KeySet:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric import rsa
    from joserfc.jwk import import_key

    if alg == "HS256":
        return KeySet(alg, SECRET, SECRET, None, import_key(SECRET.encode(), "oct"))
    if alg == "RS256":
        private: t.Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kind = "RSA"
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
        kind = "EC"
    else:
        raise ValueError(alg)
    public = private.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return KeySet(alg, private, public, pem, import_key(pem, kind))  # type: ignore[call-overload]


def mint(keys: KeySet, roles: list[str], count: int) -> list[str]:
    """``count`` distinct JWTs (distinct ``jti``) that every contender accepts.

    The claims satisfy the strictest contender (Authlib's RFC 9068 validator
    needs ``typ: at+jwt``, ``iss``, ``aud``, ``client_id``, ``iat``, ``jti``);
    every contender is configured to check the same issuer and audience.
    """
    now = int(time.time())
    out = []
    for _ in range(count):
        payload = {
            "sub": "alice",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "jti": secrets.token_urlsafe(16),
            "type": "access",
            "roles": roles,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "client_id": "bench",
        }
        out.append(jwt.encode(payload, keys.sign, algorithm=keys.alg, headers={"typ": "at+jwt"}))
    return out


# -- the contenders -------------------------------------------------------------


def _routes(app: Flask, guard: cabc.Callable[[t.Any], t.Any]) -> Flask:
    @app.get(ROUTE)
    @guard
    def admin() -> dict[str, t.Any]:
        return BODY

    @app.get(PUBLIC)
    def public() -> dict[str, t.Any]:
        return BODY

    return app


def _flask(name: str) -> Flask:
    app = Flask(f"bench_{name}")
    app.config["SECRET_KEY"] = SECRET
    return app


def build_plain(keys: KeySet) -> Flask:
    return _routes(_flask("plain"), lambda view: view)


def _json_error(status: int, code: str) -> tuple[dict[str, t.Any], int, dict[str, str]]:
    headers = {"WWW-Authenticate": f'Bearer realm="{REALM}"'} if status == 401 else {}
    return {"error": code, "status": status}, status, headers


def build_floor(keys: KeySet) -> Flask:
    """The obvious hand-written decorator: parse the header, ``jwt.decode``, check the role."""

    def roles_required(role: str) -> cabc.Callable[[t.Any], t.Any]:
        def decorator(view: t.Any) -> t.Any:
            @functools.wraps(view)
            def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
                scheme, _, token = request.headers.get("Authorization", "").partition(" ")
                if scheme.lower() != "bearer" or not token:
                    return _json_error(401, "token_missing")
                try:
                    claims = jwt.decode(token, keys.verify, algorithms=[keys.alg], audience=AUDIENCE, issuer=ISSUER)
                except jwt.InvalidTokenError:
                    return _json_error(401, "token_invalid")
                if role not in claims.get("roles", ()):
                    return _json_error(403, "insufficient_role")
                g.claims = claims
                return view(*args, **kwargs)

            return wrapper

        return decorator

    return _routes(_flask("floor"), roles_required(ROLE))


def build_floor_signed(keys: KeySet) -> Flask:
    """The same hand-written decorator for itsdangerous tokens (the signed format's floor)."""
    from itsdangerous import BadData
    from itsdangerous import URLSafeTimedSerializer

    serializer = URLSafeTimedSerializer(
        SECRET, salt="flask-authgate.access", signer_kwargs={"digest_method": hashlib.sha256}
    )

    def roles_required(role: str) -> cabc.Callable[[t.Any], t.Any]:
        def decorator(view: t.Any) -> t.Any:
            @functools.wraps(view)
            def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
                scheme, _, token = request.headers.get("Authorization", "").partition(" ")
                if scheme.lower() != "bearer" or not token:
                    return _json_error(401, "token_missing")
                try:
                    claims = serializer.loads(token, max_age=3600)
                except BadData:
                    return _json_error(401, "token_invalid")
                if role not in claims.get("roles", ()):
                    return _json_error(403, "insufficient_role")
                g.claims = claims
                return view(*args, **kwargs)

            return wrapper

        return decorator

    return _routes(_flask("floor_signed"), roles_required(ROLE))


def authgate_config(keys: KeySet, **extra: t.Any) -> dict[str, t.Any]:
    config: dict[str, t.Any] = {
        "AUTHGATE_JWT_ALGORITHMS": [keys.alg],
        "AUTHGATE_JWT_AUDIENCE": AUDIENCE,
        "AUTHGATE_JWT_ISSUER": ISSUER,
    }
    if keys.verify_pem is not None:
        config["AUTHGATE_JWT_PUBLIC_KEY"] = keys.verify_pem
    config.update(extra)
    return config


def build_authgate(keys: KeySet, **config: t.Any) -> Flask:
    from flask_authgate import AuthGate
    from flask_authgate import roles_required

    app = _flask("authgate")
    app.config.update(authgate_config(keys, **config))
    AuthGate(app)
    return _routes(app, roles_required(ROLE))


def build_fje(keys: KeySet) -> Flask:
    """Flask-JWT-Extended with the role decorator its documentation recommends."""
    from flask_jwt_extended import JWTManager
    from flask_jwt_extended import get_jwt
    from flask_jwt_extended import verify_jwt_in_request

    app = _flask("fje")
    app.config.update(
        JWT_ALGORITHM=keys.alg,
        JWT_DECODE_ALGORITHMS=[keys.alg],
        JWT_DECODE_AUDIENCE=AUDIENCE,
        JWT_DECODE_ISSUER=ISSUER,
        JWT_TOKEN_LOCATION=["headers"],
    )
    if keys.alg.startswith("HS"):
        app.config["JWT_SECRET_KEY"] = SECRET
    else:
        app.config["JWT_PUBLIC_KEY"] = keys.verify
    JWTManager(app)

    def admin_required(view: t.Any) -> t.Any:
        @functools.wraps(view)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            verify_jwt_in_request()
            if ROLE not in get_jwt().get("roles", ()):
                return {"msg": "Admins only!"}, 403
            return view(*args, **kwargs)

        return wrapper

    return _routes(app, admin_required)


def build_httpauth(keys: KeySet) -> Flask:
    """Flask-HTTPAuth: ``HTTPTokenAuth`` with a PyJWT ``verify_token`` and ``get_user_roles``."""
    from flask_httpauth import HTTPTokenAuth  # type: ignore[import-untyped]

    auth = HTTPTokenAuth(scheme="Bearer", realm=REALM)

    @auth.verify_token  # type: ignore[untyped-decorator]
    def verify_token(token: str) -> dict[str, t.Any] | None:
        try:
            return jwt.decode(token, keys.verify, algorithms=[keys.alg], audience=AUDIENCE, issuer=ISSUER)
        except jwt.InvalidTokenError:
            return None

    @auth.get_user_roles  # type: ignore[untyped-decorator]
    def get_user_roles(user: dict[str, t.Any]) -> list[str]:
        return list(user.get("roles", ()))

    return _routes(_flask("httpauth"), auth.login_required(role=ROLE))


def build_authlib(keys: KeySet) -> Flask:
    """Authlib's ``ResourceProtector`` with its RFC 9068 ``JWTBearerTokenValidator`` (joserfc).

    ``get_jwks`` returns the key already imported (the documented pattern
    caches the JWK Set). Authlib answers a missing role with 401
    ``invalid_token`` (its RFC 9068 validator's behaviour), not 403.
    """
    from authlib.integrations.flask_oauth2 import ResourceProtector  # type: ignore[import-untyped]
    from authlib.oauth2.rfc9068 import JWTBearerTokenValidator  # type: ignore[import-untyped]

    class Validator(JWTBearerTokenValidator):  # type: ignore[misc]
        def get_jwks(self) -> t.Any:
            return keys.jwk

    protector = ResourceProtector()
    protector.register_token_validator(Validator(issuer=ISSUER, resource_server=AUDIENCE, realm=REALM))
    return _routes(_flask("authlib"), protector(roles=ROLE))


BUILDERS: dict[str, cabc.Callable[[KeySet], Flask]] = {
    "plain": build_plain,
    "floor": build_floor,
    "authgate": build_authgate,
    "fje": build_fje,
    "httpauth": build_httpauth,
    "authlib": build_authlib,
}
LABELS = {
    "plain": "plain Flask (no auth)",
    "floor": "hand-written PyJWT decorator (floor)",
    "floor-signed": "hand-written itsdangerous decorator (floor)",
    "authgate": "flask-authgate",
    "authgate-signed": "flask-authgate, signed format",
    "authgate-redis": "flask-authgate, Redis revocation store",
    "authgate-deny": "flask-authgate, AUTHGATE_DEFAULT_DENY + @public",
    "fje": "Flask-JWT-Extended",
    "httpauth": "Flask-HTTPAuth",
    "authlib": "Authlib ResourceProtector (RFC 9068)",
}
PEERS = ["plain", "floor", "authgate", "httpauth", "authlib", "fje"]

# -- Redis -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A throwaway redis-server on a free loopback port, stopped by :meth:`stop`."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not os.path.exists(binary):
            raise RuntimeError("redis-server is not installed (apt-get install redis-server), or pass --no-redis")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="authgate-bench-redis-")
        self._info: t.Any = None
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def commands_processed(self) -> int:
        """Commands the server has processed so far (one persistent client, so no connect handshake)."""
        import redis

        if self._info is None:
            self._info = redis.Redis.from_url(self.url)
        return int(t.cast(dict[str, t.Any], self._info.info("stats"))["total_commands_processed"])

    def stop(self) -> None:
        if self._info is not None:
            self._info.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


# -- timing ----------------------------------------------------------------------


class Responses:
    """A ``start_response`` that remembers the last status and headers."""

    status = ""
    headers: list[tuple[str, str]] = []  # noqa: RUF012 - replaced per call

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: t.Any = None) -> t.Any:
        self.status = status
        self.headers = headers
        return None


def _noop_start_response(status: str, headers: list[tuple[str, str]], exc_info: t.Any = None) -> None:
    return None


def call(app: Flask, environ: dict[str, t.Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    sr = Responses()
    it = app(dict(environ), sr)
    try:
        body = b"".join(it)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()
    return int(sr.status.split()[0]), sr.headers, body


def environ_for(path: str, token: str | None) -> dict[str, t.Any]:
    headers = [("Authorization", f"Bearer {token}")] if token is not None else []
    builder = EnvironBuilder(path=path, method="GET", headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    try:
        return builder.get_environ()
    finally:
        builder.close()


def time_batch(app: t.Any, environs: list[dict[str, t.Any]], start: int, n: int) -> float:
    """Seconds for ``n`` calls, cycling through ``environs`` from ``start``."""
    size = len(environs)
    sr = _noop_start_response
    perf = time.perf_counter
    t0 = perf()
    for i in range(start, start + n):
        it = app(dict(environs[i % size]), sr)
        for _ in it:
            pass
        it.close()
    return perf() - t0


@dataclasses.dataclass
class Entry:
    contender: str
    app: t.Any
    environs: list[dict[str, t.Any]]
    expected: int
    #: Where this app is in this list of environs, shared by every case that pairs them, so a
    #: first-seen pool is always continued, never restarted (a restart would hit the cache).
    cursor: list[int] = dataclasses.field(default_factory=lambda: [0])
    best: float = float("inf")  # seconds per call
    samples: list[float] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Case:
    name: str
    title: str
    entries: list[Entry]


def run_case(case: Case, rounds: int, batch: int) -> None:
    entries = case.entries
    for entry in entries:  # check before timing
        status = call(entry.app, entry.environs[0])[0]
        if status != entry.expected:
            raise SystemExit(f"{case.name}: {entry.contender} answered {status}, expected {entry.expected}")
        warm = min(batch, 20)
        time_batch(entry.app, entry.environs, entry.cursor[0], warm)  # warm up
        entry.cursor[0] += warm
    for r in range(rounds):
        shift = r % len(entries)  # rotate the order so no contender always runs first
        for entry in entries[shift:] + entries[:shift]:
            seconds = time_batch(entry.app, entry.environs, entry.cursor[0], batch)
            entry.cursor[0] += batch
            per_call = seconds / batch
            entry.samples.append(per_call)
            entry.best = min(entry.best, per_call)


def time_function(fn: cabc.Callable[[], t.Any], n: int) -> float:
    perf = time.perf_counter
    t0 = perf()
    for _ in range(n):
        fn()
    return (perf() - t0) / n


def run_micro(fns: dict[str, cabc.Callable[[], t.Any]], rounds: int, batch: int) -> dict[str, float]:
    best = dict.fromkeys(fns, float("inf"))
    names = list(fns)
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            best[name] = min(best[name], time_function(fns[name], batch))
    return best


# -- the benchmark ---------------------------------------------------------------


def check_misses(entry: Entry) -> None:
    """Prove a first-seen case defeats the verified-token cache: every call verifies a signature."""
    from flask_authgate._state import get_state

    tokens = get_state(entry.app).tokens
    codec = tokens.codec
    original = codec.decode
    count = 0

    def counting(token: str, token_type: str) -> dict[str, t.Any]:
        nonlocal count
        count += 1
        return original(token, token_type)

    codec.decode = counting  # type: ignore[method-assign]
    try:
        n = len(entry.environs) + 32
        time_batch(entry.app, entry.environs, entry.cursor[0], n)
        entry.cursor[0] += n
    finally:
        del codec.decode
    if count != n:
        raise SystemExit(f"first-seen case: {count} signature checks for {n} requests; the cache was not defeated")


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cache_size = 256 if args.quick else 4096
        self.pool_size = self.cache_size + 8  # cycled first in, first out: every call misses
        self.keys: dict[str, KeySet] = {}
        self.apps: dict[tuple[str, str], t.Any] = {}
        self.redis: RedisServer | None = None
        self.environs: dict[tuple[str, str, str], list[dict[str, t.Any]]] = {}
        self.cursors: dict[tuple[int, int], list[int]] = {}

    def key(self, alg: str) -> KeySet:
        if alg not in self.keys:
            self.keys[alg] = make_keys(alg)
        return self.keys[alg]

    def app(self, contender: str, alg: str) -> t.Any:
        cache_key = (contender, alg)
        if cache_key not in self.apps:
            keys = self.key(alg)
            size = {"AUTHGATE_TOKEN_CACHE_SIZE": self.cache_size}
            if contender == "authgate":
                app = build_authgate(keys, **size)
            elif contender == "authgate-redis":
                assert self.redis is not None
                app = build_authgate(keys, AUTHGATE_REVOCATION_STORE=self.redis.url, **size)
            elif contender == "authgate-signed":
                app = build_authgate(keys, AUTHGATE_TOKEN_FORMAT="signed", **size)
            elif contender == "authgate-deny":
                app = build_authgate_deny(keys)
            elif contender == "floor-signed":
                app = build_floor_signed(keys)
            else:
                app = BUILDERS[contender](keys)
            self.apps[cache_key] = app
        return self.apps[cache_key]

    def tokens(self, alg: str, kind: str, fmt: str = "jwt") -> list[dict[str, t.Any]]:
        """Environs for ``ROUTE``: kind is "admin", "user" (no role), "admin-pool", "user-pool", "none"."""
        cache_key = (alg, kind, fmt)
        if cache_key in self.environs:
            return self.environs[cache_key]
        path = PUBLIC if kind.startswith("public") else ROUTE
        if kind == "none":
            toks: list[str | None] = [None]
        else:
            roles = [] if kind.startswith("user") else [ROLE]
            count = self.pool_size if kind.endswith("pool") else 1
            if fmt == "jwt":
                toks = list(mint(self.key(alg), roles, count))
            else:
                toks = list(self.mint_signed(roles, count))
        self.environs[cache_key] = [environ_for(path, tok) for tok in toks]
        return self.environs[cache_key]

    def mint_signed(self, roles: list[str], count: int) -> list[str]:
        app = self.app("authgate-signed", "HS256")
        gate = app.extensions["authgate"]
        with app.app_context():
            return [gate.tokens.issue("alice", "access", roles=roles, expires_in=3600) for _ in range(count)]

    def case(self, name: str, title: str, alg: str, kind: str, contenders: list[str], fmt: str = "jwt") -> Case:
        environs = self.tokens(alg, kind, fmt)
        entries = []
        for contender in contenders:
            expected = 200
            if kind == "none":
                expected = 401
            elif kind.startswith("user"):
                expected = 401 if contender == "authlib" else 403
            if contender == "plain":
                expected = 200
            app = self.app(contender, alg)
            cursor = self.cursors.setdefault((id(app), id(environs)), [0])
            entries.append(Entry(contender, app, environs, expected, cursor))
        if kind.endswith("pool"):
            for entry in entries:
                if entry.contender.startswith("authgate"):
                    check_misses(entry)
        return Case(name, title, entries)

    def cases(self) -> list[Case]:
        quick = self.args.quick
        algs = ["HS256"] if quick else ["HS256", "RS256", "ES256"]
        out = [
            self.case("hs256-200-repeated", "200, HS256, repeated token", "HS256", "admin", PEERS),
            self.case("hs256-200-first-seen", "200, HS256, first-seen token", "HS256", "admin-pool", PEERS),
            self.case("hs256-401-no-header", "401, no credentials", "HS256", "none", PEERS),
            self.case("hs256-403-repeated", "403, missing role, repeated token", "HS256", "user", PEERS),
            self.case("hs256-403-first-seen", "403, missing role, first-seen token", "HS256", "user-pool", PEERS),
            self.case(
                "hs256-public-with-token",
                "public route, valid token attached",
                "HS256",
                "public-admin",
                [*PEERS, "authgate-deny"],
            ),
        ]
        for alg in algs[1:]:
            low = alg.lower()
            out.append(self.case(f"{low}-200-repeated", f"200, {alg}, repeated token", alg, "admin", PEERS))
            out.append(self.case(f"{low}-200-first-seen", f"200, {alg}, first-seen token", alg, "admin-pool", PEERS))
        signed = ["plain", "floor-signed", "authgate-signed"]
        out.append(
            self.case("signed-200-repeated", "200, signed format, repeated token", "HS256", "admin", signed, "signed")
        )
        out.append(
            self.case(
                "signed-200-first-seen", "200, signed format, first-seen token", "HS256", "admin-pool", signed, "signed"
            )
        )
        out.append(
            self.case("signed-403-repeated", "403, signed format, repeated token", "HS256", "user", signed, "signed")
        )
        if self.redis is not None:
            stores = ["plain", "floor", "authgate", "authgate-redis"]
            out.append(
                self.case("redis-200-repeated", "200, HS256, repeated, memory vs Redis store", "HS256", "admin", stores)
            )
            out.append(
                self.case(
                    "redis-200-first-seen",
                    "200, HS256, first-seen, memory vs Redis store",
                    "HS256",
                    "admin-pool",
                    stores,
                )
            )
        only = self.args.case
        return [c for c in out if not only or c.name in only]

    def micro(self) -> dict[str, float]:
        from flask_authgate._state import get_state
        from flask_authgate.revocation import MemoryStore
        from flask_authgate.revocation import RedisStore
        from flask_authgate.revocation import Revocations

        fns: dict[str, cabc.Callable[[], t.Any]] = {}
        for alg in ["HS256"] if self.args.quick else ["HS256", "RS256", "ES256"]:
            keys = self.key(alg)
            token = mint(keys, [ROLE], 1)[0]
            fns[f"jwt.decode {alg}"] = functools.partial(
                jwt.decode, token, keys.verify, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER
            )
        now = time.time()
        store = MemoryStore()
        for i in range(10_000):  # a store with some content
            store.put(f"jti:other-{i}", now, now + 3600)
        memory = Revocations(store, retry_after=1, max_lifetime=86400)
        fns["memory is_revoked (jti, no family)"] = functools.partial(memory.is_revoked, "some-jti", None, "alice", now)
        fns["memory is_revoked (jti, family)"] = functools.partial(memory.is_revoked, "some-jti", "fam", "alice", now)
        if self.redis is not None:
            redis_store = RedisStore(self.redis.url)
            remote = Revocations(redis_store, retry_after=1, max_lifetime=86400)
            fns["Redis is_revoked (one MGET)"] = functools.partial(remote.is_revoked, "some-jti", None, "alice", now)
        app = self.app("authgate", "HS256")
        env = self.tokens("HS256", "admin")[0]
        token = env["HTTP_AUTHORIZATION"].split(" ", 1)[1]
        service = get_state(app).tokens
        service.verify(token)
        fns["TokenService.verify, cache hit"] = functools.partial(service.verify, token)
        rounds = max(3, self.args.rounds // 2)
        result = run_micro(fns, rounds, max(200, self.args.batch * 5))
        if self.redis is not None:
            redis_store.close()
        return result

    def redis_round_trips(self) -> dict[str, float]:
        assert self.redis is not None
        out = {}
        for kind in ("admin", "admin-pool"):
            app = self.app("authgate-redis", "HS256")
            environs = self.tokens("HS256", kind)
            call(app, environs[0])  # connect first: HELLO / CLIENT SETINFO are not per request
            n = 200
            idle = -self.redis.commands_processed() + self.redis.commands_processed()  # what INFO itself adds
            before = self.redis.commands_processed()
            time_batch(app, environs, 1, n)
            after = self.redis.commands_processed()
            out[kind] = (after - before - idle) / n
        return out


def build_authgate_deny(keys: KeySet) -> Flask:
    """Deny-by-default on: the app-wide ``before_request`` runs, ``/public`` is ``@public``."""
    from flask_authgate import AuthGate
    from flask_authgate import public
    from flask_authgate import roles_required

    app = _flask("authgate_deny")
    app.config.update(authgate_config(keys, AUTHGATE_DEFAULT_DENY=True))
    AuthGate(app)

    @app.get(ROUTE)
    @roles_required(ROLE)
    def admin() -> dict[str, t.Any]:
        return BODY

    @app.get(PUBLIC)
    @public
    def open_view() -> dict[str, t.Any]:
        return BODY

    return app


# -- reporting ------------------------------------------------------------------


def us(seconds: float) -> float:
    return seconds * 1e6


def case_rows(case: Case) -> list[dict[str, t.Any]]:
    by = {e.contender: e for e in case.entries}
    plain = by["plain"].best
    floor_entry = by.get("floor") or by.get("floor-signed")
    floor_over = floor_entry.best - plain if floor_entry is not None else None
    rows = []
    for e in case.entries:
        over = e.best - plain
        ratio = over / floor_over if floor_over and floor_over > 0 and e.contender != "plain" else None
        rows.append(
            {
                "contender": e.contender,
                "status": e.expected,
                "per_call_us": round(us(e.best), 2),
                "overhead_us": round(us(over), 2),
                "ratio_to_floor": round(ratio, 3) if ratio is not None else None,
                "median_us": round(us(sorted(e.samples)[len(e.samples) // 2]), 2),
            }
        )
    return rows


def overhead(results: dict[str, t.Any], case: str, contender: str) -> float | None:
    for row in results["cases"].get(case, {}).get("rows", []):
        if row["contender"] == contender:
            return t.cast(float, row["overhead_us"])
    return None


def ratio(results: dict[str, t.Any], case: str, contender: str) -> float | None:
    for row in results["cases"].get(case, {}).get("rows", []):
        if row["contender"] == contender:
            return t.cast("float | None", row["ratio_to_floor"])
    return None


def targets(results: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    out: list[dict[str, t.Any]] = []

    def add(name: str, value: float | None, limit: float, unit: str) -> None:
        if value is None:
            return
        out.append({"target": name, "value": value, "limit": limit, "unit": unit, "met": value <= limit})

    add("200, HS256, first-seen token (x floor)", ratio(results, "hs256-200-first-seen", "authgate"), 1.05, "x")
    add("200, HS256, repeated token (x floor)", ratio(results, "hs256-200-repeated", "authgate"), 0.35, "x")
    add("200, RS256, repeated token (x floor)", ratio(results, "rs256-200-repeated", "authgate"), 0.2, "x")
    add("200, ES256, repeated token (x floor)", ratio(results, "es256-200-repeated", "authgate"), 0.2, "x")
    ours = overhead(results, "hs256-401-no-header", "authgate")
    theirs = overhead(results, "hs256-401-no-header", "httpauth")
    if ours is not None and theirs is not None:
        add("401, no credentials (µs, ≤ Flask-HTTPAuth's)", ours, theirs, "µs")
    add("403, missing role, first-seen (x floor)", ratio(results, "hs256-403-first-seen", "authgate"), 1.05, "x")
    add("403, missing role, repeated (x floor)", ratio(results, "hs256-403-repeated", "authgate"), 0.35, "x")
    add("public route, valid token attached (µs)", overhead(results, "hs256-public-with-token", "authgate"), 3.0, "µs")
    add(
        "extra: public route, deny-by-default + @public (µs)",
        overhead(results, "hs256-public-with-token", "authgate-deny"),
        3.0,
        "µs",
    )
    micro = results.get("micro", {})
    if "memory is_revoked (jti, no family)" in micro:
        add("memory revocation check (µs)", micro["memory is_revoked (jti, no family)"], 2.0, "µs")
    for kind, trips in results.get("redis_round_trips", {}).items():
        add(
            f"Redis round trips per request ({kind.replace('admin-pool', 'first-seen').replace('admin', 'repeated')})",
            trips,
            1.0,
            "",
        )
    return out


def markdown(results: dict[str, t.Any]) -> str:
    lines = []
    for case in results["cases"].values():
        lines.append(f"### {case['title']}  (`{case['name']}`)\n")
        lines.append("| contender | status | µs/request | overhead over plain Flask (µs) | x floor |")
        lines.append("|---|---|---:|---:|---:|")
        for row in case["rows"]:
            r = row["ratio_to_floor"]
            lines.append(
                f"| {LABELS[row['contender']]} | {row['status']} | {row['per_call_us']:.1f} | "
                f"{row['overhead_us']:+.1f} | {'' if r is None else f'{r:.2f}'} |"
            )
        lines.append("")
    if results.get("micro"):
        lines.append("### Single operations\n")
        lines.append("| operation | µs |")
        lines.append("|---|---:|")
        for name, value in results["micro"].items():
            lines.append(f"| {name} | {value:.2f} |")
        lines.append("")
    if results.get("redis_round_trips"):
        lines.append("### Redis round trips per request (`INFO stats` total_commands_processed)\n")
        for kind, trips in results["redis_round_trips"].items():
            label = "first-seen token" if kind == "admin-pool" else "repeated token"
            lines.append(f"- {label}: {trips:.2f}")
        lines.append("")
    lines.append("### Targets (issue 6)\n")
    lines.append("| target | measured | limit | met |")
    lines.append("|---|---:|---:|---|")
    for tg in results["targets"]:
        lines.append(f"| {tg['target']} | {tg['value']:.2f} | {tg['limit']:.2f} | {'yes' if tg['met'] else '**no**'} |")
    lines.append("")
    return "\n".join(lines)


def machine() -> dict[str, t.Any]:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for dist in ("flask", "werkzeug", "pyjwt", "cryptography", "itsdangerous", "flask-authgate",
                 "flask-jwt-extended", "flask-httpauth", "authlib", "joserfc", "redis"):  # fmt: skip
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "versions": versions,
    }


def profile(bench: Bench, name: str, calls: int) -> None:
    cases = {c.name: c for c in bench.cases()}
    if name not in cases:
        raise SystemExit(f"unknown case {name!r}; one of: {', '.join(cases)}")
    entry = next(e for e in cases[name].entries if e.contender == "authgate")
    profiler = cProfile.Profile()
    profiler.enable()
    time_batch(entry.app, entry.environs, entry.cursor[0], calls)
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.strip_dirs().sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: HS256 only, few rounds")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per case (default 40, quick 4)")
    parser.add_argument("--batch", type=int, default=None, help="calls per batch (default 200, quick 50)")
    parser.add_argument("--case", action="append", help="run only this case (repeatable)")
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis store cases")
    parser.add_argument("--profile", metavar="CASE", help="profile flask-authgate on CASE with cProfile instead")
    parser.add_argument("--output", help="the JSON file (default bench/results/run-<time>.json)")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (4 if args.quick else 40)
    args.batch = args.batch or (50 if args.quick else 200)

    bench = Bench(args)
    if not args.no_redis:
        bench.redis = RedisServer()
    try:
        if args.profile:
            profile(bench, args.profile, args.batch * args.rounds)
            return 0
        started = time.time()
        print(f"building apps and minting tokens (pool of {bench.pool_size} per first-seen case)...", file=sys.stderr)
        cases = bench.cases()
        results: dict[str, t.Any] = {
            "machine": machine(),
            "settings": {
                "quick": args.quick,
                "rounds": args.rounds,
                "batch": args.batch,
                "token_cache_size": bench.cache_size,
                "first_seen_pool": bench.pool_size,
            },
            "cases": {},
        }
        gc.collect()
        for case in cases:
            print(f"  {case.name}...", file=sys.stderr)
            run_case(case, args.rounds, args.batch)
            results["cases"][case.name] = {"name": case.name, "title": case.title, "rows": case_rows(case)}
        if not args.case:
            print("  single operations...", file=sys.stderr)
            results["micro"] = {k: round(us(v), 3) for k, v in bench.micro().items()}
            if bench.redis is not None:
                results["redis_round_trips"] = bench.redis_round_trips()
        results["targets"] = targets(results)
        results["elapsed_s"] = round(time.time() - started, 1)
        text = markdown(results)
        print(text)
        os.makedirs(RESULTS, exist_ok=True)
        path = args.output or os.path.join(RESULTS, time.strftime("run-%Y%m%d-%H%M%S.json"))
        with open(path, "w") as f:
            json.dump(results, f, indent=2)
        print(f"results: {path} ({results['elapsed_s']} s)", file=sys.stderr)
    finally:
        if bench.redis is not None:
            bench.redis.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
