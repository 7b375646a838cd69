"""AWS Bedrock InvokeModel and InvokeModelWithResponseStream,
``POST /model/{modelId}/invoke[-with-response-stream]``.

Bodies are the model vendor's own JSON; streams are an AWS eventstream of ``chunk``
events whose payload is ``{"bytes": base64(vendor JSON)}``. Paths below cover the
shapes Bedrock serves: Anthropic Messages, Amazon Nova, Titan Text, Meta Llama,
Cohere, Mistral and OpenAI-style (AI21, DeepSeek, gpt-oss). Usage comes from, in
order: the vendor's usage fields, the last chunk's ``amazon-bedrock-invocationMetrics``,
then the ``x-amzn-bedrock-*-token-count`` headers. Input counts exclude cache.
"""

from __future__ import annotations

from typing import Any

import msgspec

from . import content as c
from .anthropic_messages import (
    ANTHROPIC_CAPTURE_FOLDS,
    ANTHROPIC_CAPTURE_PATHS,
    ANTHROPIC_MARKERS,
    ANTHROPIC_OUTPUTS,
    ANTHROPIC_PATHS,
    anthropic_parts,
    anthropic_stream,
    fold_anthropic_usage,
)
from .bedrock_common import PROVIDER, bedrock_error_fields, bedrock_route, fold_header_usage
from .bedrock_converse import converse_parts
from .family import Family, Route, Scan, add, as_int, decode_request, raw_reasons
from .record import CallRecord

__all__ = ["FAMILY", "InvokeRequest"]


class _NovaInference(msgspec.Struct, rename="camel"):
    max_tokens: int | None = None
    max_new_tokens: int | None = msgspec.field(default=None, name="max_new_tokens")
    temperature: float | None = None
    top_p: float | None = None
    top_k: float | None = None
    stop_sequences: list[str] | None = None


class _TitanConfig(msgspec.Struct, rename="camel"):
    max_token_count: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop_sequences: list[str] | None = None


class InvokeRequest(msgspec.Struct):
    """The union of the vendor request fields llmtap reads."""

    max_tokens: int | None = None  # Anthropic, Cohere, Mistral, AI21
    max_gen_len: int | None = None  # Llama
    temperature: float | None = None
    top_p: float | None = None
    p: float | None = None  # Cohere
    top_k: float | None = None
    k: float | None = None  # Cohere
    seed: int | None = None
    stop_sequences: list[str] | None = None
    stop: str | list[str] | None = None  # Mistral
    inferenceConfig: _NovaInference | None = None
    textGenerationConfig: _TitanConfig | None = None


_FINISH_SCALARS = ("s_stop", "stop", "nova_stop", "nova_s_stop", "titan_s_stop", "cohere_stop")
_FINISH_LISTS = ("titan_stop", "cohere_gen_stop", "mistral_stop", "choices_stop", "choices_stop2")


_OTHER_OUTPUTS = (
    ("nova_text", "text"),
    ("nova_text_ns", "text"),
    ("titan_text", "text"),
    ("titan_text_ns", "text"),
    ("llama_text", "text"),
    ("cohere_text", "text"),
    ("cohere_gen_text", "text"),
    ("mistral_text", "text"),
    ("choices_text", "text"),
    ("choices_delta", "text"),
    ("choices_ctext", "text"),
    ("nova_tool", "tool_call"),
    ("nova_tool_ns", "tool_call"),
)


# -- content (capture only): the vendor shapes Bedrock serves ---------------------------


class _Message(msgspec.Struct):
    role: Any = None
    content: Any = None


class _Request(msgspec.Struct):
    system: Any = None
    messages: list[_Message] = msgspec.field(default_factory=list)
    prompt: Any = None  # Llama, Mistral, Cohere Command
    inputText: Any = None
    message: Any = None  # Cohere Command R


class _Response(msgspec.Struct):
    role: Any = None
    content: Any = None  # Anthropic blocks
    stop_reason: Any = None  # Anthropic, Llama
    output: Any = None  # Nova: {"message": ...}
    stopReason: Any = None
    results: Any = None  # Titan: [{"outputText", "completionReason"}]
    generation: Any = None  # Llama
    outputs: Any = None  # Mistral: [{"text", "stop_reason"}]
    generations: Any = None  # Cohere Command: [{"text", "finish_reason"}]
    text: Any = None  # Cohere Command R
    finish_reason: Any = None
    choices: Any = None  # OpenAI-style


