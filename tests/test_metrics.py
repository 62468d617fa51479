"""AUTHGATE_METRICS: the OpenTelemetry counter and histogram, read back through the real SDK.

Every test sets the real OpenTelemetry SDK up as the global ``MeterProvider``
(with an ``InMemoryMetricReader``), as an application would, and reads what
was recorded. OpenTelemetry lets the global provider be set once per process;
``reset_metrics_globals`` (opentelemetry-test-utils, the OpenTelemetry
project's own test helper) makes it settable again between tests.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import dataclasses
import os
import subprocess
import sys
import textwrap
import time
import typing as t

import pytest
from conftest import make_app
from flask import Flask
from flask.typing import ResponseReturnValue
from flask.views import MethodView
from kit import add_admin_and_doc_views
from kit import add_view
from kit import in_threads
from kit import login

from flask_authgate import AuthGate
from flask_authgate import ConfigError
from flask_authgate import Identity
from flask_authgate import login_required
from flask_authgate import public
from flask_authgate import roles_required
from flask_authgate.metrics import DECISIONS
from flask_authgate.metrics import DURATION
from flask_authgate.metrics import DURATION_BUCKETS
from flask_authgate.metrics import DecisionMetrics
from flask_authgate.metrics import _Counts
from flask_authgate.metrics import make_decision_hooks
from flask_authgate.pipeline import Decision

otel_metrics = pytest.importorskip("opentelemetry.metrics")
sdk_metrics = pytest.importorskip("opentelemetry.sdk.metrics")
sdk_export = pytest.importorskip("opentelemetry.sdk.metrics.export")
globals_test = pytest.importorskip("opentelemetry.test.globals_test")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
Attrs = tuple[tuple[str, t.Any], ...]


@dataclasses.dataclass
class Recorded:
    """What one collection saw: count per attribute set, and the duration histogram's points."""

    counts: dict[Attrs, int]
    durations: dict[Attrs, t.Any]
    scopes: list[t.Any]


class Meters:
    """The global SDK MeterProvider of one test and its in-memory reader (delta temporality)."""

    def __init__(self) -> None:
        delta = sdk_export.AggregationTemporality.DELTA
        self.reader = sdk_export.InMemoryMetricReader(
            preferred_temporality={sdk_metrics.ObservableCounter: delta, sdk_metrics.Histogram: delta}
        )
        self.provider = sdk_metrics.MeterProvider(metric_readers=[self.reader])

    def collect(self) -> Recorded:
        """What was recorded since the last collection (zero-valued points left out)."""
        counts: dict[Attrs, int] = {}
        durations: dict[Attrs, t.Any] = {}
        scopes = []
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                scopes.append(scope.scope)
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        key = tuple(sorted(point.attributes.items()))
                        if metric.name == DECISIONS:
                            assert metric.unit == "{decision}"
                            assert metric.data.is_monotonic
                            if point.value:
                                counts[key] = point.value
                        elif metric.name == DURATION:
                            assert metric.unit == "s"
                            if point.count:
                                durations[key] = point
        return Recorded(counts, durations, scopes)


def install(meters: Meters) -> None:
    """Make ``meters`` the global provider, and start its counts from zero.

    The decision counts of the apps on the global provider are the process's
    (cumulative, like any Prometheus counter); the first collection of a new
    reader reports what earlier tests counted, and is discarded.
    """
    otel_metrics.set_meter_provider(meters.provider)
    DecisionMetrics()  # registers the instruments on this provider
    meters.collect()


@pytest.fixture
def meters() -> cabc.Iterator[Meters]:
    globals_test.reset_metrics_globals()
    m = Meters()
    install(m)
    try:
        yield m
    finally:
        m.provider.shutdown()
        globals_test.reset_metrics_globals()


def attrs(outcome: str, code: str, status: int, scheme: str) -> Attrs:
    return tuple(
        sorted(
            {
                "authgate.outcome": outcome,
                "authgate.code": code,
                "http.response.status_code": status,
                "authgate.scheme": scheme,
            }.items()
        )
    )


