"""OpenAI chat completions, ``POST .../chat/completions``, and every provider that
speaks it: Azure OpenAI, Groq, Mistral, DeepSeek, Together, OpenRouter, xAI, Ollama
``/v1``. Plain JSON or SSE (``data: [DONE]`` ends it); ``n > 1`` interleaves choices;
usage arrives in a final ``choices: []`` chunk with ``stream_options.include_usage``
(Groq: ``x_groq.usage``; Mistral and DeepSeek: in the finish chunk).
"""

from __future__ import annotations

from typing import Any

import msgspec

from . import content as c
from .family import Family, Route, Scan, decode_request
from .openai_common import (
    COMPAT_USAGE_NUMBERS,
    COMPAT_USAGE_PATHS,
    ResponseFormat,
    match_suffix,
    openai_parts,
    output_type_of,
    plain_text,
    stop_list,
)
from .record import CallRecord

__all__ = ["FAMILY", "ChatRequest"]


class ChatRequest(msgspec.Struct):
    model: str | None = None
    stream: bool | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: float | None = None  # not OpenAI's, but Together/OpenRouter/vLLM accept it
    seed: int | None = None
    n: int | None = None
    stop: str | list[str] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    response_format: ResponseFormat | None = None
    modalities: list[str] | None = None
    service_tier: str | None = None


# -- content (capture only): loose shapes, only the fields the messages need -----------


class _Function(msgspec.Struct):
    name: Any = None
    arguments: Any = None


class _ToolCall(msgspec.Struct):
    id: Any = None
    function: _Function | None = None


class _Message(msgspec.Struct):
    role: Any = None
    content: Any = None
    name: Any = None
    tool_calls: list[_ToolCall] | None = None
    function_call: _Function | None = None
    tool_call_id: Any = None
    refusal: Any = None
    reasoning_content: Any = None
    reasoning: Any = None


class _Messages(msgspec.Struct):
    messages: list[_Message] = msgspec.field(default_factory=list)


class _Choice(msgspec.Struct):
    message: _Message | None = None
    finish_reason: Any = None


class _Completion(msgspec.Struct):
    choices: list[_Choice] = msgspec.field(default_factory=list)


def _assistant_parts(m: _Message) -> list[c.Part]:
    think = m.reasoning_content if isinstance(m.reasoning_content, str) else m.reasoning
    parts = [c.reasoning(think)] if isinstance(think, str) and think else []
    parts += openai_parts(m.content)
    if isinstance(m.refusal, str) and m.refusal:
        parts.append(c.text(m.refusal))
    for tc in m.tool_calls or ():
        fn = tc.function or _Function()
        parts.append(c.tool_call(tc.id, fn.name, fn.arguments))
    if m.function_call is not None:
        parts.append(c.tool_call(None, m.function_call.name, m.function_call.arguments))
    return parts


