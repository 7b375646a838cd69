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

import msgspec

from .family import Family, Route, Scan
from .openai_common import ResponseFormat, output_type_of
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


class CohereChat(Family):
    name = "cohere.chat"
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

    def fold(self, s: Scan, rec: CallRecord) -> None:
        rec.response_id = s.text("id", "v1_s_id", "v1_id")
        rec.input_tokens = s.num("s_in", "in", "v1_s_in", "v1_in")
        rec.output_tokens = s.num("s_out", "out", "v1_s_out", "v1_out")
        rec.cache_read_tokens = s.num("s_cached", "cached")
        rec.billed_input_tokens = s.num(
            "s_billed_in", "billed_in", "v1_s_billed_in", "v1_billed_in"
        )
        rec.billed_output_tokens = s.num(
            "s_billed_out", "billed_out", "v1_s_billed_out", "v1_billed_out"
        )

    def finish_reasons(self, s: Scan) -> list[str | None]:
        return [s.text("s_finish", "finish")]

    def stream_complete(self, s: Scan) -> bool:
        return s.done_sentinel or s.get("v1_finished") is True or s.get("type") == "message-end"


FAMILY = CohereChat()
