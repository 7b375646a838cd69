"""A synthetic LLM provider for ``llmtap demo``: real wire formats, invented words.

Each API family answers in the framing its real service uses, down to the quirks llmtap
must cope with (checked against recorded exchanges by ``tests/test_demo_upstream.py``):

* OpenAI chat: pretty JSON, or SSE chunks with a role-only first chunk, ``"usage": null``
  on every chunk and a final ``choices: []`` usage chunk when
  ``stream_options.include_usage`` is set, then ``data: [DONE]``. Mistral puts usage in
  the finish chunk and pads with ``"p"``; Groq reports it under ``x_groq.usage``.
* OpenAI Responses: ``event:`` lines equal to ``data.type``, ``sequence_number`` on every
  event, usage only in ``response.completed``. Embeddings: float or base64 vectors.
* Anthropic: ``event:``/``data:`` pairs, usage in ``message_start`` then the final count
  in ``message_delta``; JSON padded with spaces before its last brace, like the real one.
* Gemini: ``alt=sse`` streams with CRLF separators and cumulative ``usageMetadata``, or
  (without ``alt=sse``) one pretty JSON array whose elements are separated by ``\\n,\\r\\n``.
* Bedrock Converse: JSON, or ``application/vnd.amazon.eventstream`` messages with real
  CRC32s, ``:event-type`` headers and ``"p"`` padding; usage in the ``metadata`` event.
* Ollama: NDJSON lines, counts and ``done_reason`` only on the final ``done: true`` line.
* Cohere v2: ``event:`` lines, usage in ``message-end``, then a bare ``data: [DONE]``.

Timing is that of a live model: the first piece after 100-300 ms, then one every
10-30 ms, all scaled by ``speed`` (0.05 makes a demo round take a fraction of a second).
A request header ``x-demo-status: 429`` (any 4xx/5xx) gets that provider's error body.
"""

from __future__ import annotations

import base64
import json
import random
import re
import struct
import time
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from llmtap.gateway.demo.httpserver import HttpServer, Request, Response

_SENTENCES = (
    "Tracing every model call makes latency regressions easy to spot.",
    "Time to first token is what a person waiting for an answer feels.",
    "Cached input tokens are cheaper, so watch the cache hit rate.",
    "A span per call, parented to the request that made it, tells the whole story.",
    "Streams end in many ways: finished, cut short, or cancelled by the client.",
    "Token usage arrives last in most streams, after the final piece of text.",
    "Envoy copies the bytes to the tap without waiting for it.",
    "Costs add up quietly when nobody counts the output tokens.",
)

_MODEL_VERSIONS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
}

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass(frozen=True)
class Timing:
    """Seconds before the first piece and between pieces, scaled by ``speed``."""

    first: tuple[float, float] = (0.1, 0.3)
    per_chunk: tuple[float, float] = (0.01, 0.03)
    speed: float = 1.0


@dataclass
class Reply:
    """What a synthesizer produces: the status, headers and body pieces (one per frame)."""

    status: int
    content_type: str
    pieces: list[bytes]
    stream: bool
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Call:
    """One request's parsed view and its generated answer."""

    body: dict[str, Any]
    rng: random.Random
    words: list[str]
    input_tokens: int
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def text(self) -> str:
        return "".join(self.words)

    @property
    def output_tokens(self) -> int:
        return len(self.words)

    def token(self, n: int, alphabet: str = _ALNUM) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def padding(self) -> str:
        return _ALNUM[: self.rng.randint(1, 60)]


