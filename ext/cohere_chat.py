"""Cohere chat: v2 ``POST /v2/chat`` (plain JSON, or SSE: ``message-start`` has the
id, ``content-delta``/``tool-plan-delta``/``tool-call-start`` the output,
``message-end`` the finish reason and usage, then a bare ``data: [DONE]``) and v1
``POST /v1/chat`` (plain JSON, or NDJSON ending in a ``stream-end`` event whose
``response`` holds id and ``meta``).

Bodies carry no model. Usage: ``tokens.*`` are the tokens processed (input includes
``cached_tokens``) and become the usage attributes; ``billed_units.*`` are what Cohere
bills, so the cost estimate prices those.
A v2 ``tool_plan`` is the model's reasoning about tool use: it counts as reasoning.
"""

from __future__ import annotations

from typing import Any

import msgspec

from . import content as c
from .family import Family, Route, Scan, decode_request
from .openai_common import ResponseFormat, openai_parts, output_type_of, plain_text
from .record import CallRecord

__all__ = ["FAMILY", "CohereChatRequest"]


class CohereChatRequest(msgspec.Struct):
    model: str | None = None
    stream: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    p: float | None = None
    k: float | None = None
    seed: int | None = None
    stop_sequences: list[str] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    response_format: ResponseFormat | None = None


# -- content (capture only) ------------------------------------------------------------

# v1 roles are upper case; CHATBOT is the assistant
_V1_ROLES = {"USER": "user", "CHATBOT": "assistant", "SYSTEM": "system", "TOOL": "tool"}


class _Function(msgspec.Struct):
    name: Any = None
    arguments: Any = None


class _ToolCall(msgspec.Struct):
    id: Any = None
    function: _Function | None = None
    name: Any = None  # v1
    parameters: Any = None  # v1


class _Message(msgspec.Struct):
    role: Any = None
    content: Any = None  # v2: str or typed parts
    message: Any = None  # v1 chat_history
    tool_plan: Any = None
    tool_calls: list[_ToolCall] | None = None
    tool_call_id: Any = None


class _Request(msgspec.Struct):
    messages: list[_Message] = msgspec.field(default_factory=list)  # v2
    message: Any = None  # v1
    preamble: Any = None
    chat_history: list[_Message] = msgspec.field(default_factory=list)


class _Response(msgspec.Struct):
    message: _Message | None = None  # v2
    text: Any = None  # v1
    tool_calls: list[_ToolCall] | None = None
    finish_reason: Any = None


def _calls(calls: list[_ToolCall] | None) -> list[c.Part]:
    out = []
    for tc in calls or ():
        if tc.function is not None:
            out.append(c.tool_call(tc.id, tc.function.name, tc.function.arguments))
        else:
            out.append(c.tool_call(tc.id, tc.name, tc.parameters))
    return out


def _parts(m: _Message) -> list[c.Part]:
    if m.role == "tool":
        return [c.tool_response(m.tool_call_id, plain_text(m.content))]
    plan = [c.reasoning(m.tool_plan)] if isinstance(m.tool_plan, str) and m.tool_plan else []
    content = m.content if m.content is not None else m.message
    return plan + openai_parts(content) + _calls(m.tool_calls)


