"""The metric store and its two expositions: Prometheus text and OTLP (real receiver)."""

from __future__ import annotations

import threading
import urllib.request
from concurrent import futures
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from prometheus_client.parser import text_string_to_metric_families

from llmtap.gateway.metrics import (
    DURATION_BUCKETS,
    TOKEN_BUCKETS,
    TPOC_BUCKETS,
    TTFC_BUCKETS,
    Hist,
    Metrics,
)

KEY = ("chat", "openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "api.openai.com", None)


def prom_samples(m: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for fam in text_string_to_metric_families(m.prometheus_text().decode()):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def test_hist_buckets_are_le() -> None:
    h = Hist((1.0, 2.0))
    for v in (0.5, 1.0, 1.5, 2.0, 3.0):
        h.observe(v)
    assert h.counts == [2, 2, 1]
    assert (h.count, h.sum, h.min, h.max) == (5, 8.0, 0.5, 3.0)


def test_semconv_bucket_advice() -> None:
    assert TOKEN_BUCKETS[0] == 1 and TOKEN_BUCKETS[-1] == 67108864 and len(TOKEN_BUCKETS) == 14
    assert tuple(round(0.01 * 2**i, 2) for i in range(14)) == DURATION_BUCKETS
    assert TTFC_BUCKETS[0] == 0.001 and TTFC_BUCKETS[-1] == 10.0
    assert TPOC_BUCKETS[0] == 0.01 and TPOC_BUCKETS[-1] == 2.5


def test_prometheus_exposition() -> None:
    m = Metrics()
    m.record_call(KEY, 1.5, 0.2, 0.03, 100, 7)
    m.record_call(KEY, 0.5, None, None, 10, None)
    m.record_call((*KEY[:5], "rate_limited"), 0.05)
    s = prom_samples(m)
    base = {
        ("gen_ai_operation_name", "chat"),
        ("gen_ai_provider_name", "openai"),
        ("gen_ai_request_model", "gpt-4o-mini"),
        ("gen_ai_response_model", "gpt-4o-mini-2024-07-18"),
        ("server_address", "api.openai.com"),
    }
    ok = frozenset(base | {("error_type", "")})
    assert s[("gen_ai_client_operation_duration_seconds_count", ok)] == 2
    assert s[("gen_ai_client_operation_duration_seconds_sum", ok)] == 2.0
    assert s[("gen_ai_client_operation_duration_seconds_bucket", ok | {("le", "0.64")})] == 1
    assert s[("gen_ai_client_operation_duration_seconds_bucket", ok | {("le", "+Inf")})] == 2
    err = frozenset(base | {("error_type", "rate_limited")})
    assert s[("gen_ai_client_operation_duration_seconds_count", err)] == 1
    tin = frozenset(base | {("gen_ai_token_type", "input")})
    tout = frozenset(base | {("gen_ai_token_type", "output")})
    assert s[("gen_ai_client_token_usage_sum", tin)] == 110
    assert s[("gen_ai_client_token_usage_count", tout)] == 1
    assert s[("gen_ai_client_operation_time_to_first_chunk_seconds_count", frozenset(base))] == 1
    assert s[("gen_ai_client_operation_time_per_output_chunk_seconds_sum", frozenset(base))] == 0.03


def test_llmtap_own_metrics() -> None:
    m = Metrics()
    m.exchange_started()
    m.exchange_started()
    m.exchange_finished("complete")
    m.parse_error("json")
    m.spans_exported(5)
    m.spans_dropped(2, "queue_full")
    m.export_duration(0.02, "ok")
    assert m.streams_active == 1
    s = prom_samples(m)
    assert s[("llmtap_streams_active", frozenset())] == 1
    assert s[("llmtap_exchanges_total", frozenset({("outcome", "complete")}))] == 1
    assert s[("llmtap_parse_errors_total", frozenset({("kind", "json")}))] == 1
    assert s[("llmtap_spans_exported_total", frozenset())] == 5
    assert s[("llmtap_spans_dropped_total", frozenset({("reason", "queue_full")}))] == 2
    assert s[("llmtap_export_duration_seconds_count", frozenset({("outcome", "ok")}))] == 1


def test_label_values_are_bounded() -> None:
    m = Metrics(max_series=3)
    for i in range(10):
        m.record_call(("chat", "openai", f"model-{i}", None, None, None), 1.0)
    labels = [s.labels for s in m.series()]
    assert len(labels) == 4  # three real series and one overflow series
    overflow = [x for x in labels if x[2] == "_other"]
    assert overflow == [("chat", "openai", "_other", "_other", "_other", None)]
    assert next(s for s in m.series() if s.labels[2] == "_other").dur.count == 7
    for i in range(100):
        m.exchange_finished(f"outcome-{i}")
    assert len(m.exchanges) == 65 and m.exchanges["_other"] == 36


def test_metrics_data_encodes_as_otlp() -> None:
    m = Metrics(prometheus=False, resource={"service.name": "svc"}, max_series=1)
    m.record_call(KEY, 1.5, 0.2, None, 100, 7)
    m.record_call(("chat", "openai", "other", None, None, "500"), 2.0)
    m.spans_dropped(3, "queue_full")
    req = metrics_service_pb2.ExportMetricsServiceRequest.FromString(
        encode_metrics(m.metrics_data()).SerializeToString()
    )
    (rm,) = req.resource_metrics
    assert any(
        a.key == "service.name" and a.value.string_value == "svc" for a in rm.resource.attributes
    )
    by_name = {x.name: x for x in rm.scope_metrics[0].metrics}
    dur = by_name["gen_ai.client.operation.duration"]
    assert dur.unit == "s"
    assert list(dur.histogram.data_points[0].explicit_bounds) == list(DURATION_BUCKETS)
    attrs = [{a.key: a.value for a in p.attributes} for p in dur.histogram.data_points]
    assert attrs[0]["gen_ai.request.model"].string_value == "gpt-4o-mini"
    assert attrs[1]["otel.metric.overflow"].bool_value is True
    assert attrs[1]["error.type"].string_value == "500"
    tokens = by_name["gen_ai.client.token.usage"]
    assert tokens.unit == "{token}"
    types = sorted(
        next(a.value.string_value for a in p.attributes if a.key == "gen_ai.token.type")
        for p in tokens.histogram.data_points
    )
    assert types == ["input", "output"]
    dropped = by_name["llmtap.spans.dropped"]
    assert dropped.sum.is_monotonic and dropped.sum.data_points[0].as_int == 3
    assert "gen_ai.client.operation.time_per_output_chunk" in by_name


class _MetricsReceiver(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.got = threading.Event()

    def Export(self, request: Any, context: Any) -> Any:
        self.requests.append(request)
        self.got.set()
        return metrics_service_pb2.ExportMetricsServiceResponse()


def test_otlp_push_to_a_real_receiver() -> None:
    rx = _MetricsReceiver()
    server = grpc.server(futures.ThreadPoolExecutor(2))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(rx, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        exporter = OTLPMetricExporter(endpoint=f"127.0.0.1:{port}", insecure=True, timeout=5)
        m = Metrics(prometheus=False, otlp_exporter=exporter, export_interval_s=0.05)
        m.record_call(KEY, 1.0, None, None, 3, 4)
        m.start()
        assert rx.got.wait(10)
        m.shutdown(5)
    finally:
        server.stop(None)
    names = {
        x.name
        for r in rx.requests
        for sm in r.resource_metrics[0].scope_metrics
        for x in sm.metrics
    }
    assert {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"} <= names


def test_push_failure_is_contained(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def export(self, data: Any, timeout_millis: float = 0) -> Any:
            raise RuntimeError("boom")

        def shutdown(self, timeout_millis: float = 0) -> None:
            raise RuntimeError("boom again")

    m = Metrics(prometheus=False, otlp_exporter=Broken())
    assert m.push() is False
    m.shutdown(1)  # does not raise
    assert "OTLP metric export failed" in caplog.text


def test_prometheus_http_endpoint() -> None:
    m = Metrics()
    m.record_call(KEY, 1.0)
    port = m.serve_prometheus("127.0.0.1", 0)
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    finally:
        m.shutdown(1)
    assert b"gen_ai_client_operation_duration_seconds_count" in body
    with pytest.raises(RuntimeError, match="disabled"):
        Metrics(prometheus=False).serve_prometheus("127.0.0.1", 0)


def test_scrape_while_recording_from_another_thread() -> None:
    m = Metrics()
    stop = threading.Event()

    def scrape() -> None:
        while not stop.is_set():
            m.prometheus_text()

    t = threading.Thread(target=scrape)
    t.start()
    try:
        for i in range(3000):
            m.record_call(("chat", "p", f"m{i % 300}", None, None, None), 0.1, 0.01, None, 1, 1)
    finally:
        stop.set()
        t.join()
    assert sum(s.dur.count for s in m.series()) == 3000
