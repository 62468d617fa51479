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

The pieces: ``keys.py`` (keys, tokens, environs), ``contenders.py`` and
``outside.py`` (the apps, and the servers of the outside-issuer,
introspection and DPoP cases), ``cases.py`` (the cases and the targets, as
data), ``fixtures.py`` (builds a case), ``timing.py`` (the method),
``report.py`` (tables, targets). The extension is used through its public
API only.

Usage::

    python bench/run.py            # the full run (a few minutes)
    python bench/run.py --quick    # a smoke run (seconds)
    python bench/run.py --case dpop-200-repeated   # one case (repeatable)
    python bench/run.py --profile hs256-200-repeated   # cProfile of flask-authgate on one case

Results: a markdown table on stdout and ``bench/results/run-<time>.json``.
See docs/performance.md.
"""

from __future__ import annotations

import argparse
import collections.abc as cabc
import cProfile
import functools
import gc
import os
import pstats
import sys
import time
import typing as t
import warnings

import jwt
from cases import CASES
from fixtures import Bench
from fixtures import RedisServer
from keys import AUDIENCE
from keys import ISSUER
from keys import ROLE
from keys import mint
from report import case_rows
from report import machine
from report import markdown
from report import targets
from report import us
from results_file import write_results
from timing import call
from timing import run_case
from timing import run_micro
from timing import time_batch

warnings.simplefilter("ignore")  # Authlib's deprecation notices are not what we measure


def internals(bench: Bench) -> dict[str, float]:
    """Single operations timed in a loop: PyJWT, and the public revocation stores' lookup.

    Only classes exported by ``flask_authgate`` (``MemoryStore``,
    ``RedisStore``). The full revocation check and the cache hit are timed
    through requests instead (``revocation-10k-repeated``, the repeated cases).
    """
    from flask_authgate import MemoryStore
    from flask_authgate import RedisStore

    fns: dict[str, cabc.Callable[[], t.Any]] = {}
    for alg in ["HS256"] if bench.args.quick else ["HS256", "RS256", "ES256"]:
        keys = bench.key(alg)
        token = mint(keys, [ROLE], 1)[0]
        fns[f"jwt.decode {alg}"] = functools.partial(
            jwt.decode, token, keys.verify, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER
        )
    now = time.time()
    store = MemoryStore()
    for i in range(10_000):  # a store with some content
        store.put(f"jti:other-{i}", now, now + 3600)
    lookup = ["jti:some-jti", "sub:alice", "fam:some-family"]
    fns["MemoryStore.get_many, 3 keys, 10,000 entries"] = functools.partial(store.get_many, lookup)
    redis_store = None
    if bench.redis is not None:
        redis_store = RedisStore(bench.redis.url)
        redis_store.get_many(lookup)  # connect first
        fns["RedisStore.get_many, 3 keys (one MGET on loopback)"] = functools.partial(redis_store.get_many, lookup)
    rounds = max(3, bench.args.rounds // 2)
    try:
        return run_micro(fns, rounds, max(200, bench.args.batch * 5))
    finally:
        if redis_store is not None:
            redis_store.close()


def redis_round_trips(bench: Bench) -> dict[str, float]:
    assert bench.redis is not None
    out = {}
    for kind in ("admin", "admin-pool"):
        app = bench.app("authgate-redis", "HS256")
        environs, _ = bench.environs("authgate-redis", "HS256", kind, "jwt")
        call(app, environs[0])  # connect first: HELLO / CLIENT SETINFO are not per request
        n = 200
        idle = -bench.redis.commands_processed() + bench.redis.commands_processed()  # what INFO itself adds
        before = bench.redis.commands_processed()
        time_batch(app, environs, 1, n)
        after = bench.redis.commands_processed()
        out[kind] = (after - before - idle) / n
    return out


def profile(bench: Bench, name: str, calls: int) -> None:
    specs = {s.name: s for s in bench.specs(CASES)}
    if name not in specs:
        raise SystemExit(f"unknown case {name!r}; one of: {', '.join(specs)}")
    case = bench.build(specs[name])
    entry = next(e for e in case.entries if e.contender == specs[name].subject)
    entry.check(name)
    if entry.single_use:
        calls = min(calls, len(entry.environs) - entry.cursor[0])
    profiler = cProfile.Profile()
    profiler.enable()
    time_batch(entry.app, entry.environs, entry.advance(calls), calls)
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
        print(f"first-seen cases: a pool of {bench.pool_size} tokens per case", file=sys.stderr)
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
        for spec in bench.specs(CASES):
            print(f"  {spec.name}...", file=sys.stderr)
            case = bench.build(spec)
            gc.collect()
            run_case(case, args.rounds, args.batch)
            results["cases"][case.name] = {"name": case.name, "title": case.title, "rows": case_rows(case)}
        if not args.case:
            print("  internals...", file=sys.stderr)
            results["internals"] = {k: round(us(v), 3) for k, v in internals(bench).items()}
            if bench.redis is not None:
                results["redis_round_trips"] = redis_round_trips(bench)
        results["targets"] = targets(results)
        results["elapsed_s"] = round(time.time() - started, 1)
        results["machine"]["load_average_after"] = os.getloadavg()
        print(markdown(results))
        path = write_results(results, "run", args.output)
        print(f"results: {path} ({results['elapsed_s']} s)", file=sys.stderr)
    finally:
        bench.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
