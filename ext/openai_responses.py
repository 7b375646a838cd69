"""OpenAI Responses API, ``POST .../responses``. Plain JSON, or SSE whose ``event:``
equals ``data.type``; the response object (id, model, status, usage) rides in
``response.created`` / ``response.completed`` / ``response.incomplete`` /
``response.failed``; output arrives as ``*.delta`` events.

Finish reason: ``response.status`` (``completed``, ``failed``, ...), or the
``incomplete_details.reason`` of an incomplete response (``max_output_tokens``).
"""

from __future__ import annotations

from typing import Any

import msgspec

from . import content as c
from .errors import pick_error_type
from .family import Family, Route, Scan, decode_request
from .openai_common import ResponseFormat, match_suffix, openai_parts, output_type_of, plain_text
from .record import CallRecord

__all__ = ["FAMILY", "ResponsesRequest"]

_TERMINAL = frozenset({"completed", "incomplete", "failed", "cancelled"})


class _TextConfig(msgspec.Struct):
    format: ResponseFormat | None = None


class ResponsesRequest(msgspec.Struct):
    model: str | None = None
    stream: bool | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    text: _TextConfig | None = None
    service_tier: str | None = None


# -- content (capture only) ------------------------------------------------------------


class _Item(msgspec.Struct):
    """An input or output item: a message, a function call or its output, reasoning..."""

    type: Any = None
    role: Any = None
    content: Any = None
    id: Any = None
    call_id: Any = None
    name: Any = None
    arguments: Any = None
    output: Any = None
    summary: Any = None


class _Input(msgspec.Struct):
    instructions: Any = None
    input: str | list[_Item] | None = None


class _Output(msgspec.Struct):
    output: list[_Item] = msgspec.field(default_factory=list)


def _summary(summary: Any) -> str:
    if not isinstance(summary, list):
        return ""
    return "\n".join(
        p["text"] for p in summary if isinstance(p, dict) and isinstance(p.get("text"), str)
    )


def _item_parts(it: _Item) -> list[c.Part]:
    """The parts an item contributes to an assistant turn."""
    if it.type in (None, "message"):
        return openai_parts(it.content)
    if it.type == "function_call":
        return [c.tool_call(it.call_id, it.name, it.arguments)]
    if it.type == "reasoning":
        text = _summary(it.summary)
        return [c.reasoning(text)] if text else []
    return [c.generic(it.type, id=it.id, name=it.name)]  # web search and other tool items


