"""Ollama's native API: ``POST /api/chat`` and ``POST /api/generate``.

Streams by default (``stream`` absent means true) as NDJSON; every line repeats the
model, and the final ``"done": true`` line carries ``done_reason``,
``prompt_eval_count`` (input) and ``eval_count`` (output). No response id. An error
is ``{"error": "..."}``, as the whole body or as a line of the stream.
Ollama's OpenAI-compatible ``/v1`` endpoints are the OpenAI families'.
"""

from __future__ import annotations

import msgspec

from .family import Family, Route, Scan
from .record import CallRecord

__all__ = ["CHAT", "GENERATE", "OllamaRequest"]


class _Options(msgspec.Struct):
    num_predict: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None


class OllamaRequest(msgspec.Struct):
    model: str | None = None
    stream: bool | None = None
    # "json", a JSON schema object, or "": kept raw, only its shape matters
    format: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    options: _Options | None = None


class OllamaNative(Family):
    provider = "ollama"
    request = OllamaRequest
    stream_framing = "ndjson"
    suffix = ""
    paths = {
        "model": "model",
        "done": "done",
        "finish": "done_reason",
        "in": "prompt_eval_count",
        "out": "eval_count",
        "text": "?message.content",
        "think": "?message.thinking",
        "tool": "?message.tool_calls",
        "gen_text": "?response",
        "gen_think": "?thinking",
    }
    outputs = (
        ("think", "reasoning"),
        ("gen_think", "reasoning"),
        ("text", "text"),
        ("gen_text", "text"),
        ("tool", "tool_call"),
    )

    def match(self, method: str, path: str, query: str) -> Route | None:
        return Route(provider="ollama") if path.endswith(self.suffix) else None

    def default_stream(self) -> bool | None:
        return True

    def read_request(self, req: OllamaRequest, rec: CallRecord, route: Route) -> None:
        rec.request_model = req.model
        rec.stream = req.stream
        fmt = bytes(req.format).strip()
        if fmt.startswith(b"{") or fmt == b'"json"':
            rec.output_type = "json"
        o = req.options
        if o is not None:
            rec.max_tokens = o.num_predict
            rec.temperature = o.temperature
            rec.top_p = o.top_p
            rec.top_k = o.top_k
            rec.seed = o.seed
            rec.stop_sequences = [o.stop] if isinstance(o.stop, str) else (o.stop or None)
            rec.frequency_penalty = o.frequency_penalty
            rec.presence_penalty = o.presence_penalty

    def fold(self, s: Scan, rec: CallRecord) -> None:
        rec.response_model = s.text("model")
        rec.input_tokens = s.num("in")
        rec.output_tokens = s.num("out")

    def stream_complete(self, s: Scan) -> bool:
        return s.get("done") is True


class OllamaChat(OllamaNative):
    name = "ollama.chat"
    operation = "chat"
    suffix = "/api/chat"


class OllamaGenerate(OllamaNative):
    name = "ollama.generate"
    operation = "text_completion"
    suffix = "/api/generate"


CHAT = OllamaChat()
GENERATE = OllamaGenerate()
