"""Message content capture and output-chunk counts, on the recorded exchanges.

With ``ExtConfig(capture_content=True)`` every family maps its request and response
into the GenAI JSON shapes (``gen_ai.system_instructions``, ``gen_ai.input.messages``,
``gen_ai.output.messages``); streamed output is joined by the scanner's ``concat``
folds, plain bodies are decoded. Expected texts are computed here from the raw
fixture bytes (json.loads of each event), independently of ext and core.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import random
from typing import Any

import pytest
from recorded import EXCHANGES, Exchange

from llmtap.core import framing as core_framing
from llmtap.ext import FAMILIES, CallRecord, ExtConfig, RequestInfo, recognise
from llmtap.ext import content as c
from llmtap.ext.family import OUTPUT_DOCS

CAPTURE = ExtConfig(cost=False, capture_content=True)
PLAIN = ExtConfig(cost=False)
BY_ID = {e.id: e for e in EXCHANGES}
SYSTEM, INPUT, OUTPUT = c.SYSTEM, c.INPUT, c.OUTPUT


@pytest.fixture(autouse=True)
def strict_content(monkeypatch: pytest.MonkeyPatch) -> None:
    # MessageContent swallows build errors in production (content is best effort);
    # here a bug in a mapping must fail the test, not vanish into an empty mapping.
    def get(self: c.MessageContent) -> dict[str, Any]:
        if self._data is None:
            build, self._build = self._build, None
            assert build is not None
            self._data = {k: v for k, v in build().items() if v}
        return self._data

    monkeypatch.setattr(c.MessageContent, "_get", get)


def info(ex: Exchange) -> RequestInfo:
    m = ex.meta
    path = m["url_path"] + (f"?{m['url_query']}" if m.get("url_query") else "")
    return RequestInfo(method=m["method"], authority=m["host"], path=path, headers={})


def replay(
    ex: Exchange, config: ExtConfig = CAPTURE, how: str = "whole", gz: bool = False
) -> CallRecord:
    x = recognise(info(ex), config=config)
    if ex.request is not None and x.wants_request_body:
        half = len(ex.request) // 2
        x.on_request_body(ex.request[:half], False)
        x.on_request_body(ex.request[half:], True)
    headers = {k.lower(): v for k, v in ex.meta["response_headers"].items()}
    headers.pop("content-encoding", None)
    data = ex.response
    if gz:
        data = gzip.compress(data, mtime=0)
        headers["content-encoding"] = "gzip"
    x.on_response_headers(ex.meta["status"], headers)
    if how == "whole":
        chunks = [data]
    else:
        rng = random.Random(ex.id)
        cuts = sorted({0, len(data), *(rng.randrange(len(data) + 1) for _ in range(40))})
        chunks = [data[a:b] for a, b in itertools.pairwise(cuts)] or [b""]
    for i, chunk in enumerate(chunks):
        x.on_response_body(chunk, i == len(chunks) - 1)
    return x.finish()


def content(ex_id: str, **kw: Any) -> dict[str, Any]:
    rec = replay(BY_ID[ex_id], **kw)
    assert rec.content is not None
    return dict(rec.content)


def parts(msg: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [p for p in msg["parts"] if p["type"] == kind]


# -- what the raw bytes say (json.loads per event, no llmtap) -------------------------------


def sse_docs(ex: Exchange) -> list[Any]:
    out = []
    for block in ex.response.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = b"\n".join(ln[5:].lstrip() for ln in block.split(b"\n") if ln.startswith(b"data:"))
        if data and data != b"[DONE]":
            out.append(json.loads(data))
    return out


def eventstream_docs(ex: Exchange) -> list[Any]:
    out = []
    for m in core_framing.EventStreamFramerPy().feed(ex.response):
        p = json.loads(bytes(m.payload))
        out.append(json.loads(base64.b64decode(p["bytes"])) if "bytes" in p else p)
    return out


def chat_text(docs: list[Any]) -> str:
    return "".join(ch["delta"].get("content") or "" for d in docs for ch in d.get("choices") or ())


# -- the conventions' JSON schemas, as a structural check -------------------------------------

REQUIRED = {
    "text": {"content"},
    "reasoning": {"content"},
    "tool_call": {"name"},
    "tool_call_response": {"response"},
    "blob": {"modality", "content"},
    "uri": {"modality", "uri"},
    "file": {"modality", "file_id"},
}


def check_parts(ps: Any) -> None:
    assert isinstance(ps, list)
    for p in ps:
        assert isinstance(p, dict) and isinstance(p.get("type"), str), p
        assert REQUIRED.get(p["type"], set()) <= set(p), p
        if p["type"] in ("text", "reasoning"):
            assert isinstance(p["content"], str)


def check_schema(cont: dict[str, Any]) -> None:
    assert set(cont) <= {SYSTEM, INPUT, OUTPUT}
    json.dumps(cont)  # plain JSON values only
    if SYSTEM in cont:
        check_parts(cont[SYSTEM])
    for key in (INPUT, OUTPUT):
        for m in cont.get(key, ()):
            assert isinstance(m["role"], str) and m["role"], m
            check_parts(m["parts"])
            if key == OUTPUT and "finish_reason" in m:
                assert isinstance(m["finish_reason"], str)


# -- every exchange -------------------------------------------------------------------------


def test_every_exchange_has_well_formed_content(core_twin: Any, exchange: Exchange) -> None:
    rec = replay(exchange)
    cont = dict(rec.content or {})
    check_schema(cont)
    ok = exchange.meta["status"] == 200
    if rec.family in ("openai.embeddings", "cohere.embed", "ollama.embed", "unknown"):
        assert cont == {}
        return
    if exchange.request is not None and b'"messages": []' not in exchange.request:
        assert cont.get(INPUT) or cont.get(SYSTEM), "the request's messages were not read"
    # an error has no output; a 2xx call has its output messages
    assert (OUTPUT in cont) is ok
    # any split, or compressed, gives the same content
    assert dict(replay(exchange, how="random").content or {}) == cont
    assert dict(replay(exchange, gz=True).content or {}) == cont


def test_capture_off_reads_and_keeps_nothing_more(exchange: Exchange) -> None:
    x = recognise(info(exchange), config=PLAIN)
    if exchange.request is not None and x.wants_request_body:
        x.on_request_body(exchange.request, True)
    x.on_response_headers(exchange.meta["status"], {})
    x.on_response_body(exchange.response, True)
    assert x._req_body is None and x._resp is None  # nothing kept
    rec = x.finish()
    assert rec.content is None
    assert not set(rec.attributes()) & {SYSTEM, INPUT, OUTPUT}


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_capture_slots_only_in_the_capture_spec(family: Any) -> None:
    plain, cap = family.scanner_spec(), family.scanner_spec(capture=True)
    assert family.scanner_spec() is plain  # built once, then cached
    assert not set(family.capture_paths) & set(plain.names)
    assert cap.names == plain.names + tuple(k for k in family.capture_paths if k not in plain.names)
    assert plain.folds is family.scanner_spec().folds  # one object: core's cache hits
    if family.marker_slots():
        assert plain.names[plain.chunks] == OUTPUT_DOCS


# -- per family -----------------------------------------------------------------------------


def test_openai_chat(core_twin: Any) -> None:
    cont = content("openai_chat_completions/cached_tokens_1024_nonstream_gzip")
    req = json.loads(BY_ID["openai_chat_completions/cached_tokens_1024_nonstream_gzip"].request)
    assert cont[SYSTEM] == [{"type": "text", "content": req["messages"][0]["content"]}]
    assert [m["role"] for m in cont[INPUT]] == ["user"]
    (out,) = cont[OUTPUT]
    body = json.loads(BY_ID["openai_chat_completions/cached_tokens_1024_nonstream_gzip"].response)
    assert out == {
        "role": "assistant",
        "parts": [{"type": "text", "content": body["choices"][0]["message"]["content"]}],
        "finish_reason": "stop",
    }
    # a tool call and its result in the history
    cont = content("openai_chat_completions/old_usage_shape_no_details_nonstream_gzip")
    call, result = cont[INPUT]
    assert call["role"] == "assistant" and result["role"] == "tool"
    (tc,) = parts(call, "tool_call")
    (tr,) = parts(result, "tool_call_response")
    assert tc["arguments"] == {"location": "San Francisco"} and tc["id"] == tr["id"]


def test_openai_chat_stream(core_twin: Any) -> None:
    ex = BY_ID["openai_chat_completions/stream_no_usage_gpt35"]
    (out,) = content(ex.id)[OUTPUT]
    assert out["parts"] == [{"type": "text", "content": chat_text(sse_docs(ex))}]
    assert out["finish_reason"] == "stop"
    # parallel tool calls: ids and names from the first chunk of each, arguments joined
    ex = BY_ID["openai_chat_completions/stream_parallel_tool_calls"]
    (out,) = content(ex.id)[OUTPUT]
    calls: dict[int, dict[str, Any]] = {}
    for d in sse_docs(ex):
        for tc in d["choices"][0]["delta"].get("tool_calls") or ():
            got = calls.setdefault(tc["index"], {"args": ""})
            got.update({k: tc[k] for k in ("id",) if k in tc})
            got.update({"name": tc["function"]["name"]} if "name" in tc["function"] else {})
            got["args"] += tc["function"].get("arguments") or ""
    assert parts(out, "tool_call") == [
        {"type": "tool_call", "id": t["id"], "name": t["name"], "arguments": json.loads(t["args"])}
        for _, t in sorted(calls.items())
    ]
    assert out["finish_reason"] == "tool_calls"


def test_openai_responses(core_twin: Any) -> None:
    cont = content("openai_responses/stream_gpt4o_mini")
    req = json.loads(BY_ID["openai_responses/stream_gpt4o_mini"].request)
    assert cont[SYSTEM] == [{"type": "text", "content": req["instructions"]}]
    docs = sse_docs(BY_ID["openai_responses/stream_gpt4o_mini"])
    text = "".join(d["delta"] for d in docs if d["type"] == "response.output_text.delta")
    assert cont[OUTPUT] == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": text}],
            "finish_reason": "completed",
        }
    ]
    (out,) = content("openai_responses/stream_function_call")[OUTPUT]
    (tc,) = parts(out, "tool_call")
    assert (tc["name"], tc["arguments"]) == ("multiply", {"a": 1231, "b": 2331})
    assert tc["id"].startswith("call_")
    (out,) = content("openai_responses/basic_nonstream_gzip")[OUTPUT]
    assert out["parts"] == [{"type": "text", "content": "The capital of France is Paris."}]


def test_openai_completions(core_twin: Any) -> None:
    cont = content("openai_completions/nonstream_batch_prompts")
    req = json.loads(BY_ID["openai_completions/nonstream_batch_prompts"].request)
    assert [m["parts"][0]["content"] for m in cont[INPUT]] == req["prompt"]
    body = json.loads(BY_ID["openai_completions/nonstream_batch_prompts"].response)
    assert [m["parts"][0]["content"] for m in cont[OUTPUT]] == [
        ch["text"] for ch in body["choices"]
    ]
    ex = BY_ID["openai_completions/stream_no_usage"]
    (out,) = content(ex.id)[OUTPUT]
    text = "".join(ch["text"] for d in sse_docs(ex) for ch in d["choices"])
    assert out == {"role": "assistant", "parts": [c.text(text)], "finish_reason": "length"}


def test_anthropic(core_twin: Any) -> None:
    ex = BY_ID["anthropic_messages/stream_multiple_tool_use"]
    (out,) = content(ex.id)[OUTPUT]
    docs = sse_docs(ex)
    blocks = [d["content_block"] for d in docs if d["type"] == "content_block_start"]
    assert [p["type"] for p in out["parts"]] == [
        "tool_call" if b["type"] == "tool_use" else b["type"] for b in blocks
    ]
    text = "".join(d["delta"].get("text", "") for d in docs if d["type"] == "content_block_delta")
    assert parts(out, "text")[0]["content"] == text
    for b, p in zip(blocks[1:], parts(out, "tool_call"), strict=True):
        args = "".join(
            d["delta"].get("partial_json", "")
            for d in docs
            if d["type"] == "content_block_delta" and d["index"] == blocks.index(b)
        )
        assert (p["id"], p["name"], p["arguments"]) == (b["id"], b["name"], json.loads(args))
    assert out["finish_reason"] == "tool_use"
    # plain body: thinking block -> reasoning part; system prompt
    (out,) = content("anthropic_messages/nonstream_thinking_gzip")[OUTPUT]
    assert [p["type"] for p in out["parts"]] == ["reasoning", "text"]
    cont = content("anthropic_messages/nonstream_cache_read_gzip")
    assert cont[SYSTEM][0]["type"] == "text" and "summaries" in cont[SYSTEM][0]["content"]
    # the legacy completions API: one prompt string, one completion
    ex = BY_ID["anthropic_complete_legacy/stream_crlf_claude21"]
    cont = content(ex.id)
    assert cont[INPUT][0]["parts"][0]["content"] == json.loads(ex.request)["prompt"]
    text = "".join(d.get("completion", "") for d in sse_docs(ex))
    assert cont[OUTPUT][0]["parts"] == [c.text(text)]


def test_gemini_and_vertex(core_twin: Any) -> None:
    cont = content("gemini/nonstream_basic")
    assert [m["role"] for m in cont[INPUT]] == ["user", "assistant", "user"]
    (tc,) = parts(cont[INPUT][1], "tool_call")
    (tr,) = parts(cont[INPUT][2], "tool_call_response")
    assert tc["name"] == "get_weather" and tr["response"]["condition"] == "foggy"
    assert cont[OUTPUT][0]["finish_reason"] == "STOP"
    (out,) = content("gemini/nonstream_multiple_function_calls")[OUTPUT]
    assert [p["arguments"] for p in parts(out, "tool_call")] == [
        {"location": "Boston"},
        {"location": "New Delhi"},
    ]
    ex = BY_ID["gemini/stream_sse_basic"]
    (out,) = content(ex.id)[OUTPUT]
    text = "".join(
        p.get("text", "") for d in sse_docs(ex) for p in d["candidates"][0]["content"]["parts"]
    )
    assert out["parts"] == [c.text(text)]
    # Vertex with enum-encoding=int: the finish reason by name
    (out,) = content("vertex_ai/stream_jsonarray_enum_int")[OUTPUT]
    assert out["finish_reason"] == "STOP" and out["parts"][0]["content"].startswith("I told")


def test_bedrock(core_twin: Any) -> None:
    ex = BY_ID["bedrock/converse_stream_claude_tool_use"]
    (out,) = content(ex.id)[OUTPUT]
    docs = eventstream_docs(ex)
    text = "".join(d["delta"].get("text", "") for d in docs if "delta" in d)
    assert [p["type"] for p in out["parts"]] == ["text", "tool_call"]
    assert out["parts"][0]["content"] == text
    assert out["parts"][1]["arguments"] == {"location": "Barcelona"}
    cont = content("bedrock/converse_nova")
    assert cont[SYSTEM] == [c.text("You are a helpful assistant")]
    assert [p["content"] for p in cont[INPUT][0]["parts"]][1] == "What is the capital of Japan?"
    ex = BY_ID["bedrock/invoke_stream_claude3"]
    (out,) = content(ex.id)[OUTPUT]
    text = "".join(d["delta"].get("text", "") for d in eventstream_docs(ex) if "delta" in d)
    assert out == {"role": "assistant", "parts": [c.text(text)], "finish_reason": "end_turn"}
    ex = BY_ID["bedrock/invoke_stream_nova"]  # one block per delta: joined back
    (out,) = content(ex.id)[OUTPUT]
    docs = eventstream_docs(ex)
    text = "".join(
        d["contentBlockDelta"]["delta"]["text"] for d in docs if "contentBlockDelta" in d
    )
    assert out["parts"] == [c.text(text)]
    for ex_id, prompt_key in (
        ("bedrock/invoke_llama3", "prompt"),
        ("bedrock/invoke_titan_text", "inputText"),
    ):
        cont = content(ex_id)
        assert cont[INPUT] == [
            c.message("user", [c.text(json.loads(BY_ID[ex_id].request)[prompt_key])])
        ]
        assert cont[OUTPUT][0]["parts"][0]["type"] == "text"


def test_ollama(core_twin: Any) -> None:
    for ex_id, field in (
        ("ollama_native/chat_stream_ndjson", ("message", "content")),
        ("ollama_native/generate_stream_ndjson", ("response",)),
    ):
        ex = BY_ID[ex_id]
        lines = [json.loads(ln) for ln in ex.response.splitlines() if ln.strip()]
        text = ""
        for ln in lines:
            v: Any = ln
            for k in field:
                v = v.get(k) or {}
            text += v or ""
        (out,) = content(ex_id)[OUTPUT]
        assert out == {"role": "assistant", "parts": [c.text(text)], "finish_reason": "stop"}
    cont = content("ollama_native/chat_tool_calls_nonstream")
    assert [m["role"] for m in cont[INPUT]] == ["assistant", "tool"]


def test_cohere(core_twin: Any) -> None:
    ex = BY_ID["cohere/v2_chat_stream_tool_calls"]
    (out,) = content(ex.id)[OUTPUT]
    docs = sse_docs(ex)
    plan = "".join(
        d["delta"]["message"]["tool_plan"] for d in docs if d["type"] == "tool-plan-delta"
    )
    assert out["parts"][0] == c.reasoning(plan)
    names = [
        d["delta"]["message"]["tool_calls"]["function"]["name"]
        for d in docs
        if d["type"] == "tool-call-start"
    ]
    assert [p["name"] for p in parts(out, "tool_call")] == names
    assert all(p["arguments"] == {"location": "Tokyo"} for p in parts(out, "tool_call"))
    assert out["finish_reason"] == "TOOL_CALL"
    cont = content("cohere/v1_chat_nonstream")
    assert cont[INPUT] == [c.message("user", [c.text("Tell me a joke, pirate style")])]
    assert cont[OUTPUT][0]["finish_reason"] == "COMPLETE"


# -- bounds and laziness --------------------------------------------------------------------


def chat_sse(*pieces: str, finish: str = "stop") -> bytes:
    docs = [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
    docs.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    return (
        b"".join(b"data: " + json.dumps(d).encode() + b"\n\n" for d in docs) + b"data: [DONE]\n\n"
    )


def run_chat(body: bytes, request: bytes = b'{"messages": [], "stream": true}') -> CallRecord:
    x = recognise(RequestInfo("POST", "api.openai.com", "/v1/chat/completions"), config=CAPTURE)
    x.on_request_body(request, True)
    x.on_response_headers(200, {"content-type": "text/event-stream"})
    x.on_response_body(body, True)
    return x.finish()


def test_streamed_text_is_capped_and_marked(core_twin: Any) -> None:
    rec = run_chat(chat_sse(*["é" * 1000] * 100))  # 200 KB of text
    ((part,),) = [m["parts"] for m in (rec.content or {})[OUTPUT]]
    text = part["content"]
    assert text.endswith(c.CUT) and set(text[:-1]) == {"é"}
    assert len(text[:-1].encode()) == 64 * 1024  # the concat cap, whole characters
    assert rec.output_chunks == 100


def test_content_is_built_only_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    fam = recognise(RequestInfo("POST", "api.openai.com", "/v1/chat/completions"))._family
    real = type(fam).input_messages

    def counting(self: Any, req: bytes) -> Any:
        calls.append("input")
        return real(self, req)

    monkeypatch.setattr(type(fam), "input_messages", counting)
    rec = run_chat(chat_sse("hi"), b'{"messages": [{"role": "user", "content": "hello"}]}')
    assert calls == []  # finish() built nothing
    assert rec.content is not None and rec.content[INPUT][0]["parts"] == [c.text("hello")]
    assert dict(rec.content) and calls == ["input"]  # once


def test_a_broken_mapping_leaves_empty_content(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the production MessageContent: best effort
    fam = recognise(RequestInfo("POST", "api.openai.com", "/v1/chat/completions"))._family

    def boom(self: Any, req: bytes) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(type(fam), "input_messages", boom)
    rec = run_chat(chat_sse("hi"), b'{"messages": [{"role": "user", "content": "x"}]}')
    assert rec.content is not None and dict(rec.content) == {}
    assert rec.error_type is None  # the call itself is fine


def test_a_plain_body_too_big_to_keep_gives_no_output() -> None:
    cfg = ExtConfig(cost=False, capture_content=True, max_request_body=100)
    x = recognise(RequestInfo("POST", "api.openai.com", "/v1/chat/completions"), config=cfg)
    x.on_request_body(b'{"messages": [{"role": "user", "content": "hi"}]}', True)
    x.on_response_headers(200, {"content-type": "application/json"})
    body = json.dumps({"choices": [{"message": {"content": "x" * 500}, "finish_reason": "stop"}]})
    x.on_response_body(body.encode(), True)
    rec = x.finish()
    assert dict(rec.content or {}) == {INPUT: [c.message("user", [c.text("hi")])]}


def test_config_of_takes_only_a_true_flag() -> None:
    class Section:
        capture_content = "NO_CONTENT"  # a mode name is not the flag

    assert ExtConfig.of(Section()).capture_content is False
    Section.capture_content = True  # type: ignore[assignment]
    assert ExtConfig.of(Section()).capture_content is True
    assert ExtConfig.of(None).capture_content is False


# -- output chunks --------------------------------------------------------------------------

CHAT_OUTPUT = (
    "content",
    "refusal",
    "tool_calls",
    "function_call",
    "reasoning_content",
    "reasoning",
)


def chat_output_docs(docs: list[Any]) -> int:
    """Events with output in any choice (empty strings and nulls are no output)."""
    return sum(
        any(
            ch.get("delta", {}).get(k) not in (None, "", [], {})
            for ch in d.get("choices") or ()
            for k in CHAT_OUTPUT
        )
        for d in docs
    )


def converse_output(d: dict[str, Any]) -> bool:
    delta, start = d.get("delta") or {}, d.get("start") or {}
    return bool(
        delta.get("text")
        or (delta.get("reasoningContent") or {}).get("text")
        or (delta.get("toolUse") or {}).get("input")
        or (start.get("toolUse") or {}).get("name")
    )


STREAMS = [e for e in EXCHANGES if e.meta["status"] == 200 and e.meta["response_is_stream"]]


@pytest.mark.parametrize("ex", STREAMS, ids=[e.id for e in STREAMS])
def test_output_chunks(core_twin: Any, ex: Exchange) -> None:
    rec = replay(ex, PLAIN, how="random")
    assert rec.output_chunks is not None
    if rec.family == "openai.chat_completions":
        assert rec.output_chunks == chat_output_docs(sse_docs(ex))
    elif rec.family == "anthropic.messages":
        assert rec.output_chunks == sum(d["type"] == "content_block_delta" for d in sse_docs(ex))
    elif rec.family == "bedrock.converse":  # empty text deltas carry no output
        assert rec.output_chunks == sum(converse_output(d) for d in eventstream_docs(ex))
    assert (rec.output_chunks > 0) is (rec.first_output_event is not None)
    # capture on or off: the same count
    assert replay(ex, CAPTURE).output_chunks == rec.output_chunks


def test_no_output_chunks_for_plain_bodies(core_twin: Any) -> None:
    for ex in EXCHANGES:
        if not ex.meta["response_is_stream"]:
            assert replay(ex, PLAIN).output_chunks is None, ex.id