def _prompt_text(value: Any) -> str:
    """Every string inside a request's prompt fields, concatenated."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return " ".join(_prompt_text(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_prompt_text(v) for v in value)
    return ""


def _new_call(raw: bytes, prompt_keys: Sequence[str]) -> _Call:
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    prompt = " ".join(_prompt_text(body.get(k)) for k in prompt_keys)
    rng = random.Random(zlib.crc32(raw))
    text = " ".join(rng.sample(_SENTENCES, rng.randint(1, 3)))
    limit = body.get("max_tokens") or body.get("max_output_tokens") or body.get("num_predict")
    words = re.findall(r"\s*\S+", text)
    if isinstance(limit, int) and limit > 0:
        words = words[:limit]
    return _Call(body, rng, words, input_tokens=max(1, (len(prompt) + 3) // 4))


def _json(obj: Any, *, pretty: bool = False) -> bytes:
    if pretty:
        return json.dumps(obj, indent=2, ensure_ascii=False).encode()
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _sse(data: bytes, event: str | None = None, eol: bytes = b"\n") -> bytes:
    head = b"event: " + event.encode() + eol if event else b""
    return head + b"data: " + data + eol + eol


def _groups(words: list[str], rng: random.Random, lo: int, hi: int) -> list[str]:
    out, i = [], 0
    while i < len(words):
        n = rng.randint(lo, hi)
        out.append("".join(words[i : i + n]))
        i += n
    return out or [""]


# -- OpenAI and OpenAI-compatible -------------------------------------------------------


def openai_chat(call: _Call, flavor: str = "openai") -> Reply:
    """Chat Completions; ``flavor`` is openai, mistral or groq (where usage goes).

    Key order and the per-chunk extras follow each service's recorded streams: OpenAI's
    ``service_tier``/``obfuscation``, Mistral's ``"p"`` padding (not on the role chunk),
    Groq's ``x_groq`` on the first and the finish chunk.
    """
    b = call.body
    requested = str(b.get("model") or "gpt-4o-mini")
    model = _MODEL_VERSIONS.get(requested, requested)
    cid = {
        "openai": "chatcmpl-" + call.token(29),
        "mistral": uuid.UUID(int=call.rng.getrandbits(128)).hex,
        "groq": "chatcmpl-" + str(uuid.UUID(int=call.rng.getrandbits(128))),
    }[flavor]
    fingerprint = "fp_" + call.token(10, "0123456789abcdef")
    usage: dict[str, Any] = {
        "prompt_tokens": call.input_tokens,
        "completion_tokens": call.output_tokens,
        "total_tokens": call.input_tokens + call.output_tokens,
    }
    if flavor == "groq":
        usage = {
            "queue_time": 0.0167,
            "prompt_tokens": call.input_tokens,
            "prompt_time": 0.0018,
            "completion_tokens": call.output_tokens,
            "completion_time": round(call.output_tokens / 1200, 6),
            "total_tokens": call.input_tokens + call.output_tokens,
            "total_time": round(0.0018 + call.output_tokens / 1200, 6),
        }
    if flavor == "openai":
        usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
        usage["completion_tokens_details"] = {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
    headers = [("x-request-id", "req_" + call.token(32, "0123456789abcdef"))]
    if flavor == "openai":
        headers.append(("openai-processing-ms", str(call.rng.randint(150, 900))))
    if not b.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": call.text}
        choice: dict[str, Any] = {"index": 0, "message": message}
        if flavor == "openai":
            message |= {"refusal": None, "annotations": []}
        elif flavor == "groq":
            choice["logprobs"] = None
        choice["finish_reason"] = "stop"
        doc: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion",
            "created": call.created,
            "model": model,
            "choices": [choice],
            "usage": usage,
        }
        if flavor == "openai":
            doc |= {"service_tier": "default", "system_fingerprint": None}
        elif flavor == "groq":
            doc["system_fingerprint"] = fingerprint
            doc["x_groq"] = {"id": "req_" + call.token(26).lower()}
        # OpenAI pretty-prints non-streamed JSON on the wire; the others do not.
        body = _json(doc, pretty=flavor == "openai")
        return Reply(200, "application/json", [body], False, headers)

    include_usage = bool((b.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> bytes:
        c: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": call.created,
            "model": model,
        }
        if flavor == "openai":
            c |= {"service_tier": "default", "system_fingerprint": None}
        elif flavor == "groq":
            c["system_fingerprint"] = fingerprint
        choices = []
        if delta is not None:
            choice: dict[str, Any] = {"index": 0, "delta": delta}
            if flavor == "groq":
                choice["logprobs"] = None
            choice["finish_reason"] = finish
            choices.append(choice)
        c["choices"] = choices
        if flavor == "openai" and include_usage:
            c["usage"] = None
        c.update(extra)
        if flavor == "openai":
            c["obfuscation"] = call.token(call.rng.randint(1, 15))
        return _sse(_json(c))

    role: dict[str, Any] = {"role": "assistant", "content": ""}
    if flavor == "openai":
        role["refusal"] = None
    if flavor == "groq":
        events = [chunk(role, x_groq={"id": "req_" + call.token(26).lower()})]
    else:
        events = [chunk(role)]
    for w in call.words:
        pad = {"p": call.padding()} if flavor == "mistral" else {}
        events.append(chunk({"content": w}, **pad))
    if flavor == "mistral":
        events.append(chunk({"content": ""}, "stop", usage=usage, p=call.padding()))
    elif flavor == "groq":
        x_groq = {"id": "req_" + call.token(26).lower(), "usage": usage}
        events.append(chunk({}, "stop", x_groq=x_groq))
    else:
        events.append(chunk({}, "stop"))
        if include_usage:
            events.append(chunk(None, usage=usage))
    events.append(b"data: [DONE]\n\n")
    content_type = "text/event-stream" if flavor == "groq" else "text/event-stream; charset=utf-8"
    return Reply(200, content_type, events, True, headers)


def openai_responses(call: _Call) -> Reply:
    b = call.body
    requested = str(b.get("model") or "gpt-4.1-nano")
    model = _MODEL_VERSIONS.get(requested, requested)
    rid = "resp_" + call.token(50, "0123456789abcdef")
    mid = "msg_" + call.token(50, "0123456789abcdef")
    usage = {
        "input_tokens": call.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": call.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": call.input_tokens + call.output_tokens,
    }
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": call.text}
    item = {"id": mid, "type": "message", "status": "completed", "content": [part]}
    item["role"] = "assistant"

    def response(status: str, output: list[Any], with_usage: bool) -> dict[str, Any]:
        return {
            "id": rid,
            "object": "response",
            "created_at": call.created,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": b.get("instructions"),
            "max_output_tokens": b.get("max_output_tokens"),
            "model": model,
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "service_tier": "default",
            "temperature": 1.0,
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "usage": usage if with_usage else None,
        }

    if not b.get("stream"):
        doc = response("completed", [item], True)
        return Reply(200, "application/json", [_json(doc, pretty=True)], False)
    seq = 0
    events: list[bytes] = []

    def emit(kind: str, **fields: Any) -> None:
        nonlocal seq
        events.append(_sse(_json({"type": kind, **fields, "sequence_number": seq}), kind))
        seq += 1

    emit("response.created", response=response("in_progress", [], False))
    emit("response.in_progress", response=response("in_progress", [], False))
    emit(
        "response.output_item.added",
        item={**item, "status": "in_progress", "content": []},
        output_index=0,
    )
    where = {"content_index": 0, "item_id": mid, "output_index": 0}
    emit("response.content_part.added", **where, part={**part, "text": ""})
    for w in call.words:
        emit(
            "response.output_text.delta",
            **where,
            delta=w,
            logprobs=[],
            obfuscation=call.token(call.rng.randint(1, 15)),
        )
    emit("response.output_text.done", **where, logprobs=[], text=call.text)
    emit("response.content_part.done", **where, part=part)
    emit("response.output_item.done", item=item, output_index=0)
    emit("response.completed", response=response("completed", [item], True))
    return Reply(200, "text/event-stream; charset=utf-8", events, True)


def openai_embeddings(call: _Call) -> Reply:
    b = call.body
    inputs = b.get("input")
    items = inputs if isinstance(inputs, list) and inputs else [inputs]
    as_b64 = b.get("encoding_format") == "base64"
    data = []
    for i, _ in enumerate(items):
        vec = [call.rng.uniform(-0.1, 0.1) for _ in range(64)]
        emb: Any = (
            base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
            if as_b64
            else [round(v, 8) for v in vec]
        )
        data.append({"object": "embedding", "index": i, "embedding": emb})
    doc = {
        "object": "list",
        "data": data,
        "model": b.get("model") or "text-embedding-3-small",
        "usage": {"prompt_tokens": call.input_tokens, "total_tokens": call.input_tokens},
    }
    return Reply(200, "application/json", [_json(doc, pretty=True)], False)


# -- Anthropic ----------------------------------------------------------------------------


def anthropic_messages(call: _Call) -> Reply:
    b = call.body
    model = str(b.get("model") or "claude-haiku-4-5")
    mid = "msg_01" + call.token(22)
    usage = {
        "input_tokens": call.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": call.output_tokens,
        "service_tier": "standard",
    }
    headers = [("request-id", "req_" + call.token(24)), ("anthropic-organization-id", "demo")]
    message: dict[str, Any] = {
        "model": model,
        "id": mid,
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": call.text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    if not b.get("stream"):
        return Reply(200, "application/json", [_json(message)], False, headers)

    def event(kind: str, doc: dict[str, Any]) -> bytes:
        # The real service pads most data lines with spaces before the final brace.
        data = _json(doc)
        pad = call.rng.choice((0, 0, *range(1, 16)))
        return _sse(data[:-1] + b" " * pad + b"}", kind)

    start = {**message, "content": [], "stop_reason": None}
    start["usage"] = {**usage, "output_tokens": 1}
    events = [
        event("message_start", {"type": "message_start", "message": start}),
        event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        _sse(b'{"type": "ping"}', "ping"),
    ]
    for w in call.words:
        delta = {"type": "text_delta", "text": w}
        events.append(
            event(
                "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            )
        )
    events.append(event("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": call.output_tokens},
            },
        )
    )
    events.append(event("message_stop", {"type": "message_stop"}))
    return Reply(200, "text/event-stream; charset=utf-8", events, True, headers)


# -- Gemini -------------------------------------------------------------------------------


def gemini_generate(call: _Call, model: str, stream: bool, sse: bool) -> Reply:
    """generateContent / streamGenerateContent. 2.5+ models think: their usage carries
    ``thoughtsTokenCount`` (counted in the total) instead of per-modality details."""
    rid = call.token(23)
    thinking = model.startswith(("gemini-2.5", "gemini-3"))
    thoughts = call.rng.randint(40, 400) if thinking else 0
    groups = _groups(call.words, call.rng, 3, 8) if stream else [call.text]
    docs = []
    sent = 0
    for i, text in enumerate(groups):
        sent += len(re.findall(r"\s*\S+", text))
        last = i == len(groups) - 1
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
        usage: dict[str, Any] = {"promptTokenCount": call.input_tokens}
        if last:
            candidate["finishReason"] = "STOP"
            usage["candidatesTokenCount"] = sent
            usage["totalTokenCount"] = call.input_tokens + sent + thoughts
        else:
            # Early chunks carry the prompt count only, as the real stream does.
            usage["totalTokenCount"] = call.input_tokens + (thoughts if i else 0)
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": call.input_tokens}]
        if last and not thinking:
            usage["candidatesTokensDetails"] = [{"modality": "TEXT", "tokenCount": sent}]
        if thinking and (i or last):
            usage["thoughtsTokenCount"] = thoughts
        usage["serviceTier"] = "standard"
        candidate["index"] = 0
        docs.append(
            {
                "candidates": [candidate],
                "usageMetadata": usage,
                "modelVersion": model,
                "responseId": rid,
            }
        )
    if not stream:
        return Reply(200, "application/json; charset=UTF-8", [_json(docs[0], pretty=True)], False)
    if sse:
        pieces = [
            b"data: " + json.dumps(d, separators=(",", ": ")).encode() + b"\r\n\r\n" for d in docs
        ]
        return Reply(200, "text/event-stream", pieces, True)
    pretty = [json.dumps(d, indent=2).encode() for d in docs]
    pieces = [b"[" + pretty[0]] + [b"\n,\r\n" + p for p in pretty[1:]]
    pieces[-1] += b"\n]"
    return Reply(200, "application/json; charset=UTF-8", pieces, True)


# -- Bedrock ------------------------------------------------------------------------------


def eventstream_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS eventstream message (string headers only), with both CRC32s."""
    hbytes = b"".join(
        struct.pack(">B", len(k)) + k.encode() + b"\x07" + struct.pack(">H", len(v)) + v.encode()
        for k, v in headers.items()
    )
    total = 12 + len(hbytes) + len(payload) + 4
    prelude = struct.pack(">II", total, len(hbytes))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + hbytes + payload
    return message + struct.pack(">I", zlib.crc32(message))


