"""Memory of the verified-token cache and the in-memory revocation store under a long stream.

Three measurements, each with :mod:`tracemalloc` (peak of Python allocations
during the phase, and what is still held at its end):

1. **Real tokens through** ``TokenService.verify``: ``--real`` distinct
   HS256 JWTs minted by the app, each verified once (signature, claims,
   revocation check, cache insert), exactly as requests would.
2. **1,000,000 distinct cache entries**: minting and verifying a million JWTs
   takes minutes, so this phase builds each entry the way a cache miss does
   (``TokenService._build`` on the claims of a real token with a distinct
   ``jti``) and inserts it with ``TokenCache.put`` under a distinct token
   string of a real token's length. This is the cache's own bound: at most
   ``AUTHGATE_TOKEN_CACHE_SIZE`` entries (default 4096), first in first out.
   Then tokens longer than 4 KiB are streamed and must never be cached.
3. **1,000,000 revocations through** ``MemoryStore.put``, one per simulated
   0.01 s (100 revocations a second, about 2.8 hours of traffic), each
   expiring 15 minutes (the default access-token lifetime) after it was made.
   The store drops expired entries as new ones arrive, so it holds about
   100 x 900 = 90,000 entries at most, whatever the length of the stream.

Usage: ``python bench/memory.py [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
import typing as t

import jwt
from flask import Flask
from results_file import write_results

from flask_authgate import AuthGate
from flask_authgate.revocation import MemoryStore
from flask_authgate.tokens import MAX_CACHED_TOKEN
from flask_authgate.tokens import TokenService

SECRET = "memory-" + "k" * 57
MiB = 1024 * 1024


def service() -> tuple[Flask, TokenService]:
    app = Flask("authgate_memory")
    app.config["SECRET_KEY"] = SECRET
    AuthGate(app)
    return app, app.extensions["authgate"].tokens


class Phase:
    """tracemalloc's peak and retained bytes over a block."""

    def __enter__(self) -> Phase:
        tracemalloc.start()
        self.start = tracemalloc.get_traced_memory()[0]
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        self.seconds = time.perf_counter() - self.t0
        self.peak = peak - self.start
        self.retained = current - self.start


def real_tokens(count: int) -> dict[str, t.Any]:
    app, tokens = service()
    with app.app_context():
        minted = [tokens.issue(f"user-{i}", "access", roles=["reader"], scopes=["notes:read"]) for i in range(count)]
    size = tokens.cache.maxsize
    with Phase() as phase:
        for token in minted:
            tokens.verify(token)
    assert len(tokens.cache) == min(count, size)
    return {
        "tokens": count,
        "token_length": len(minted[0]),
        "cache_entries": len(tokens.cache),
        "cache_maxsize": size,
        "peak_MiB": round(phase.peak / MiB, 2),
        "retained_MiB": round(phase.retained / MiB, 2),
        "bytes_per_entry": round(phase.retained / len(tokens.cache)),
        "seconds": round(phase.seconds, 1),
    }


def million_entries(count: int) -> dict[str, t.Any]:
    app, tokens = service()
    with app.app_context():
        sample = tokens.issue("user", "access", roles=["reader"], scopes=["notes:read"])
    claims = jwt.decode(sample, options={"verify_signature": False})
    prefix = sample[: len(sample) - 12]
    cache = tokens.cache
    with Phase() as phase:
        for i in range(count):
            entry = tokens._build({**claims, "sub": f"user-{i}", "jti": f"j{i}"})
            cache.put(f"{prefix}{i:012d}", entry)  # a distinct string of a real token's length
    assert len(cache) == cache.maxsize
    entries = len(cache)
    big = "x" * (MAX_CACHED_TOKEN + 1)
    entry = tokens._build(claims)
    with Phase() as oversized:
        for i in range(10_000):
            cache.discard(big)
            cache.put(f"{big}{i}", entry)
    assert len(cache) == entries and all(len(k) <= MAX_CACHED_TOKEN for k in cache._data)
    return {
        "entries_streamed": count,
        "token_length": len(sample),
        "cache_entries_after": entries,
        "cache_maxsize": cache.maxsize,
        "peak_MiB": round(phase.peak / MiB, 2),
        "retained_MiB": round(phase.retained / MiB, 2),
        "oversized_streamed": 10_000,
        "oversized_cached": 0,
        "oversized_peak_MiB": round(oversized.peak / MiB, 3),
        "seconds": round(phase.seconds, 1),
    }


def revocations(count: int, rate: float, lifetime: float) -> dict[str, t.Any]:
    now = [1_000_000.0]
    store = MemoryStore(clock=lambda: now[0])
    largest = 0
    step = 1.0 / rate
    with Phase() as phase:
        for i in range(count):
            now[0] += step
            store.put(f"jti:{i:022d}", now[0], now[0] + lifetime)
            if i % 1000 == 0:
                largest = max(largest, len(store))
    bound = int(rate * lifetime) + 1
    assert largest <= bound, (largest, bound)
    return {
        "revocations": count,
        "rate_per_s": rate,
        "entry_lifetime_s": lifetime,
        "entries_bound": bound,
        "largest_entries": largest,
        "entries_at_end": len(store),
        "expiry_heap_at_end": len(store._expiry),
        "peak_MiB": round(phase.peak / MiB, 2),
        "retained_MiB": round(phase.retained / MiB, 2),
        "seconds": round(phase.seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100,000 entries instead of 1,000,000")
    parser.add_argument("--real", type=int, default=None, help="real JWTs verified (default 20,000; quick 5,000)")
    args = parser.parse_args(argv)
    count = 100_000 if args.quick else 1_000_000
    real = args.real or (5_000 if args.quick else 20_000)

    print(f"verifying {real:,} real tokens...", file=sys.stderr)
    res_real = real_tokens(real)
    print(f"streaming {count:,} cache entries...", file=sys.stderr)
    res_cache = million_entries(count)
    print(f"streaming {count:,} revocations...", file=sys.stderr)
    res_rev = revocations(count, rate=100.0, lifetime=900.0)
    results = {"real_tokens": res_real, "token_cache": res_cache, "memory_store": res_rev}

    print("| stream | entries kept (bound) | peak MiB | retained MiB |")
    print("|---|---:|---:|---:|")
    print(
        f"| {res_real['tokens']:,} real JWTs through `TokenService.verify` | "
        f"{res_real['cache_entries']:,} ({res_real['cache_maxsize']:,}) | {res_real['peak_MiB']} | {res_real['retained_MiB']} |"
    )
    print(
        f"| {res_cache['entries_streamed']:,} distinct entries into the token cache | "
        f"{res_cache['cache_entries_after']:,} ({res_cache['cache_maxsize']:,}) | {res_cache['peak_MiB']} | "
        f"{res_cache['retained_MiB']} |"
    )
    print(
        f"| {res_cache['oversized_streamed']:,} tokens > 4 KiB | 0 (never cached) | {res_cache['oversized_peak_MiB']} | — |"
    )
    print(
        f"| {res_rev['revocations']:,} revocations into `MemoryStore` (100/s, 15 min expiry) | "
        f"{res_rev['largest_entries']:,} ({res_rev['entries_bound']:,}) | {res_rev['peak_MiB']} | {res_rev['retained_MiB']} |"
    )
    print(
        f"\nabout {res_real['bytes_per_entry']:,} bytes per cached entry ({res_real['token_length']}-character tokens)"
    )
    path = write_results(results, "memory")
    print(f"results: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
