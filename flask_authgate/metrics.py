"""Decision metrics through OpenTelemetry (``AUTHGATE_METRICS``; see docs/metrics.md).

One decision hook (:class:`DecisionMetrics`) feeds two instruments, created
once per app from the global ``MeterProvider`` (or one given explicitly):

* ``authgate.decisions``, a counter of decided requests, with the attributes
  ``authgate.outcome`` (``allowed`` / ``denied``), ``authgate.code`` (the
  error code, or ``ok``), ``http.response.status_code`` and
  ``authgate.scheme`` (``jwt``, ``signed``, ``api_key``, ``introspection``
  or ``none``);
* ``authgate.duration``, a histogram of the seconds spent authenticating and
  authorizing, unit ``s``, with ``authgate.outcome`` and ``authgate.scheme``.

The hot path is one locked update of this process's tallies: the SDK's
synchronous measurements cost several microseconds each, so the counter is
asynchronous and the durations are grouped here and recorded into the
histogram when the SDK collects (see :class:`_Counts`; the histogram's count,
sum, minimum, maximum and bucket counts are the exact ones).

Every attribute has a small, fixed set of values, so a time series per
combination stays bounded whatever clients send: no subject, no endpoint, no
path, no method and never a token. A value outside its set (a status outside
100-599, a code or scheme this version does not know) is counted as
``other`` (``0`` for the status).

``opentelemetry-api`` is imported only when metrics are on: without
``AUTHGATE_METRICS`` this module costs nothing, and nothing is measured.
"""

from __future__ import annotations

import bisect
import collections.abc as cabc
import importlib.metadata
import os
import threading
import typing as t
import weakref

from .errors import ERRORS
from .errors import ConfigError

if t.TYPE_CHECKING:
    from opentelemetry.metrics import Histogram
    from opentelemetry.metrics import MeterProvider

    from .pipeline import Decision

__all__ = [
    "DECISIONS",
    "DURATION",
    "DURATION_BUCKETS",
    "DecisionMetrics",
    "make_decision_hooks",
]

#: The instrumentation scope's name (``get_meter(METER_NAME, version)``).
METER_NAME = "flask_authgate"
#: The counter of decided requests.
DECISIONS = "authgate.decisions"
#: The histogram of seconds spent authenticating and authorizing.
DURATION = "authgate.duration"
#: Bucket boundaries advised for ``authgate.duration``, in seconds: from a cached token
#: (microseconds) to a JWKS fetch, an introspection call or a Redis timeout (seconds).
#: The SDK's default buckets (0, 5, 10, ... 10000) would put every decision in the first one.
DURATION_BUCKETS: tuple[float, ...] = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)

_SCHEMES = frozenset({"jwt", "signed", "api_key", "introspection", "none"})
_OUTCOMES = frozenset({"allowed", "denied"})
#: The most attribute sets kept prebuilt per hook; the fixed value sets above stay well below it.
_MAX_ATTRIBUTE_SETS = 1024
#: The most attribute sets counted (the SDK's default cardinality limit); beyond it, "other".
_MAX_SERIES = 2000

Key = tuple[str, str, int, str]
_OVERFLOW: Key = ("other", "other", 0, "other")

_INSTALL = "pip install 'flask-authgate[otel]'"


def _opentelemetry_metrics() -> t.Any:
    """``opentelemetry.metrics``, or a :class:`ConfigError` naming the key and the extra."""
    try:
        from opentelemetry import metrics
    except ImportError:
        raise ConfigError(
            f"AUTHGATE_METRICS is True but opentelemetry-api is not installed: {_INSTALL}, "
            "or set AUTHGATE_METRICS = False"
        ) from None
    return metrics


def _version() -> str | None:
    try:
        return importlib.metadata.version("flask-authgate")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a bare checkout
        return None


def _fold(key: Key) -> Key:
    """``key`` with every value outside its fixed set replaced by ``other`` (``0`` for the status)."""
    outcome, code, status, scheme = key
    return (
        outcome if outcome in _OUTCOMES else "other",
        code if code == "ok" or code in ERRORS else "other",
        status if type(status) is int and 100 <= status <= 599 else 0,
        scheme if scheme in _SCHEMES else "other",
    )


def _counter_attributes(key: Key) -> dict[str, str | int]:
    outcome, code, status, scheme = key
    return {
        "authgate.outcome": outcome,
        "authgate.code": code,
        "http.response.status_code": status,
        "authgate.scheme": scheme,
    }


