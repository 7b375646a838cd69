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

from typing import Any
from urllib.parse import unquote

import msgspec

from . import content as c
from .family import Family, Route, Scan, add, decode_request
from .record import CallRecord

__all__ = [
    "ANTHROPIC_CAPTURE_FOLDS",
    "ANTHROPIC_CAPTURE_PATHS",
    "ANTHROPIC_MARKERS",
    "ANTHROPIC_OUTPUTS",
    "ANTHROPIC_PATHS",
    "FAMILY",
    "MessagesRequest",
    "anthropic_input",
    "anthropic_output",
    "anthropic_parts",
    "anthropic_stream",
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


# -- content (capture only) ------------------------------------------------------------

#: Streamed content blocks, per block index: type, tool id and name from
#: ``content_block_start``, text / thinking / tool input joined from the deltas.
ANTHROPIC_CAPTURE_PATHS = {
    "c_idx": "index",
    "c_type": "content_block.type",
    "c_id": "content_block.id",
    "c_name": "content_block.name",
    "c_text": "delta.text",
    "c_think": "delta.thinking",
    "c_json": "delta.partial_json",
}
ANTHROPIC_CAPTURE_FOLDS = {
    "c_type": ("keyed", "c_idx"),
    "c_id": ("keyed", "c_idx"),
    "c_name": ("keyed", "c_idx"),
    "c_text": ("concat", "c_idx"),
    "c_think": ("concat", "c_idx"),
    "c_json": ("concat", "c_idx"),
}


class _Message(msgspec.Struct):
    role: Any = None
    content: Any = None


class _Request(msgspec.Struct):
    system: Any = None
    messages: list[_Message] = msgspec.field(default_factory=list)
    prompt: Any = None  # the Bedrock InvokeModel text models share this decoder
    inputText: Any = None


class _Response(msgspec.Struct):
    role: Any = None
    content: Any = None
    stop_reason: Any = None


def _source(block: dict[str, Any], modality: str) -> c.Part:
    src = c.obj(block.get("source"))
    kind = src.get("type")
    mime = src.get("media_type")
    if kind == "base64":
        return c.blob(c.modality_of(mime, modality), mime, src.get("data"))
    if kind == "text":
        return c.text(src.get("data") or "")
    if kind == "file":
        return c.file_part(modality, mime, src.get("file_id"))
    return c.uri(modality, mime, src.get("url"))


def anthropic_parts(content: Any) -> list[c.Part]:
    """Anthropic content: a string, or a list of typed blocks."""
    if not isinstance(content, list):
        return c.text_parts(content)
    parts: list[c.Part] = []
    for b in content:
        if not isinstance(b, dict):
            continue
        kind = b.get("type")
        if kind == "text":
            parts.append(c.text(b.get("text") or ""))
        elif kind == "thinking":
            parts.append(c.reasoning(b.get("thinking") or ""))
        elif kind == "tool_use":
            parts.append(c.tool_call(b.get("id"), b.get("name"), b.get("input")))
        elif kind == "tool_result":
            inner = b.get("content")
            if isinstance(inner, list):
                mapped = anthropic_parts(inner)
                texts = [p["content"] for p in mapped if p["type"] == "text"]
                inner = "".join(texts) if len(texts) == len(mapped) else mapped
            parts.append(c.tool_response(b.get("tool_use_id"), inner))
        elif kind == "image":
            parts.append(_source(b, "image"))
        elif kind == "document":
            parts.append(_source(b, "document"))
        else:  # redacted thinking, server tool use and results, ...
            parts.append(c.generic(kind, id=b.get("id"), name=b.get("name")))
    return parts


def anthropic_input(req: bytes) -> tuple[list[Any] | None, list[Any] | None]:
    r = decode_request(req, _Request)
    if not isinstance(r, _Request):
        return None, None
    system = anthropic_parts(r.system)
    msgs = [c.message(m.role, anthropic_parts(m.content)) for m in r.messages]
    for prompt in (r.prompt, r.inputText):  # Bedrock text models: one prompt string
        if isinstance(prompt, str) and prompt:
            msgs.append(c.message("user", [c.text(prompt)]))
    return system or None, msgs or None


def anthropic_output(body: bytes, finish: list[str] | None) -> list[Any] | None:
    r = decode_request(body, _Response)
    if not isinstance(r, _Response) or not isinstance(r.content, list):
        return None
    reason = r.stop_reason if isinstance(r.stop_reason, str) else c.finish_at(finish, 0)
    return [c.output_message(anthropic_parts(r.content), reason, r.role)]


def anthropic_stream(s: Scan, finish: list[str] | None) -> list[c.Part]:
    """The content blocks of a streamed message, in block order."""
    v, capped = s.values, s.capped
    parts: list[c.Part] = []
    for i, kind in enumerate(s.seq("c_type")):
        text, think = c.at(v["c_text"], i), c.at(v["c_think"], i)
        if kind in ("tool_use", "server_tool_use"):
            raw = c.at(v["c_json"], i)
            args = c.arguments(raw) if raw else {}
            if kind == "tool_use":
                parts.append(c.tool_call(c.at(v["c_id"], i), c.at(v["c_name"], i), args))
            else:
                parts.append(c.generic(kind, id=c.at(v["c_id"], i), name=c.at(v["c_name"], i)))
        elif kind == "thinking" or (kind is None and think):
            parts.append(c.reasoning(c.cut(think or "", "c_think" in capped)))
        elif kind == "text" or (kind is None and text):
            parts.append(c.text(c.cut(text or "", "c_text" in capped)))
        elif kind is not None:
            parts.append(c.generic(kind))
    return parts


class AnthropicMessages(Family):
    name = "anthropic.messages"
    path_keys = ("messages", "rawPredict", "streamRawPredict")
    operation = "chat"
    provider = "anthropic"
    request = MessagesRequest
    paths = ANTHROPIC_PATHS
    outputs = ANTHROPIC_OUTPUTS
    markers = ANTHROPIC_MARKERS
    capture_paths = ANTHROPIC_CAPTURE_PATHS
    capture_folds = ANTHROPIC_CAPTURE_FOLDS

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

    texts = {"response_id": ("s_id", "id"), "response_model": ("s_model", "model")}

    def fold(self, s: Scan, rec: CallRecord) -> None:
        fold_anthropic_usage(s, rec)

    def finish_reasons(self, s: Scan) -> list[str | None]:
        stop = s.text("s_stop", "stop")
        return [stop]

    def stream_complete(self, s: Scan) -> bool:
        return s.get("type") == "message_stop"

    def in_stream_error(self, s: Scan) -> bool:
        return super().in_stream_error(s) or s.get("type") == "error"

    # -- content ---------------------------------------------------------------------

    def input_messages(self, req: bytes) -> tuple[list[Any] | None, list[Any] | None]:
        return anthropic_input(req)

    def output_messages(self, body: bytes, finish: list[str] | None) -> list[Any] | None:
        return anthropic_output(body, finish)

    def stream_messages(self, s: Scan, finish: list[str] | None) -> list[Any] | None:
        return [c.output_message(anthropic_stream(s, finish), c.finish_at(finish, 0))]


FAMILY = AnthropicMessages()
