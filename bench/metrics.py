"""What AUTHGATE_METRICS and AUTHGATE_AUDIT_LOG cost per request, against the bench targets.

The method and the apps are bench/run.py's (same routes, token, WSGI calls,
round-robin batches, minimum over rounds); the contenders are:

* ``plain``: plain Flask, the baseline every overhead is measured from;
* ``floor``: the hand-written PyJWT decorator (the targets are ratios to it);
* ``httpauth``: Flask-HTTPAuth (the 401 target is "no slower than its 401");
* ``authgate``: flask-authgate as configured by default (metrics off);
* ``authgate-hook``: one decision hook that does nothing (the pipeline's own
  bookkeeping for decision hooks: the clock, ``after_this_request``, the
  ``Decision``);
* ``authgate-metrics``: ``AUTHGATE_METRICS = True`` with the real
  OpenTelemetry SDK as the global ``MeterProvider`` and a Prometheus reader
  (``opentelemetry-exporter-prometheus``: pull-based, so a request pays for
  recording only, as in production);
* ``authgate-audit``: ``AUTHGATE_AUDIT_LOG = True`` with a handler at INFO
  writing every line to ``os.devnull``;
* ``authgate-both``: both.

Usage::

    python bench/metrics.py            # 40 rounds x 200 calls per case
    python bench/metrics.py --quick    # a smoke run
    PYTHONPATH=. python bench/metrics.py   # measure this checkout, not an installed copy

Results: a markdown table on stdout and ``bench/results/metrics-<time>.json``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import time
import typing as t

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from contenders import build_authgate
from contenders import build_floor
from contenders import build_httpauth
from contenders import build_plain
from keys import ROUTE
from keys import environ_for
from keys import make_keys
from keys import mint
from report import case_rows
from report import machine
from results_file import write_results
from timing import Case
from timing import Entry
from timing import run_case

CONTENDERS = [
    "plain",
    "floor",
    "httpauth",
    "authgate",
    "authgate-hook",
    "authgate-metrics",
    "authgate-audit",
    "authgate-both",
]
#: case -> (title, the token's roles or None for no token, the status authgate answers, target)
CASES: dict[str, tuple[str, list[str] | None, int, str]] = {
    "hs256-200-repeated": ("200, HS256, repeated token", ["admin"], 200, "ratio<=0.35"),
    "hs256-403-repeated": ("403, missing role, repeated token", [], 403, "ratio<=0.35"),
    "401-none": ("401, no credentials", None, 401, "<=httpauth"),
}


def setup_opentelemetry() -> t.Any:
    from opentelemetry import metrics
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider

    provider = MeterProvider(metric_readers=[PrometheusMetricReader()])
    metrics.set_meter_provider(provider)
    return provider


def setup_audit_log() -> t.Any:
    sink = open(os.devnull, "w")
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("flask_authgate.audit")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logging.getLogger("flask_authgate").setLevel(logging.WARNING)  # the refusal lines are not measured here
    return sink


def build(contender: str, keys: t.Any) -> t.Any:
    if contender == "plain":
        return build_plain(keys)
    if contender == "floor":
        return build_floor(keys)
    if contender == "httpauth":
        return build_httpauth(keys)
    config: dict[str, t.Any] = {}
    if contender in ("authgate-metrics", "authgate-both"):
        config["AUTHGATE_METRICS"] = True
    if contender in ("authgate-audit", "authgate-both"):
        config["AUTHGATE_AUDIT_LOG"] = True
    app = build_authgate(keys, **config)
    hooks = app.extensions["authgate"].decision_hooks
    if contender == "authgate-hook":
        from flask_authgate.pipeline import add_decision_hook

        add_decision_hook(app, lambda decision: None)
    if len(hooks) != {"authgate": 0, "authgate-both": 2}.get(contender, 1):
        # An older flask_authgate (an installed copy, not this checkout) would measure nothing.
        raise SystemExit(f"{contender}: the decision hooks are {hooks!r}; run with PYTHONPATH=. from the checkout")
    return app


def expected(contender: str, status: int) -> int:
    if contender == "plain":
        return 200
    if contender == "httpauth" and status == 403:
        return 403
    return status


def markdown(results: dict[str, t.Any]) -> str:
    lines = [
        "| case | contender | µs per call | overhead over plain Flask µs | ratio to the floor |",
        "|---|---|---:|---:|---:|",
    ]
    for case in results["cases"].values():
        for row in case["rows"]:
            ratio = "" if row["ratio_to_floor"] is None else f"{row['ratio_to_floor']:.2f}x"
            lines.append(
                f"| {case['title']} | {row['contender']} | {row['per_call_us']:.1f} | "
                f"{row['overhead_us']:+.1f} | {ratio} |"
            )
    lines += ["", "| case | metrics on minus off, µs | target | met with metrics on |", "|---|---:|---|---|"]
    for name, case in results["cases"].items():
        by = {r["contender"]: r for r in case["rows"]}
        cost = by["authgate-metrics"]["overhead_us"] - by["authgate"]["overhead_us"]
        target = CASES[name][3]
        if target == "<=httpauth":
            met = by["authgate-metrics"]["overhead_us"] <= by["httpauth"]["overhead_us"]
            goal = f"≤ Flask-HTTPAuth's 401 (+{by['httpauth']['overhead_us']:.1f} µs)"
            got = f"+{by['authgate-metrics']['overhead_us']:.1f} µs"
        else:
            met = by["authgate-metrics"]["ratio_to_floor"] <= 0.35
            goal = "<= 0.35x the floor"
            got = f"{by['authgate-metrics']['ratio_to_floor']:.2f}x"
        lines.append(f"| {case['title']} | {cost:+.1f} | {goal} | {'yes' if met else 'NO'} ({got}) |")
    return "\n".join(lines)


def collection_cost(app: t.Any, keys: t.Any, decisions: int = 20_000) -> dict[str, float]:
    """What the SDK's collection costs after ``decisions`` decisions (the grouped durations recorded)."""
    from prometheus_client import REGISTRY
    from prometheus_client import generate_latest
    from run import time_batch

    environs = [environ_for(ROUTE, mint(keys, ["admin"], 1)[0])]
    generate_latest(REGISTRY)  # empty what earlier cases left
    t0 = time.perf_counter()
    generate_latest(REGISTRY)
    empty = time.perf_counter() - t0
    time_batch(app, environs, 0, decisions)
    t0 = time.perf_counter()
    generate_latest(REGISTRY)
    scrape = time.perf_counter() - t0
    return {
        "decisions": decisions,
        "scrape_ms": round(scrape * 1e3, 2),
        "empty_scrape_ms": round(empty * 1e3, 2),
        "per_decision_us": round((scrape - empty) / decisions * 1e6, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few rounds")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per case (default 40, quick 4)")
    parser.add_argument("--batch", type=int, default=None, help="calls per batch (default 200, quick 50)")
    parser.add_argument("--output", help="the JSON file (default bench/results/metrics-<time>.json)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (4 if args.quick else 40)
    batch = args.batch or (50 if args.quick else 200)

    provider = setup_opentelemetry()
    sink = setup_audit_log()
    try:
        keys = make_keys("HS256")
        apps = {c: build(c, keys) for c in CONTENDERS}
        results: dict[str, t.Any] = {
            "machine": machine(),
            "settings": {"rounds": rounds, "batch": batch},
            "package": os.path.dirname(sys.modules["flask_authgate"].__file__ or ""),
            "cases": {},
        }
        gc.collect()
        for name, (title, roles, status, _target) in CASES.items():
            token = mint(keys, roles, 1)[0] if roles is not None else None
            environs = [environ_for(ROUTE, token)]
            case = Case(name, title, [Entry(c, apps[c], environs, expected(c, status)) for c in CONTENDERS])
            print(f"  {name}...", file=sys.stderr)
            run_case(case, rounds, batch)
            results["cases"][name] = {"name": name, "title": title, "rows": case_rows(case)}
        results["collection"] = collection_cost(apps["authgate-metrics"], keys)
        print(markdown(results))
        c = results["collection"]
        print(
            f"\ncollection (a Prometheus scrape) after {c['decisions']} decisions: {c['scrape_ms']:.1f} ms, "
            f"{c['per_decision_us']:.2f} µs per decision (empty scrape {c['empty_scrape_ms']:.2f} ms)"
        )
        path = write_results(results, "metrics", args.output)
        print(f"results: {path}", file=sys.stderr)
    finally:
        provider.shutdown()
        sink.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