def by_outcome_and_scheme(durations: dict[Attrs, t.Any]) -> dict[Attrs, int]:
    return {key: point.count for key, point in durations.items()}


def metered_app(config: dict[str, t.Any] | None = None) -> tuple[Flask, AuthGate]:
    return make_app({"AUTHGATE_METRICS": True, **(config or {})})


# -- counts and attributes --------------------------------------------------------------


@pytest.mark.parametrize("token_format", ["jwt", "signed"])
def test_allowed_and_each_refusal_is_counted_once_with_its_attributes(meters: Meters, token_format: str) -> None:
    app, gate = metered_app({"AUTHGATE_TOKEN_FORMAT": token_format})
    broken = {"down": False}

    @gate.roles_loader
    def roles(identity: Identity) -> list[str]:
        if broken["down"]:
            raise RuntimeError("the roles database is down")
        return list(identity.roles)

    add_admin_and_doc_views(app)  # /admin, and /doc/<owner>, where someone else's document does not exist
    client = app.test_client()
    admin_token = login(app, gate, roles=["admin"])
    assert client.get("/admin", headers=admin_token).status_code == 200
    assert client.get("/admin", headers=admin_token).status_code == 200
    assert client.get("/admin").status_code == 401
    assert client.get("/admin", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    assert client.get("/admin", headers=login(app, gate)).status_code == 403
    assert client.get("/doc/alice", headers=login(app, gate)).status_code == 200
    assert client.get("/doc/bob", headers=login(app, gate)).status_code == 404
    broken["down"] = True
    assert client.get("/admin", headers=login(app, gate, "carol")).status_code == 503

    got = meters.collect()
    assert got.counts == {
        attrs("allowed", "ok", 200, token_format): 3,
        attrs("denied", "token_missing", 401, "none"): 1,
        attrs("denied", "token_invalid", 401, "none"): 1,
        attrs("denied", "insufficient_role", 403, token_format): 1,
        # A refusal after an allowed guard wins: one decision, the 404.
        attrs("denied", "not_found", 404, token_format): 1,
        attrs("denied", "auth_unavailable", 503, "none"): 1,
    }
    # One duration per decision, in seconds, by outcome and scheme only.
    assert by_outcome_and_scheme(got.durations) == {
        (("authgate.outcome", "allowed"), ("authgate.scheme", token_format)): 3,
        (("authgate.outcome", "denied"), ("authgate.scheme", "none")): 3,
        (("authgate.outcome", "denied"), ("authgate.scheme", token_format)): 2,
    }
    assert sum(p.count for p in got.durations.values()) == sum(got.counts.values())
    for point in got.durations.values():
        assert point.min >= 0
        assert list(point.explicit_bounds) == list(DURATION_BUCKETS)
    (scope,) = got.scopes
    assert scope.name == "flask_authgate"
    assert scope.version  # the package's version


def test_api_keys_app_wide_rules_and_stacked_guards(meters: Meters) -> None:
    app, gate = metered_app({"AUTHGATE_DEFAULT_DENY": True, "AUTHGATE_IP_ALLOWLIST": ["10.0.0.0/8"]})

    @gate.api_key_loader
    def load_key(key: str) -> Identity | None:
        return Identity(subject="ci-bot", roles=frozenset({"admin"})) if key == "k-123" else None

    @app.get("/admin")
    @roles_required("admin")
    @login_required
    def admin() -> ResponseReturnValue:
        return {"ok": True}

    @app.get("/open")
    @public
    def open_view() -> ResponseReturnValue:
        return {"ok": True}

    @app.get("/plain")
    def plain() -> ResponseReturnValue:  # guarded by deny-by-default
        return {"ok": True}

    client = app.test_client()
    inside = {"REMOTE_ADDR": "10.1.2.3"}
    assert client.get("/admin", headers={"X-API-Key": "k-123"}, environ_base=inside).status_code == 200
    assert client.get("/admin", headers={"X-API-Key": "wrong"}, environ_base=inside).status_code == 401
    assert client.get("/plain", environ_base=inside).status_code == 401
    assert client.get("/open", environ_base=inside).status_code == 200  # public: nothing decided
    assert (
        client.get("/admin", headers={"X-API-Key": "k-123"}, environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code
        == 403
    )
    assert client.get("/no-such-url", environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code == 403

    assert meters.collect().counts == {
        # Two guards and the app-wide rules on one request: one decision.
        attrs("allowed", "ok", 200, "api_key"): 1,
        attrs("denied", "api_key_invalid", 401, "none"): 1,
        attrs("denied", "token_missing", 401, "none"): 1,
        attrs("denied", "ip_denied", 403, "none"): 2,
    }


def test_sync_async_and_methodview_views(meters: Meters) -> None:
    pytest.importorskip("asgiref")
    app, gate = metered_app()

    @gate.roles_loader
    async def roles(identity: Identity) -> list[str]:
        return ["admin"] if identity.subject == "alice" else []

    @app.get("/sync")
    @roles_required("admin")
    def sync_view() -> ResponseReturnValue:
        return {"ok": True}

    add_view(app, "/async", roles_required("admin"), kind="async", returns={"ok": True}, endpoint="async_view")

    class AdminItems(MethodView):
        decorators: t.ClassVar[list[t.Any]] = [login_required]

        def get(self) -> ResponseReturnValue:
            return {"ok": True}

        @roles_required("admin")
        def post(self) -> ResponseReturnValue:
            return {"created": True}, 201

    app.add_url_rule("/items", view_func=AdminItems.as_view("items"))
    client = app.test_client()
    alice, bob = login(app, gate, "alice"), login(app, gate, "bob")
    for path in ("/sync", "/async"):
        assert client.get(path, headers=alice).status_code == 200
        assert client.get(path, headers=bob).status_code == 403
        assert client.get(path).status_code == 401
    assert client.get("/items", headers=bob).status_code == 200
    assert client.post("/items", headers=alice).status_code == 201
    assert client.post("/items", headers=bob).status_code == 403
    assert client.get("/items").status_code == 401

    assert meters.collect().counts == {
        attrs("allowed", "ok", 200, "jwt"): 3,
        attrs("allowed", "ok", 201, "jwt"): 1,  # the status is the response's
        attrs("denied", "insufficient_role", 403, "jwt"): 3,
        attrs("denied", "token_missing", 401, "none"): 3,
    }


def test_an_app_error_handler_changes_the_status_counted(meters: Meters) -> None:
    app, gate = metered_app()

    @app.errorhandler(403)
    def forbidden(err: Exception) -> ResponseReturnValue:
        return {"custom": True}, 418

    @app.get("/admin")
    @roles_required("admin")
    def admin() -> ResponseReturnValue:
        return {"ok": True}

    assert app.test_client().get("/admin", headers=login(app, gate)).status_code == 418
    assert meters.collect().counts == {attrs("denied", "insufficient_role", 418, "jwt"): 1}


def test_two_apps_count_into_the_same_instruments(meters: Meters) -> None:
    first, first_gate = metered_app()
    second, second_gate = metered_app()
    for app in (first, second):
        app.add_url_rule("/me", "me", login_required(lambda: {"ok": True}))
    assert first.test_client().get("/me", headers=login(first, first_gate)).status_code == 200
    assert second.test_client().get("/me", headers=login(second, second_gate)).status_code == 200
    assert meters.collect().counts == {attrs("allowed", "ok", 200, "jwt"): 2}


# -- bounded cardinality -------------------------------------------------------------------


def decision(**overrides: t.Any) -> Decision:
    fields: dict[str, t.Any] = {
        "outcome": "denied",
        "code": "token_invalid",
        "status": 401,
        "scheme": "jwt",
        "duration": 0.001,
        "reason": "signature",
        "endpoint": "admin",
        "method": "GET",
        "subject": "alice",
    }
    fields.update(overrides)
    return Decision(**fields)


def test_attributes_never_carry_the_subject_endpoint_method_or_reason(meters: Meters) -> None:
    hook = DecisionMetrics()
    for i in range(50):
        hook(decision(subject=f"user-{i}", endpoint=f"view-{i}", method=f"M{i}", reason=f"r{i}"))
    got = meters.collect()
    assert got.counts == {attrs("denied", "token_invalid", 401, "jwt"): 50}


def test_unknown_values_are_folded_into_a_fixed_set(meters: Meters) -> None:
    hook = DecisionMetrics()
    for i in range(20):
        hook(decision(code=f"made_up_{i}", scheme=f"custom-{i}", status=1000 + i, outcome=f"o{i}"))
    hook(decision(status=99))
    assert hook.attributes(decision(code="made_up", scheme="x", subject="alice")) == dict(
        attrs("denied", "other", 401, "other")
    )
    assert meters.collect().counts == {
        attrs("other", "other", 0, "other"): 20,
        attrs("denied", "token_invalid", 0, "jwt"): 1,
    }
    assert len(hook._entries) <= 21


def test_the_prebuilt_attribute_sets_are_bounded(meters: Meters) -> None:
    hook = DecisionMetrics()
    for status in range(100, 600):
        for code in ("ok", "token_invalid", "forbidden"):
            hook(decision(status=status, code=code))
    assert len(hook._entries) == 1024  # the cap; more combinations are folded per call
    hook(decision(status=599, code="not_owner"))
    assert meters.collect().counts[attrs("denied", "not_owner", 599, "jwt")] == 1


# -- off by default, and the extra -------------------------------------------------------


def test_off_by_default_nothing_is_recorded(meters: Meters) -> None:
    app, gate = make_app()
    assert app.extensions["authgate"].decision_hooks == []
    app.add_url_rule("/me", "me", login_required(lambda: {"ok": True}))
    client = app.test_client()
    assert client.get("/me", headers=login(app, gate)).status_code == 200
    assert client.get("/me").status_code == 401
    got = meters.collect()
    assert got.counts == {}
    assert got.durations == {}


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_off_by_default_opentelemetry_is_never_imported() -> None:
    done = run_python(
        """
        import sys
        from flask import Flask
        from flask_authgate import AuthGate, login_required
        app = Flask("x")
        app.config["SECRET_KEY"] = "s" * 64
        gate = AuthGate(app)
        app.add_url_rule("/me", "me", login_required(lambda: {"ok": True}))
        with app.app_context():
            token = gate.create_access_token("alice")
        client = app.test_client()
        assert client.get("/me", headers={"Authorization": "Bearer " + token}).status_code == 200
        assert client.get("/me").status_code == 401
        assert app.extensions["authgate"].decision_hooks == []
        loaded = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
        print("loaded:", loaded)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "loaded: []"


def test_metrics_without_opentelemetry_is_a_config_error_naming_the_key_and_the_extra() -> None:
    # sys.modules["opentelemetry"] = None: the package is absent for this interpreter
    # (the import machinery raises ImportError), nothing is imitated.
    done = run_python(
        """
        import sys
        sys.modules["opentelemetry"] = None
        from flask import Flask
        from flask_authgate import AuthGate, ConfigError
        app = Flask("x")
        app.config.update(SECRET_KEY="s" * 64, AUTHGATE_METRICS=True)
        try:
            AuthGate(app)
        except ConfigError as err:
            print("ConfigError:", err)
        assert "authgate" not in app.extensions, "a refused init_app must not leave the extension half set up"
        app.config["AUTHGATE_METRICS"] = False
        AuthGate(app)  # and without metrics the same app starts
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ConfigError: AUTHGATE_METRICS is True but opentelemetry-api is not installed")
    assert "pip install 'flask-authgate[otel]'" in done.stdout


@pytest.mark.parametrize("key", ["AUTHGATE_METRICS", "AUTHGATE_AUDIT_LOG"])
@pytest.mark.parametrize("value", ["yes", 1, None])
def test_the_keys_take_booleans_only(key: str, value: t.Any) -> None:
    with pytest.raises(ConfigError, match=key):
        make_app({key: value})


def test_make_decision_hooks() -> None:
    assert make_decision_hooks() == []
    provider = sdk_metrics.MeterProvider()
    try:
        (hook,) = make_decision_hooks(metrics=True, meter_provider=provider)
        assert isinstance(hook, DecisionMetrics)
    finally:
        provider.shutdown()
    (audit,) = make_decision_hooks(audit_log=True)
    assert type(audit).__name__ == "AuditLog"


def test_an_explicit_provider_has_its_own_instruments_and_counts(meters: Meters) -> None:
    with own_provider() as (provider, reader):
        hook = DecisionMetrics(provider)
        hook(decision())
        hook(decision(outcome="allowed", code="ok", status=200))
        assert meters.collect().counts == {}  # nothing on the global provider
        data = reader.get_metrics_data()
        assert data is not None
        points = {
            m.name: sorted(
                (tuple(sorted(p.attributes.items())), getattr(p, "value", None) or p.count) for p in m.data.data_points
            )
            for r in data.resource_metrics
            for sc in r.scope_metrics
            for m in sc.metrics
        }
        assert points[DECISIONS] == sorted(
            [(attrs("denied", "token_invalid", 401, "jwt"), 1), (attrs("allowed", "ok", 200, "jwt"), 1)]
        )
        assert sorted(v for _, v in points[DURATION]) == [1, 1]


def test_apps_set_up_before_the_sdk_are_counted_once_it_is() -> None:
    """The app factory often runs before telemetry is configured (gunicorn --preload, tests)."""
    globals_test.reset_metrics_globals()
    try:
        early, early_gate = metered_app()  # the API's proxy meter: nothing is recorded yet
        early.add_url_rule("/me", "me", login_required(lambda: {"ok": True}))
        # Before the SDK: counted (reported with the first collection, which install() discards),
        # and the proxy histogram records nothing.
        assert early.test_client().get("/me").status_code == 401
        m = Meters()
        install(m)
        late, late_gate = metered_app()
        late.add_url_rule("/me", "me", login_required(lambda: {"ok": True}))
        for app, gate in ((early, early_gate), (late, late_gate)):
            client = app.test_client()
            assert client.get("/me", headers=login(app, gate)).status_code == 200
            assert client.get("/me").status_code == 401
        got = m.collect()
        assert got.counts == {attrs("allowed", "ok", 200, "jwt"): 2, attrs("denied", "token_missing", 401, "none"): 2}
        assert sum(p.count for p in got.durations.values()) == 4
        m.provider.shutdown()
    finally:
        globals_test.reset_metrics_globals()


@contextlib.contextmanager
def own_provider() -> cabc.Iterator[tuple[t.Any, t.Any]]:
    """A ``MeterProvider`` of the test's own (not the global one) and its ``InMemoryMetricReader``; shut down after."""
    reader = sdk_export.InMemoryMetricReader()
    provider = sdk_metrics.MeterProvider(metric_readers=[reader])
    try:
        yield provider, reader
    finally:
        provider.shutdown()


def histogram_points(reader: t.Any) -> dict[Attrs, t.Any]:
    data = reader.get_metrics_data()
    return {
        tuple(sorted(p.attributes.items())): p
        for r in data.resource_metrics
        for sc in r.scope_metrics
        for m in sc.metrics
        if m.data.__class__.__name__ == "Histogram"
        for p in m.data.data_points
    }


def test_the_grouped_durations_give_the_histogram_recording_each_one_would() -> None:
    """Durations are grouped between collections; the histogram must come out exact anyway."""
    with own_provider() as (grouped, grouped_reader), own_provider() as (direct, direct_reader):
        hook = DecisionMetrics(grouped)
        reference = direct.get_meter("reference").create_histogram(
            "reference", unit="s", explicit_bucket_boundaries_advisory=DURATION_BUCKETS
        )
        durations = [0.0, 3e-6, 1e-5, 1.0000001e-5, 2.4e-5, 2.5e-5, 7e-5, 0.0009, 0.001, 0.004, 0.3, 6.0, 42.0]
        durations += [1.2e-5 + i * 1e-7 for i in range(50)] + [0.012 + i * 1e-5 for i in range(7)]
        for i, duration in enumerate(durations):
            outcome = "allowed" if i % 3 else "denied"
            hook(decision(duration=duration, outcome=outcome, code="ok" if i % 3 else "token_invalid"))
            reference.record(duration, {"authgate.outcome": outcome, "authgate.scheme": "jwt"})
        got, want = histogram_points(grouped_reader), histogram_points(direct_reader)
        assert set(got) == set(want) and len(got) == 2
        for key, point in got.items():
            expected = want[key]
            assert list(point.bucket_counts) == list(expected.bucket_counts)
            assert list(point.explicit_bounds) == list(expected.explicit_bounds) == list(DURATION_BUCKETS)
            assert point.count == expected.count
            assert (point.min, point.max) == (expected.min, expected.max)
            assert point.sum == pytest.approx(expected.sum, rel=1e-9)
        # Nothing is kept between collections.
        assert hook._counts._pending == {}


def test_hostile_durations_are_recorded_as_zero() -> None:
    with own_provider() as (provider, reader):
        hook = DecisionMetrics(provider)
        for duration in (float("nan"), float("inf"), -1.0):
            hook(decision(duration=duration))
        (point,) = histogram_points(reader).values()
        assert (point.count, point.sum, point.min, point.max) == (3, 0, 0, 0)


def test_counts_from_many_threads_add_up() -> None:
    with own_provider() as (provider, reader):
        hook = DecisionMetrics(provider)

        def work(_: int) -> bool:
            for i in range(2000):
                hook(decision(duration=i * 1e-6))
            return True

        assert in_threads(8, work) == [True] * 8  # every thread finished, none raised
        data = reader.get_metrics_data()
        values = {
            m.name: [getattr(p, "value", None) or p.count for p in m.data.data_points]
            for r in data.resource_metrics
            for sc in r.scope_metrics
            for m in sc.metrics
        }
        assert values == {DECISIONS: [16000], DURATION: [16000]}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_worker_starts_from_zero() -> None:
    done = run_python(
        """
        import os
        from opentelemetry.sdk.metrics import MeterProvider
        from flask_authgate.metrics import DecisionMetrics
        from flask_authgate.pipeline import Decision

        hook = DecisionMetrics(MeterProvider())
        hook(Decision("allowed", "ok", 200, "jwt", 0.001, None, "me", "GET", "alice"))
        pid = os.fork()
        if pid == 0:  # a worker forked after the parent counted: the parent's decision is not its own
            os._exit(len(list(hook._counts.observe())))
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), len(list(hook._counts.observe())))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "1"]


def test_the_counted_series_are_bounded() -> None:
    counts = _Counts()
    for i in range(2500):
        counts.add(("denied", f"code-{i}", 401, "jwt"))
    observed = {tuple(sorted(o.attributes.items())): o.value for o in counts.observe()}
    assert len(observed) == 2001
    assert observed[attrs("other", "other", 0, "other")] == 500


# -- the duration ----------------------------------------------------------------------------


def test_the_duration_ends_at_the_decision_not_after_the_view(meters: Meters) -> None:
    app, gate = metered_app()
    seen: dict[str, float] = {}

    @app.before_request
    def before() -> None:  # runs before the guard starts its clock
        seen["before"] = time.perf_counter()

    @app.get("/me")
    @login_required
    def me() -> ResponseReturnValue:
        seen["view"] = time.perf_counter()  # after the decision
        time.sleep(0.05)  # the view's own work must not count
        return {"ok": True}

    assert app.test_client().get("/me", headers=login(app, gate)).status_code == 200
    (point,) = meters.collect().durations.values()
    # An ordering bound, not a speed assertion: the decision happened between the two.
    assert point.max <= seen["view"] - seen["before"]
