"""The timing method: WSGI calls, round-robin short batches, the minimum kept (see bench/README.md).

Also the one instrument that looks inside a request, :func:`count_checks`:
it counts signature computations at the *crypto libraries'* public entry
points (``hmac.new``, PyJWT's ``RSAAlgorithm.verify`` / ``ECAlgorithm.verify``),
never inside the extension, to prove what a case claims to measure (a
first-seen token is verified every time, a repeated one never again).
"""

from __future__ import annotations

import collections
import collections.abc as cabc
import contextlib
import dataclasses
import hmac
import time
import typing as t

from flask import Flask


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
    #: Each environ may be sent once only (a DPoP proof, a token introspected once): never wrap.
    single_use: bool = False
    best: float = float("inf")  # seconds per call
    samples: list[float] = dataclasses.field(default_factory=list)

    def advance(self, n: int) -> int:
        """Reserve the next ``n`` environs; return where they start."""
        start = self.cursor[0]
        if self.single_use and start + n > len(self.environs):
            raise SystemExit(f"{self.contender}: {start + n} single-use requests needed, {len(self.environs)} made")
        self.cursor[0] += n
        return start

    def check(self, where: str) -> None:
        """Send the next environ once and insist on the expected status."""
        status = call(self.app, self.environs[self.advance(1) % len(self.environs)])[0]
        if status != self.expected:
            raise SystemExit(f"{where}: {self.contender} answered {status}, expected {self.expected}")


@dataclasses.dataclass
class Case:
    name: str
    title: str
    entries: list[Entry]
    #: The contender the overheads are divided by (``None``: no ratio column).
    floor: str | None = "floor"


def run_case(case: Case, rounds: int, batch: int) -> None:
    entries = case.entries
    for entry in entries:  # check before timing
        entry.check(case.name)
        warm = min(batch, 20)
        time_batch(entry.app, entry.environs, entry.advance(warm), warm)  # warm up
    for r in range(rounds):
        shift = r % len(entries)  # rotate the order so no contender always runs first
        for entry in entries[shift:] + entries[:shift]:
            seconds = time_batch(entry.app, entry.environs, entry.advance(batch), batch)
            per_call = seconds / batch
            entry.samples.append(per_call)
            entry.best = min(entry.best, per_call)
    for entry in entries:  # and after: no proof went stale, no token expired, nothing degraded
        entry.check(case.name + " (after timing)")


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


@contextlib.contextmanager
def count_checks() -> cabc.Iterator[collections.Counter[str]]:
    """Count HMAC computations (``hmac``), RSA and EC signature checks (``rsa``, ``ec``) inside the block.

    Patches the libraries' public functions for the duration of the block only
    (the bench is single-threaded while it counts).
    """
    from jwt.algorithms import ECAlgorithm
    from jwt.algorithms import RSAAlgorithm

    counts: collections.Counter[str] = collections.Counter()
    original_new = hmac.new
    rsa_verify, ec_verify = RSAAlgorithm.verify, ECAlgorithm.verify

    def counting_new(*args: t.Any, **kwargs: t.Any) -> t.Any:
        counts["hmac"] += 1
        return original_new(*args, **kwargs)

    def counting_verify(kind: str, verify: t.Any) -> t.Any:
        def wrapper(self: t.Any, msg: bytes, key: t.Any, sig: bytes) -> bool:
            counts[kind] += 1
            return t.cast(bool, verify(self, msg, key, sig))

        return wrapper

    hmac.new = counting_new
    RSAAlgorithm.verify = counting_verify("rsa", rsa_verify)  # type: ignore[method-assign]
    ECAlgorithm.verify = counting_verify("ec", ec_verify)  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        hmac.new = original_new
        RSAAlgorithm.verify = rsa_verify  # type: ignore[method-assign]
        ECAlgorithm.verify = ec_verify  # type: ignore[method-assign]


def prove(
    entry: Entry, per_request: cabc.Mapping[str, int], n: int, extra: cabc.Callable[[], int] | None = None
) -> None:
    """Send ``n`` requests of ``entry`` and insist on ``per_request`` checks each.

    A first-seen case sends one pass of its pool plus 32, so every token has
    been pushed out of the cache (first in, first out) before it comes back.

    ``per_request`` maps ``hmac`` / ``rsa`` / ``ec`` (and ``posts``, read
    from ``extra`` before and after: the introspection endpoint's request
    count) to how many each request must make: 1 for a first-seen token, 0
    for a repeated one.
    """
    before = extra() if extra is not None else 0
    with count_checks() as counts:
        time_batch(entry.app, entry.environs, entry.advance(n), n)
    if extra is not None:
        counts["posts"] = extra() - before
    for kind, each in per_request.items():
        if counts[kind] != each * n:
            raise SystemExit(
                f"{entry.contender}: {counts[kind]} {kind} checks in {n} requests, expected {each * n}: "
                "the case does not measure what it says"
            )