def _parts(content: Any) -> list[c.Part]:
    """Anthropic blocks have a "type", Nova's (Converse-shaped) do not."""
    if not isinstance(content, list):
        return c.text_parts(content)
    out: list[c.Part] = []
    for b in content:
        out += anthropic_parts([b]) if isinstance(b, dict) and "type" in b else converse_parts([b])
    return out


def _texts(items: Any, text_key: str, reason_key: str, finish: list[str] | None) -> list[Any]:
    out = []
    for i, it in enumerate(items if isinstance(items, list) else ()):
        if isinstance(it, dict):
            reason = it.get(reason_key)
            reason = reason if isinstance(reason, str) else c.finish_at(finish, i)
            out.append(c.output_message(c.text_parts(it.get(text_key)), reason))
    return out


def _choices(choices: Any, finish: list[str] | None) -> list[Any]:
    out = []
    for i, ch in enumerate(choices if isinstance(choices, list) else ()):
        if isinstance(ch, dict):
            msg = c.obj(ch.get("message"))
            text = msg.get("content", ch.get("text"))
            reason = ch.get("finish_reason") or ch.get("stop_reason") or c.finish_at(finish, i)
            out.append(c.output_message(c.text_parts(text), reason))
    return out


# Streamed output: Claude's events (the Anthropic slots), Nova's block events (start
# and delta events carry their own block index: each index slot keys its own), and
# the text of the one-field vendors.
_CAPTURE_PATHS = {
    **ANTHROPIC_CAPTURE_PATHS,
    "n_sidx": "contentBlockStart.contentBlockIndex",
    "n_didx": "contentBlockDelta.contentBlockIndex",
    "n_id": "contentBlockStart.start.toolUse.toolUseId",
    "n_name": "contentBlockStart.start.toolUse.name",
    "n_text": "contentBlockDelta.delta.text",
    "n_think": "contentBlockDelta.delta.reasoningContent.text",
    "n_tool": "contentBlockDelta.delta.toolUse.input",
    "t_text": "outputText",
    "l_text": "generation",
    "k_text": "text",
    "o_text": "choices[*].delta.content",
    "m_text": "outputs[*].text",
}
_CAPTURE_FOLDS = {
    **ANTHROPIC_CAPTURE_FOLDS,
    "n_sidx": ("keyed", "n_sidx"),
    "n_didx": ("keyed", "n_didx"),
    "n_id": ("keyed", "n_sidx"),
    "n_name": ("keyed", "n_sidx"),
    "n_text": ("concat", "n_didx"),
    "n_think": ("concat", "n_didx"),
    "n_tool": ("concat", "n_didx"),
    "t_text": "concat",
    "l_text": "concat",
    "k_text": "concat",
    "o_text": ("concat", "choices_idx"),
    "m_text": "concat",
}


def _nova_stream(s: Scan) -> list[c.Part]:
    v, capped = s.values, s.capped
    blocks: dict[Any, list[c.Part]] = {}
    for i, k in enumerate(s.seq("n_didx")):
        parts = blocks.setdefault(k, [])
        if c.at(v["n_think"], i):
            parts.append(c.reasoning(v["n_think"][i]))
        if c.at(v["n_text"], i):
            parts.append(c.text(v["n_text"][i]))
    args = dict(zip(s.seq("n_didx"), s.seq("n_tool"), strict=False))
    for i, k in enumerate(s.seq("n_sidx")):
        if c.at(v["n_name"], i):
            call = c.tool_call(c.at(v["n_id"], i), v["n_name"][i], args.get(k))
            blocks.setdefault(k, []).append(call)
    out: list[c.Part] = []
    for k in sorted(blocks, key=lambda k: (0, k, "") if isinstance(k, int) else (1, 0, str(k))):
        for p in blocks[k]:
            # Nova streams every delta as a block of its own: join neighbouring texts
            if p["type"] == "text" and out and out[-1]["type"] == "text":
                out[-1] = c.text(out[-1]["content"] + p["content"])
            else:
                out.append(p)
    if out and ("n_text" in capped or "n_think" in capped):  # the slots filled up: cut
        last = [p for p in out if p["type"] in ("text", "reasoning")]
        if last:
            last[-1]["content"] += c.CUT
    return out


