"""Ollama's native API: ``POST /api/chat`` and ``POST /api/generate``.

Streams by default (``stream`` absent means true) as NDJSON; every line repeats the
model, and the final ``"done": true`` line carries ``done_reason``,
``prompt_eval_count`` (input) and ``eval_count`` (output). No response id. An error
is ``{"error": "..."}``, as the whole body or as a line of the stream.
Ollama's OpenAI-compatible ``/v1`` endpoints are the OpenAI families'.
"""

from __future__ import annotations

from typing import Any

import msgspec

from . import content as c
from .family import Family, Route, Scan, decode_request
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


# -- content (capture only) ------------------------------------------------------------


class _Function(msgspec.Struct):
    name: Any = None
    arguments: Any = None


class _ToolCall(msgspec.Struct):
    id: Any = None
    function: _Function | None = None


class _Message(msgspec.Struct):
    role: Any = None
    content: Any = None
    thinking: Any = None
    images: Any = None
    tool_calls: list[_ToolCall] | None = None
    tool_name: Any = None


class _Request(msgspec.Struct):
    messages: list[_Message] = msgspec.field(default_factory=list)  # /api/chat
    prompt: Any = None  # /api/generate
    system: Any = None
    images: Any = None


class _Response(msgspec.Struct):
    message: _Message | None = None  # /api/chat
    response: Any = None  # /api/generate
    thinking: Any = None
    done_reason: Any = None


def _images(images: Any) -> list[c.Part]:
    # base64 without a MIME type
    return (
        [c.blob("image", None, i) for i in images if isinstance(i, str)]
        if isinstance(images, list)
        else []
    )


def _parts(m: _Message) -> list[c.Part]:
    parts = [c.reasoning(m.thinking)] if isinstance(m.thinking, str) and m.thinking else []
    if m.role == "tool":
        return [c.tool_response(m.tool_name, m.content)]
    parts += c.text_parts(m.content) + _images(m.images)
    for tc in m.tool_calls or ():
        fn = tc.function or _Function()
        parts.append(c.tool_call(tc.id, fn.name, fn.arguments))
    return parts


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

    # Streamed output: chat lines carry "message", generate lines "response". Tool
    # calls arrive whole with object arguments: their names are kept.
    capture_paths = {
        "c_text": "message.content",
        "c_think": "message.thinking",
        "c_tool": "message.tool_calls[*].function.name",
        "c_gen": "response",
        "c_gen_think": "thinking",
    }
    capture_folds = {
        "c_text": "concat",
        "c_think": "concat",
        "c_gen": "concat",
        "c_gen_think": "concat",
    }

    texts = {"response_model": ("model",)}
    numbers = {"input_tokens": ("in",), "output_tokens": ("out",)}

    def stream_complete(self, s: Scan) -> bool:
        return s.get("done") is True

    # -- content ---------------------------------------------------------------------

    def input_messages(self, req: bytes) -> tuple[list[Any] | None, list[Any] | None]:
        r = decode_request(req, _Request)
        if not isinstance(r, _Request):
            return None, None
        system = c.text_parts(r.system) if isinstance(r.system, str) else []
        msgs: list[Any] = []
        for m in r.messages:
            if m.role == "system":
                system += c.text_parts(m.content)
            else:
                msgs.append(c.message(m.role, _parts(m)))
        if isinstance(r.prompt, str) and (r.prompt or r.images):
            msgs.append(c.message("user", c.text_parts(r.prompt) + _images(r.images)))
        return system or None, msgs or None

    def output_messages(self, body: bytes, finish: list[str] | None) -> list[Any] | None:
        r = decode_request(body, _Response)
        if not isinstance(r, _Response):
            return None
        reason = r.done_reason if isinstance(r.done_reason, str) else c.finish_at(finish, 0)
        if r.message is not None:
            return [c.output_message(_parts(r.message), reason, r.message.role)]
        think = [c.reasoning(r.thinking)] if isinstance(r.thinking, str) and r.thinking else []
        return [c.output_message(think + c.text_parts(r.response), reason)]

    def stream_messages(self, s: Scan, finish: list[str] | None) -> list[Any] | None:
        parts: list[c.Part] = []
        for think, text in (("c_think", "c_text"), ("c_gen_think", "c_gen")):
            if s.text(think):
                parts.append(c.reasoning(c.cut(s.get(think), think in s.capped)))
            parts += c.text_parts(c.cut(s.get(text), text in s.capped))
        parts += [c.tool_call(None, n, None) for n in s.seq("c_tool") if n]
        return [c.output_message(parts, c.finish_at(finish, 0))]


class OllamaChat(OllamaNative):
    name = "ollama.chat"
    path_keys = ("chat",)
    operation = "chat"
    suffix = "/api/chat"


class OllamaGenerate(OllamaNative):
    name = "ollama.generate"
    path_keys = ("generate",)
    operation = "text_completion"
    suffix = "/api/generate"


CHAT = OllamaChat()
GENERATE = OllamaGenerate()
