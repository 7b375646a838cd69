"""Content capture end to end: settings -> ext (the servicer's config) -> Telemetry ->
the in-memory exporter's OTLP bytes. Secrets pasted into prompts are masked; headers
never appear; off by default, and then ext keeps nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from recorded import EXCHANGES

from llmtap.ext import RequestInfo
from llmtap.gateway.config import load_settings
from llmtap.gateway.content import capture_enabled
from llmtap.gateway.servicer import default_start_exchange
from llmtap.gateway.telemetry import Telemetry

T0 = 1_800_000_000_000_000_000
KEY = "sk-proj-" + "A1b2C3d4E5f6G7h8J9k0" * 2
CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
CONTENT_KEYS = {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"}


def settings(mode: str | None, **overrides: Any) -> Any:
    env = {CAPTURE_ENV: mode} if mode is not None else {}
    base = {"export.traces_exporter": "memory", "metrics.prometheus": False}
    return load_settings(env=env, overrides={**base, **overrides})


def attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in kvs}


def call(s: Any, request: dict[str, Any], response: bytes, headers: dict[str, str]) -> Telemetry:
    """One exchange through the servicer's ext config and a real Telemetry."""
    tel = Telemetry(s)
    start = default_start_exchange(s)
    req_headers = {"authorization": f"Bearer {KEY}", "cookie": "session=s3cr3t-cookie"}
    d = tel.begin(req_headers, {}, T0)
    x = start(RequestInfo("POST", "api.openai.com", "/v1/chat/completions", req_headers))
    x.on_request_body(json.dumps(request).encode(), True)
    x.on_response_headers(200, headers)
    first = T0 + 100_000_000
    x.on_response_body(response, True)
    tel.end(d, x.finish(), T0, T0 + 900_000_000, first, 200)
    return tel


REQUEST = {
    "model": "gpt-4o-mini",
    "stream": True,
    "messages": [
        {"role": "system", "content": f"Use api-key={KEY} for the lookup."},
        {"role": "user", "content": f"My header is Authorization: Bearer {KEY}, why 401?"},
    ],
}
STREAM = (
    b"".join(
        b"data: "
        + json.dumps({"choices": [{"index": 0, "delta": {"content": p}}]}).encode()
        + b"\n\n"
        for p in ["Your key ", KEY[:20], KEY[20:], " was revoked."]
    )
    + b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n'
    + b"data: [DONE]\n\n"
)
SSE = {"content-type": "text/event-stream"}


