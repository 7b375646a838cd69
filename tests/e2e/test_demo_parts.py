"""The demo's receiver and waterfall on their own (no Envoy, no llmtap)."""

from __future__ import annotations

import io
import time

import pytest

from llmtap.gateway.demo.receiver import Receiver, Span
from llmtap.gateway.demo.waterfall import Waterfall, fmt_cost, fmt_seconds, render_trace


def test_receiver_decodes_what_the_otel_sdk_exports() -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind, StatusCode

    with Receiver() as rx:
        provider = TracerProvider(resource=Resource.create({"service.name": "t"}))
        exporter = OTLPSpanExporter(endpoint=rx.endpoint, insecure=True)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("parts")
        with (
            tracer.start_as_current_span("root") as root,
            tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child,
        ):
            child.set_attribute("gen_ai.usage.input_tokens", 12)
            child.set_attribute("llmtap.usage.cost_usd", 0.25)
            child.set_attribute("gen_ai.response.finish_reasons", ["stop", "length"])
            child.set_attribute("gen_ai.request.stream", True)
            child.add_event("first chunk", {"n": 1})
            child.set_status(StatusCode.ERROR, "boom")
        provider.shutdown()
        spans = rx.wait_for(lambda s: len(s) >= 2 and s, 10, "two spans")
    by_name = {s.name: s for s in spans}
    c, r = by_name["child"], by_name["root"]
    assert c.trace_id == r.trace_id == f"{root.get_span_context().trace_id:032x}"
    assert c.parent_span_id == r.span_id and r.parent_span_id == ""
    assert c.kind == "CLIENT" and c.status == "ERROR" and c.status_message == "boom"
    assert c.attributes == {
        "gen_ai.usage.input_tokens": 12,
        "llmtap.usage.cost_usd": 0.25,
        "gen_ai.response.finish_reasons": ["stop", "length"],
        "gen_ai.request.stream": True,
    }
    assert c.events[0].name == "first chunk" and c.events[0].attributes == {"n": 1}
    assert c.resource["service.name"] == "t" and c.scope == "parts"
    assert 0 <= c.duration_s <= r.duration_s


def test_receiver_timeout_says_what_arrived() -> None:
    with Receiver() as rx:
        rx._add([_span("x", "a" * 16, "", 0, 1)])
        with pytest.raises(TimeoutError) as err:
            rx.wait_for(lambda spans: len(spans) > 1, 0.2, "a second span")
    assert "no a second span after 0.2s; 1 span(s) received" in str(err.value)
    assert "'x' trace=" in str(err.value)


def _span(name: str, sid: str, parent: str, start: float, end: float, **attrs: object) -> Span:
    return Span(
        trace_id="ab" * 16,
        span_id=sid,
        parent_span_id=parent,
        name=name,
        kind="CLIENT",
        start_ns=int(start * 1e9),
        end_ns=int(end * 1e9),
        attributes=dict(attrs),
        status="ERROR" if "error.type" in attrs else "UNSET",
        status_message="",
    )


TRACE = [
    _span("demo round 1", "r" * 16, "", 0.0, 2.0),
    _span(
        "chat gpt-4o-mini",
        "a" * 16,
        "r" * 16,
        0.0,
        1.0,
        **{
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.output_tokens": 38,
            "gen_ai.response.time_to_first_chunk": 0.5,
            "llmtap.usage.cost_usd": 0.0000346,
        },
    ),
    _span(
        "chat mistral-small",
        "b" * 16,
        "r" * 16,
        1.5,
        2.0,
        **{"gen_ai.provider.name": "mistral_ai", "error.type": "rate_limit_exceeded"},
    ),
]


def test_render_trace_rows_and_bars() -> None:
    lines = render_trace(list(reversed(TRACE))).splitlines()
    assert lines[0] == f"trace {'ab' * 16}  3 spans  2.00s"
    assert lines[1].split() == [
        "span",
        "provider",
        "model",
        "in",
        "out",
        "ttft",
        "dur",
        "cost",
        "status",
        "timeline",
    ]
    root, first, second = lines[2:]
    assert root.startswith("demo round 1 ") and root.endswith("█" * 24)
    assert first.startswith("├─ chat gpt-4o-mini")
    cells = first.split()
    assert cells[3:11] == [
        "openai",
        "gpt-4o-mini-2024-07-18",
        "12",
        "38",
        "500ms",
        "1.00s",
        "$0.000035",
        "ok",
    ]
    # TTFT is the first half of a 1 s call that spans the first half of the axis.
    assert cells[-1] == "░" * 6 + "█" * 6
    assert second.startswith("└─ chat mistral-small")
    assert "rate_limit_…" in second
    assert second.endswith(" " * 18 + "█" * 6)


def test_render_trace_color_marks_errors() -> None:
    text = render_trace(TRACE, color=True)
    assert "\033[31m└─ chat mistral-small" in text


def test_formatting() -> None:
    assert fmt_seconds(None) == "-"
    assert fmt_seconds(0.2126) == "213ms"
    assert fmt_seconds(12.345) == "12.35s"
    assert fmt_cost(None) == "-" and fmt_cost("x") == "-"
    assert fmt_cost(0) == "$0"
    assert fmt_cost(1.5) == "$1.50"
    assert fmt_cost(0.00012) == "$0.00012"
    assert fmt_cost(0.00000018) == "<$0.000001"


def test_waterfall_prints_a_trace_once_it_went_quiet() -> None:
    out = io.StringIO()
    w = Waterfall(out, settle=0.2, color=False)
    w.add(TRACE[:2])
    assert w.flush() == 0 and out.getvalue() == ""
    w.add(TRACE[2:])
    time.sleep(0.25)
    assert w.flush() == 1
    assert out.getvalue().count("trace ") == 1 and "3 spans" in out.getvalue()
    assert w.pending() == 0 and w.printed == ["ab" * 16]
    assert w.flush(force=True) == 0
