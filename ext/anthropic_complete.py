"""Anthropic legacy Text Completions, ``POST /v1/complete``. Plain JSON, or SSE of
``event: completion`` objects (CRLF line endings on the wire), each repeating id and
model; the last one carries ``stop_reason``. The API reports no token usage.
"""

from __future__ import annotations

from typing import Any

import msgspec

from . import content as c
from .family import Family, Route, Scan, decode_request
from .record import CallRecord

__all__ = ["FAMILY", "CompleteRequest"]


class CompleteRequest(msgspec.Struct):
    model: str | None = None
    stream: bool | None = None
    max_tokens_to_sample: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: float | None = None
    stop_sequences: list[str] | None = None


class _Prompt(msgspec.Struct):
    prompt: Any = None


class _Completion(msgspec.Struct):
    completion: Any = None
    stop_reason: Any = None


class AnthropicComplete(Family):
    name = "anthropic.complete"
    path_keys = ("complete",)
    operation = "text_completion"
    provider = "anthropic"
    request = CompleteRequest
    paths = {
        "id": "id",
        "log_id": "log_id",
        "model": "model",
        "type": "type",
        "finish": "stop_reason",
        "text": "?completion",
    }
    outputs = (("text", "text"),)
    capture_paths = {"c_text": "completion"}
    capture_folds = {"c_text": "concat"}

    def match(self, method: str, path: str, query: str) -> Route | None:
        return Route(provider="anthropic") if path.endswith("/v1/complete") else None

    def read_request(self, req: CompleteRequest, rec: CallRecord, route: Route) -> None:
        rec.request_model = req.model
        rec.stream = req.stream
        rec.max_tokens = req.max_tokens_to_sample
        rec.temperature = req.temperature
        rec.top_p = req.top_p
        rec.top_k = req.top_k
        rec.stop_sequences = req.stop_sequences or None

    texts = {"response_id": ("id", "log_id"), "response_model": ("model",)}

    def finish_reasons(self, s: Scan) -> list[str | None]:
        return [s.text("finish")]

    def stream_complete(self, s: Scan) -> bool:
        return s.get("finish") is not None

    def in_stream_error(self, s: Scan) -> bool:
        return super().in_stream_error(s) or s.get("type") == "error"

    # -- content: the prompt is one "\n\nHuman: ... \n\nAssistant:" string ------------

    def input_messages(self, req: bytes) -> tuple[list[Any] | None, list[Any] | None]:
        r = decode_request(req, _Prompt)
        if not isinstance(r, _Prompt) or not isinstance(r.prompt, str):
            return None, None
        return None, [c.message("user", [c.text(r.prompt)])]

    def output_messages(self, body: bytes, finish: list[str] | None) -> list[Any] | None:
        r = decode_request(body, _Completion)
        if not isinstance(r, _Completion) or not isinstance(r.completion, str):
            return None
        reason = r.stop_reason if isinstance(r.stop_reason, str) else c.finish_at(finish, 0)
        return [c.output_message(c.text_parts(r.completion), reason)]

    def stream_messages(self, s: Scan, finish: list[str] | None) -> list[Any] | None:
        text = c.cut(s.get("c_text"), "c_text" in s.capped)
        return [c.output_message(c.text_parts(text), c.finish_at(finish, 0))]


FAMILY = AnthropicComplete()
