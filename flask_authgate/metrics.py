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

The hot path is one locked increment and one histogram measurement: the
counter is asynchronous (counted here, read by the SDK when it collects),
because each synchronous SDK measurement costs several microseconds.

Every attribute has a small, fixed set of values, so a time series per
combination stays bounded whatever clients send: no subject, no endpoint, no
path, no method and never a token. A value outside its set (a status outside
100-599, a code or scheme this version does not know) is counted as
``other`` (``0`` for the status).

``opentelemetry-api`` is imported only when metrics are on: without
``AUTHGATE_METRICS`` this module costs nothing, and nothing is measured.
"""

from __future__ import annotations

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


class _Counts:
    """Decisions counted by attribute set, reported by the ``authgate.decisions`` callback.

    ``authgate.decisions`` is an asynchronous (observable) counter: a decision
    costs one increment under a lock here, instead of a synchronous SDK
    measurement (several microseconds each); the SDK reads the totals when it
    collects. The values are cumulative for this process.
    """

    __slots__ = ("_attributes", "_lock", "_values")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[Key, int] = {}
        self._attributes: dict[Key, dict[str, str | int]] = {}

    def add(self, key: Key) -> None:
        with self._lock:
            values = self._values
            if key in values:
                values[key] += 1
            elif len(values) < _MAX_SERIES:
                values[key] = 1
            else:
                values[_OVERFLOW] = values.get(_OVERFLOW, 0) + 1

    def observe(self, options: t.Any = None) -> cabc.Iterator[t.Any]:
        """The callback: one ``Observation`` per attribute set seen so far."""
        from opentelemetry.metrics import Observation

        with self._lock:
            values = list(self._values.items())
        for key, value in values:
            attributes = self._attributes.get(key)
            if attributes is None:
                attributes = self._attributes[key] = _counter_attributes(key)
            yield Observation(value, attributes)

    def reset(self) -> None:
        """Forget every count (in a forked child: the parent's decisions are the parent's)."""
        self._lock = threading.Lock()
        self._values = {}


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
      ``authgate.outcome`` and ``authgate.scheme`` only: a synchronous SDK
      measurement costs more with every attribute, and the counter has them all.

    :param meter_provider: Where the instruments come from; by default the global
        ``MeterProvider`` (``opentelemetry.metrics.get_meter``), which the
        application sets up with the SDK and its exporters, before or after
        ``init_app``: until then the API's proxy records nothing. The apps of
        one provider share its instruments and counts.
    :raises ConfigError: ``opentelemetry-api`` is not installed.
    """

    __slots__ = ("_counts", "_entries", "_histogram")

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
            self._histogram: Histogram
            try:
                self._histogram = meter.create_histogram(
                    DURATION, unit="s", description=description, explicit_bucket_boundaries_advisory=DURATION_BUCKETS
                )
            except TypeError:  # pragma: no cover - opentelemetry-api < 1.30 has no advisory buckets
                self._histogram = meter.create_histogram(DURATION, unit="s", description=description)
        self._counts = counts
        #: (outcome, code, status, scheme) -> its folded key and the histogram's attributes.
        self._entries: dict[Key, tuple[Key, dict[str, str]]] = {}

    def _entry(self, key: Key) -> tuple[Key, dict[str, str]]:
        folded = _fold(key)
        entry = (folded, {"authgate.outcome": folded[0], "authgate.scheme": folded[3]})
        if len(self._entries) < _MAX_ATTRIBUTE_SETS:
            self._entries[key] = entry
        return entry

    def attributes(self, decision: Decision) -> dict[str, str | int]:
        """The counter's attributes for ``decision`` (bounded: see the module's docstring)."""
        return _counter_attributes(_fold((decision.outcome, decision.code, decision.status, decision.scheme)))

    def __call__(self, decision: Decision) -> None:
        key = (decision.outcome, decision.code, decision.status, decision.scheme)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entry(key)
        self._counts.add(entry[0])
        self._histogram.record(decision.duration, entry[1])


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