class OpenAIResponses(Family):
    name = "openai.responses"
    path_keys = ("responses",)
    operation = "chat"
    provider = "openai"
    request = ResponsesRequest
    paths = {
        # streamed: inside the event's "response" object
        "s_id": "response.id",
        "s_model": "response.model",
        "s_status": "response.status",
        "s_incomplete": "response.incomplete_details.reason",
        "s_tier": "response.service_tier",
        "s_in": "response.usage.input_tokens",
        "s_out": "response.usage.output_tokens",
        "s_cached": "response.usage.input_tokens_details.cached_tokens",
        "s_reasoning": "response.usage.output_tokens_details.reasoning_tokens",
        "s_err_code": "response.error.code",
        "s_err_msg": "response.error.message",
        # plain: the response object itself
        "id": "id",
        "model": "model",
        "status": "status",
        "incomplete": "incomplete_details.reason",
        "tier": "service_tier",
        "in": "usage.input_tokens",
        "out": "usage.output_tokens",
        "cached": "usage.input_tokens_details.cached_tokens",
        "reasoning": "usage.output_tokens_details.reasoning_tokens",
        # an `error` event: {"type": "error", "code": ..., "message": ...}
        "type": "type",
        "code": "code",
        # output: any *.delta event when streamed; output items when plain
        "delta": "?delta",
        "reasoning_ns": "?output[*].summary",
        "text_ns": "?output[*].content",
        "tool_ns": "?output[*].arguments",
        # what the item announced just before a delta tells the delta's kind
        "ann_tool": "?item.name",
        "ann_reasoning": "?summary_index",
        "ann_text": "?content_index",
    }
    # The kind of a delta is announced by the event just before it: a content part
    # (text), a reasoning summary part, or an output item with a name (a tool call).
    outputs = (
        ("reasoning_ns", "reasoning"),
        ("text_ns", "text"),
        ("tool_ns", "tool_call"),
        ("ann_text", "text"),
        ("ann_reasoning", "reasoning"),
        ("ann_tool", "tool_call"),
    )
    markers = ("delta", "reasoning_ns", "text_ns", "tool_ns")
    # Streamed output per output item: its type, call id and name from the item
    # events, its text (or arguments, or reasoning summary) joined from the deltas.
    capture_paths = {
        "c_idx": "output_index",
        "c_type": "item.type",
        "c_call": "item.call_id",
        "c_name": "item.name",
        "c_delta": "delta",
    }
    capture_folds = {
        "c_type": ("keyed", "c_idx"),
        "c_call": ("keyed", "c_idx"),
        "c_name": ("keyed", "c_idx"),
        "c_delta": ("concat", "c_idx"),
    }

    def match(self, method: str, path: str, query: str) -> Route | None:
        return match_suffix(path, query, "/responses")

    def read_request(self, req: ResponsesRequest, rec: CallRecord, route: Route) -> None:
        rec.request_model = req.model or route.model
        rec.stream = req.stream
        rec.max_tokens = req.max_output_tokens
        rec.temperature = req.temperature
        rec.top_p = req.top_p
        rec.output_type = output_type_of(req.text.format if req.text else None)
        rec.request_service_tier = req.service_tier

    texts = {
        "response_id": ("s_id", "id"),
        "response_model": ("s_model", "model"),
        "service_tier": ("s_tier", "tier"),
    }
    numbers = {
        "input_tokens": ("s_in", "in"),
        "output_tokens": ("s_out", "out"),
        "cache_read_tokens": ("s_cached", "cached"),
        "reasoning_tokens": ("s_reasoning", "reasoning"),
    }

    def finish_reasons(self, s: Scan) -> list[str | None]:
        status = s.text("s_status", "status")
        if status is None or status in ("in_progress", "queued"):
            return [None] if status else []
        if status == "incomplete":
            return [s.text("s_incomplete", "incomplete") or status]
        return [status]

    def stream_complete(self, s: Scan) -> bool:
        return s.text("s_status", "status") in _TERMINAL

    def in_stream_error(self, s: Scan) -> bool:
        return (
            super().in_stream_error(s)
            or s.get("type") == "error"
            or s.text("s_status") == "failed"
            or s.get("s_err_code") is not None
        )

    def error_fields(self, s: Scan) -> tuple[str | None, str | None]:
        etype, msg = super().error_fields(s)
        etype = etype or pick_error_type(s.get("s_err_code"), s.get("code"))
        return etype, msg or s.text("s_err_msg")

    # -- content ---------------------------------------------------------------------

    def input_messages(self, req: bytes) -> tuple[list[Any] | None, list[Any] | None]:
        r = decode_request(req, _Input)
        if not isinstance(r, _Input):
            return None, None
        system = c.text_parts(r.instructions) if isinstance(r.instructions, str) else []
        msgs: list[Any] = []
        items = [_Item(role="user", content=r.input)] if isinstance(r.input, str) else r.input
        for it in items or ():
            if it.type in (None, "message") and it.role in ("system", "developer"):
                system += openai_parts(it.content)
            elif it.type == "function_call_output":
                msgs.append(c.message("tool", [c.tool_response(it.call_id, plain_text(it.output))]))
            elif it.type in (None, "message"):
                msgs.append(c.message(it.role, openai_parts(it.content)))
            else:
                msgs.append(c.message("assistant", _item_parts(it)))
        return system or None, msgs or None

    def output_messages(self, body: bytes, finish: list[str] | None) -> list[Any] | None:
        r = decode_request(body, _Output)
        if not isinstance(r, _Output):
            return None
        parts = [p for it in r.output for p in _item_parts(it)]
        return [c.output_message(parts, c.finish_at(finish, 0))]

    def stream_messages(self, s: Scan, finish: list[str] | None) -> list[Any] | None:
        types, calls, names = s.seq("c_type"), s.seq("c_call"), s.seq("c_name")
        deltas, cut = s.seq("c_delta"), "c_delta" in s.capped
        parts: list[c.Part] = []
        for i, kind in enumerate(types):
            delta = c.at(deltas, i)
            if kind == "function_call":
                parts.append(c.tool_call(c.at(calls, i), c.at(names, i), delta))
            elif kind == "reasoning":
                if delta:
                    parts.append(c.reasoning(c.cut(delta, cut)))
            elif kind == "message" or (kind is None and delta):
                if delta:
                    parts.append(c.text(c.cut(delta, cut)))
            elif kind is not None:
                parts.append(c.generic(kind, name=c.at(names, i)))
        return [c.output_message(parts, c.finish_at(finish, 0))]


FAMILY = OpenAIResponses()
