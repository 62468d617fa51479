"""Revocation across many machines (issue #14): the Redis store against the memory store, in one run.

Measured side by side:

1. **Overhead** of a guarded request with a repeated token (``@roles_required``,
   HS256), flask-authgate with the memory store and with Redis, over plain
   Flask; WSGI calls timed as ``bench/run.py`` does (round-robin short batches,
   minimum kept). Target: Redis / memory <= 1.5.
2. **Redis commands per 1,000 repeated-token requests**, every command counted
   from ``INFO commandstats`` (heartbeats included). Target: <= 5.
3. **Propagation**: ``gate.revoke()`` in this process to the first 401 in
   another process that keeps requesting the token (``time.monotonic`` is one
   clock for every process on Linux). Target: p99 <= 50 ms on loopback.
4. **Throughput**: ``gunicorn -w 2`` + ``wrk``, ``/protected`` with the Redis
   store against ``/open`` (unguarded). Target: >= 0.85.
5. **Cluster misses**: what a view miss costs on a 3-primary cluster, one
   ``MGET`` per slot (what the store does) against one ``MGET`` of hash-tagged
   keys in one slot.

Usage::

    python bench/redis_scale.py           # about a minute
    python bench/redis_scale.py --quick   # fewer rounds, shorter wrk runs

Starts its own ``redis-server``s on free 127.0.0.1 ports (Debian's
``redis-server`` and ``redis-cli``; ``wrk`` and gunicorn for part 4) and
stops them. Results also go to ``bench/results/redis-scale-<time>.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import time
import typing as t

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT, os.path.join(ROOT, "tests")]

import contenders  # noqa: E402  (bench/contenders.py: the apps)
import fixtures  # noqa: E402  (bench/fixtures.py: RedisServer)
import keys as material  # noqa: E402  (bench/keys.py: keys, tokens, environs)
import throughput  # noqa: E402  (bench/throughput.py: gunicorn + wrk)
import timing  # noqa: E402  (bench/timing.py: WSGI timing)
from results_file import write_results  # noqa: E402  (bench/results_file.py)

SECRET = throughput.SECRET


def create_app() -> t.Any:
    """What gunicorn serves for part 4: ``throughput.create_app`` with the Redis store from the environment."""
    from flask import Flask

    from flask_authgate import AuthGate
    from flask_authgate import roles_required

    app = Flask("authgate_redis_scale")
    app.config["SECRET_KEY"] = SECRET
    app.config["AUTHGATE_REVOCATION_STORE"] = os.environ["AUTHGATE_BENCH_REDIS"]
    gate = AuthGate(app)
    app.extensions["bench_gate"] = gate

    def view() -> dict[str, t.Any]:
        return throughput.BODY

    app.add_url_rule("/open", "open", view)
    app.add_url_rule("/protected", "protected", roles_required("admin")(view))
    return app


def commandstats(port: int) -> int:
    """Every command the server has processed, from INFO commandstats, minus INFO itself."""
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "info", "commandstats"], capture_output=True, text=True, check=True
    ).stdout
    total = 0
    for line in out.splitlines():
        if line.startswith("cmdstat_") and not line.startswith(("cmdstat_info:", "cmdstat_config|")):
            total += int(line.split("calls=")[1].split(",")[0])
    return total


def wait_trusted(app: t.Any) -> None:
    view = app.extensions["authgate"].revocations.store.view
    deadline = time.monotonic() + 10
    while not view.trusted():
        if time.monotonic() > deadline:
            raise RuntimeError("the local view was never confirmed")
        time.sleep(0.01)


# -- 1 and 2 -------------------------------------------------------------------------


def overhead(redis_url: str, port: int, rounds: int, batch: int) -> dict[str, t.Any]:
    keys = material.make_keys("HS256")
    plain = contenders.build_plain(keys)
    memory = contenders.build_authgate(keys)
    remote = contenders.build_authgate(keys, AUTHGATE_REVOCATION_STORE=redis_url)
    environs = [material.environ_for(material.ROUTE, tok) for tok in material.mint(keys, [material.ROLE], 1)]
    entries = [
        timing.Entry(name, app, environs, 200)
        for name, app in (("plain", plain), ("memory", memory), ("redis", remote))
    ]
    timing.call(remote, environs[0])
    wait_trusted(remote)
    timing.run_case(timing.Case("repeated", "200, HS256, repeated token", entries), rounds, batch)
    best = {e.contender: e.best * 1e6 for e in entries}
    over = {"memory": best["memory"] - best["plain"], "redis": best["redis"] - best["plain"]}

    wait_trusted(remote)
    before = commandstats(port)
    timing.time_batch(remote, environs, 0, 1000)
    commands = commandstats(port) - before
    return {
        "per_call_us": {k: round(v, 2) for k, v in best.items()},
        "overhead_us": {k: round(v, 2) for k, v in over.items()},
        "ratio": round(over["redis"] / over["memory"], 3),
        "commands_per_1000": commands,
    }


# -- 3 -------------------------------------------------------------------------------

WATCHER = """
import sys, time
sys.path[:0] = [{root!r}]
from flask import Flask
from flask_authgate import AuthGate, login_required
app = Flask("watcher")
app.config.update(SECRET_KEY={secret!r}, AUTHGATE_REVOCATION_STORE={url!r})
AuthGate(app)
app.add_url_rule("/me", "me", login_required(lambda: "ok"))
client = app.test_client()
view = app.extensions["authgate"].revocations.store.view
for line in sys.stdin:
    headers = {{"Authorization": "Bearer " + line.strip()}}
    assert client.get("/me", headers=headers).status_code == 200
    while not view.trusted():
        time.sleep(0.001)
    assert client.get("/me", headers=headers).status_code == 200  # now answered by the view
    print("ready", flush=True)
    while client.get("/me", headers=headers).status_code == 200:
        pass
    print(time.monotonic(), flush=True)
