"""OpenAI Responses API, ``POST .../responses``. Plain JSON, or SSE whose ``event:``
equals ``data.type``; the response object (id, model, status, usage) rides in
``response.created`` / ``response.completed`` / ``response.incomplete`` /
``response.failed``; output arrives as ``*.delta`` events.

Finish reason: ``response.status`` (``completed``, ``failed``, ...), or the
``incomplete_details.reason`` of an incomplete response (``max_output_tokens``).
"""

from __future__ import annotations

import msgspec

from .errors import pick_error_type
from .family import Family, Route, Scan
from .openai_common import ResponseFormat, match_suffix, output_type_of
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


class OpenAIResponses(Family):
    name = "openai.responses"
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

    def fold(self, s: Scan, rec: CallRecord) -> None:
        rec.response_id = s.text("s_id", "id")
        rec.response_model = s.text("s_model", "model")
        rec.service_tier = s.text("s_tier", "tier")
        rec.input_tokens = s.num("s_in", "in")
        rec.output_tokens = s.num("s_out", "out")
        rec.cache_read_tokens = s.num("s_cached", "cached")
        rec.reasoning_tokens = s.num("s_reasoning", "reasoning")

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


FAMILY = OpenAIResponses()