def bedrock_converse(call: _Call, model: str, stream: bool) -> Reply:
    usage = {
        "inputTokens": call.input_tokens,
        "outputTokens": call.output_tokens,
        "totalTokens": call.input_tokens + call.output_tokens,
    }
    headers = [("x-amzn-RequestId", str(uuid.UUID(int=call.rng.getrandbits(128))))]
    latency = call.rng.randint(300, 2500)
    if not stream:
        doc = {
            "metrics": {"latencyMs": latency},
            "output": {"message": {"content": [{"text": call.text}], "role": "assistant"}},
            "stopReason": "end_turn",
            "usage": usage,
        }
        return Reply(200, "application/json", [_json(doc)], False, headers)

    def event(kind: str, doc: dict[str, Any]) -> bytes:
        doc = dict(sorted({**doc, "p": call.padding()}.items()))
        h = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
        return eventstream_message(h, _json(doc))

    pieces = [event("messageStart", {"role": "assistant"})]
    pieces += [
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": w}})
        for w in call.words
    ]
    pieces.append(event("contentBlockStop", {"contentBlockIndex": 0}))
    pieces.append(event("messageStop", {"stopReason": "end_turn"}))
    pieces.append(event("metadata", {"metrics": {"latencyMs": latency}, "usage": usage}))
    return Reply(200, "application/vnd.amazon.eventstream", pieces, True, headers)


