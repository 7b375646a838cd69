"""Exchange behaviour beyond the recorded corpus: errors inside 200 streams, cut-short
streams, first-output timing, secrets, semconv switches, Envoy usage, cost, bad input.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmtap.ext import CallRecord, EnvoyTokenUsage, RequestInfo, inspect_exchange, recognise
from llmtap.ext import cost as cost_mod

# Every test here runs on both core twins (tests/ext/conftest.py).
pytestmark = pytest.mark.usefixtures("core_twin")

SSE = {"content-type": "text/event-stream"}
JSON = {"content-type": "application/json"}


def sse(*events: Any, event: str | None = None) -> bytes:
    out = []
    for e in events:
        data = e if isinstance(e, str) else json.dumps(e)
        out.append((f"event: {event}\n" if event else "") + f"data: {data}\n\n")
    return "".join(out).encode()


def run(
    authority: str,
    path: str,
    status: int,
    headers: dict[str, str],
    chunks: list[bytes],
    request: dict[str, Any] | None = None,
    cut_short: str | None = None,
    eos: bool = True,
    request_headers: dict[str, str] | None = None,
) -> tuple[CallRecord, list[bool]]:
    ex = recognise(RequestInfo("POST", authority, path, request_headers or {}))
    if request is not None:
        ex.on_request_body(json.dumps(request).encode(), True)
    ex.on_response_headers(status, headers)
    flags = [ex.on_response_body(c, eos and i == len(chunks) - 1) for i, c in enumerate(chunks)]
    return ex.finish(cut_short), flags


OPENAI = ("api.openai.com", "/v1/chat/completions")


def chunk(i: int, **delta: Any) -> dict[str, Any]:
    return {
        "id": "c1",
        "model": "gpt-4o",
        "choices": [{"index": i, "delta": delta, "finish_reason": None}],
    }


def finish(i: int, reason: str) -> dict[str, Any]:
    return {
        "id": "c1",
        "model": "gpt-4o",
        "choices": [{"index": i, "delta": {}, "finish_reason": reason}],
    }


def test_first_output_is_reported_on_its_chunk() -> None:
    events = [
        sse(chunk(0, role="assistant", content="")),
        sse(chunk(0, content="Hel")),
        sse(chunk(0, content="lo")),
        sse(finish(0, "stop"), "[DONE]"),
    ]
    rec, flags = run(*OPENAI, 200, SSE, events, {"model": "gpt-4o", "stream": True})
    assert flags == [False, True, False, False]
    assert (rec.first_output_kind, rec.first_output_event) == ("text", 1)


def test_first_output_inside_a_split_event() -> None:
    body = sse(
        chunk(0, role="assistant"),
        chunk(0, tool_calls=[{"index": 0, "id": "t"}]),
        finish(0, "tool_calls"),
    )
    cut = body.index(b"tool_calls") + 3
    rec, flags = run(*OPENAI, 200, SSE, [body[:cut], body[cut:]])
    # the event completes in the second piece: that is where output "appeared"
    assert flags == [False, True]
    assert rec.first_output_kind == "tool_call"


def test_n_choices_interleaved_keep_index_order() -> None:
    body = sse(
        chunk(1, content="b"),
        chunk(0, content="a"),
        finish(1, "length"),
        finish(0, "stop"),
        "[DONE]",
    )
    rec, _ = run(*OPENAI, 200, SSE, [body])
    assert rec.finish_reasons == ["stop", "length"]


def test_reasoning_before_text() -> None:
    body = sse(
        chunk(0, reasoning_content="think"), chunk(0, content="answer"), finish(0, "stop"), "[DONE]"
    )
    rec, _ = run("api.deepseek.com", "/chat/completions", 200, SSE, [body])
    assert rec.first_output_kind == "reasoning"


def test_cut_short_stream() -> None:
    body = sse(chunk(0, content="Hel"), chunk(1, content="x"))
    rec, _ = run(*OPENAI, 200, SSE, [body], eos=False, cut_short="client_disconnect")
    assert rec.error_type == "client_disconnect"
    assert rec.finish_reasons == ["error", "error"]
    assert rec.status == ("ERROR", "response cut short: client_disconnect")
    assert rec.attributes()["error.type"] == "client_disconnect"


def test_hang_up_after_the_end_marker_is_not_a_cut() -> None:
    # The OpenAI SDK closes the connection once it reads [DONE]; Envoy may then reset
    # the stream before its end-of-stream message reaches llmtap.
    body = sse(chunk(0, content="Hel"), finish(0, "stop"), "[DONE]")
    rec, _ = run(*OPENAI, 200, SSE, [body], eos=False, cut_short="cancelled")
    assert rec.error_type is None and rec.finish_reasons == ["stop"]
    assert rec.status[0] == "UNSET"


def test_stream_that_stops_without_its_end_is_incomplete() -> None:
    body = sse(chunk(0, content="Hel"), finish(0, "stop"))[:-30]  # mid-event
    rec, _ = run(*OPENAI, 200, SSE, [body])
    assert (rec.error_type, rec.cut_short) == ("incomplete", "incomplete")
    # whole events, but no [DONE] and no finish_reason: also incomplete
    rec, _ = run(*OPENAI, 200, SSE, [sse(chunk(0, content="Hel"))])
    assert rec.error_type == "incomplete" and rec.finish_reasons == ["error"]
    # a truncated plain JSON body
    rec, _ = run(*OPENAI, 200, JSON, [b'{"id": "c1", "model": "gpt-4o", "choices": [{"fin'])
    assert rec.error_type == "incomplete"


def test_body_never_sent_gets_no_incomplete_verdict() -> None:
    # Envoy-assisted mode: the gateway told Envoy to skip the body and reads usage
    # from the synthesized trailers instead; a missing body is not a cut stream.
    ex = recognise(RequestInfo("POST", "api.openai.com", "/v1/chat/completions", {}, "https"))
    ex.on_request_body(b'{"model": "gpt-4o", "stream": true}', True)
    ex.on_response_headers(200, SSE)
    ex.apply_token_usage(EnvoyTokenUsage(model="gpt-4o-2024", input_tokens=11, output_tokens=7))
    rec = ex.finish(None)
    assert rec.error_type is None and rec.cut_short is None
    assert (rec.input_tokens, rec.output_tokens, rec.response_model) == (11, 7, "gpt-4o-2024")
    assert rec.status[0] == "UNSET"


def test_anthropic_error_event_inside_a_200_stream() -> None:
    body = sse(
        {
            "type": "message_start",
            "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 5}},
        },
        event="message_start",
    ) + sse(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        event="error",
    )
    rec, _ = run("api.anthropic.com", "/v1/messages", 200, SSE, [body])
    assert rec.error_type == "overloaded_error"
    assert rec.status == ("ERROR", "Overloaded")
    assert rec.finish_reasons == ["error"]
    assert rec.cut_short is None  # the provider ended the stream
    assert rec.response_id == "msg_1" and rec.input_tokens == 5


def test_groq_error_event_inside_a_200_stream() -> None:
    body = sse(chunk(0, role="assistant")) + sse(
        {
            "error": {
                "message": "Tool call validation failed",
                "type": "invalid_request_error",
                "code": "tool_use_failed",
            }
        },
        event="error",
    )
    rec, _ = run("api.groq.com", "/openai/v1/chat/completions", 200, SSE, [body])
    assert rec.error_type == "tool_use_failed"
    assert rec.finish_reasons == ["error"]


def test_openai_error_data_without_event_name() -> None:
    body = sse({"error": {"message": "boom", "type": "server_error", "code": None}})
    rec, _ = run(*OPENAI, 200, SSE, [body])
    assert rec.error_type == "server_error"


def test_responses_failed_event() -> None:
    body = sse(
        {
            "type": "response.created",
            "response": {"id": "resp_1", "model": "gpt-5", "status": "in_progress"},
        },
        {
            "type": "response.failed",
            "response": {
                "id": "resp_1",
                "model": "gpt-5",
                "status": "failed",
                "error": {"code": "server_error", "message": "The model failed"},
            },
        },
    )
    rec, _ = run("api.openai.com", "/v1/responses", 200, SSE, [body])
    assert rec.error_type == "server_error"
    assert rec.finish_reasons == ["failed"]
    assert rec.status == ("ERROR", "The model failed")


def test_responses_incomplete_reports_the_reason() -> None:
    body = sse(
        {
            "type": "response.incomplete",
            "response": {
                "id": "r",
                "status": "incomplete",
                "incomplete_details": {"reason": "max_output_tokens"},
                "usage": {"input_tokens": 3, "output_tokens": 9},
            },
        }
    )
    rec, _ = run("api.openai.com", "/v1/responses", 200, SSE, [body])
    assert rec.error_type is None
    assert rec.finish_reasons == ["max_output_tokens"]
    assert (rec.input_tokens, rec.output_tokens) == (3, 9)


def test_ollama_error_line() -> None:
    body = b'{"model":"llama3","message":{"content":"a"},"done":false}\n{"error":"model crashed"}\n'
    rec, _ = run(
        "localhost:11434", "/api/chat", 200, {"content-type": "application/x-ndjson"}, [body]
    )
    assert rec.error_type == "stream_error"
    assert rec.status == ("ERROR", "model crashed")


def test_gemini_error_on_a_stream_request_is_plain_json() -> None:
    body = json.dumps(
        {"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}},
        indent=2,
    )
    rec, _ = run(
        "generativelanguage.googleapis.com",
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        429,
        {"content-type": "text/event-stream"},
        [body.encode()],
    )
    assert rec.error_type == "RESOURCE_EXHAUSTED"
    assert rec.scan_error is None
    assert rec.finish_reasons is None


def test_error_without_a_provider_code_uses_the_status() -> None:
    rec, _ = run(*OPENAI, 502, {"content-type": "text/html"}, [b"<html>Bad gateway</html>"])
    assert rec.error_type == "502"
    assert rec.scan_error and "offset 0" in rec.scan_error


def _es_message(headers: dict[str, str], payload: bytes) -> bytes:
    hb = b"".join(
        bytes([len(k)]) + k.encode() + b"\x07" + struct.pack(">H", len(v)) + v.encode()
        for k, v in headers.items()
    )
    total = 12 + len(hb) + len(payload) + 4
    prelude = struct.pack(">II", total, len(hb))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    msg = prelude + hb + payload
    return msg + struct.pack(">I", binascii.crc32(msg))


def test_bedrock_exception_inside_a_200_stream() -> None:
    start = _es_message(
        {
            ":event-type": "messageStart",
            ":content-type": "application/json",
            ":message-type": "event",
        },
        b'{"role":"assistant"}',
    )
    exc = _es_message(
        {
            ":exception-type": "throttlingException",
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        b'{"message":"Too many requests"}',
    )
    rec, _ = run(
        "bedrock-runtime.us-east-1.amazonaws.com",
        "/model/amazon.nova-lite-v1%3A0/converse-stream",
        200,
        {"content-type": "application/vnd.amazon.eventstream", "x-amzn-requestid": "req-1"},
        [start + exc],
    )
    assert rec.error_type == "throttlingException"
    assert rec.finish_reasons == ["error"]
    assert rec.aws_request_id == "req-1"


def test_bedrock_invoke_stream_base64_chunks() -> None:
    def chunk_msg(obj: dict[str, Any]) -> bytes:
        payload = json.dumps(
            {"bytes": base64.b64encode(json.dumps(obj).encode()).decode(), "p": "abc"}
        )
        return _es_message({":event-type": "chunk", ":message-type": "event"}, payload.encode())

    body = b"".join(
        chunk_msg(o)
        for o in [
            {
                "type": "message_start",
                "message": {"id": "m1", "model": "claude-3", "usage": {"input_tokens": 4}},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hi"},
            },
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 2},
            },
            {
                "type": "message_stop",
                "amazon-bedrock-invocationMetrics": {"inputTokenCount": 4, "outputTokenCount": 2},
            },
        ]
    )
    rec, flags = run(
        "bedrock-runtime.us-east-1.amazonaws.com",
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke-with-response-stream",
        200,
        {"content-type": "application/vnd.amazon.eventstream"},
        [body[:50], body[50:]],
    )
    assert (rec.response_id, rec.response_model, rec.input_tokens, rec.output_tokens) == (
        "m1",
        "claude-3",
        4,
        2,
    )
    assert rec.finish_reasons == ["end_turn"] and rec.error_type is None
    assert flags == [False, True]


def test_bedrock_token_headers_when_the_body_has_none() -> None:
    rec, _ = run(
        "bedrock-runtime.us-east-1.amazonaws.com",
        "/model/cohere.command-text-v14/invoke",
        200,
        {
            "content-type": "application/json",
            "x-amzn-bedrock-input-token-count": "10",
            "x-amzn-bedrock-output-token-count": "20",
            "x-amzn-bedrock-cache-read-input-token-count": "5",
        },
        [b'{"generations": [{"text": "hi", "finish_reason": "COMPLETE"}]}'],
    )
    assert (rec.input_tokens, rec.output_tokens, rec.cache_read_tokens) == (15, 20, 5)
    assert rec.finish_reasons == ["COMPLETE"]


SECRETS = {
    "authorization": "Bearer sk-proj-SECRET123456",
    "api-key": "azure-SECRET-key",
    "x-api-key": "sk-ant-SECRET",
    "x-goog-api-key": "AIzaSECRETSECRETSECRET",
    "cookie": "session=SECRET",
    "x-llmtap-provider": "openai",
}


def test_secrets_never_reach_attributes() -> None:
    body = sse(chunk(0, content="hi"), finish(0, "stop"), "[DONE]")
    rec, _ = run(*OPENAI, 200, SSE, [body], {"model": "gpt-4o"}, request_headers=SECRETS)
    err, _ = run(
        *OPENAI,
        401,
        JSON,
        [
            json.dumps(
                {
                    "error": {
                        "message": "Incorrect API key provided: sk-proj-SECRET123456.",
                        "code": "invalid_api_key",
                    }
                }
            ).encode()
        ],
        request_headers=SECRETS,
    )
    for r in (rec, err):
        dump = json.dumps([r.attributes(), r.attributes(semconv_latest=True), r.status])
        assert "SECRET" not in dump
    assert err.status[1] == "Incorrect API key provided: [redacted]"


def test_semconv_latest_names() -> None:
    body = json.dumps(
        {
            "id": "msg",
            "model": "claude-x",
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": 3,
                "cache_read_input_tokens": 10,
                "cache_creation_input_tokens": 20,
                "output_tokens": 5,
            },
        }
    ).encode()
    rec, _ = run("api.anthropic.com", "/v1/messages", 200, JSON, [body])
    default, latest = rec.attributes(), rec.attributes(semconv_latest=True)
    assert default["gen_ai.usage.input_tokens"] == 33
    assert default["gen_ai.usage.cache_creation.input_tokens"] == 20
    assert "gen_ai.usage.cache_write.input_tokens" not in default
    assert latest["gen_ai.usage.cache_write.input_tokens"] == 20
    assert "gen_ai.usage.cache_creation.input_tokens" not in latest
    assert latest["gen_ai.usage.cache_read.input_tokens"] == 10


def test_audio_tokens_only_in_latest() -> None:
    body = json.dumps(
        {
            "id": "c",
            "model": "gpt-4o-audio",
            "choices": [
                {
                    "index": 0,
                    "message": {"content": None, "audio": {"id": "a"}},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": 50,
                "prompt_tokens_details": {"audio_tokens": 4},
                "completion_tokens_details": {"audio_tokens": 40},
            },
        }
    ).encode()
    rec, _ = run(*OPENAI, 200, JSON, [body])
    assert "gen_ai.usage.audio.input_tokens" not in rec.attributes()
    latest = rec.attributes(semconv_latest=True)
    assert (
        latest["gen_ai.usage.audio.input_tokens"],
        latest["gen_ai.usage.audio.output_tokens"],
    ) == (4, 40)


def test_openai_attributes_only_for_openai_providers() -> None:
    body = json.dumps(
        {
            "id": "c",
            "model": "m",
            "system_fingerprint": "fp_1",
            "service_tier": "on_demand",
            "choices": [],
        }
    ).encode()
    groq, _ = run("api.groq.com", "/openai/v1/chat/completions", 200, JSON, [body])
    oai, _ = run(*OPENAI, 200, JSON, [body])
    assert not any(k.startswith("openai.") for k in groq.attributes())
    assert oai.attributes()["openai.response.system_fingerprint"] == "fp_1"
    assert oai.attributes()["openai.response.service_tier"] == "on_demand"


def test_envoy_token_usage_overrides() -> None:
    ex = recognise(RequestInfo("POST", *OPENAI))
    ex.on_response_headers(200, JSON)
    ex.on_response_body(
        b'{"id":"c","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}',
        True,
    )
    ex.apply_token_usage(EnvoyTokenUsage(input_tokens=100, cached_input_tokens=40, output_tokens=7))
    rec = ex.finish()
    assert (rec.input_tokens, rec.cache_read_tokens, rec.output_tokens) == (100, 40, 7)
    # assisted mode without response headers: Envoy's status decides the outcome
    ex = recognise(RequestInfo("POST", *OPENAI))
    ex.apply_token_usage(
        EnvoyTokenUsage(model="gpt-4o", input_tokens=3, output_tokens=4, status=200)
    )
    rec = ex.finish()
    assert rec.error_type is None and rec.response_model == "gpt-4o" and rec.http_status == 200


def test_no_response_at_all() -> None:
    ex = recognise(RequestInfo("POST", *OPENAI))
    assert ex.finish("timeout").error_type == "timeout"
    assert recognise(RequestInfo("POST", *OPENAI)).finish().error_type == "no_response"


def test_finish_is_idempotent_and_late_calls_are_ignored() -> None:
    ex = recognise(RequestInfo("POST", *OPENAI))
    ex.on_response_headers(200, SSE)
    ex.on_response_body(sse(chunk(0, content="a"), finish(0, "stop"), "[DONE]"), True)
    r1 = ex.finish()
    assert ex.finish("client_disconnect") is r1 and r1.error_type is None


def test_unsupported_content_encoding_is_noted_not_raised() -> None:
    rec, flags = run(
        *OPENAI,
        200,
        {"content-type": "application/json", "content-encoding": "compress"},
        [b"\x1f\x9d"],
    )
    assert flags == [False]
    assert rec.scan_error and "compress" in rec.scan_error
    assert rec.error_type is None


def test_gzip_stream_split_anywhere() -> None:
    body = gzip.compress(sse(chunk(0, content="Hel"), finish(0, "stop"), "[DONE]"))
    pieces = [body[i : i + 3] for i in range(0, len(body), 3)]
    rec, flags = run(*OPENAI, 200, {**SSE, "content-encoding": "gzip"}, pieces)
    assert rec.finish_reasons == ["stop"] and sum(flags) == 1 and rec.error_type is None


def test_cost_priced_per_token_kind() -> None:
    body = json.dumps(
        {
            "id": "c",
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [],
            "usage": {
                "prompt_tokens": 1000,
                "completion_tokens": 100,
                "prompt_tokens_details": {"cached_tokens": 500},
            },
        }
    ).encode()
    rec, _ = run(*OPENAI, 200, JSON, [body])
    # gpt-4o-mini: $0.15/MTok input, $0.075 cached input, $0.60 output
    assert rec.cost_usd == pytest.approx((500 * 0.15 + 500 * 0.075 + 100 * 0.6) / 1e6)
    assert rec.attributes()["llmtap.usage.cost_usd"] == rec.cost_usd


def test_cost_unknown_model_or_failure_is_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    body = json.dumps(
        {
            "id": "c",
            "model": "no-such-model-xyz",
            "choices": [],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1},
        }
    )
    rec, _ = run(*OPENAI, 200, JSON, [body.encode()])
    assert rec.cost_usd is None and "llmtap.usage.cost_usd" not in rec.attributes()

    def boom(*a: Any, **k: Any) -> Any:
        raise RuntimeError("prices broke")

    monkeypatch.setattr(cost_mod, "_cache", {})
    monkeypatch.setattr("genai_prices.data_snapshot.get_snapshot", boom)
    assert cost_mod.cost_usd("openai", "gpt-4o", 10, 10) is None


def test_inspect_exchange_shape() -> None:
    out = inspect_exchange(
        "POST",
        "https://api.openai.com/v1/chat/completions?x=1",
        200,
        {"Content-Type": "text/event-stream"},
        b'{"model": "gpt-4o", "stream": true}',
        [sse(chunk(0, content="a")), sse(finish(0, "stop"), "[DONE]")],
        {"Authorization": "Bearer sk-SECRET"},
    )
    assert set(out) == {"name", "kind", "status", "attributes"}
    assert out["name"] == "chat gpt-4o" and out["kind"] == "CLIENT"
    assert out["status"] == {"code": "UNSET", "description": None}
    assert out["attributes"]["gen_ai.response.finish_reasons"] == ["stop"]
    assert "SECRET" not in json.dumps(out)


FAMILY_URLS = [
    ("api.openai.com", "/v1/chat/completions", "text/event-stream"),
    ("api.openai.com", "/v1/responses", "application/json"),
    ("api.anthropic.com", "/v1/messages", "text/event-stream"),
    (
        "generativelanguage.googleapis.com",
        "/v1beta/models/m:streamGenerateContent",
        "application/json",
    ),
    (
        "bedrock-runtime.us-east-1.amazonaws.com",
        "/model/m/invoke-with-response-stream",
        "application/vnd.amazon.eventstream",
    ),
    ("localhost:11434", "/api/generate", "application/x-ndjson"),
    ("api.cohere.com", "/v2/chat", ""),
    ("example.com", "/v1/chatbot", "text/event-stream"),
]


@settings(
    max_examples=150,
    deadline=None,
    # the twin fixture holds no per-example state
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    which=st.sampled_from(FAMILY_URLS),
    status=st.sampled_from([200, 200, 400, 500]),
    request=st.binary(max_size=200),
    pieces=st.lists(st.binary(max_size=64), max_size=8),
    cut=st.sampled_from([None, "stream_reset"]),
)
def test_garbage_never_raises(
    which: tuple[str, str, str], status: int, request: bytes, pieces: list[bytes], cut: str | None
) -> None:
    host, path, ctype = which
    ex = recognise(RequestInfo("POST", host, path))
    ex.on_request_body(request, True)
    ex.on_response_headers(status, {"content-type": ctype})
    started = sum(ex.on_response_body(p, i == len(pieces) - 1) for i, p in enumerate(pieces))
    rec = ex.finish(cut)
    assert started <= 1
    attrs = rec.attributes()
    assert attrs["gen_ai.provider.name"] == rec.provider
    if status != 200 or cut:
        assert rec.error_type is not None


def test_cohere_cost_prices_billed_units() -> None:
    body = json.dumps(
        {
            "id": "x",
            "finish_reason": "COMPLETE",
            "message": {"content": [{"type": "text", "text": "hi"}]},
            "usage": {
                "billed_units": {"input_tokens": 10, "output_tokens": 5},
                "tokens": {"input_tokens": 70, "output_tokens": 6},
            },
        }
    ).encode()
    rec, _ = run("api.cohere.com", "/v2/chat", 200, JSON, [body], {"model": "command-r"})
    assert (rec.input_tokens, rec.output_tokens) == (70, 6)
    assert rec.cost_usd == pytest.approx(cost_mod.cost_usd("cohere", "command-r", 10, 5))
