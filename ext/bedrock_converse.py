"""AWS Bedrock Converse and ConverseStream, ``POST /model/{modelId}/converse[-stream]``.

Plain JSON, or an AWS eventstream whose ``:event-type`` names the event
(``messageStart``, ``contentBlockDelta``, ``messageStop`` with ``stopReason``,
``metadata`` with ``usage``). Bodies carry no model and no id: the request model is
the (URL-decoded) model id from the path, and ``x-amzn-requestid`` becomes
``aws.request_id``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from . import content as c
from .bedrock_common import PROVIDER, bedrock_error_fields, bedrock_route
from .family import Family, Route, Scan, add, decode_request
from .record import CallRecord

__all__ = ["FAMILY", "ConverseRequest", "converse_input", "converse_output", "converse_parts"]


class _InferenceConfig(msgspec.Struct, rename="camel"):
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: float | None = None
    stop_sequences: list[str] | None = None


class _Additional(msgspec.Struct):
    top_k: float | None = None
    inferenceConfig: _InferenceConfig | None = None


class ConverseRequest(msgspec.Struct, rename="camel"):
    inference_config: _InferenceConfig | None = None
    additional_model_request_fields: _Additional | None = None


# -- content (capture only) ------------------------------------------------------------


class _Message(msgspec.Struct):
    role: Any = None
    content: Any = None


class _Messages(msgspec.Struct):
    system: Any = None
    messages: list[_Message] = msgspec.field(default_factory=list)


class _Output(msgspec.Struct):
    message: _Message | None = None


class _Response(msgspec.Struct):
    output: _Output | None = None
    stopReason: Any = None


def _media(block: dict[str, Any], modality: str) -> c.Part:
    fmt = block.get("format")
    src = c.obj(block.get("source"))
    s3 = src.get("s3Location")
    if isinstance(s3, dict):
        return c.uri(modality, None, s3.get("uri"))
    if isinstance(src.get("text"), str):
        return c.text(src["text"])
    mime = f"{'application' if modality == 'document' else modality}/{fmt}" if fmt else None
    return c.blob(modality, mime, src.get("bytes"))


def converse_parts(content: Any) -> list[c.Part]:
    """Converse content blocks (also Amazon Nova's InvokeModel bodies)."""
    if isinstance(content, str):
        return [c.text(content)]
    parts: list[c.Part] = []
    for b in content if isinstance(content, list) else ():
        if not isinstance(b, dict):
            continue
        if isinstance(b.get("text"), str):
            parts.append(c.text(b["text"]))
        elif isinstance(tu := b.get("toolUse"), dict):
            parts.append(c.tool_call(tu.get("toolUseId"), tu.get("name"), tu.get("input")))
        elif isinstance(tr := b.get("toolResult"), dict):
            inner = [
                x.get("text") if "text" in x else x.get("json")
                for x in tr.get("content") or ()
                if isinstance(x, dict)
            ]
            response = inner[0] if len(inner) == 1 else inner
            parts.append(c.tool_response(tr.get("toolUseId"), response))
        elif isinstance(rc := b.get("reasoningContent"), dict):
            rt = rc.get("reasoningText")
            parts.append(c.reasoning(rt.get("text") or "" if isinstance(rt, dict) else ""))
        elif isinstance(b.get("image"), dict):
            parts.append(_media(b["image"], "image"))
        elif isinstance(b.get("video"), dict):
            parts.append(_media(b["video"], "video"))
        elif isinstance(b.get("document"), dict):
            parts.append(_media(b["document"], "document"))
        elif isinstance(g := b.get("guardContent"), dict):  # text for the guardrail
            t = g.get("text")
            parts.append(c.text(t.get("text") or "" if isinstance(t, dict) else ""))
        elif "cachePoint" not in b:
            parts.append(c.generic(next(iter(b), None)))
    return parts


def converse_input(req: bytes) -> tuple[list[Any] | None, list[Any] | None]:
    r = decode_request(req, _Messages)
    if not isinstance(r, _Messages):
        return None, None
    system = converse_parts(r.system)
    msgs = [c.message(m.role, converse_parts(m.content)) for m in r.messages]
    return system or None, msgs or None


def converse_output(body: bytes, finish: list[str] | None) -> list[Any] | None:
    r = decode_request(body, _Response)
    if not isinstance(r, _Response) or r.output is None or r.output.message is None:
        return None
    m = r.output.message
    reason = r.stopReason if isinstance(r.stopReason, str) else c.finish_at(finish, 0)
    return [c.output_message(converse_parts(m.content), reason, m.role)]


class BedrockConverse(Family):
    name = "bedrock.converse"
    path_keys = ("converse", "converse-stream")
    operation = "chat"
    provider = PROVIDER
    request = ConverseRequest
    stream_framing = "eventstream"
    paths = {
        "finish": "stopReason",
        "in": "usage.inputTokens",
        "out": "usage.outputTokens",
        "cache_read": "usage.cacheReadInputTokens",
        "cache_write": "usage.cacheWriteInputTokens",
        "text": "?delta.text",
        "think": "?delta.reasoningContent.text",
        "tool": "?start.toolUse.name",
        "tool_args": "?delta.toolUse.input",
        "text_ns": "?output.message.content[*].text",
        "think_ns": "?output.message.content[*].reasoningContent",
        "tool_ns": "?output.message.content[*].toolUse",
    }
    outputs = (
        ("think", "reasoning"),
        ("think_ns", "reasoning"),
        ("text", "text"),
        ("text_ns", "text"),
        ("tool", "tool_call"),
        ("tool_args", "tool_call"),
        ("tool_ns", "tool_call"),
    )
    # Streamed content blocks, per contentBlockIndex.
    capture_paths = {
        "c_idx": "contentBlockIndex",
        "c_id": "start.toolUse.toolUseId",
        "c_name": "start.toolUse.name",
        "c_text": "delta.text",
        "c_think": "delta.reasoningContent.text",
        "c_tool": "delta.toolUse.input",
    }
    capture_folds = {
        "c_id": ("keyed", "c_idx"),
        "c_name": ("keyed", "c_idx"),
        "c_text": ("concat", "c_idx"),
        "c_think": ("concat", "c_idx"),
        "c_tool": ("concat", "c_idx"),
    }

    def match(self, method: str, path: str, query: str) -> Route | None:
        return bedrock_route(path, ("converse", "converse-stream"))

    def read_request(self, req: ConverseRequest, rec: CallRecord, route: Route) -> None:
        c = req.inference_config
        if c is not None:
            rec.max_tokens = c.max_tokens
            rec.temperature = c.temperature
            rec.top_p = c.top_p
            rec.stop_sequences = c.stop_sequences or None
        extra = req.additional_model_request_fields
        if extra is not None:
            rec.top_k = extra.top_k
            if rec.top_k is None and extra.inferenceConfig is not None:
                rec.top_k = extra.inferenceConfig.top_k

    numbers = {
        "output_tokens": ("out",),
        "cache_read_tokens": ("cache_read",),
        "cache_creation_tokens": ("cache_write",),
    }

    def fold(self, s: Scan, rec: CallRecord) -> None:
        # Bedrock's input count excludes cache reads and writes: the record's includes them
        base = s.num("in")
        read, write = rec.cache_read_tokens, rec.cache_creation_tokens
        rec.input_tokens = add(base, read, write) if base is not None else None

    def stream_complete(self, s: Scan) -> bool:
        return s.get("finish") is not None

    def error_fields(self, s: Scan) -> tuple[str | None, str | None]:
        return bedrock_error_fields(s, super().error_fields(s))

    # -- content ---------------------------------------------------------------------

    def input_messages(self, req: bytes) -> tuple[list[Any] | None, list[Any] | None]:
        return converse_input(req)

    def output_messages(self, body: bytes, finish: list[str] | None) -> list[Any] | None:
        return converse_output(body, finish)

    def stream_messages(self, s: Scan, finish: list[str] | None) -> list[Any] | None:
        return [c.output_message(converse_stream(s), c.finish_at(finish, 0))]


def converse_stream(s: Scan, prefix: str = "c_") -> list[c.Part]:
    """Streamed Converse-shaped content blocks in block order (also Nova on InvokeModel)."""
    v, capped = s.values, s.capped
    ids, names = s.seq(prefix + "id"), s.seq(prefix + "name")
    parts: list[c.Part] = []
    for i in range(len(s.seq(prefix + "idx")) or len(s.seq(prefix + "text"))):
        think, text = c.at(v[prefix + "think"], i), c.at(v[prefix + "text"], i)
        if think:
            parts.append(c.reasoning(c.cut(think, prefix + "think" in capped)))
        if text:
            parts.append(c.text(c.cut(text, prefix + "text" in capped)))
        if c.at(names, i) or c.at(v[prefix + "tool"], i):
            parts.append(c.tool_call(c.at(ids, i), c.at(names, i), c.at(v[prefix + "tool"], i)))
    return parts


FAMILY = BedrockConverse()
