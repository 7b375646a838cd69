"""The Telemetry facade: begin (context, sampling, injection), end (metrics always, span
when sampled or kept), lifecycle against a real OTLP receiver."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvloop
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from llmtap.gateway.config import Settings, load_settings
from llmtap.gateway.telemetry import KEPT_REASON, Telemetry
from llmtap.gateway.tracecontext import parse_traceparent

TID = "0af7651916cd43dd8448eb211c80319c"
SID = "b7ad6b7169203331"
ENVOY_TID = "11111111111111111111111111111111"
ENVOY_SID = "2222222222222222"
T0 = 1_800_000_000_000_000_000


@dataclass
class FakeRecord:
    """The ext CallRecord surface the facade uses."""

    operation: str = "chat"
    provider: str = "openai"
    request_model: str | None = "gpt-4o-mini"
    response_model: str | None = "gpt-4o-mini-2024-07-18"
    input_tokens: int | None = 12
    output_tokens: int | None = 34
    error_type: str | None = None
    stream: bool | None = True
    server_address: str | None = "api.openai.com"
    output_chunks: int | None = None
    content: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    attributes_calls: int = 0

    @property
    def span_name(self) -> str:
        return f"{self.operation} {self.request_model}"

    @property
    def status(self) -> tuple[str, str | None]:
        return ("ERROR", "boom") if self.error_type else ("UNSET", None)

    def attributes(self, semconv_latest: bool = False) -> dict[str, Any]:
        self.attributes_calls += 1
        a = {
            "gen_ai.operation.name": self.operation,
            "gen_ai.provider.name": self.provider,
            "gen_ai.request.model": self.request_model,
            "llmtap.semconv_latest": semconv_latest,
        }
        if self.error_type:
            a["error.type"] = self.error_type
        a.update(self.extra)
        return a


def tel(**overrides: Any) -> Telemetry:
    base: dict[str, Any] = {"export.traces_exporter": "memory", "metrics.prometheus": False}
    base.update(overrides)
    return Telemetry(load_settings(env={}, overrides=base))


def attrs(span: Span) -> dict[str, Any]:
    out = {}
    for kv in span.attributes:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which)
    return out


def end(t: Telemetry, d: Any, rec: Any, dur_ms: float = 2000, ttfc_ms: float | None = 300,
        status: int | None = 200) -> None:  # fmt: skip
    first = None if ttfc_ms is None else T0 + int(ttfc_ms * 1e6)
    t.end(d, rec, T0, T0 + int(dur_ms * 1e6), first, status)


def test_root_span_sampled_and_injected() -> None:
    t = tel()
    d = t.begin({}, {}, T0)
    assert d.sampled
    (name, tp), (name2, ts) = d.inject_headers
    assert (name, name2, ts) == ("traceparent", "tracestate", "ot=th:0")
    ctx = parse_traceparent(tp)
    assert ctx is not None and ctx.flags == 0x03  # sampled + W3C Level 2 random
    assert (ctx.trace_id, ctx.span_id) == (d.trace_id, d.span_id)
    rec = FakeRecord()
    end(t, d, rec)
    (span,) = t.spans_for_test()
    assert span.name == "chat gpt-4o-mini" and span.kind == Span.SPAN_KIND_CLIENT
    assert (span.trace_id, span.span_id, span.parent_span_id) == (d.trace_id, d.span_id, b"")
    assert span.trace_state == "ot=th:0"
    assert span.start_time_unix_nano == T0 and span.end_time_unix_nano == T0 + 2_000_000_000
    a = attrs(span)
    assert a["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.3)
    assert a["http.response.status_code"] == 200
    assert a["llmtap.semconv_latest"] is False
    assert span.status.code == Status.STATUS_CODE_UNSET
    assert span.flags == 0x103  # trace flags + "parent remoteness known" (no parent)


def test_caller_context_becomes_parent() -> None:
    t = tel()
    d = t.begin({"traceparent": f"00-{TID}-{SID}-01", "tracestate": "congo=t61"}, {}, T0)
    assert d.sampled and d.trace_id.hex() == TID and d.parent_span_id.hex() == SID
    assert d.inject_headers[0][1].startswith(f"00-{TID}-") and d.inject_headers[0][1].endswith(
        "-01"
    )
    assert ("tracestate", "congo=t61") in d.inject_headers  # no th: the parent had none
    end(t, d, FakeRecord())
    (span,) = t.spans_for_test()
    assert span.parent_span_id.hex() == SID and span.flags == 0x301  # parent is remote


def test_unsampled_parent_is_followed_and_costs_no_span() -> None:
    t = tel()
    d = t.begin({"traceparent": f"00-{TID}-{SID}-00"}, {}, T0)
    assert not d.sampled and d.inject_headers[0][1].endswith("-00")
    rec = FakeRecord()
    end(t, d, rec)
    assert t.spans_for_test() == []
    assert rec.attributes_calls == 0  # no attribute dict built for an unsampled call
    (series,) = t.metrics.series()
    assert series.dur.count == 1 and series.tin.sum == 12  # metrics recorded anyway


def test_grpc_metadata_preferred_and_caller_linked_when_traces_differ() -> None:
    t = tel()
    headers = {"traceparent": f"00-{TID}-{SID}-01"}
    meta = {"traceparent": f"00-{ENVOY_TID}-{ENVOY_SID}-01"}
    d = t.begin(headers, meta, T0)
    assert d.trace_id.hex() == ENVOY_TID and d.parent_span_id.hex() == ENVOY_SID
    end(t, d, FakeRecord())
    (span,) = t.spans_for_test()
    (link,) = span.links
    assert (link.trace_id.hex(), link.span_id.hex()) == (TID, SID)
    # Same trace in both (Envoy joined the caller's trace): Envoy's span is the parent.
    t2 = tel()
    d2 = t2.begin(headers, {"traceparent": f"00-{TID}-{ENVOY_SID}-01"}, T0)
    assert d2.parent_span_id.hex() == ENVOY_SID and d2.links == ()


@pytest.mark.parametrize(
    ("source", "parent"), [("headers", SID), ("grpc", ENVOY_SID), ("auto", ENVOY_SID)]
)
def test_context_source(source: str, parent: str) -> None:
    t = tel(**{"tracing.context_source": source})
    d = t.begin(
        {"traceparent": f"00-{TID}-{SID}-01"}, {"traceparent": f"00-{TID}-{ENVOY_SID}-01"}, T0
    )
    assert d.parent_span_id.hex() == parent


def test_b3_caller_context() -> None:
    d = tel().begin({"b3": f"{TID}-{SID}-1"}, {}, T0)
    assert d.trace_id.hex() == TID and d.parent_span_id.hex() == SID and d.sampled


def test_link_mode_starts_a_new_trace() -> None:
    t = tel(**{"tracing.parent": "link"})
    d = t.begin({"traceparent": f"00-{TID}-{SID}-00"}, {}, T0)
    assert d.trace_id.hex() != TID and d.parent_span_id == b""
    assert d.sampled  # the root sampler decides, not the (unsampled) caller
    end(t, d, FakeRecord())
    (span,) = t.spans_for_test()
    assert [(ln.trace_id.hex(), ln.span_id.hex()) for ln in span.links] == [(TID, SID)]


def test_propagators_and_observability_mode() -> None:
    t = tel(**{"tracing.propagators": "tracecontext,b3,b3multi"})
    d = t.begin({}, {}, T0)
    names = [n for n, _ in d.inject_headers]
    assert names == [
        "traceparent",
        "tracestate",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-sampled",
    ]
    assert dict(d.inject_headers)["b3"] == f"{d.trace_id.hex()}-{d.span_id.hex()}-1"
    assert tel(**{"server.mode": "observability"}).begin({}, {}, T0).inject_headers == []
    assert tel(**{"tracing.propagators": "none"}).begin({}, {}, T0).inject_headers == []


def test_ratio_sampler_writes_threshold_and_drops_consistently() -> None:
    t = tel(**{"tracing.sampler": "traceidratio", "tracing.sampler_arg": "0.5"})
    hi = "0" * 18 + "ffffffffffffff"  # randomness above 0.5's threshold
    lo = "0" * 18 + "00000000000001"
    d = t.begin({"traceparent": f"00-{hi}-{SID}-00"}, {}, T0)
    assert d.sampled and ("tracestate", "ot=th:8") in d.inject_headers
    d = t.begin({"traceparent": f"00-{lo}-{SID}-01", "tracestate": "ot=th:0"}, {}, T0)
    assert not d.sampled and all(n != "tracestate" for n, _ in d.inject_headers)


def test_keep_errors_exports_unsampled_failures() -> None:
    t = tel(**{"tracing.sampler": "always_off", "tracing.keep_errors": "true"})
    d = t.begin({}, {}, T0)
    assert not d.sampled
    end(t, d, FakeRecord(), status=200)
    assert t.spans_for_test() == []
    end(t, d, FakeRecord(error_type="rate_limit_exceeded"), status=429)
    (span,) = t.spans_for_test()
    a = attrs(span)
    assert a[KEPT_REASON] == "error" and a["error.type"] == "rate_limit_exceeded"
    assert span.status.code == Status.STATUS_CODE_ERROR and span.status.message == "boom"
    assert span.flags & 0x01 == 0  # the propagated decision was "not sampled"
    assert "th:" not in span.trace_state


def test_keep_slow_exports_unsampled_slow_calls() -> None:
    t = tel(**{"tracing.sampler": "always_off", "tracing.keep_slow_ms": "1500"})
    d = t.begin({}, {}, T0)
    end(t, d, FakeRecord(), dur_ms=1000)
    assert t.spans_for_test() == []
    end(t, d, FakeRecord(), dur_ms=1600)
    (span,) = t.spans_for_test()
    assert attrs(span)[KEPT_REASON] == "slow"


def test_error_status_without_keep() -> None:
    t = tel()
    d = t.begin({}, {}, T0)
    end(t, d, FakeRecord(error_type="server_error"), status=500)
    (span,) = t.spans_for_test()
    assert span.status.code == Status.STATUS_CODE_ERROR
    assert attrs(span)["http.response.status_code"] == 500


def test_semconv_latest_is_passed_to_the_record() -> None:
    t = Telemetry(
        load_settings(
            env={"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental"},
            overrides={"export.traces_exporter": "memory", "metrics.prometheus": False},
        )
    )
    end(t, t.begin({}, {}, T0), FakeRecord())
    assert attrs(t.spans_for_test()[0])["llmtap.semconv_latest"] is True


def test_content_capture_modes_and_secret_scrubbing() -> None:
    content = {
        "gen_ai.input.messages": [
            {"role": "user", "parts": [{"type": "text", "content": "hi " * 5000}]}
        ],
        "gen_ai.system_instructions": '[{"type": "text", "content": "Bearer abcdefghijklmnop"}]',
    }
    rec = FakeRecord(content=content, extra={"http.request.header.authorization": "Bearer sk-x"})
    for mode, on_span, on_event in [
        ("NO_CONTENT", False, False),
        ("SPAN_ONLY", True, False),
        ("EVENT_ONLY", False, True),
        ("SPAN_AND_EVENT", True, True),
    ]:
        t = tel(**{"tracing.capture_content": mode, "tracing.content_max_bytes": "1000"})
        end(t, t.begin({}, {}, T0), rec)
        raw = t.exporter.request()  # type: ignore[attr-defined]
        assert b"sk-x" not in raw and b"abcdefghijklmnop" not in raw
        (span,) = t.spans_for_test()
        a = attrs(span)
        assert ("gen_ai.input.messages" in a) is on_span
        assert bool(span.events) is on_event
        if on_span:
            assert len(a["gen_ai.input.messages"].encode()) <= 1000
            assert a["gen_ai.input.messages"].startswith('[{"role":"user","parts":[')
        if on_event:
            (ev,) = span.events
            assert ev.name == "gen_ai.client.inference.operation.details"
            assert {kv.key for kv in ev.attributes} == {
                "gen_ai.input.messages",
                "gen_ai.system_instructions",
            }


def test_time_per_output_chunk_needs_chunk_count_and_stream() -> None:
    t = tel()
    d = t.begin({}, {}, T0)
    end(t, d, FakeRecord(output_chunks=11), dur_ms=1300, ttfc_ms=300)
    end(t, d, FakeRecord(output_chunks=None))
    end(t, d, FakeRecord(stream=False, output_chunks=11))
    (s,) = t.metrics.series()
    assert s.tpoc.count == 1 and s.tpoc.sum == pytest.approx(0.1)
    assert s.ttfc.count == 2  # not for the non-streamed call


def test_tracing_disabled_still_records_metrics() -> None:
    t = tel(**{"tracing.enabled": "false"})
    d = t.begin({"traceparent": f"00-{TID}-{SID}-01"}, {}, T0)
    assert not d.sampled and d.inject_headers == []
    end(t, d, FakeRecord())
    assert t.metrics.series()[0].dur.count == 1
    with pytest.raises(RuntimeError, match="memory"):
        t.spans_for_test()


def test_counters_and_gauge() -> None:
    t = tel()
    t.exchange_started()
    t.exchange_started()
    assert t.streams_active == 2
    t.exchange_finished("complete")
    t.parse_error("json")
    assert t.streams_active == 1
    assert t.metrics.exchanges == {"complete": 1} and t.metrics.parse_errors == {"json": 1}


def test_resource_from_env() -> None:
    s = load_settings(
        env={
            "OTEL_SERVICE_NAME": "gateway-a",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,service.name=ignored",
        }
    )
    t = Telemetry(s)
    assert t.resource["service.name"] == "gateway-a"
    assert t.resource["deployment.environment"] == "prod"
    assert Telemetry(Settings()).resource["service.name"] == "llmtap"
    only_attr = load_settings(env={"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs"})
    assert Telemetry(only_attr).resource["service.name"] == "from-attrs"


def test_works_with_the_real_ext_call_record() -> None:
    from llmtap.ext.record import CallRecord

    rec = CallRecord(
        family="openai_chat",
        provider="openai",
        operation="chat",
        request_model="gpt-4o-mini",
        response_model="gpt-4o-mini-2024-07-18",
        input_tokens=5,
        output_tokens=7,
        stream=True,
        error_type="rate_limit_exceeded",
        error_message="slow down",
    )
    t = tel()
    end(t, t.begin({}, {}, T0), rec, status=429)
    (span,) = t.spans_for_test()
    assert span.name == "chat gpt-4o-mini"
    assert span.status.code == Status.STATUS_CODE_ERROR and span.status.message == "slow down"
    assert attrs(span)["gen_ai.usage.output_tokens"] == 7


def test_end_to_end_to_a_real_receiver_on_uvloop() -> None:
    from test_export import FAST_RECONNECT, Receiver, start_receiver

    async def main() -> None:
        rx = Receiver()
        server, port = await start_receiver(rx)
        s = load_settings(
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
                "OTEL_BSP_SCHEDULE_DELAY": "20",
                "OTEL_SERVICE_NAME": "e2e",
            },
            overrides={"metrics.prometheus_port": 0, "metrics.otlp": False},
        )
        t = Telemetry(s, channel_options=FAST_RECONNECT)
        await t.start()
        assert t.prometheus_port
        for _ in range(3):
            t.exchange_started()
            d = t.begin({"traceparent": f"00-{TID}-{SID}-01"}, {}, time.time_ns())
            t.end(d, FakeRecord(), time.time_ns(), time.time_ns() + 1000, None, 200)
            t.exchange_finished("complete")
        await t.shutdown(5)
        await server.stop(None)
        assert len(rx.spans) == 3 and {s.trace_id.hex() for s in rx.spans} == {TID}
        res = rx.requests[0].resource_spans[0].resource
        assert {a.key: a.value.string_value for a in res.attributes}["service.name"] == "e2e"
        assert t.metrics.spans_exported_total == 3

    uvloop.run(main())


def test_otlp_metrics_pushed_when_an_endpoint_is_set() -> None:
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
    from test_metrics import _MetricsReceiver

    rx = _MetricsReceiver()
    server = grpc.server(futures.ThreadPoolExecutor(2))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(rx, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()

    async def main() -> None:
        s = load_settings(
            env={
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"http://127.0.0.1:{port}",
                "OTEL_METRIC_EXPORT_INTERVAL": "50",
            },
            overrides={"metrics.prometheus": False, "export.traces_exporter": "memory"},
        )
        t = Telemetry(s)
        await t.start()
        end(t, t.begin({}, {}, T0), FakeRecord())
        await t.shutdown(5)

    try:
        uvloop.run(main())
    finally:
        server.stop(None)
    assert rx.got.is_set()
    points = [
        p
        for r in rx.requests
        for sm in r.resource_metrics[0].scope_metrics
        for m in sm.metrics
        if m.name == "gen_ai.client.operation.duration"
        for p in m.histogram.data_points
    ]
    assert points and points[-1].count == 1 and points[-1].sum == pytest.approx(2.0)