@pytest.mark.parametrize("mode", ["true", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT"])
def test_secrets_never_reach_the_exported_bytes(mode: str) -> None:
    tel = call(settings(mode), REQUEST, STREAM, SSE)
    raw = tel.exporter.request()  # type: ignore[attr-defined]
    assert KEY.encode() not in raw and KEY[:20].encode() not in raw
    assert b"s3cr3t-cookie" not in raw
    (span,) = tel.spans_for_test()
    a = attrs(span.attributes)
    on_span = mode in ("true", "SPAN_ONLY", "SPAN_AND_EVENT")
    on_event = mode in ("true", "EVENT_ONLY", "SPAN_AND_EVENT")
    assert (set(a) >= CONTENT_KEYS) is on_span
    assert bool(span.events) is on_event
    captured = a if on_span else attrs(span.events[0].attributes)
    system = json.loads(captured["gen_ai.system_instructions"])
    inputs = json.loads(captured["gen_ai.input.messages"])
    (out,) = json.loads(captured["gen_ai.output.messages"])
    assert system[0]["type"] == "text" and "[REDACTED]" in system[0]["content"]
    assert inputs[0]["role"] == "user" and "[REDACTED]" in inputs[0]["parts"][0]["content"]
    # the key streamed in two deltas was joined before masking, so it is masked whole
    assert out["parts"][0]["content"] == "Your key [REDACTED] was revoked."
    assert out["finish_reason"] == "stop"
    # and the request headers are nowhere, whatever the mode
    assert not any("authorization" in k or "cookie" in k for k in a)


def test_off_by_default_and_nothing_kept() -> None:
    s = settings(None)
    assert not capture_enabled(s)
    tel = call(s, REQUEST, STREAM, SSE)
    (span,) = tel.spans_for_test()
    assert not CONTENT_KEYS & set(attrs(span.attributes)) and not span.events
    raw = tel.exporter.request()  # type: ignore[attr-defined]
    assert b"revoked" not in raw and b"why 401" not in raw
    x = default_start_exchange(s)(RequestInfo("POST", "api.openai.com", "/v1/chat/completions"))
    assert x._cfg.capture_content is False


@pytest.mark.parametrize(
    ("mode", "overrides", "on"),
    [
        ("false", {}, False),
        ("NO_CONTENT", {}, False),
        ("true", {}, True),
        ("EVENT_ONLY", {}, True),
        ("true", {"tracing.enabled": "false"}, False),
        ("true", {"export.traces_exporter": "none"}, False),
    ],
)
def test_ext_captures_only_when_a_span_could_carry_it(
    mode: str, overrides: dict[str, str], on: bool
) -> None:
    s = settings(mode, **overrides)
    assert capture_enabled(s) is on
    x = default_start_exchange(s)(RequestInfo("POST", "api.openai.com", "/v1/chat/completions"))
    assert x._cfg.capture_content is on


def test_a_recorded_stream_end_to_end_with_its_chunk_count() -> None:
    ex = next(e for e in EXCHANGES if e.id == "openai_chat_completions/stream_no_usage_gpt35")
    s = settings("SPAN_ONLY")
    tel = Telemetry(s)
    d = tel.begin({}, {}, T0)
    x = default_start_exchange(s)(RequestInfo("POST", ex.meta["host"], ex.meta["url_path"]))
    x.on_request_body(ex.request, True)
    x.on_response_headers(200, {"content-type": "text/event-stream"})
    x.on_response_body(ex.response, True)
    rec = x.finish()
    tel.end(d, rec, T0, T0 + 2_100_000_000, T0 + 100_000_000, 200)
    (span,) = tel.spans_for_test()
    a = attrs(span.attributes)
    req = json.loads(ex.request)
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": req["messages"][0]["content"]}]}
    ]
    (out,) = json.loads(a["gen_ai.output.messages"])
    assert out["parts"][0]["content"].startswith("Why did the Opentelemetry developer")
    # time per output chunk: (end - first chunk) / (chunks - 1), one sample
    (series,) = tel.metrics.series()
    assert rec.output_chunks == 22
    assert series.tpoc.count == 1
    assert series.tpoc.sum == pytest.approx(2.0 / 21)


def test_long_recorded_content_is_cut_with_its_structure_kept() -> None:
    ex = next(e for e in EXCHANGES if e.id == "anthropic_messages/stream_cache_read")
    s = settings("SPAN_ONLY", **{"tracing.content_max_bytes": "700"})
    tel = Telemetry(s)
    d = tel.begin({}, {}, T0)
    x = default_start_exchange(s)(RequestInfo("POST", ex.meta["host"], ex.meta["url_path"]))
    x.on_request_body(ex.request, True)
    x.on_response_headers(200, {"content-type": "text/event-stream"})
    x.on_response_body(ex.response, True)
    tel.end(d, x.finish(), T0, T0 + 1_000_000_000, None, 200)
    (span,) = tel.spans_for_test()
    a = attrs(span.attributes)
    for key in CONTENT_KEYS:
        assert len(a[key].encode()) <= 700
    (msg,) = json.loads(a["gen_ai.input.messages"])  # long article: cut, still JSON
    assert msg["role"] == "user" and msg["parts"][0]["type"] == "text"
    assert msg["parts"][0]["content"].endswith("…")
    (out,) = json.loads(a["gen_ai.output.messages"])
    assert (out["role"], out["finish_reason"]) == ("assistant", "end_turn")
    assert out["parts"][0]["content"].startswith("Here are concise summaries")