class CohereChat(Family):
    name = "cohere.chat"
    path_keys = ("chat",)
    operation = "chat"
    provider = "cohere"
    request = CohereChatRequest
    paths = {
        "type": "type",
        "id": "id",
        "finish": "finish_reason",
        "in": "usage.tokens.input_tokens",
        "out": "usage.tokens.output_tokens",
        "cached": "usage.cached_tokens",
        "billed_in": "usage.billed_units.input_tokens",
        "billed_out": "usage.billed_units.output_tokens",
        # v2 stream: message-end
        "s_finish": "delta.finish_reason",
        "s_in": "delta.usage.tokens.input_tokens",
        "s_out": "delta.usage.tokens.output_tokens",
        "s_cached": "delta.usage.cached_tokens",
        "s_billed_in": "delta.usage.billed_units.input_tokens",
        "s_billed_out": "delta.usage.billed_units.output_tokens",
        # v1: plain body, and the stream-end event's "response"
        "v1_id": "response_id",
        "v1_s_id": "response.response_id",
        "v1_in": "meta.tokens.input_tokens",
        "v1_out": "meta.tokens.output_tokens",
        "v1_s_in": "response.meta.tokens.input_tokens",
        "v1_s_out": "response.meta.tokens.output_tokens",
        "v1_billed_in": "meta.billed_units.input_tokens",
        "v1_billed_out": "meta.billed_units.output_tokens",
        "v1_s_billed_in": "response.meta.billed_units.input_tokens",
        "v1_s_billed_out": "response.meta.billed_units.output_tokens",
        "v1_finished": "is_finished",
        # output
        "text": "?delta.message.content.text",
        "think": "?delta.message.content.thinking",
        "plan": "?delta.message.tool_plan",
        "tool": "?delta.message.tool_calls",
        "text_ns": "?message.content[*].text",
        "think_ns": "?message.content[*].thinking",
        "plan_ns": "?message.tool_plan",
        "tool_ns": "?message.tool_calls",
        "v1_text": "?text",
        "v1_tool": "?tool_calls",
    }
    outputs = (
        ("think", "reasoning"),
        ("plan", "reasoning"),
        ("think_ns", "reasoning"),
        ("plan_ns", "reasoning"),
        ("text", "text"),
        ("text_ns", "text"),
        ("v1_text", "text"),
        ("tool", "tool_call"),
        ("tool_ns", "tool_call"),
        ("v1_tool", "tool_call"),
    )

    # Streamed output. v2: text and tool plan deltas; tool calls by their "index"
    # (tool-call-start names them, tool-call-delta streams the arguments). v1: the
    # text-generation events' "text".
    capture_paths = {
        "c_text": "delta.message.content.text",
        "c_plan": "delta.message.tool_plan",
        "c_idx": "index",
        "c_tc_id": "delta.message.tool_calls.id",
        "c_tc_name": "delta.message.tool_calls.function.name",
        "c_tc_args": "delta.message.tool_calls.function.arguments",
        "c_v1_text": "text",
    }
    capture_folds = {
        "c_text": "concat",
        "c_plan": "concat",
        "c_tc_id": ("keyed", "c_idx"),
        "c_tc_name": ("keyed", "c_idx"),
        "c_tc_args": ("concat", "c_idx"),
        "c_v1_text": "concat",
    }

    def match(self, method: str, path: str, query: str) -> Route | None:
        if path.endswith("/v2/chat"):
            return Route(provider="cohere")
        if path.endswith("/v1/chat"):
            return Route(provider="cohere", framing="ndjson")
        return None

    def read_request(self, req: CohereChatRequest, rec: CallRecord, route: Route) -> None:
        rec.request_model = req.model
        rec.stream = req.stream
        rec.max_tokens = req.max_tokens
        rec.temperature = req.temperature
        rec.top_p = req.p
        rec.top_k = req.k
        rec.seed = req.seed
        rec.stop_sequences = req.stop_sequences or None
        rec.frequency_penalty = req.frequency_penalty
        rec.presence_penalty = req.presence_penalty
        rec.output_type = output_type_of(req.response_format)

    texts = {"response_id": ("id", "v1_s_id", "v1_id")}
    numbers = {
        "input_tokens": ("s_in", "in", "v1_s_in", "v1_in"),
        "output_tokens": ("s_out", "out", "v1_s_out", "v1_out"),
        "cache_read_tokens": ("s_cached", "cached"),
        "billed_input_tokens": ("s_billed_in", "billed_in", "v1_s_billed_in", "v1_billed_in"),
        "billed_output_tokens": (
            "s_billed_out",
            "billed_out",
            "v1_s_billed_out",
            "v1_billed_out",
        ),
    }

    def finish_reasons(self, s: Scan) -> list[str | None]:
        return [s.text("s_finish", "finish")]

    def stream_complete(self, s: Scan) -> bool:
        return s.done_sentinel or s.get("v1_finished") is True or s.get("type") == "message-end"

    # -- content ---------------------------------------------------------------------

    def input_messages(self, req: bytes) -> tuple[list[Any] | None, list[Any] | None]:
        r = decode_request(req, _Request)
        if not isinstance(r, _Request):
            return None, None
        system = c.text_parts(r.preamble) if isinstance(r.preamble, str) else []
        msgs: list[Any] = []
        for m in (*r.chat_history, *r.messages):
            role = _V1_ROLES.get(m.role, m.role) if isinstance(m.role, str) else m.role
            if role == "system":
                system += openai_parts(m.content if m.content is not None else m.message)
            else:
                msgs.append(c.message(role, _parts(_with_role(m, role))))
        if isinstance(r.message, str) and r.message:
            msgs.append(c.message("user", [c.text(r.message)]))
        return system or None, msgs or None

    def output_messages(self, body: bytes, finish: list[str] | None) -> list[Any] | None:
        r = decode_request(body, _Response)
        if not isinstance(r, _Response):
            return None
        reason = r.finish_reason if isinstance(r.finish_reason, str) else c.finish_at(finish, 0)
        if r.message is not None:
            return [c.output_message(_parts(r.message), reason, r.message.role)]
        return [c.output_message(c.text_parts(r.text) + _calls(r.tool_calls), reason)]

    def stream_messages(self, s: Scan, finish: list[str] | None) -> list[Any] | None:
        parts: list[c.Part] = []
        if s.text("c_plan"):
            parts.append(c.reasoning(c.cut(s.get("c_plan"), "c_plan" in s.capped)))
        for slot in ("c_text", "c_v1_text"):
            parts += c.text_parts(c.cut(s.get(slot), slot in s.capped))
        ids, names, args = s.seq("c_tc_id"), s.seq("c_tc_name"), s.seq("c_tc_args")
        for i, name in enumerate(names):
            if name:
                parts.append(c.tool_call(c.at(ids, i), name, c.at(args, i)))
        return [c.output_message(parts, c.finish_at(finish, 0))]


def _with_role(m: _Message, role: Any) -> _Message:
    if role == m.role:
        return m
    return msgspec.structs.replace(m, role=role)


FAMILY = CohereChat()
