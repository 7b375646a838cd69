"""GenAI client metrics and llmtap's own, aggregated once, exposed to Prometheus and OTLP.

Every exchange is recorded, sampled or not, so recording must be cheap. The OTel SDK
instruments cost ~10 µs per ``record()`` (attribute hashing, locks, views), i.e. more
than the whole span path for the five records of one call. llmtap therefore keeps its
own explicit-bucket histograms and counters (a dict lookup on the label tuple, then a
bisect and a few integer adds per observation) and turns that one store into

* a Prometheus collector (``prometheus_client`` custom collector, own registry), and
* OTLP ``MetricsData`` pushed by the SDK's OTLP metric exporter from a daemon thread
  every ``export_interval`` (cumulative temporality, like a Prometheus scrape).

Label sets are capped (``max_series``); past the cap, model and server labels collapse
to ``_other`` (OTel series also get ``otel.metric.overflow``), so a client sending
random model names cannot grow memory without bound.

Instruments follow the GenAI semantic conventions and their bucket advice.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from typing import Any

import prometheus_client as prom
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

__all__ = [
    "DURATION_BUCKETS",
    "EXPORT_BUCKETS",
    "TOKEN_BUCKETS",
    "TPOC_BUCKETS",
    "TTFC_BUCKETS",
    "Hist",
    "Metrics",
]

log = logging.getLogger("llmtap.metrics")

#: Semconv advice for ``gen_ai.client.token.usage``.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864)  # fmt: skip
#: Semconv advice for ``gen_ai.client.operation.duration``.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                    40.96, 81.92)  # fmt: skip
#: The conventions give the client chunk metrics no advice of their own; these are the
#: advice of their server-side counterparts (time_to_first_token, time_per_output_token).
TTFC_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5,
                5.0, 7.5, 10.0)  # fmt: skip
TPOC_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
EXPORT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                  30.0)  # fmt: skip

OTHER = "_other"
_MAX_LABEL_VALUES = 64

_GENAI_KEYS = (
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "server.address",
)


class Hist:
    """An explicit-bucket histogram: ``counts[i]`` holds values in
    ``(bounds[i-1], bounds[i]]``, the last slot everything above (OTel and
    Prometheus ``le`` agree on this)."""

    __slots__ = ("bounds", "count", "counts", "max", "min", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")

    def observe(self, v: float) -> None:
        self.counts[bisect_left(self.bounds, v)] += 1
        self.count += 1
        self.sum += v
        if v < self.min:
            self.min = v
        if v > self.max:
            self.max = v


class _Series:
    """The histograms of one GenAI label set."""

    __slots__ = ("dur", "labels", "tin", "tout", "tpoc", "ttfc")

    def __init__(self, labels: tuple[Any, ...]) -> None:
        self.labels = labels  # (op, provider, req_model, resp_model, server, error_type)
        self.dur = Hist(DURATION_BUCKETS)
        self.ttfc = Hist(TTFC_BUCKETS)
        self.tpoc = Hist(TPOC_BUCKETS)
        self.tin = Hist(TOKEN_BUCKETS)
        self.tout = Hist(TOKEN_BUCKETS)


def _bounded(counts: dict[str, Any], value: str) -> str:
    """``value``, or ``_other`` once ``counts`` holds too many distinct labels: these
    come from code, but a bug must not turn them into a memory leak."""
    if value in counts or len(counts) < _MAX_LABEL_VALUES:
        return value
    return OTHER


class Metrics:
    """The metric store of one llmtap process.

    ``prometheus``: register a collector in :attr:`registry` (serve it with
    :meth:`serve_prometheus`). ``otlp_exporter``: an OTel SDK ``MetricExporter``
    (normally ``OTLPMetricExporter``) fed every ``export_interval_s`` once
    :meth:`start` ran; ``resource`` becomes the OTLP resource.
    """

    def __init__(
        self,
        *,
        prometheus: bool = True,
        otlp_exporter: Any = None,
        resource: Mapping[str, Any] | None = None,
        export_interval_s: float = 60.0,
        max_series: int = 2000,
    ) -> None:
        self.max_series = max_series
        self.start_time_ns = time.time_ns()
        self._series: dict[tuple[Any, ...], _Series] = {}
        self._lock = threading.Lock()
        self.streams_active = 0
        self.exchanges: dict[str, int] = {}
        self.parse_errors: dict[str, int] = {}
        self.spans_dropped_by_reason: dict[str, int] = {}
        self.spans_exported_total = 0
        self.export_durations: dict[str, Hist] = {}
        self.registry: prom.CollectorRegistry | None = None
        if prometheus:
            self.registry = prom.CollectorRegistry(auto_describe=False)
            self.registry.register(_PromCollector(self))
        self._http: Any = None
        self._exporter = otlp_exporter
        self._resource = dict(resource or {})
        self._interval = export_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- recording (hot) ------------------------------------------------------------------

    def record_call(
        self,
        key: tuple[Any, ...],
        duration_s: float,
        ttfc_s: float | None = None,
        tpoc_s: float | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
    ) -> None:
        """Record one finished call. ``key`` is ``(operation, provider, request_model,
        response_model, server_address, error_type)``."""
        s = self._series.get(key)
        if s is None:
            s = self._new_series(key)
        s.dur.observe(duration_s)
        if ttfc_s is not None:
            s.ttfc.observe(ttfc_s)
        if tpoc_s is not None:
            s.tpoc.observe(tpoc_s)
        if input_tokens is not None:
            s.tin.observe(input_tokens)
        if output_tokens is not None:
            s.tout.observe(output_tokens)

    def _new_series(self, key: tuple[Any, ...]) -> _Series:
        with self._lock:
            s = self._series.get(key)
            if s is not None:
                return s
            if len(self._series) < self.max_series:
                s = self._series[key] = _Series(key)
                return s
            op, provider, _req, _resp, _server, error_type = key
            okey = (op, provider, OTHER, OTHER, OTHER, error_type)
            s = self._series.get(okey)
            if s is None:
                # Past the cap only overflow series are added, one per (op, provider,
                # error), so the store stays within a small multiple of the cap.
                s = self._series[okey] = _Series(okey)
            return s

    def exchange_started(self) -> None:
        self.streams_active += 1

    def exchange_finished(self, outcome: str) -> None:
        self.streams_active -= 1
        outcome = _bounded(self.exchanges, outcome)
        self.exchanges[outcome] = self.exchanges.get(outcome, 0) + 1

    def parse_error(self, kind: str) -> None:
        kind = _bounded(self.parse_errors, kind)
        self.parse_errors[kind] = self.parse_errors.get(kind, 0) + 1

    def spans_exported(self, n: int) -> None:
        self.spans_exported_total += n

    def spans_dropped(self, n: int, reason: str) -> None:
        reason = _bounded(self.spans_dropped_by_reason, reason)
        self.spans_dropped_by_reason[reason] = self.spans_dropped_by_reason.get(reason, 0) + n

    @property
    def spans_dropped_total(self) -> int:
        return sum(self.spans_dropped_by_reason.values())

    def export_duration(self, seconds: float, outcome: str) -> None:
        h = self.export_durations.get(outcome)
        if h is None:
            h = self.export_durations[_bounded(self.export_durations, outcome)] = Hist(
                EXPORT_BUCKETS
            )
        h.observe(seconds)

    def series(self) -> list[_Series]:
        """A snapshot of the GenAI series (safe to call from another thread)."""
        return list(self._series.values())

    # -- Prometheus -----------------------------------------------------------------------

    def prometheus_text(self) -> bytes:
        """The Prometheus exposition of this store (empty when Prometheus is off)."""
        return prom.generate_latest(self.registry) if self.registry is not None else b""

    def serve_prometheus(self, host: str, port: int) -> int:
        """Serve ``/metrics`` from a daemon thread; returns the bound port (``port=0``
        picks a free one)."""
        if self.registry is None:
            raise RuntimeError("Prometheus metrics are disabled")
        server, _thread = prom.start_http_server(port, addr=host, registry=self.registry)
        self._http = server
        return int(server.server_port)

    # -- OTLP ---------------------------------------------------------------------------

    def start(self, exporter: Any = None) -> None:
        """Start the periodic OTLP push to ``exporter`` (or the one given at construction;
        no-op without one)."""
        if exporter is not None:
            self._exporter = exporter
        if self._exporter is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._push_loop, name="llmtap-metrics", daemon=True)
        self._thread.start()

    def _push_loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.push()

    def push(self, timeout_s: float = 10.0) -> bool:
        """Export the current state once via the OTLP exporter (blocking)."""
        if self._exporter is None:
            return False
        try:
            result = self._exporter.export(self.metrics_data(), timeout_millis=timeout_s * 1000)
        except Exception:  # an exporter bug must never take the data path down
            log.warning("OTLP metric export failed", exc_info=True)
            return False
        ok = getattr(result, "name", "SUCCESS") == "SUCCESS"
        if not ok:
            log.warning("OTLP metric export failed: %s", result)
        return ok

    def metrics_data(self) -> Any:
        """This store as an SDK ``MetricsData`` (cumulative since process start)."""
        from opentelemetry.sdk.metrics.export import (
            AggregationTemporality,
            Gauge,
            Histogram,
            HistogramDataPoint,
            Metric,
            MetricsData,
            NumberDataPoint,
            ResourceMetrics,
            ScopeMetrics,
            Sum,
        )
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        from .._version import __version__

        t0, now = self.start_time_ns, time.time_ns()
        cum = AggregationTemporality.CUMULATIVE

        def hpoint(attrs: dict[str, Any], h: Hist) -> HistogramDataPoint:
            return HistogramDataPoint(
                attributes=attrs, start_time_unix_nano=t0, time_unix_nano=now,
                count=h.count, sum=h.sum, bucket_counts=list(h.counts),
                explicit_bounds=list(h.bounds),
                min=h.min if h.count else 0.0, max=h.max if h.count else 0.0,
            )  # fmt: skip

        def npoint(attrs: dict[str, Any], v: float) -> NumberDataPoint:
            return NumberDataPoint(
                attributes=attrs, start_time_unix_nano=t0, time_unix_nano=now, value=v
            )

        dur, ttfc, tpoc, tok = [], [], [], []
        for s in self.series():
            op, provider, req, resp, server, err = s.labels
            base = {
                k: v
                for k, v in zip(_GENAI_KEYS, (op, provider, req, resp, server), strict=True)
                if v is not None
            }
            if req == OTHER:
                base["otel.metric.overflow"] = True
            if s.dur.count:
                dur.append(hpoint({**base, "error.type": err} if err else base, s.dur))
            if s.ttfc.count:
                ttfc.append(hpoint(base, s.ttfc))
            if s.tpoc.count:
                tpoc.append(hpoint(base, s.tpoc))
            if s.tin.count:
                tok.append(hpoint({**base, "gen_ai.token.type": "input"}, s.tin))
            if s.tout.count:
                tok.append(hpoint({**base, "gen_ai.token.type": "output"}, s.tout))

        def hist(name: str, unit: str, desc: str, points: list[HistogramDataPoint]) -> Metric:
            return Metric(name, desc, unit, Histogram(points, cum))

        def counter(name: str, unit: str, desc: str, label: str, d: dict[str, int]) -> Metric:
            pts = [npoint({label: k} if label else {}, v) for k, v in list(d.items())]
            return Metric(name, desc, unit, Sum(pts, cum, True))

        metrics = [
            hist("gen_ai.client.token.usage", "{token}",
                 "Number of input and output tokens used.", tok),
            hist("gen_ai.client.operation.duration", "s", "GenAI operation duration.", dur),
            hist("gen_ai.client.operation.time_to_first_chunk", "s",
                 "Time to receive the first chunk of a streamed response.", ttfc),
            hist("gen_ai.client.operation.time_per_output_chunk", "s",
                 "Mean time between output chunks after the first, one sample per call.", tpoc),
            Metric("llmtap.streams.active", "ext_proc exchanges in flight.", "{stream}",
                   Gauge([npoint({}, self.streams_active)])),
            counter("llmtap.exchanges", "{exchange}", "Finished exchanges by outcome.",
                    "outcome", self.exchanges),
            counter("llmtap.spans.exported", "{span}", "Spans accepted by the OTLP receiver.",
                    "", {"": self.spans_exported_total}),
            counter("llmtap.spans.dropped", "{span}", "Spans lost, by reason.", "reason",
                    self.spans_dropped_by_reason),
            hist("llmtap.export.duration", "s", "OTLP span export latency (with retries).",
                 [hpoint({"outcome": k}, h) for k, h in list(self.export_durations.items())]),
            counter("llmtap.parse_errors", "{error}", "Bodies llmtap could not fully read.",
                    "kind", self.parse_errors),
        ]  # fmt: skip
        scope = InstrumentationScope("llmtap", __version__)
        return MetricsData(
            [
                ResourceMetrics(
                    Resource.create(self._resource), [ScopeMetrics(scope, metrics, "")], ""
                )
            ]
        )

    # -- lifecycle --------------------------------------------------------------------------

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Stop the HTTP endpoint, push a last time and stop the exporter (blocking)."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._exporter is not None:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout_s)
                self._thread = None
            self.push(timeout_s)
            try:
                self._exporter.shutdown(timeout_millis=timeout_s * 1000)
            except Exception:
                log.warning("metrics exporter shutdown failed", exc_info=True)
            self._exporter = None


_GENAI_LABELS = [
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "gen_ai_response_model",
    "server_address",
]


def _prom_hist(fam: HistogramMetricFamily, labels: list[str], h: Hist) -> None:
    buckets, running = [], 0
    counts = list(h.counts)
    for bound, c in zip(h.bounds, counts, strict=False):
        running += c
        buckets.append((prom.utils.floatToGoString(bound), running))
    buckets.append(("+Inf", running + counts[-1]))
    fam.add_metric(labels, buckets, h.sum)


class _PromCollector:
    """Renders :class:`Metrics` at scrape time (runs on the HTTP server's thread)."""

    def __init__(self, m: Metrics) -> None:
        self.m = m

    def collect(self) -> Iterator[Any]:
        m = self.m
        g = _GENAI_LABELS
        tok = HistogramMetricFamily(
            "gen_ai_client_token_usage", "Number of input and output tokens used.",
            labels=[*g, "gen_ai_token_type"],
        )  # fmt: skip
        dur = HistogramMetricFamily(
            "gen_ai_client_operation_duration_seconds", "GenAI operation duration.",
            labels=[*g, "error_type"],
        )  # fmt: skip
        ttfc = HistogramMetricFamily(
            "gen_ai_client_operation_time_to_first_chunk_seconds",
            "Time to receive the first chunk of a streamed response.", labels=g,
        )  # fmt: skip
        tpoc = HistogramMetricFamily(
            "gen_ai_client_operation_time_per_output_chunk_seconds",
            "Mean time between output chunks after the first, one sample per call.", labels=g,
        )  # fmt: skip
        for s in m.series():
            lv = ["" if v is None else str(v) for v in s.labels[:5]]
            if s.dur.count:
                _prom_hist(dur, [*lv, s.labels[5] or ""], s.dur)
            if s.ttfc.count:
                _prom_hist(ttfc, lv, s.ttfc)
            if s.tpoc.count:
                _prom_hist(tpoc, lv, s.tpoc)
            if s.tin.count:
                _prom_hist(tok, [*lv, "input"], s.tin)
            if s.tout.count:
                _prom_hist(tok, [*lv, "output"], s.tout)
        yield from (tok, dur, ttfc, tpoc)
        yield GaugeMetricFamily(
            "llmtap_streams_active", "ext_proc exchanges in flight.", value=m.streams_active
        )
        for name, doc, label, d in (
            ("llmtap_exchanges", "Finished exchanges by outcome.", "outcome", m.exchanges),
            ("llmtap_spans_dropped", "Spans lost, by reason.", "reason", m.spans_dropped_by_reason),
            ("llmtap_parse_errors", "Bodies llmtap could not fully read.", "kind", m.parse_errors),
        ):
            fam = CounterMetricFamily(name, doc, labels=[label])
            for k, v in list(d.items()):
                fam.add_metric([k], v)
            yield fam
        yield CounterMetricFamily(
            "llmtap_spans_exported", "Spans accepted by the OTLP receiver.",
            value=m.spans_exported_total,
        )  # fmt: skip
        ex = HistogramMetricFamily(
            "llmtap_export_duration_seconds", "OTLP span export latency (with retries).",
            labels=["outcome"],
        )  # fmt: skip
        for k, h in list(m.export_durations.items()):
            _prom_hist(ex, [k], h)
        yield ex