"""


def propagation(redis_url: str, samples: int) -> dict[str, t.Any]:
    from flask import Flask

    from flask_authgate import AuthGate

    app = Flask("revoker")
    app.config.update(SECRET_KEY=SECRET, AUTHGATE_REVOCATION_STORE=redis_url)
    gate = AuthGate(app)
    script = WATCHER.format(root=ROOT, secret=SECRET, url=redis_url)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    latencies = []
    try:
        for _ in range(samples):
            with app.app_context():
                token = gate.create_access_token("alice")
            proc.stdin.write(token + "\n")
            proc.stdin.flush()
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("the watcher process failed")
            time.sleep(0.002)
            start = time.monotonic()
            with app.app_context():
                gate.revoke(token)
            seen = float(proc.stdout.readline())
            latencies.append((seen - start) * 1000)
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    latencies.sort()
    return {
        "samples": samples,
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "max_ms": round(latencies[-1], 2),
    }


# -- 4 -------------------------------------------------------------------------------


def _gunicorn(app_spec: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = throughput.free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning", app_spec],
        cwd=HERE,
        env=env,
    )  # fmt: skip
    return server, f"http://127.0.0.1:{port}"


def gunicorn_throughput(redis_url: str, rounds: int, duration: float) -> dict[str, t.Any]:
    """/open and /protected of the Redis app, and /protected of the same app on the memory store."""
    token = throughput.admin_token()
    env = dict(
        os.environ,
        AUTHGATE_BENCH_REDIS=redis_url,
        AUTHGATE_BENCH_SECRET=SECRET,
        PYTHONPATH=os.pathsep.join([HERE, ROOT]),
    )
    servers = [_gunicorn("redis_scale:create_app()", env), _gunicorn("throughput:create_app()", env)]
    (_, redis_base), (_, memory_base) = servers
    urls = {
        "open": redis_base + "/open",
        "protected (Redis)": redis_base + "/protected",
        "protected (memory)": memory_base + "/protected",
    }
    results: dict[str, list[float]] = {name: [] for name in urls}
    try:
        header = {"Authorization": f"Bearer {token}"}
        for url in urls.values():
            if throughput.wait_for(url, header) != 200:
                raise RuntimeError(f"{url} did not answer 200")
            throughput.run_wrk(url, token, 1, 2, 16)  # warm the workers (and their views)
        names = list(urls)
        for r in range(rounds):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                results[name].append(throughput.run_wrk(urls[name], token, duration, 2, 16)["rps"])
    finally:
        for server, _ in servers:
            server.terminate()
            server.wait(timeout=15)
    best = {name: max(v) for name, v in results.items()}
    return {
        "rounds_rps": results,
        "best_rps": best,
        "ratio": round(best["protected (Redis)"] / best["open"], 3),
        "memory_ratio": round(best["protected (memory)"] / best["open"], 3),
    }


# -- 5 -------------------------------------------------------------------------------


def cluster_misses(rounds: int) -> dict[str, t.Any]:
    from redis.cluster import ClusterNode
    from redis.cluster import RedisCluster
    from redis_servers import Cluster

    cluster = Cluster()
    try:
        client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in cluster.nodes])
        spread = ["authgate:sub:alice", "authgate:jti:Zm9vYmFyYmF6", "authgate:fam:cXV4cXV1eA"]
        slots = {client.keyslot(k) for k in spread}
        nodes = {client.get_node_from_key(k).name for k in spread}
        tagged = ["authgate:{t}:sub:alice", "authgate:{t}:jti:Zm9vYmFyYmF6", "authgate:{t}:fam:cXV4cXV1eA"]
        fns = {
            "one MGET per slot (mget_nonatomic, 3 slots)": lambda: client.mget_nonatomic(spread),
            "one MGET, hash-tagged keys (1 slot)": lambda: client.mget(tagged),
        }
        best = timing.run_micro(fns, rounds, 200)
        client.close()
    finally:
        cluster.cleanup()
    return {"slots": len(slots), "nodes": len(nodes), "per_miss_us": {k: round(v * 1e6, 1) for k, v in best.items()}}


# -- 6 -------------------------------------------------------------------------------


def _seen(app: t.Any, token: str) -> None:
    """Make ``token`` one the process has seen: its keys are in the (confirmed) view."""
    _first(app, token, 200)
    wait_trusted(app)
    _first(app, token, 200)


def _guarded_app(url: str) -> tuple[t.Any, str]:
    from flask import Flask

    from flask_authgate import AuthGate
    from flask_authgate import login_required

    app = Flask("recovery")
    app.config.update(SECRET_KEY=SECRET, AUTHGATE_REVOCATION_STORE=url)
    gate = AuthGate(app)
    app.add_url_rule("/me", "me", login_required(lambda: "ok"))
    with app.app_context():
        token = gate.create_access_token("alice")
    return app, token


def _first(app: t.Any, token: str, status: int, limit: float = 30.0) -> tuple[float, collections.Counter[int]]:
    """Seconds until a request gets ``status``, and what the requests got meanwhile."""
    client = app.test_client()
    seen: collections.Counter[int] = collections.Counter()
    start = time.monotonic()
    while time.monotonic() - start < limit:
        got = client.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code
        seen[got] += 1
        if got == status:
            return time.monotonic() - start, seen
        time.sleep(0.005)
    raise RuntimeError(f"no {status} within {limit}s: {dict(seen)}")


def recovery() -> dict[str, t.Any]:
    """Outages with the default settings (staleness 1 s, timeout 0.5 s): how long until 503, and back."""
    from redis_servers import Sentinels
    from redis_servers import Server
    from redis_servers import redis_cli

    out: dict[str, t.Any] = {}
    server = Server(["--save", "", "--appendonly", "yes", "--appendfsync", "always"])
    server.start()
    url = f"redis://127.0.0.1:{server.port}/0"
    try:
        app, token = _guarded_app(url)
        _seen(app, token)
        server.pause()
        to_503, _ = _first(app, token, 503)
        time.sleep(2)
        server.resume()
        back, _ = _first(app, token, 200)
        out["SIGSTOP, then SIGCONT after the 503s"] = {"to_first_503_s": round(to_503, 2), "back_s": round(back, 2)}
        _seen(app, token)
        server.kill()
        to_503, _ = _first(app, token, 503)
        server.start()
        back, _ = _first(app, token, 200)
        out["SIGKILL, restart from the AOF"] = {"to_first_503_s": round(to_503, 2), "back_s": round(back, 2)}
        wait_trusted(app)
        view = app.extensions["authgate"].revocations.store.view
        redis_cli(server.port, "client", "kill", "type", "pubsub")
        start = time.monotonic()
        while view.trusted():
            time.sleep(0.001)
        lost = time.monotonic() - start
        wait_trusted(app)
        out["CLIENT KILL of the channel"] = {
            "view_distrusted_s": round(lost, 3),
            "view_back_s": round(time.monotonic() - start, 3),
        }
        app.extensions["authgate"].revocations.store.close()
    finally:
        server.cleanup()
    setup = Sentinels()
    try:
        app, token = _guarded_app(setup.url())
        _seen(app, token)
        setup.primary.kill()
        to_503, _ = _first(app, token, 503)
        back, _ = _first(app, token, 200)
        out["Sentinel failover (primary SIGKILLed, down-after 300 ms)"] = {
            "to_first_503_s": round(to_503, 2),
            "back_after_kill_s": round(to_503 + back, 2),
        }
        app.extensions["authgate"].revocations.store.close()
    finally:
        setup.cleanup()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["throughput", "propagation", "recovery"], help="run one part alone")
    args = parser.parse_args(argv)
    if args.only is not None:
        server = fixtures.RedisServer()
        try:
            if args.only == "throughput":
                res = gunicorn_throughput(server.url, 1 if args.quick else 3, 2.0 if args.quick else 5.0)
            elif args.only == "propagation":
                res = propagation(server.url, 50 if args.quick else 200)
            else:
                res = recovery()
        finally:
            server.stop()
        print(json.dumps(res, indent=2))
        return 0
    rounds = 10 if args.quick else 40
    server = fixtures.RedisServer()
    out: dict[str, t.Any] = {}
    try:
        print("overhead and commands...", file=sys.stderr)
        out["overhead"] = overhead(server.url, server.port, rounds, 200)
        print("propagation...", file=sys.stderr)
        out["propagation"] = propagation(server.url, 50 if args.quick else 200)
        print("gunicorn + wrk...", file=sys.stderr)
        out["throughput"] = gunicorn_throughput(server.url, 1 if args.quick else 3, 2.0 if args.quick else 5.0)
    finally:
        server.stop()
    print("cluster misses...", file=sys.stderr)
    out["cluster"] = cluster_misses(5 if args.quick else 20)
    print("outages and recovery...", file=sys.stderr)
    out["recovery"] = recovery()

    o, p, g, c = out["overhead"], out["propagation"], out["throughput"], out["cluster"]
    targets = {
        "overhead ratio <= 1.5": o["ratio"] <= 1.5,
        "commands per 1000 <= 5": o["commands_per_1000"] <= 5,
        "propagation p99 <= 50 ms": p["p99_ms"] <= 50,
        "throughput ratio >= 0.85": g["ratio"] >= 0.85,
    }
    out["targets_met"] = targets
    print("| measure | memory store | Redis store | target |")
    print("|---|---:|---:|---|")
    print(f"| guarded request, repeated token: overhead over plain Flask | {o['overhead_us']['memory']:.2f} µs "
          f"| {o['overhead_us']['redis']:.2f} µs | Redis / memory = **{o['ratio']:.2f}** (≤ 1.5) |")  # fmt: skip
    print(f"| Redis commands per 1,000 repeated-token requests | — | **{o['commands_per_1000']}** | ≤ 5 |")
    print(f"| propagation, revoke() here → first 401 in another process | — | p50 {p['p50_ms']} ms, "
          f"**p99 {p['p99_ms']} ms** (max {p['max_ms']}, n={p['samples']}) | p99 ≤ 50 ms |")  # fmt: skip
    print(f"| gunicorn -w 2 + wrk: /protected vs /open ({g['best_rps']['open']:.0f} req/s) "
          f"| {g['best_rps']['protected (memory)']:.0f} req/s = {g['memory_ratio']:.3f} "
          f"| {g['best_rps']['protected (Redis)']:.0f} req/s = **{g['ratio']:.3f}** | Redis ≥ 0.85 |")  # fmt: skip
    for name, us in c["per_miss_us"].items():
        print(f"| cluster view miss: {name} | — | {us} µs | — |")
    print("\n| outage (default settings) | until the first 503 | until the first 200 again |")
    print("|---|---:|---:|")
    for name, r in out["recovery"].items():
        if "view_distrusted_s" in r:
            print(
                f"| {name} | view distrusted after {r['view_distrusted_s']} s | trusted again after {r['view_back_s']} s |"
            )
        else:
            back = r.get("back_s", r.get("back_after_kill_s"))
            print(f"| {name} | {r['to_first_503_s']} s | {back} s |")
    print("\ntargets: " + ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in targets.items()))
    path = write_results(out, "redis-scale")
    print(f"results: {path}", file=sys.stderr)
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
