"""AWS Bedrock Converse and ConverseStream, ``POST /model/{modelId}/converse[-stream]``.

Plain JSON, or an AWS eventstream whose ``:event-type`` names the event
(``messageStart``, ``contentBlockDelta``, ``messageStop`` with ``stopReason``,
``metadata`` with ``usage``). Bodies carry no model and no id: the request model is
the (URL-decoded) model id from the path, and ``x-amzn-requestid`` becomes
``aws.request_id``.
"""

from __future__ import annotations

import msgspec

from .bedrock_common import PROVIDER, bedrock_error_fields, bedrock_route
from .family import Family, Route, Scan, add
from .record import CallRecord

__all__ = ["FAMILY", "ConverseRequest"]


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


class BedrockConverse(Family):
    name = "bedrock.converse"
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

    def fold(self, s: Scan, rec: CallRecord) -> None:
        base = s.num("in")
        read, write = s.num("cache_read"), s.num("cache_write")
        rec.input_tokens = add(base, read, write) if base is not None else None
        rec.output_tokens = s.num("out")
        rec.cache_read_tokens = read
        rec.cache_creation_tokens = write

    def stream_complete(self, s: Scan) -> bool:
        return s.get("finish") is not None

    def error_fields(self, s: Scan) -> tuple[str | None, str | None]:
        return bedrock_error_fields(s, super().error_fields(s))


FAMILY = BedrockConverse()
