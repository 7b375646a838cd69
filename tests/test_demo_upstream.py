"""The demo's synthetic provider against real recordings: same framing, same event
sequence, usage in the same place, the same field names; parsed by llmtap's own framers,
then served over HTTP with live-model pacing and read back by the official SDKs."""

from __future__ import annotations

import gzip
import http.client
import json
import time
from collections.abc import Callable
from itertools import groupby, pairwise
from typing import Any

import pytest
from recorded import FIXTURES, Exchange

from llmtap.core.framing import EventStreamFramer, JSONArrayFramer, NDJSONFramer, SSEFramer
from llmtap.gateway.demo.httpserver import HttpServer, Request
from llmtap.gateway.demo.upstream import DemoUpstream, Timing, synthesize

PROMPT = [{"role": "user", "content": "Say something about tracing LLM calls, please."}]


def _fixture(name: str) -> Exchange:
    return Exchange(FIXTURES / name)


def _body(ex: Exchange) -> bytes:
    gz = ex.response_gz
    return gzip.decompress(gz) if gz is not None else ex.response


# -- frames and documents -------------------------------------------------------------------


def _frames(framing: str, body: bytes) -> list[tuple[str | None, Any]]:
    """``(name, document)`` per frame; the framer must finish clean."""
    framer: Any = {
        "sse": SSEFramer,
        "ndjson": NDJSONFramer,
        "json_array": JSONArrayFramer,
        "eventstream": EventStreamFramer,
    }[framing]()
    frames = framer.feed(body) + framer.close()
    assert framer.error is None
    assert not framer.truncated
    out: list[tuple[str | None, Any]] = []
    for f in frames:
        if framing == "sse":
            data = bytes(f.data)
            out.append((f.event, "[DONE]" if data == b"[DONE]" else json.loads(data)))
        elif framing == "eventstream":
            assert f.error is None, f.error
            assert f.message_type == "event"
            out.append((f.event_type, json.loads(bytes(f.payload))))
        else:
            out.append((None, json.loads(bytes(f))))
    return out