def _groups(advised: tuple[float, ...]) -> tuple[float, ...]:
    """The boundaries durations are grouped by until the SDK collects them.

    Every advised boundary, so a group never straddles a bucket of the
    histogram and its bucket counts are exact, and a geometric series of ten
    steps a decade (about 1.26x) from 1 µs to 10 s, so a View with other
    boundaries still sees each duration within 26 % of its value.
    """
    series = {round(10.0 ** (k / 10), 12) for k in range(-60, 11)}
    return tuple(sorted(series | set(advised)))


_GROUPS = _groups(DURATION_BUCKETS)

Group = tuple[str, str, int]


class _Counts:
    """What the decisions of one MeterProvider's apps measured, until the SDK collects it.

    The OpenTelemetry Python SDK's synchronous measurements are pure Python
    and cost several microseconds each (about 8 µs for one histogram record
    inside a request), more than this extension spends deciding a request
    with a cached token. So a decision costs one locked update here:

    * ``authgate.decisions`` is an asynchronous (observable) counter whose
      callback reports these totals (cumulative for the process);
    * ``authgate.duration`` is a histogram; each duration is added to its
      group (outcome, scheme, and a range of :data:`_GROUPS`: count, sum,
      minimum, maximum), and the same callback, which the SDK runs when it
      collects, records the groups into the histogram: the minimum, the
      maximum and ``count - 2`` times the mean of the others, so the count,
      sum, minimum, maximum and bucket counts are the exact ones.

    Memory is bounded: at most :data:`_MAX_SERIES` counted attribute sets and
    3 x 6 x ``len(_GROUPS)`` groups.
    """

    __slots__ = ("_attributes", "_lock", "_pending", "_values", "histogram")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[Key, int] = {}
        self._attributes: dict[Key, dict[str, str | int]] = {}
        #: (outcome, scheme, group) -> [count, sum, minimum, maximum] since the last collection.
        self._pending: dict[Group, list[float]] = {}
        #: The histogram the groups are recorded into (the latest created for these counts).
        self.histogram: Histogram | None = None

    def add(self, key: Key, duration: float = 0.0) -> None:
        if not duration >= 0.0 or duration == float("inf"):
            duration = 0.0
        group = (key[0], key[3], bisect.bisect_left(_GROUPS, duration))
        with self._lock:
            values = self._values
            if key in values:
                values[key] += 1
            elif len(values) < _MAX_SERIES:
                values[key] = 1
            else:
                values[_OVERFLOW] = values.get(_OVERFLOW, 0) + 1
            pending = self._pending.get(group)
            if pending is None:
                self._pending[group] = [1, duration, duration, duration]
            else:
                pending[0] += 1
                pending[1] += duration
                if duration < pending[2]:
                    pending[2] = duration
                if duration > pending[3]:
                    pending[3] = duration

    def record_durations(self) -> None:
        """Record the durations grouped since the last call into the histogram."""
        with self._lock:
            pending, self._pending = self._pending, {}
        histogram = self.histogram
        if histogram is None:  # pragma: no cover - set before any decision is counted
            return
        for (outcome, scheme, _group), (count, total, low, high) in pending.items():
            attributes = {"authgate.outcome": outcome, "authgate.scheme": scheme}
            n = int(count)
            histogram.record(low, attributes)
            if n >= 2:
                histogram.record(high, attributes)
            if n > 2:
                # The mean of the others lies between the minimum and the maximum, so in the
                # same bucket; clamped against rounding.
                rest = min(max((total - low - high) / (n - 2), low), high)
                for _ in range(n - 2):
                    histogram.record(rest, attributes)

    def observe(self, options: t.Any = None) -> cabc.Iterator[t.Any]:
        """The callback: one ``Observation`` per attribute set seen so far.

        The SDK runs it when it collects, before it reads the synchronous
        instruments, so the durations recorded here are in the same collection
        (with an SDK that read them first, they would be in the next one).
        """
        from opentelemetry.metrics import Observation

        self.record_durations()
        with self._lock:
            values = list(self._values.items())
        for key, value in values:
            attributes = self._attributes.get(key)
            if attributes is None:
                attributes = self._attributes[key] = _counter_attributes(key)
            yield Observation(value, attributes)

    def reset(self) -> None:
        """Forget everything (in a forked child: the parent's decisions are the parent's)."""
        self._lock = threading.Lock()
        self._values = {}
        self._pending = {}