# -- Ollama -------------------------------------------------------------------------------


def ollama(call: _Call, kind: str) -> Reply:
    """``kind`` is chat or generate; Ollama streams unless told ``"stream": false``."""
    model = str(call.body.get("model") or "llama3.2")
    stream = call.body.get("stream", True) is not False
    t0 = time.time()

    def stamp(i: int) -> str:
        t = t0 + 0.032 * i
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"

    def piece(text: str) -> dict[str, Any]:
        if kind == "chat":
            return {"message": {"role": "assistant", "content": text}}
        return {"response": text}

    n = call.output_tokens
    final = {
        "done_reason": "stop",
        "done": True,
        "total_duration": 40_000_000 * n + 300_000_000,
        "load_duration": 1_600_000,
        "prompt_eval_count": call.input_tokens,
        "prompt_eval_duration": 280_000_000,
        "eval_count": n,
        "eval_duration": 32_000_000 * n,
    }
    if not stream:
        doc = {"model": model, "created_at": stamp(n), **piece(call.text), **final}
        return Reply(200, "application/json; charset=utf-8", [_json(doc)], False)
    lines = [
        _json({"model": model, "created_at": stamp(i), **piece(w), "done": False}) + b"\n"
        for i, w in enumerate(call.words)
    ]
    lines.append(_json({"model": model, "created_at": stamp(n), **piece(""), **final}) + b"\n")
    return Reply(200, "application/x-ndjson", lines, True)