class BedrockInvoke(Family):
    name = "bedrock.invoke"
    path_keys = ("invoke", "invoke-with-response-stream")
    operation = "chat"
    provider = PROVIDER
    request = InvokeRequest
    stream_framing = "eventstream"
    b64_field = "bytes"
    folds = {"choices_stop": ("keyed", "choices_idx"), "choices_stop2": ("keyed", "choices_idx")}
    paths = {
        **ANTHROPIC_PATHS,
        # Amazon Nova
        "nova_stop": "stopReason",
        "nova_s_stop": "messageStop.stopReason",
        "nova_in": "usage.inputTokens",
        "nova_out": "usage.outputTokens",
        "nova_read": "usage.cacheReadInputTokenCount",
        "nova_write": "usage.cacheWriteInputTokenCount",
        "nova_s_in": "metadata.usage.inputTokens",
        "nova_s_out": "metadata.usage.outputTokens",
        "nova_s_read": "metadata.usage.cacheReadInputTokenCount",
        "nova_s_write": "metadata.usage.cacheWriteInputTokenCount",
        "nova_text": "?contentBlockDelta.delta.text",
        "nova_text_ns": "?output.message.content[*].text",
        "nova_tool": "?contentBlockStart.start.toolUse",
        "nova_tool_ns": "?output.message.content[*].toolUse",
        # Titan Text
        "titan_in": "inputTextTokenCount",
        "titan_out": "results[*].tokenCount",
        "titan_s_out": "totalOutputTextTokenCount",
        "titan_stop": "results[*].completionReason",
        "titan_s_stop": "completionReason",
        "titan_text": "?outputText",
        "titan_text_ns": "?results[*].outputText",
        # Meta Llama (its stop_reason is Anthropic's "stop" path)
        "llama_in": "prompt_token_count",
        "llama_out": "generation_token_count",
        "llama_text": "?generation",
        # Cohere, Mistral, OpenAI-style
        "cohere_stop": "finish_reason",
        "cohere_gen_stop": "generations[*].finish_reason",
        "cohere_text": "?text",
        "cohere_gen_text": "?generations[*].text",
        "mistral_stop": "outputs[*].stop_reason",
        "mistral_text": "?outputs[*].text",
        "choices_idx": "choices[*].index",
        "choices_stop": "choices[*].finish_reason",
        "choices_stop2": "choices[*].stop_reason",
        "choices_text": "?choices[*].message.content",
        "choices_delta": "?choices[*].delta.content",
        "choices_ctext": "?choices[*].text",
        "oai_in": "usage.prompt_tokens",
        "oai_out": "usage.completion_tokens",
        # the last chunk of every stream
        "m_in": "amazon-bedrock-invocationMetrics.inputTokenCount",
        "m_out": "amazon-bedrock-invocationMetrics.outputTokenCount",
        "m_read": "amazon-bedrock-invocationMetrics.cacheReadInputTokenCount",
        "m_write": "amazon-bedrock-invocationMetrics.cacheWriteInputTokenCount",
    }
    outputs = (
        *ANTHROPIC_OUTPUTS,
        *_OTHER_OUTPUTS,
    )
    markers = (*ANTHROPIC_MARKERS, *(slot for slot, _ in _OTHER_OUTPUTS))
    capture_paths = _CAPTURE_PATHS
    capture_folds = _CAPTURE_FOLDS

    def match(self, method: str, path: str, query: str) -> Route | None:
        return bedrock_route(path, ("invoke", "invoke-with-response-stream"))

    def read_request(self, req: InvokeRequest, rec: CallRecord, route: Route) -> None:
        rec.max_tokens = req.max_tokens if req.max_tokens is not None else req.max_gen_len
        rec.temperature = req.temperature
        rec.top_p = req.top_p if req.top_p is not None else req.p
        rec.top_k = req.top_k if req.top_k is not None else req.k
        rec.seed = req.seed
        stop = req.stop_sequences if req.stop_sequences is not None else req.stop
        rec.stop_sequences = [stop] if isinstance(stop, str) else (stop or None)
        for cfg in (req.inferenceConfig, req.textGenerationConfig):
            if cfg is None:
                continue
            if isinstance(cfg, _NovaInference):
                mt = cfg.max_tokens if cfg.max_tokens is not None else cfg.max_new_tokens
                rec.top_k = cfg.top_k if rec.top_k is None else rec.top_k
            else:
                mt = cfg.max_token_count
            rec.max_tokens = mt if rec.max_tokens is None else rec.max_tokens
            rec.temperature = cfg.temperature if rec.temperature is None else rec.temperature
            rec.top_p = cfg.top_p if rec.top_p is None else rec.top_p
            rec.stop_sequences = rec.stop_sequences or cfg.stop_sequences or None

    texts = {"response_id": ("s_id", "id"), "response_model": ("s_model", "model")}

    def fold(self, s: Scan, rec: CallRecord) -> None:
        fold_anthropic_usage(s, rec)
        if rec.input_tokens is None and rec.output_tokens is None:
            self._fold_other_usage(s, rec)
        fold_header_usage(s.headers, rec)

    @staticmethod
    def _fold_other_usage(s: Scan, rec: CallRecord) -> None:
        out_sum = add(*(as_int(v) for v in s.seq("titan_out")))
        base = s.num("nova_in", "nova_s_in", "titan_in", "llama_in", "oai_in", "m_in")
        read = s.num("nova_read", "nova_s_read", "m_read")
        write = s.num("nova_write", "nova_s_write", "m_write")
        rec.input_tokens = add(base, read, write) if base is not None else None
        out = s.num("nova_out", "nova_s_out", "titan_s_out", "llama_out", "oai_out")
        rec.output_tokens = (
            out if out is not None else (out_sum if out_sum is not None else s.num("m_out"))
        )
        rec.cache_read_tokens = read
        rec.cache_creation_tokens = write

    def finish_reasons(self, s: Scan) -> list[str | None]:
        for key in _FINISH_SCALARS:
            v = s.get(key)
            if v is not None and v != "":
                return [str(v)]
        for key in _FINISH_LISTS:
            r = raw_reasons(s.get(key))
            if any(x is not None for x in r):
                return r
        return []

    def stream_complete(self, s: Scan) -> bool:
        return any(s.get(k) is not None for k in ("m_in", "m_out", "nova_s_in")) or any(
            r is not None for r in self.finish_reasons(s)
        )

    def error_fields(self, s: Scan) -> tuple[str | None, str | None]:
        return bedrock_error_fields(s, super().error_fields(s))

    # -- content ---------------------------------------------------------------------

    def input_messages(self, req: bytes) -> tuple[list[Any] | None, list[Any] | None]:
        r = decode_request(req, _Request)
        if not isinstance(r, _Request):
            return None, None
        system = _parts(r.system)
        msgs = [c.message(m.role, _parts(m.content)) for m in r.messages]
        for prompt in (r.prompt, r.inputText, r.message):
            if isinstance(prompt, str) and prompt:
                msgs.append(c.message("user", [c.text(prompt)]))
        return system or None, msgs or None

    def output_messages(self, body: bytes, finish: list[str] | None) -> list[Any] | None:
        r = decode_request(body, _Response)
        if not isinstance(r, _Response):
            return None
        first = c.finish_at(finish, 0)
        if isinstance(r.content, list):
            reason = r.stop_reason if isinstance(r.stop_reason, str) else first
            return [c.output_message(anthropic_parts(r.content), reason, r.role)]
        if isinstance(r.output, dict) and isinstance(r.output.get("message"), dict):
            reason = r.stopReason if isinstance(r.stopReason, str) else first
            return [c.output_message(converse_parts(r.output["message"].get("content")), reason)]
        if isinstance(r.generation, str):
            reason = r.stop_reason if isinstance(r.stop_reason, str) else first
            return [c.output_message([c.text(r.generation)], reason)]
        if isinstance(r.text, str):
            reason = r.finish_reason if isinstance(r.finish_reason, str) else first
            return [c.output_message([c.text(r.text)], reason)]
        return (
            _texts(r.results, "outputText", "completionReason", finish)
            or _texts(r.outputs, "text", "stop_reason", finish)
            or _texts(r.generations, "text", "finish_reason", finish)
            or _choices(r.choices, finish)
            or None
        )

    def stream_messages(self, s: Scan, finish: list[str] | None) -> list[Any] | None:
        parts = anthropic_stream(s, finish) + _nova_stream(s)
        for slot in ("t_text", "l_text", "k_text", "m_text", "o_text"):
            v = s.get(slot)
            for t in v if isinstance(v, list) else [v]:
                if isinstance(t, str) and t:
                    parts.append(c.text(c.cut(t, slot in s.capped)))
        return [c.output_message(parts, c.finish_at(finish, 0))]


FAMILY = BedrockInvoke()