#: The counts of the apps that use the global MeterProvider (one set of instruments per process,
#: whether the SDK was set up before or after the apps: the API's proxies delegate to it).
_GLOBAL = _Counts()
#: An explicit MeterProvider -> the counts of the apps that use it.
_BY_PROVIDER: weakref.WeakKeyDictionary[t.Any, _Counts] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _after_fork_in_child() -> None:  # pragma: no cover - runs in forked children
    _GLOBAL.reset()
    for counts in list(_BY_PROVIDER.values()):
        counts.reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class DecisionMetrics:
    """A decision hook that counts decisions and records their duration.

    * ``authgate.decisions`` (unit ``{decision}``): an asynchronous counter
      with the attributes ``authgate.outcome``, ``authgate.code``,
      ``http.response.status_code`` and ``authgate.scheme``.
    * ``authgate.duration`` (unit ``s``): a histogram with the attributes
      ``authgate.outcome`` and ``authgate.scheme``, recorded when the SDK
      collects (the durations are grouped until then).

    :param meter_provider: Where the instruments come from; by default the global
        ``MeterProvider`` (``opentelemetry.metrics.get_meter``), which the
        application sets up with the SDK and its exporters, before or after
        ``init_app``: until then the API's proxy records nothing. The apps of
        one provider share its instruments and counts.
    :raises ConfigError: ``opentelemetry-api`` is not installed.
    """

    __slots__ = ("_counts", "_entries")

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        metrics = _opentelemetry_metrics()
        version = _version()
        with _LOCK:
            if meter_provider is None:
                meter = metrics.get_meter(METER_NAME, version)
                counts = _GLOBAL
            else:
                meter = meter_provider.get_meter(METER_NAME, version)
                counts = _BY_PROVIDER.setdefault(meter_provider, _Counts())
            # The SDK registers one instrument per name and meter: a second app gets the first
            # app's counter (its own callback is dropped), and both count into ``counts``.
            meter.create_observable_counter(
                DECISIONS,
                callbacks=[counts.observe],
                unit="{decision}",
                description="Requests decided by flask-authgate, by outcome and code",
            )
            description = "Seconds flask-authgate spent authenticating and authorizing a request"
            try:
                histogram = meter.create_histogram(
                    DURATION, unit="s", description=description, explicit_bucket_boundaries_advisory=DURATION_BUCKETS
                )
            except TypeError:  # pragma: no cover - opentelemetry-api < 1.30 has no advisory buckets
                histogram = meter.create_histogram(DURATION, unit="s", description=description)
            # The latest: after the global provider changed (the SDK set up after the first app,
            # or set again in tests), the new one's histogram is the one collected.
            counts.histogram = histogram
        self._counts = counts
        #: (outcome, code, status, scheme) -> its folded key.
        self._entries: dict[Key, Key] = {}

    def _entry(self, key: Key) -> Key:
        folded = _fold(key)
        if len(self._entries) < _MAX_ATTRIBUTE_SETS:
            self._entries[key] = folded
        return folded

    def attributes(self, decision: Decision) -> dict[str, str | int]:
        """The counter's attributes for ``decision`` (bounded: see the module's docstring)."""
        return _counter_attributes(_fold((decision.outcome, decision.code, decision.status, decision.scheme)))

    def __call__(self, decision: Decision) -> None:
        key = (decision.outcome, decision.code, decision.status, decision.scheme)
        folded = self._entries.get(key)
        if folded is None:
            folded = self._entry(key)
        self._counts.add(folded, decision.duration)


def make_decision_hooks(
    *,
    metrics: bool = False,
    audit_log: bool = False,
    meter_provider: MeterProvider | None = None,
) -> list[cabc.Callable[[Decision], None]]:
    """The decision hooks an app's configuration asks for, in order: metrics, then the audit log.

    :param metrics: ``AUTHGATE_METRICS``: a :class:`DecisionMetrics` (its
        instruments created now, once for the app).
    :param audit_log: ``AUTHGATE_AUDIT_LOG``: an
        :class:`~flask_authgate.audit.AuditLog` on the ``flask_authgate.audit`` logger.
    :param meter_provider: Passed to :class:`DecisionMetrics`.
    :raises ConfigError: ``metrics`` without ``opentelemetry-api`` installed.
    """
    hooks: list[cabc.Callable[[Decision], None]] = []
    if metrics:
        hooks.append(DecisionMetrics(meter_provider))
    if audit_log:
        from .audit import AuditLog

        hooks.append(AuditLog())
    return hooks
