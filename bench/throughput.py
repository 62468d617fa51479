"""Requests per second through a real server: a guarded route vs the same route unguarded.

A tiny app (:func:`create_app`, below) serves one JSON view twice:
``/protected`` behind ``@roles_required("admin")`` and ``/open`` with no
guard. It runs under gunicorn (2 sync workers) on 127.0.0.1, and ``wrk``
(Debian's package) drives each route for a bounded time, alternating routes
for several rounds; the best round of each route is kept (these machines
have stretches of slowdown). The guarded route is sent a valid admin token
with ``wrk -H``; the open route gets the same header, so both requests are
the same size.

The example app is not used: its guarded views load a user from SQLite on
every request, which would measure the database, not the guard.

Usage::

    python bench/throughput.py            # 3 rounds x 5 s per route
    python bench/throughput.py --quick    # 1 round x 2 s per route

Everything binds 127.0.0.1 and stops by itself (wrk's duration, and gunicorn
is terminated at the end). Results also go to ``bench/results/throughput-<time>.json``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import typing as t
import urllib.error
import urllib.request

from results_file import write_results

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET = "throughput-" + "k" * 53  # the workers and this process must agree on the key
BODY = {"ok": True, "items": [1, 2, 3]}


def create_app() -> t.Any:
    """The app gunicorn serves: one view, guarded and unguarded."""
    from flask import Flask

    from flask_authgate import AuthGate
    from flask_authgate import roles_required

    app = Flask("authgate_throughput")
    app.config["SECRET_KEY"] = os.environ.get("AUTHGATE_BENCH_SECRET", SECRET)
    gate = AuthGate(app)
    app.extensions["bench_gate"] = gate

    def view() -> dict[str, t.Any]:
        return BODY

    app.add_url_rule("/open", "open", view)
    app.add_url_rule("/protected", "protected", roles_required("admin")(view))
    return app


def admin_token() -> str:
    app = create_app()
    with app.app_context():
        return t.cast(str, app.extensions["bench_gate"].create_access_token("bench", roles=["admin"], expires_in=3600))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, headers: dict[str, str], timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=2) as r:  # noqa: S310
                return int(r.status)
        except urllib.error.HTTPError as err:
            return int(err.code)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer on {url}") from None
            time.sleep(0.1)


def run_wrk(url: str, token: str, duration: float, threads: int, connections: int) -> dict[str, t.Any]:
    cmd = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency",
        "-H", f"Authorization: Bearer {token}", url,
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    if rps is None or total is None:
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    if bad is not None:
        raise RuntimeError(f"{url}: {bad.group(1)} responses were not 2xx:\n{out}")
    return {
        "rps": float(rps.group(1)),
        "requests": int(total.group(1)),
        "p50": p50.group(1) if p50 else None,
        "socket_errors": errors.group(1) if errors else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s per route")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 3)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per wrk run (default 5)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="wrk -t")
    parser.add_argument("--connections", type=int, default=16, help="wrk -c")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    duration = args.duration or (2.0 if args.quick else 5.0)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2

    token = admin_token()
    port = free_port()
    env = dict(
        os.environ, AUTHGATE_BENCH_SECRET=SECRET, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(args.workers), "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning", "throughput:create_app()"],
        cwd=HERE,
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    results: dict[str, list[dict[str, t.Any]]] = {"open": [], "protected": []}
    try:
        header = {"Authorization": f"Bearer {token}"}
        for path, expected in (("/open", 200), ("/protected", 200)):
            status = wait_for(base + path, header)
            if status != expected:
                raise RuntimeError(f"{path} answered {status}, expected {expected}")
        if wait_for(base + "/protected", {}) != 401:
            raise RuntimeError("/protected without a token did not answer 401")
        run_wrk(base + "/open", token, 1, args.threads, args.connections)  # warm both workers up
        for r in range(rounds):
            order = ["open", "protected"] if r % 2 == 0 else ["protected", "open"]
            for name in order:
                res = run_wrk(f"{base}/{name}", token, duration, args.threads, args.connections)
                results[name].append(res)
                print(f"  round {r + 1} {name:>9}: {res['rps']:9.1f} req/s (p50 {res['p50']})", file=sys.stderr)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    best = {name: max(r["rps"] for r in runs) for name, runs in results.items()}
    ratio = best["protected"] / best["open"]
    summary = {
        "settings": {
            "workers": args.workers,
            "wrk_threads": args.threads,
            "connections": args.connections,
            "duration_s": duration,
            "rounds": rounds,
        },
        "runs": results,
        "best_rps": best,
        "ratio": round(ratio, 3),
        "target": 0.85,
        "met": ratio >= 0.85,
    }
    print("| route | best req/s |")
    print("|---|---:|")
    print(f"| `/open` (unguarded) | {best['open']:.0f} |")
    print(f'| `/protected` (`@roles_required("admin")`, repeated token) | {best["protected"]:.0f} |')
    print(f"\nprotected / unguarded = **{ratio:.3f}** (target ≥ 0.85: {'met' if ratio >= 0.85 else 'NOT met'})")
    path = write_results(summary, "throughput")
    print(f"results: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