def _text(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def _obj(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _tags(doc: Any) -> frozenset[str]:
    """Which of output / usage / finish a provider document carries (any family)."""
    if not isinstance(doc, dict):
        return frozenset({"done"})
    tags = set()
    choices = doc.get("choices") or []
    for c in choices:
        if _text(_obj(c.get("delta")).get("content")):
            tags.add("output")
        if c.get("finish_reason"):
            tags.add("finish")
    for cand in doc.get("candidates") or []:
        if any(_text(p.get("text")) for p in cand.get("content", {}).get("parts", [])):
            tags.add("output")
        if cand.get("finishReason"):
            tags.add("finish")
    kind = doc.get("type")
    if kind in ("response.output_text.delta", "content-delta") or (
        kind == "content_block_delta" and _text(_obj(doc.get("delta")).get("text"))
    ):
        tags.add("output")
    if _text(_obj(doc.get("delta")).get("text")) and "contentBlockIndex" in doc:
        tags.add("output")  # Bedrock contentBlockDelta
    ollama_text = _text(_obj(doc.get("message")).get("content")) or _text(doc.get("response"))
    if ollama_text and "done" in doc:
        tags.add("output")
    usage = (
        doc.get("usage")
        or _obj(doc.get("x_groq")).get("usage")
        or _obj(doc.get("response")).get("usage")
        or _obj(doc.get("message")).get("usage")
        or _obj(doc.get("delta")).get("usage")
        or doc.get("usageMetadata")
        or doc.get("eval_count")
    )
    if usage:
        tags.add("usage")
    if (
        doc.get("stopReason")
        or _obj(doc.get("delta")).get("stop_reason")
        or _obj(doc.get("delta")).get("finish_reason")
        or doc.get("done_reason")
        or kind == "response.completed"
    ):
        tags.add("finish")
    return frozenset(tags)


def _collapse(seq: list[Any]) -> list[Any]:
    return [k for k, _ in groupby(seq)]


def _key_paths(v: Any, prefix: str = "") -> set[str]:
    if isinstance(v, dict):
        out = set()
        for k, x in v.items():
            p = f"{prefix}.{k}" if prefix else k
            out.add(p)
            out |= _key_paths(x, p)
        return out
    if isinstance(v, list):
        return set().union(*(_key_paths(x, prefix + "[*]") for x in v)) if v else set()
    return set()


def _usage_paths(doc: Any) -> set[str]:
    words = ("usage", "Usage", "token", "Token", "eval_count", "eval_duration")
    return {p for p in _key_paths(doc) if any(w in p for w in words)}


class Shape:
    """What a stream looks like, independent of its words."""

    def __init__(self, framing: str, body: bytes) -> None:
        self.frames = _frames(framing, body)
        self.signature = [(name, _tags(doc)) for name, doc in self.frames]
        with_output = [i for i, (_, t) in enumerate(self.signature) if "output" in t]
        with_usage = [i for i, (_, t) in enumerate(self.signature) if "usage" in t]
        self.first_output = with_output[0] if with_output else None
        self.usage_index = with_usage[-1] if with_usage else None
        self.usage_from_end = len(self.frames) - self.usage_index if with_usage else None
        self.names = _collapse([n for n, _ in self.frames])
        self.keysets = {frozenset(d) for _, d in self.frames if isinstance(d, dict)}
        self.usage_doc = self.frames[self.usage_index][1] if with_usage else None


def _synth(path: str, body: dict[str, Any], host: str = "") -> tuple[str, Any]:
    family, reply = synthesize(Request("POST", path, {"host": host}, json.dumps(body).encode()))
    return family, reply


STREAMS = [
    # id, path, host, request body, framing, recording, keys recording (or None = same)
    (
        "openai-chat",
        "/v1/chat/completions",
        "api.openai.com",
        {"model": "gpt-4o-mini", "messages": PROMPT, "stream": True}
        | {"stream_options": {"include_usage": True}},
        "sse",
        "openai_chat_completions/stream_include_usage_gpt4",
        "openai_chat_completions/stream_include_usage_reasoning_gpt5nano",
    ),
    (
        "mistral-chat",
        "/v1/chat/completions",
        "api.mistral.ai",
        {"model": "mistral-small-latest", "messages": PROMPT, "stream": True},
        "sse",
        "mistral/chat_stream",
        None,
    ),
    (
        "groq-chat",
        "/openai/v1/chat/completions",
        "api.groq.com",
        {"model": "llama3-8b-8192", "messages": PROMPT, "stream": True},
        "sse",
        "groq/chat_stream_x_groq_usage",
        None,
    ),
    (
        "openai-responses",
        "/v1/responses",
        "api.openai.com",
        {"model": "gpt-4.1-nano", "input": "Say hi", "stream": True},
        "sse",
        "openai_responses/stream_basic",
        None,
    ),
    (
        "anthropic-messages",
        "/v1/messages",
        "api.anthropic.com",
        {"model": "claude-3-haiku-20240307", "max_tokens": 100, "messages": PROMPT, "stream": True},
        "sse",
        "anthropic_messages/stream_basic",
        None,
    ),
    (
        "cohere-chat",
        "/v2/chat",
        "api.cohere.com",
        {"model": "command-r", "messages": PROMPT, "stream": True},
        "sse",
        "cohere/v2_chat_stream",
        None,
    ),
    (
        "gemini-sse",
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        "generativelanguage.googleapis.com",
        {"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]},
        "sse",
        "gemini/stream_sse_basic",
        None,
    ),
    (
        "gemini-json-array",
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        "generativelanguage.googleapis.com",
        {"contents": [{"role": "user", "parts": [{"text": "Say hi"}]}]},
        "json_array",
        "gemini/stream_jsonarray_gzip_thoughts",
        None,
    ),
    (
        "bedrock-converse-stream",
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream",
        "bedrock-runtime.us-east-1.amazonaws.com",
        {"messages": [{"role": "user", "content": [{"text": "Say hi"}]}]},
        "eventstream",
        "bedrock/converse_stream_claude_haiku_long",
        None,
    ),
    (
        "ollama-chat",
        "/api/chat",
        "127.0.0.1:11434",
        {"model": "llama3", "messages": PROMPT},
        "ndjson",
        "ollama_native/chat_stream_ndjson",
        None,
    ),
    (
        "ollama-generate",
        "/api/generate",
        "127.0.0.1:11434",
        {"model": "llama3", "prompt": "Say hi"},
        "ndjson",
        "ollama_native/generate_stream_ndjson",
        None,
    ),
]


@pytest.mark.parametrize(
    ("path", "host", "body", "framing", "recording", "keys_recording"),
    [s[1:] for s in STREAMS],
    ids=[s[0] for s in STREAMS],
)
def test_stream_shape_matches_recording(
    path: str,
    host: str,
    body: dict[str, Any],
    framing: str,
    recording: str,
    keys_recording: str | None,
) -> None:
    ex = _fixture(recording)
    _, reply = _synth(path, body, host)
    assert reply.status == 200 and reply.stream
    mine = Shape(framing, b"".join(reply.pieces))
    real = Shape(framing, _body(ex))

    # The tagger reads the recording the way its metadata says it should.
    stats = ex.meta["expected"]["stream"]
    assert real.first_output == stats["first_output_event_index"]
    assert real.usage_index == stats["usage_event_index"]

    assert mine.first_output == real.first_output
    assert mine.usage_from_end == real.usage_from_end
    assert mine.names == real.names
    if framing != "json_array":  # the recorded array ends on an empty thought-signature part
        assert _collapse(mine.signature) == _collapse(real.signature)
    keys = Shape(framing, _body(_fixture(keys_recording))) if keys_recording else real
    missing_usage = _usage_paths(keys.usage_doc) - _usage_paths(mine.usage_doc)
    extra_usage = _usage_paths(mine.usage_doc) - _usage_paths(keys.usage_doc)
    assert not missing_usage and not extra_usage
    if recording == "ollama_native/generate_stream_ndjson":
        # The recorded final line also carries the token "context"; llmtap does not read it.
        assert all(any(m <= k for k in keys.keysets) for m in mine.keysets)
    else:
        assert mine.keysets == keys.keysets

    content_type = ex.header("content-type")
    if content_type:
        assert reply.content_type.lower() == content_type.lower()


def test_gemini_json_array_layout_matches_recording() -> None:
    _, reply = _synth(
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
        {"contents": [{"parts": [{"text": "Say hi, in many words please"}]}]},
    )
    mine = b"".join(reply.pieces)
    real = _body(_fixture("gemini/stream_jsonarray_gzip_thoughts"))
    for body in (mine, real):
        assert body.startswith(b"[{\n  ")
        assert body.endswith(b"}\n]")
        assert body.count(b"\n,\r\n") == body.count(b'"modelVersion"') - 1


def test_gemini_sse_uses_crlf_like_the_recording() -> None:
    _, reply = _synth("/v1beta/models/g:streamGenerateContent?alt=sse", {"contents": []})
    real = _body(_fixture("gemini/stream_sse_basic"))
    for body in (b"".join(reply.pieces), real):
        assert body.endswith(b"\r\n\r\n")
        assert body.count(b"\r\n\r\n") == body.count(b"data: ")


def test_anthropic_pads_json_like_the_service() -> None:
    _, reply = _synth("/v1/messages", {"model": "m", "messages": PROMPT, "stream": True})
    padded = [p for p in reply.pieces if b" }\n\n" in p]
    assert padded, "the real stream pads most data lines before their last brace"
    assert b'data: {"type": "ping"}\n' in b"".join(reply.pieces)


NONSTREAM = [
    # id, path, host, request body, recording, fields llmtap reads for usage
    (
        "openai-chat",
        "/v1/chat/completions",
        "api.openai.com",
        {"model": "gpt-4o-mini", "messages": PROMPT},
        "openai_chat_completions/reasoning_tokens_nonstream_gzip",
        [
            "usage.prompt_tokens",
            "usage.completion_tokens",
            "usage.total_tokens",
            "usage.prompt_tokens_details.cached_tokens",
            "usage.completion_tokens_details.reasoning_tokens",
        ],
    ),
    (
        "openai-responses",
        "/v1/responses",
        "api.openai.com",
        {"model": "gpt-4.1-nano", "input": "hi"},
        "openai_responses/basic_nonstream_gzip",
        [
            "usage.input_tokens",
            "usage.output_tokens",
            "usage.total_tokens",
            "usage.input_tokens_details.cached_tokens",
            "usage.output_tokens_details.reasoning_tokens",
        ],
    ),
    (
        "openai-embeddings",
        "/v1/embeddings",
        "api.openai.com",
        {"model": "text-embedding-ada-002", "input": "hi", "encoding_format": "base64"},
        "openai_embeddings/base64_single_gzip",
        ["usage.prompt_tokens", "usage.total_tokens"],
    ),
    (
        "anthropic",
        "/v1/messages",
        "api.anthropic.com",
        {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": PROMPT},
        "anthropic_messages/nonstream_multiple_tool_use",
        [
            "usage.input_tokens",
            "usage.output_tokens",
            "usage.cache_read_input_tokens",
            "usage.cache_creation_input_tokens",
        ],
    ),
    (
        "gemini",
        "/v1beta/models/gemini-2.0-flash:generateContent",
        "generativelanguage.googleapis.com",
        {"contents": [{"parts": [{"text": "hi"}]}]},
        "gemini/nonstream_basic",
        [
            "usageMetadata.promptTokenCount",
            "usageMetadata.candidatesTokenCount",
            "usageMetadata.totalTokenCount",
        ],
    ),
    (
        "gemini-thinking",
        "/v1beta/models/gemini-2.5-flash:generateContent",
        "generativelanguage.googleapis.com",
        {"contents": [{"parts": [{"text": "hi"}]}]},
        "gemini/nonstream_thoughts_tokens",
        [
            "usageMetadata.promptTokenCount",
            "usageMetadata.candidatesTokenCount",
            "usageMetadata.totalTokenCount",
            "usageMetadata.thoughtsTokenCount",
        ],
    ),
    (
        "bedrock-converse",
        "/model/amazon.nova-lite-v1%3A0/converse",
        "bedrock-runtime.us-east-1.amazonaws.com",
        {"messages": []},
        "bedrock/converse_claude_cross_region_cache_fields",
        ["usage.inputTokens", "usage.outputTokens", "usage.totalTokens"],
    ),
    (
        "ollama-chat",
        "/api/chat",
        "127.0.0.1:11434",
        {"model": "llama3", "messages": PROMPT, "stream": False},
        "ollama_native/chat_nonstream",
        ["prompt_eval_count", "eval_count", "eval_duration"],
    ),
    (
        "cohere",
        "/v2/chat",
        "api.cohere.com",
        {"model": "command-r", "messages": PROMPT},
        "cohere/v2_chat_tool_calls_nonstream",
        [
            "usage.tokens.input_tokens",
            "usage.tokens.output_tokens",
            "usage.billed_units.input_tokens",
            "usage.billed_units.output_tokens",
        ],
    ),
    (
        "groq",
        "/openai/v1/chat/completions",
        "api.groq.com",
        {"model": "llama3-8b-8192", "messages": PROMPT},
        "groq/chat_nonstream_gzip",
        ["usage.prompt_tokens", "usage.completion_tokens", "usage.total_tokens"],
    ),
    (
        "mistral",
        "/v1/chat/completions",
        "api.mistral.ai",
        {"model": "mistral-tiny", "messages": PROMPT},
        "mistral/chat_nonstream_gzip",
        ["usage.prompt_tokens", "usage.completion_tokens", "usage.total_tokens"],
    ),
]


@pytest.mark.parametrize(
    ("path", "host", "body", "recording", "required"),
    [s[1:] for s in NONSTREAM],
    ids=[s[0] for s in NONSTREAM],
)
def test_json_body_matches_recording(
    path: str, host: str, body: dict[str, Any], recording: str, required: list[str]
) -> None:
    ex = _fixture(recording)
    _, reply = _synth(path, body, host)
    assert reply.status == 200 and not reply.stream and len(reply.pieces) == 1
    mine, real = reply.pieces[0], _body(ex)
    mine_doc, real_doc = json.loads(mine), json.loads(real)
    assert set(mine_doc) <= set(real_doc)
    assert _usage_paths(mine_doc) <= _usage_paths(real_doc)
    assert set(required) <= _key_paths(real_doc), "the recording itself has these"
    assert set(required) <= _key_paths(mine_doc)
    if ex.meta["body_fidelity"] == "exact":
        assert mine.startswith(b"{\n  ") == real.startswith(b"{\n  ")
    content_type = ex.header("content-type")
    if content_type:
        assert reply.content_type.split(";")[0] == content_type.split(";")[0].lower()


def test_one_frame_per_piece() -> None:
    """Each body piece is a whole frame, so Envoy forwards one event per body message."""
    for path, host, body, framing, *_ in (s[1:] for s in STREAMS):
        if framing == "json_array":
            continue
        _, reply = _synth(path, body, host)
        framer: Any = {"sse": SSEFramer, "ndjson": NDJSONFramer, "eventstream": EventStreamFramer}[
            framing
        ]()
        for piece in reply.pieces:
            assert len(framer.feed(piece)) == 1, (path, piece[:80])


def test_bedrock_eventstream_crcs_are_checked() -> None:
    _, reply = _synth("/model/m/converse-stream", {"messages": []})
    body = bytearray(b"".join(reply.pieces))
    body[len(reply.pieces[0]) - 1] ^= 0xFF  # break the first message's CRC
    frames = EventStreamFramer().feed(bytes(body))
    assert frames[0].error is not None
    assert all(f.error is None for f in frames[1:])


def test_errors_are_provider_shaped() -> None:
    def forced(path: str, host: str = "") -> tuple[int, Any, dict[str, str]]:
        req = Request("POST", path, {"host": host, "x-demo-status": "429"}, b"{}")
        _, reply = synthesize(req)
        return reply.status, json.loads(reply.pieces[0]), dict(reply.headers)

    status, doc, _ = forced("/v1/chat/completions")
    assert status == 429 and doc["error"]["code"] == "rate_limit_exceeded"
    assert forced("/v1/messages")[1] == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "demo upstream: forced 429"},
    }
    assert forced("/v1beta/models/g:generateContent")[1]["error"]["status"] == (
        "RESOURCE_EXHAUSTED"
    )
    _, doc, headers = forced("/model/m/converse")
    assert doc == {"message": "demo upstream: forced 429"}
    assert headers["x-amzn-ErrorType"] == "ThrottlingException:"
    assert synthesize(Request("POST", "/nope", {}, b""))[1].status == 404
    assert synthesize(Request("GET", "/v1/messages", {}, b""))[1].status == 405


def test_max_tokens_bounds_the_output() -> None:
    _, reply = _synth("/v1/messages", {"model": "m", "messages": PROMPT, "max_tokens": 3})
    doc = json.loads(reply.pieces[0])
    assert doc["usage"]["output_tokens"] == 3


# -- over HTTP -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream() -> Any:
    server = HttpServer(DemoUpstream(Timing(speed=0.05), seed=1)).start()
    yield server
    server.stop()


def test_pacing_first_piece_then_steady_chunks() -> None:
    timing = Timing(first=(0.15, 0.15), per_chunk=(0.02, 0.02), speed=1.0)
    with HttpServer(DemoUpstream(timing)) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        body = json.dumps({"model": "m", "messages": PROMPT, "stream": True})
        t0 = time.monotonic()
        conn.request("POST", "/v1/chat/completions", body, {"host": "api.openai.com"})
        resp = conn.getresponse()
        t_head = time.monotonic() - t0
        arrivals = []
        while chunk := resp.read1(65536):
            arrivals.append((time.monotonic() - t0, chunk))
        conn.close()
    assert resp.getheader("transfer-encoding") == "chunked"
    assert t_head < 0.1, "headers go out before the first token"
    assert 0.14 <= arrivals[0][0] < 0.5
    gaps = [b[0] - a[0] for a, b in pairwise(arrivals)]
    assert len(arrivals) > 5
    assert sum(gaps) / len(gaps) == pytest.approx(0.02, abs=0.015)


def test_speed_factor_scales_the_whole_call(upstream: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=10)
    t0 = time.monotonic()
    conn.request("POST", "/api/chat", json.dumps({"model": "llama3", "messages": PROMPT}))
    resp = conn.getresponse()
    lines = resp.read().splitlines()
    assert time.monotonic() - t0 < 0.5
    assert json.loads(lines[-1])["done"] is True
    conn.close()


SDK_CASES: list[tuple[str, Callable[[str], Any]]] = []


def _sdk(name: str) -> Callable[[Callable[[str], Any]], Callable[[str], Any]]:
    def wrap(fn: Callable[[str], Any]) -> Callable[[str], Any]:
        SDK_CASES.append((name, fn))
        return fn

    return wrap


@_sdk("openai-chat-stream")
def _openai_chat_stream(base: str) -> None:
    import openai

    client = openai.OpenAI(base_url=base + "/v1", api_key="sk-demo", max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=PROMPT,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(text.split())


@_sdk("openai-responses-and-embeddings")
def _openai_more(base: str) -> None:
    import openai

    client = openai.OpenAI(base_url=base + "/v1", api_key="sk-demo", max_retries=0)
    r = client.responses.create(model="gpt-4.1-nano", input="hi")
    assert r.output_text and r.usage is not None and r.usage.output_tokens > 0
    events = list(client.responses.create(model="gpt-4.1-nano", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    e = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(e.data) == 2 and len(e.data[0].embedding) == 64


@_sdk("anthropic-stream")
def _anthropic(base: str) -> None:
    import anthropic

    client = anthropic.Anthropic(base_url=base, api_key="sk-ant-demo", max_retries=0)
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=PROMPT) as s:  # type: ignore[arg-type]
        msg = s.get_final_message()
    assert msg.content[0].text and msg.usage.output_tokens > 0  # type: ignore[union-attr]


@_sdk("gemini")
def _gemini(base: str) -> None:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="demo", http_options=types.HttpOptions(base_url=base))
    chunks = list(client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi"))
    assert chunks[-1].usage_metadata.candidates_token_count > 0  # type: ignore[union-attr]
    r = client.models.generate_content(model="gemini-2.0-flash", contents="hi")
    assert r.text


@_sdk("bedrock")
def _bedrock(base: str) -> None:
    import boto3

    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=base,
        region_name="us-east-1",
        aws_access_key_id="AKIDEMO",
        aws_secret_access_key="demo",
    )
    messages = [{"role": "user", "content": [{"text": "hi"}]}]
    r = client.converse(modelId="amazon.nova-lite-v1:0", messages=messages)
    assert r["usage"]["outputTokens"] > 0
    events = list(
        client.converse_stream(modelId="amazon.nova-lite-v1:0", messages=messages)["stream"]
    )
    assert "metadata" in events[-1] and events[-1]["metadata"]["usage"]["outputTokens"] > 0


@_sdk("ollama")
def _ollama(base: str) -> None:
    import ollama

    client = ollama.Client(host=base)
    parts = list(client.chat(model="llama3", messages=PROMPT, stream=True))
    assert parts[-1].done and parts[-1].eval_count


@_sdk("cohere")
def _cohere(base: str) -> None:
    import cohere

    client = cohere.ClientV2(api_key="demo", base_url=base)
    events = list(client.chat_stream(model="command-r", messages=PROMPT))  # type: ignore[arg-type]
    end = [e for e in events if e.type == "message-end"]
    assert end and end[0].delta.usage.tokens.output_tokens > 0  # type: ignore[union-attr]


@pytest.mark.parametrize("call", [c for _, c in SDK_CASES], ids=[n for n, _ in SDK_CASES])
def test_official_sdks_read_the_synthetic_provider(
    call: Callable[[str], Any], upstream: Any
) -> None:
    call(f"http://127.0.0.1:{upstream.port}")
