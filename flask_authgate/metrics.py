"""Decision metrics through OpenTelemetry (``AUTHGATE_METRICS``; see docs/metrics.md).

One decision hook (:class:`DecisionMetrics`) feeds two instruments, created
once per app from the global ``MeterProvider`` (or one given explicitly):

* ``authgate.decisions``, a counter of decided requests, with the attributes
  ``authgate.outcome`` (``allowed`` / ``denied``), ``authgate.code`` (the
  error code, or ``ok``), ``http.response.status_code`` and
  ``authgate.scheme`` (``jwt``, ``signed``, ``api_key``, ``introspection``
  or ``none``);
* ``authgate.duration``, a histogram of the seconds spent authenticating and
  authorizing, unit ``s``, with the same attributes.

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
import typing as t

from .errors import ERRORS
from .errors import ConfigError

if t.TYPE_CHECKING:
    from opentelemetry.metrics import Counter
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
#: The most attribute sets kept prebuilt; the fixed value sets above stay well below it.
_MAX_ATTRIBUTE_SETS = 1024

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


class DecisionMetrics:
    """A decision hook that counts decisions and records their duration.

    :param meter_provider: Where the instruments come from; by default the global
        ``MeterProvider`` (``opentelemetry.metrics.get_meter``), which the
        application sets up with the SDK and its exporters. Before the SDK is
        set up, the API's proxy meter records nothing and starts recording
        once a provider is set.
    :raises ConfigError: ``opentelemetry-api`` is not installed.
    """

    __slots__ = ("_attributes", "_counter", "_histogram")

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        metrics = _opentelemetry_metrics()
        version = _version()
        if meter_provider is None:
            meter = metrics.get_meter(METER_NAME, version)
        else:
            meter = meter_provider.get_meter(METER_NAME, version)
        self._counter: Counter = meter.create_counter(
            DECISIONS, unit="{decision}", description="Requests decided by flask-authgate, by outcome and code"
        )
        self._histogram: Histogram = meter.create_histogram(
            DURATION,
            unit="s",
            description="Seconds flask-authgate spent authenticating and authorizing a request",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        #: (outcome, code, status, scheme) -> the attributes, built once per combination.
        self._attributes: dict[tuple[str, str, int, str], dict[str, str | int]] = {}

    def attributes(self, decision: Decision) -> dict[str, str | int]:
        """The bounded attributes of ``decision`` (the same dict for the same combination)."""
        key = (decision.outcome, decision.code, decision.status, decision.scheme)
        attributes = self._attributes.get(key)
        if attributes is None:
            outcome, code, status, scheme = key
            attributes = {
                "authgate.outcome": outcome if outcome in _OUTCOMES else "other",
                "authgate.code": code if code == "ok" or code in ERRORS else "other",
                "http.response.status_code": status if type(status) is int and 100 <= status <= 599 else 0,
                "authgate.scheme": scheme if scheme in _SCHEMES else "other",
            }
            if len(self._attributes) < _MAX_ATTRIBUTE_SETS:
                self._attributes[key] = attributes
        return attributes

    def __call__(self, decision: Decision) -> None:
        attributes = self.attributes(decision)
        self._counter.add(1, attributes)
        self._histogram.record(decision.duration, attributes)


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