# -- Cohere -------------------------------------------------------------------------------


def cohere_chat(call: _Call) -> Reply:
    cid = str(uuid.UUID(int=call.rng.getrandbits(128)))
    usage = {
        "billed_units": {"input_tokens": call.input_tokens, "output_tokens": call.output_tokens},
        "tokens": {"input_tokens": call.input_tokens + 62, "output_tokens": call.output_tokens},
    }
    doc: dict[str, Any]
    if not call.body.get("stream"):
        doc = {
            "id": cid,
            "message": {"role": "assistant", "content": [{"type": "text", "text": call.text}]},
            "finish_reason": "COMPLETE",
            "usage": usage,
        }
        return Reply(200, "application/json", [_json(doc)], False)
    empty = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": []}
    empty["citations"] = []
    events = [
        _sse(
            _json({"id": cid, "type": "message-start", "delta": {"message": empty}}),
            "message-start",
        ),
        _sse(
            _json(
                {
                    "type": "content-start",
                    "index": 0,
                    "delta": {"message": {"content": {"type": "text", "text": ""}}},
                }
            ),
            "content-start",
        ),
    ]
    for w in call.words:
        doc = {"type": "content-delta", "index": 0}
        doc["delta"] = {"message": {"content": {"text": w}}}
        events.append(_sse(_json(doc), "content-delta"))
    events.append(_sse(_json({"type": "content-end", "index": 0}), "content-end"))
    end = {"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": usage}}
    events.append(_sse(_json(end), "message-end"))
    events.append(b"data: [DONE]\n\n")
    return Reply(200, "text/event-stream", events, True)


# -- errors and routing -----------------------------------------------------------------


def error_reply(family: str, status: int, message: str) -> Reply:
    """The error body each provider family sends for ``status``."""
    kind = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error"}
    kind |= {429: "rate_limit_error", 529: "overloaded_error"}
    etype = kind.get(status, "api_error")
    headers: list[tuple[str, str]] = []
    doc: dict[str, Any]
    if family == "anthropic":
        doc = {"type": "error", "error": {"type": etype, "message": message}}
    elif family == "gemini":
        grpc = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED"}
        doc = {"error": {"code": status, "message": message, "status": grpc.get(status, "UNKNOWN")}}
    elif family == "bedrock":
        doc = {"message": message}
        aws = {400: "ValidationException", 429: "ThrottlingException"}
        headers.append(("x-amzn-ErrorType", aws.get(status, "InternalServerException") + ":"))
    elif family == "ollama":
        doc = {"error": message}
    elif family == "cohere":
        doc = {"id": str(uuid.uuid4()), "message": message}
    else:
        code = "rate_limit_exceeded" if status == 429 else None
        doc = {"error": {"message": message, "type": etype, "param": None, "code": code}}
    return Reply(status, "application/json", [_json(doc)], False, headers)


