"""The results: per-case rows, the targets of ``cases.TARGETS`` checked, a markdown report, the machine."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import typing as t

from cases import TARGETS
from cases import Target
from contenders import LABELS
from timing import Case

Results = dict[str, t.Any]


def us(seconds: float) -> float:
    return seconds * 1e6


def case_rows(case: Case) -> list[dict[str, t.Any]]:
    by = {e.contender: e for e in case.entries}
    plain = by["plain"].best
    floor_entry = by.get(case.floor) if case.floor is not None else None
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


def _row(results: Results, case: str, contender: str) -> dict[str, t.Any] | None:
    for row in results["cases"].get(case, {}).get("rows", []):
        if row["contender"] == contender:
            return t.cast(dict[str, t.Any], row)
    return None


def _value(results: Results, target: Target) -> tuple[float | None, float | None]:
    """The measured value of ``target`` and its limit (``None``: not measured in this run)."""
    if target.how == "round-trips":
        trips = results.get("redis_round_trips", {}).get(target.case)
        return (None if trips is None else float(trips)), target.limit
    mine = _row(results, target.case, target.contender)
    if mine is None:
        return None, target.limit
    if target.how == "ratio":
        return mine["ratio_to_floor"], target.limit
    if target.how == "overhead":
        return mine["overhead_us"], target.limit
    other = _row(results, target.case, target.other or "")
    if other is None:
        return None, target.limit
    if target.how == "below":
        return mine["overhead_us"], other["overhead_us"]
    if target.how == "difference":
        return round(mine["overhead_us"] - other["overhead_us"], 2), target.limit
    if target.how == "over":
        return (
            round(mine["overhead_us"] / other["overhead_us"], 3) if other["overhead_us"] > 0 else None
        ), target.limit
    raise ValueError(target.how)


def targets(results: Results) -> list[dict[str, t.Any]]:
    out = []
    for target in TARGETS:
        value, limit = _value(results, target)
        if value is None:
            continue
        met = None if limit is None else value <= limit
        out.append({"target": target.label, "issue": target.issue, "value": value, "limit": limit, "met": met})
    return out


def markdown(results: Results) -> str:
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
    if results.get("internals"):
        lines.append("### Internals: single operations, public classes only (µs per call, in a loop)\n")
        lines.append("| operation | µs |")
        lines.append("|---|---:|")
        for name, value in results["internals"].items():
            lines.append(f"| {name} | {value:.2f} |")
        lines.append("")
    if results.get("redis_round_trips"):
        lines.append("### Redis round trips per request (`INFO stats` total_commands_processed)\n")
        for kind, trips in results["redis_round_trips"].items():
            label = "first-seen token" if kind == "admin-pool" else "repeated token"
            lines.append(f"- {label}: {trips:.2f}")
        lines.append("")
    for issue in sorted({tg["issue"] for tg in results["targets"]}):
        lines.append(f"### Targets and reported ratios (issue {issue})\n")
        lines.append("| figure | measured | limit | met |")
        lines.append("|---|---:|---:|---|")
        for tg in results["targets"]:
            if tg["issue"] != issue:
                continue
            limit = "—" if tg["limit"] is None else f"{tg['limit']:.2f}"
            met = "reported" if tg["met"] is None else ("yes" if tg["met"] else "**no**")
            lines.append(f"| {tg['target']} | {tg['value']:.2f} | {limit} | {met} |")
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
        "load_average": os.getloadavg(),
        "versions": versions,
    }
