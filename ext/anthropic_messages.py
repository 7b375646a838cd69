"""Anthropic Messages, ``POST /v1/messages`` (also Claude on Vertex AI,
``.../publishers/anthropic/models/{m}:rawPredict|streamRawPredict``).

Plain JSON, or SSE with ``event:`` names: ``message_start`` carries id, model and the
input/cache usage; ``message_delta`` carries ``stop_reason`` and the cumulative
output count (newer API versions repeat the input/cache counts there, and with
server tools its input count is the larger, final one); ``message_stop`` ends it. An
``event: error`` can arrive inside a 200 stream.

Usage: Anthropic's ``input_tokens`` excludes cache reads and writes, so
``gen_ai.usage.input_tokens`` = input + cache_read + cache_creation.
"""

from __future__ import annotations

from urllib.parse import unquote

import msgspec

from .family import Family, Route, Scan, add
from .record import CallRecord

__all__ = [
    "ANTHROPIC_MARKERS",
    "ANTHROPIC_OUTPUTS",
    "ANTHROPIC_PATHS",
    "FAMILY",
    "MessagesRequest",
    "fold_anthropic_usage",
]


class _OutputFormat(msgspec.Struct):
    type: str | None = None


class MessagesRequest(msgspec.Struct):
    model: str | None = None
    stream: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: float | None = None
    stop_sequences: list[str] | None = None
    output_format: _OutputFormat | None = None


#: Usage slots shared with Claude on Bedrock InvokeModel.
ANTHROPIC_PATHS = {
    "id": "id",
    "model": "model",
    "type": "type",
    "stop": "stop_reason",
    "in": "usage.input_tokens",
    "out": "usage.output_tokens",
    "cache_read": "usage.cache_read_input_tokens",
    "cache_write": "usage.cache_creation_input_tokens",
    "thinking_tokens": "usage.output_tokens_details.thinking_tokens",
    # streamed: message_start / message_delta
    "s_id": "message.id",
    "s_model": "message.model",
    "s_in": "message.usage.input_tokens",
    "s_out": "message.usage.output_tokens",
    "s_cache_read": "message.usage.cache_read_input_tokens",
    "s_cache_write": "message.usage.cache_creation_input_tokens",
    "s_stop": "delta.stop_reason",
    # output: content blocks (plain) or their deltas (streamed)
    "delta": "?delta.type",
    "text": "?delta.text",
    "think": "?delta.thinking",
    "tool": "?content_block.name",
    "text_ns": "?content[*].text",
    "think_ns": "?content[*].thinking",
    "tool_ns": "?content[*].name",
}

# Any content_block_delta is output (even an empty first tool-input delta); a tool
# call's kind is announced by its content_block_start, which is not output itself.
ANTHROPIC_OUTPUTS = (
    ("think", "reasoning"),
    ("think_ns", "reasoning"),
    ("text", "text"),
    ("text_ns", "text"),
    ("tool", "tool_call"),
    ("tool_ns", "tool_call"),
)
ANTHROPIC_MARKERS = ("delta", "think_ns", "text_ns", "tool_ns")


def fold_anthropic_usage(s: Scan, rec: CallRecord) -> None:
    # message_delta's counts (top-level "usage") are cumulative and final; the
    # message_start ones are the fallback (output there is a placeholder).
    read = s.num("cache_read", "s_cache_read")
    write = s.num("cache_write", "s_cache_write")
    base = s.num("in", "s_in")
    rec.input_tokens = add(base, read, write) if base is not None else None
    rec.cache_read_tokens = read
    rec.cache_creation_tokens = write
    rec.output_tokens = s.num("out", "s_out")
    rec.reasoning_tokens = s.num("thinking_tokens")


class AnthropicMessages(Family):
    name = "anthropic.messages"
    operation = "chat"
    provider = "anthropic"
    request = MessagesRequest
    paths = ANTHROPIC_PATHS
    outputs = ANTHROPIC_OUTPUTS
    markers = ANTHROPIC_MARKERS

    def match(self, method: str, path: str, query: str) -> Route | None:
        if path.endswith("/v1/messages"):
            return Route(provider="anthropic")
        # Claude on Vertex AI: the model is in the path, the body is Anthropic's.
        head, sep, verb = path.rpartition(":")
        if (
            sep
            and verb in ("rawPredict", "streamRawPredict")
            and "/publishers/anthropic/models/" in head
        ):
            model = unquote(head.rpartition("/models/")[2])
            return Route(
                provider="gcp.vertex_ai", model=model or None, stream=verb == "streamRawPredict"
            )
        return None

    def read_request(self, req: MessagesRequest, rec: CallRecord, route: Route) -> None:
        rec.request_model = req.model or route.model
        rec.stream = req.stream if req.stream is not None else route.stream
        rec.max_tokens = req.max_tokens
        rec.temperature = req.temperature
        rec.top_p = req.top_p
        rec.top_k = req.top_k
        rec.stop_sequences = req.stop_sequences or None
        if req.output_format is not None and req.output_format.type:
            rec.output_type = "json" if "json" in req.output_format.type else "text"

    def fold(self, s: Scan, rec: CallRecord) -> None:
        rec.response_id = s.text("s_id", "id")
        rec.response_model = s.text("s_model", "model")
        fold_anthropic_usage(s, rec)

    def finish_reasons(self, s: Scan) -> list[str | None]:
        stop = s.text("s_stop", "stop")
        return [stop]

    def stream_complete(self, s: Scan) -> bool:
        return s.get("type") == "message_stop"

    def in_stream_error(self, s: Scan) -> bool:
        return super().in_stream_error(s) or s.get("type") == "error"


FAMILY = AnthropicMessages()