_GEMINI = re.compile(r"^/v1(?:beta\d*|alpha)?/(?:.*/)?models/([^/:]+):(\w+)$")
_BEDROCK = re.compile(r"^/model/([^/]+)/(converse|converse-stream)$")


def synthesize(req: Request) -> tuple[str, Reply]:
    """Pick the API family from the request and answer it: ``(family, reply)``."""
    path = req.path
    host = req.header("host").split(":")[0]
    forced = req.header("x-demo-status")
    m_gem = _GEMINI.match(path)
    m_bed = _BEDROCK.match(path)
    family: str
    keys: tuple[str, ...]
    make: Callable[[_Call], Reply]
    if path.endswith("/chat/completions"):
        flavor = "mistral" if "mistral" in host else "groq" if "groq" in host else "openai"
        family, keys = flavor, ("messages",)
        make = lambda c: openai_chat(c, flavor)  # noqa: E731
    elif path.endswith("/v1/responses"):
        family, keys, make = "openai", ("input", "instructions"), openai_responses
    elif path.endswith("/v1/embeddings"):
        family, keys, make = "openai", ("input",), openai_embeddings
    elif path == "/v1/messages":
        family, keys, make = "anthropic", ("system", "messages"), anthropic_messages
    elif m_gem and m_gem.group(2) in ("generateContent", "streamGenerateContent"):
        model, method = m_gem.groups()
        sse = req.query.get("alt") == ["sse"]
        family, keys = "gemini", ("contents", "systemInstruction")
        make = lambda c: gemini_generate(c, model, method == "streamGenerateContent", sse)  # noqa: E731
    elif m_bed:
        model, op = unquote(m_bed.group(1)), m_bed.group(2)
        family, keys = "bedrock", ("messages", "system")
        make = lambda c: bedrock_converse(c, model, op == "converse-stream")  # noqa: E731
    elif path in ("/api/chat", "/api/generate"):
        kind = path.rsplit("/", 1)[1]
        family, keys = "ollama", ("messages", "prompt", "system")
        make = lambda c: ollama(c, kind)  # noqa: E731
    elif path == "/v2/chat":
        family, keys, make = "cohere", ("messages",), cohere_chat
    else:
        msg = f"demo upstream: no API at {req.method} {path}"
        return "unknown", error_reply("openai", 404, msg)
    if forced.isdigit() and int(forced) >= 400:
        return family, error_reply(family, int(forced), f"demo upstream: forced {forced}")
    if req.method != "POST":
        return family, error_reply(family, 405, f"demo upstream: {req.method} not allowed")
    return family, make(_new_call(req.body, keys))


class DemoUpstream:
    """The HTTP handler: synthesize, then pace the pieces like a live model."""

    def __init__(self, timing: Timing | None = None, seed: int | None = None) -> None:
        self.timing = timing or Timing()
        self._rng = random.Random(seed)
        self.calls: list[tuple[str, str, int]] = []  # (family, path, status)

    def __call__(self, req: Request) -> Response:
        family, reply = synthesize(req)
        self.calls.append((family, req.path, reply.status))
        t = self.timing
        first = self._rng.uniform(*t.first) * t.speed
        gaps = [first] + [self._rng.uniform(*t.per_chunk) * t.speed for _ in reply.pieces[1:]]
        headers = [("content-type", reply.content_type), *reply.headers]
        if not reply.stream:
            # A whole body is ready only once the model has produced all of it.
            return Response.whole(reply.status, headers, b"".join(reply.pieces), sum(gaps))
        return Response(reply.status, headers, list(zip(gaps, reply.pieces, strict=True)))


def serve(host: str = "127.0.0.1", port: int = 0, timing: Timing | None = None) -> HttpServer:
    """Start the demo upstream in a background thread; ``.stop()`` it when done."""
    return HttpServer(DemoUpstream(timing), host, port).start()
