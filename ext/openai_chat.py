"""OpenAI chat completions, ``POST .../chat/completions``, and every provider that
speaks it: Azure OpenAI, Groq, Mistral, DeepSeek, Together, OpenRouter, xAI, Ollama
``/v1``. Plain JSON or SSE (``data: [DONE]`` ends it); ``n > 1`` interleaves choices;
usage arrives in a final ``choices: []`` chunk with ``stream_options.include_usage``
(Groq: ``x_groq.usage``; Mistral and DeepSeek: in the finish chunk).
"""

from __future__ import annotations

import msgspec

from .family import Family, Route, Scan
from .openai_common import (
    COMPAT_USAGE_PATHS,
    ResponseFormat,
    fold_compat_usage,
    match_suffix,
    output_type_of,
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


class OpenAIChat(Family):
    name = "openai.chat_completions"
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

    def fold(self, s: Scan, rec: CallRecord) -> None:
        rec.response_model = s.text("model")
        rec.response_id = s.text("id")
        rec.system_fingerprint = s.text("fingerprint")
        rec.service_tier = s.text("tier")
        fold_compat_usage(s, rec)

    def stream_complete(self, s: Scan) -> bool:
        return s.done_sentinel or any(r is not None for r in self.finish_reasons(s))


FAMILY = OpenAIChat()