class OpenAIChat(Family):
    name = "openai.chat_completions"
    path_keys = ("completions",)
    operation = "chat"
    provider = "openai"
    request = ChatRequest
    paths = {
        "model": "model",
        "id": "id",
        "fingerprint": "system_fingerprint",
        "tier": "service_tier",
        **COMPAT_USAGE_PATHS,
        "idx": "choices[*].index",
        "finish": "choices[*].finish_reason",
        "text": "?choices[*].delta.content",
        "text_ns": "?choices[*].message.content",
        "refusal": "?choices[*].delta.refusal",
        "refusal_ns": "?choices[*].message.refusal",
        "tool": "?choices[*].delta.tool_calls",
        "tool_ns": "?choices[*].message.tool_calls",
        "fn": "?choices[*].delta.function_call",
        "fn_ns": "?choices[*].message.function_call",
        "think": "?choices[*].delta.reasoning_content",
        "think_ns": "?choices[*].message.reasoning_content",
        "think2": "?choices[*].delta.reasoning",
        "think2_ns": "?choices[*].message.reasoning",
    }
    # Azure's first chunk carries id "" and model "": later chunks must win.
    folds = {"finish": ("keyed", "idx")}
    texts = {
        "response_model": ("model",),
        "response_id": ("id",),
        "system_fingerprint": ("fingerprint",),
        "service_tier": ("tier",),
    }
    numbers = COMPAT_USAGE_NUMBERS
    outputs = (
        ("think", "reasoning"),
        ("think2", "reasoning"),
        ("think_ns", "reasoning"),
        ("think2_ns", "reasoning"),
        ("text", "text"),
        ("refusal", "text"),
        ("text_ns", "text"),
        ("refusal_ns", "text"),
        ("tool", "tool_call"),
        ("fn", "tool_call"),
        ("tool_ns", "tool_call"),
        ("fn_ns", "tool_call"),
    )

    # Streamed output, joined per choice (tool calls per tool-call index): capture only.
    capture_paths = {
        "c_text": "choices[*].delta.content",
        "c_refusal": "choices[*].delta.refusal",
        "c_think": "choices[*].delta.reasoning_content",
        "c_think2": "choices[*].delta.reasoning",
        "c_fn_name": "choices[*].delta.function_call.name",
        "c_fn_args": "choices[*].delta.function_call.arguments",
        "c_tc_idx": "choices[*].delta.tool_calls[*].index",
        "c_tc_id": "choices[*].delta.tool_calls[*].id",
        "c_tc_name": "choices[*].delta.tool_calls[*].function.name",
        "c_tc_args": "choices[*].delta.tool_calls[*].function.arguments",
    }
    capture_folds = {
        "c_text": ("concat", "idx"),
        "c_refusal": ("concat", "idx"),
        "c_think": ("concat", "idx"),
        "c_think2": ("concat", "idx"),
        "c_fn_name": ("keyed", "idx"),
        "c_fn_args": ("concat", "idx"),
        # some servers repeat the id and name in every chunk: keep one, join arguments
        "c_tc_id": ("keyed", "c_tc_idx"),
        "c_tc_name": ("keyed", "c_tc_idx"),
        "c_tc_args": ("concat", "c_tc_idx"),
    }

    def match(self, method: str, path: str, query: str) -> Route | None:
        return match_suffix(path, query, "/chat/completions")

    def read_request(self, req: ChatRequest, rec: CallRecord, route: Route) -> None:
        rec.request_model = req.model or route.model
        rec.stream = req.stream
        rec.max_tokens = (
            req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
        )
        rec.temperature = req.temperature
        rec.top_p = req.top_p
        rec.top_k = req.top_k
        rec.seed = req.seed
        rec.choice_count = req.n
        rec.stop_sequences = stop_list(req.stop)
        rec.frequency_penalty = req.frequency_penalty
        rec.presence_penalty = req.presence_penalty
        rec.output_type = output_type_of(req.response_format, req.modalities)
        rec.request_service_tier = req.service_tier

    def stream_complete(self, s: Scan) -> bool:
        return s.done_sentinel or any(r is not None for r in self.finish_reasons(s))

    # -- content ---------------------------------------------------------------------

    def input_messages(self, req: bytes) -> tuple[list[Any] | None, list[Any] | None]:
        r = decode_request(req, _Messages)
        if not isinstance(r, _Messages):
            return None, None
        system: list[c.Part] = []
        msgs: list[Any] = []
        for m in r.messages:
            if m.role in ("system", "developer"):
                system += openai_parts(m.content)
            elif m.role in ("tool", "function"):
                call = m.tool_call_id if m.role == "tool" else m.name
                msgs.append(c.message(m.role, [c.tool_response(call, plain_text(m.content))]))
            else:
                msgs.append(c.message(m.role, _assistant_parts(m), m.name))
        return system or None, msgs or None

    def output_messages(self, body: bytes, finish: list[str] | None) -> list[Any] | None:
        r = decode_request(body, _Completion)
        if not isinstance(r, _Completion):
            return None
        return [
            c.output_message(
                _assistant_parts(ch.message or _Message()),
                ch.finish_reason if isinstance(ch.finish_reason, str) else c.finish_at(finish, i),
                (ch.message.role if ch.message else None) or "assistant",
            )
            for i, ch in enumerate(r.choices)
        ]

    def stream_messages(self, s: Scan, finish: list[str] | None) -> list[Any] | None:
        v, capped = s.values, s.capped
        raw = self.finish_reasons(s)
        n = max(len(x) for x in (s.seq("c_text"), s.seq("c_think"), s.seq("c_think2"), raw))
        msgs = []
        for i in range(max(n, 1 if s.seq("c_tc_name") or s.seq("c_tc_args") else 0)):
            parts: list[c.Part] = []
            think = c.at(v["c_think"], i) or c.at(v["c_think2"], i)
            if think:
                cut = "c_think" in capped or "c_think2" in capped
                parts.append(c.reasoning(c.cut(think, cut)))
            for slot in ("c_text", "c_refusal"):
                t = c.at(v[slot], i)
                if t:
                    parts.append(c.text(c.cut(t, slot in capped)))
            if i == 0:  # tool calls are keyed by their own index, not the choice's
                ids, names, args = s.seq("c_tc_id"), s.seq("c_tc_name"), s.seq("c_tc_args")
                for j in range(max(len(ids), len(names), len(args))):
                    name, arg = c.at(names, j), c.at(args, j)
                    if name or arg:
                        parts.append(c.tool_call(c.at(ids, j), name, arg))
            fn, fn_args = c.at(v["c_fn_name"], i), c.at(v["c_fn_args"], i)
            if fn or fn_args:
                parts.append(c.tool_call(None, fn, fn_args))
            msgs.append(c.output_message(parts, c.at(raw, i) or c.finish_at(finish, i)))
        return msgs or None


FAMILY = OpenAIChat()
