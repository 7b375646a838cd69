"""Google Gemini ``generateContent`` / ``streamGenerateContent``, on the Gemini API
(``generativelanguage.googleapis.com/v1beta/models/{m}:...``) and on Vertex AI
(``.../projects/{p}/locations/{l}/publishers/google/models/{m}:...``).

Streams are SSE with ``alt=sse`` (CRLF separators, no ``[DONE]``), otherwise one JSON
array. Every chunk repeats a cumulative ``usageMetadata``; the last one counts.
Errors are a plain JSON body even when the content type says event-stream.
Vertex with ``$alt=json;enum-encoding=int`` sends enums as numbers: finish reasons
are mapped back to their names (unknown numbers stay as digits).

Usage: ``promptTokenCount`` already includes ``cachedContentTokenCount``;
input = prompt + ``toolUsePromptTokenCount``, output = candidates +
``thoughtsTokenCount`` (reasoning), so input + output = ``totalTokenCount``.
Request fields are read from the camelCase ``generationConfig`` the SDKs send.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import msgspec

from . import content as c
from .family import Family, Route, Scan, add, decode_request
from .record import CallRecord

__all__ = ["FAMILY", "GenerateContentRequest"]

_VERBS = ("generateContent", "streamGenerateContent")
# google.cloud.aiplatform.v1 Candidate.FinishReason (Vertex numbering).
_VERTEX_FINISH = (
    "FINISH_REASON_UNSPECIFIED",
    "STOP",
    "MAX_TOKENS",
    "SAFETY",
    "RECITATION",
    "OTHER",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "MALFORMED_FUNCTION_CALL",
)
# The Gemini API numbers agree with Vertex only up to RECITATION.
_GEMINI_FINISH = _VERTEX_FINISH[:5]


class GenerationConfig(msgspec.Struct, rename="camel"):
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: float | None = None
    seed: int | None = None
    candidate_count: int | None = None
    stop_sequences: list[str] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    response_mime_type: str | None = None
    # schemas are kept raw: only whether one was sent matters
    response_schema: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    response_json_schema: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    response_modalities: list[str] | None = None


class GenerateContentRequest(msgspec.Struct, rename="camel"):
    generation_config: GenerationConfig | None = None


def _output_type(g: GenerationConfig) -> str | None:
    if g.response_modalities:
        mods = [m.upper() for m in g.response_modalities]
        if "IMAGE" in mods:
            return "image"
        if "AUDIO" in mods:
            return "speech"
    mime = (g.response_mime_type or "").lower()
    if mime == "application/json" or _sent(g.response_schema) or _sent(g.response_json_schema):
        return "json"
    if mime.startswith("text/"):
        return "text"
    return None


def _sent(raw: msgspec.Raw) -> bool:
    return bool(raw) and bytes(raw).strip() not in (b"", b"null")  # Raw() is empty: not sent


# -- content (capture only) ------------------------------------------------------------

# Gemini roles; "function" is what older clients send for function responses.
_ROLES = {"model": "assistant", "user": "user", "function": "tool", "tool": "tool"}


class _Content(msgspec.Struct):
    role: Any = None
    parts: Any = None


class _Request(msgspec.Struct):
    contents: list[_Content] | None = None
    # proto JSON accepts both spellings
    systemInstruction: _Content | None = None
    system_instruction: _Content | None = None


class _Candidate(msgspec.Struct):
    content: _Content | None = None


class _Response(msgspec.Struct):
    candidates: list[_Candidate] = msgspec.field(default_factory=list)


def _get(d: dict[str, Any], camel: str, snake: str) -> Any:
    v = d.get(camel)
    return v if v is not None else d.get(snake)


def gemini_parts(parts: Any) -> list[c.Part]:
    if isinstance(parts, str):  # the SDKs' shorthand, accepted on the wire too
        return [c.text(parts)]
    out: list[c.Part] = []
    for p in parts if isinstance(parts, list) else ():
        if not isinstance(p, dict):
            continue
        if isinstance(p.get("text"), str):
            out.append(c.reasoning(p["text"]) if p.get("thought") else c.text(p["text"]))
        elif (d := _get(p, "inlineData", "inline_data")) is not None:
            mime = _get(d, "mimeType", "mime_type")
            out.append(c.blob(c.modality_of(mime), mime, d.get("data")))
        elif (d := _get(p, "fileData", "file_data")) is not None:
            mime = _get(d, "mimeType", "mime_type")
            out.append(c.uri(c.modality_of(mime), mime, _get(d, "fileUri", "file_uri")))
        elif (d := _get(p, "functionCall", "function_call")) is not None:
            out.append(c.tool_call(d.get("id"), d.get("name"), d.get("args")))
        elif (d := _get(p, "functionResponse", "function_response")) is not None:
            out.append(c.tool_response(d.get("id"), d.get("response")))
        elif (d := _get(p, "executableCode", "executable_code")) is not None:
            out.append(c.generic("executable_code", language=d.get("language"), code=d.get("code")))
        elif (d := _get(p, "codeExecutionResult", "code_execution_result")) is not None:
            out.append(
                c.generic("code_execution_result", outcome=d.get("outcome"), output=d.get("output"))
            )
    return out


class Gemini(Family):
    name = "gemini.generate_content"
    path_keys = _VERBS
    operation = "generate_content"
    provider = "gcp.gemini"
    request = GenerateContentRequest
    stream_framing = "json_array"
    paths = {
        "model": "modelVersion",
        "id": "responseId",
        "in": "usageMetadata.promptTokenCount",
        "out": "usageMetadata.candidatesTokenCount",
        "cached": "usageMetadata.cachedContentTokenCount",
        "thoughts": "usageMetadata.thoughtsTokenCount",
        "tool_in": "usageMetadata.toolUsePromptTokenCount",
        "idx": "candidates[*].index",
        "finish": "candidates[*].finishReason",
        "blocked": "promptFeedback.blockReason",
        "text": "?candidates[*].content.parts[*].text",
        "thought": "?candidates[*].content.parts[*].thought",
        "call": "?candidates[*].content.parts[*].functionCall",
        "code": "?candidates[*].content.parts[*].executableCode",
        "inline": "?candidates[*].content.parts[*].inlineData",
    }
    folds = {"finish": ("keyed", "idx")}
    # Streamed text per candidate. Thought summaries (includeThoughts) are text parts
    # too and cannot be told apart here: they are joined into the text. A function
    # call arrives whole with object arguments, which a scanner does not extract:
    # the name of the (last) call of a chunk is kept.
    capture_paths = {
        "c_text": "candidates[*].content.parts[*].text",
        "c_call": "candidates[*].content.parts[*].functionCall.name",
    }
    capture_folds = {"c_text": ("concat", "idx"), "c_call": ("keyed", "idx")}
    # Thought parts carry text too: in the same chunk, "thought" wins the tie.
    outputs = (
        ("thought", "reasoning"),
        ("text", "text"),
        ("inline", "text"),
        ("call", "tool_call"),
        ("code", "tool_call"),
    )

    def match(self, method: str, path: str, query: str) -> Route | None:
        head, sep, verb = path.rpartition(":")
        if not sep or verb not in _VERBS:
            return None
        q = unquote(query)
        vertex = "/projects/" in head or "/publishers/" in head
        _, found, model = head.rpartition("/models/")
        return Route(
            provider="gcp.vertex_ai" if vertex else "gcp.gemini",
            model=unquote(model) if found and model else None,
            stream=verb == "streamGenerateContent",
            framing="sse" if "alt=sse" in q.replace(";", "&").split("&") else None,
            enum_int="enum-encoding=int" in q,
        )

    def read_request(self, req: GenerateContentRequest, rec: CallRecord, route: Route) -> None:
        g = req.generation_config
        if g is None:
            return
        rec.max_tokens = g.max_output_tokens
        rec.temperature = g.temperature
        rec.top_p = g.top_p
        rec.top_k = g.top_k
        rec.seed = g.seed
        rec.choice_count = g.candidate_count
        rec.stop_sequences = g.stop_sequences or None
        rec.frequency_penalty = g.frequency_penalty
        rec.presence_penalty = g.presence_penalty
        rec.output_type = _output_type(g)

    texts = {"response_model": ("model",), "response_id": ("id",)}
    numbers = {"cache_read_tokens": ("cached",), "reasoning_tokens": ("thoughts",)}

    def fold(self, s: Scan, rec: CallRecord) -> None:
        prompt = s.num("in")
        rec.input_tokens = add(prompt, s.num("tool_in")) if prompt is not None else None
        rec.output_tokens = add(s.num("out"), rec.reasoning_tokens)  # thoughts are output

    def finish_reasons(self, s: Scan) -> list[str | None]:
        raw = s.get("finish")
        if not isinstance(raw, list) or not raw:
            blocked = s.get("blocked")
            return [_enum_name(blocked, ())] if blocked is not None else []
        vertex = s.route is not None and s.route.provider == "gcp.vertex_ai"
        table = _VERTEX_FINISH if vertex else _GEMINI_FINISH
        return [v if v.__class__ is str and v else _enum_name(v, table) for v in raw]

    def stream_complete(self, s: Scan) -> bool:
        return any(r is not None for r in self.finish_reasons(s))

    # -- content ---------------------------------------------------------------------

    def input_messages(self, req: bytes) -> tuple[list[Any] | None, list[Any] | None]:
        r = decode_request(req, _Request)
        if not isinstance(r, _Request):
            return None, None
        sys_content = r.systemInstruction or r.system_instruction
        system = gemini_parts(sys_content.parts) if sys_content is not None else []
        msgs = [
            c.message(_ROLES.get(str(m.role), m.role or "user"), gemini_parts(m.parts))
            for m in r.contents or ()
        ]
        return system or None, msgs or None

    def output_messages(self, body: bytes, finish: list[str] | None) -> list[Any] | None:
        r = decode_request(body, _Response)
        if not isinstance(r, _Response):
            return None
        return [
            c.output_message(
                gemini_parts(cand.content.parts if cand.content else None), c.finish_at(finish, i)
            )
            for i, cand in enumerate(r.candidates)
        ]

    def stream_messages(self, s: Scan, finish: list[str] | None) -> list[Any] | None:
        texts, calls, cut = s.seq("c_text"), s.seq("c_call"), "c_text" in s.capped
        msgs = []
        for i in range(max(len(texts), len(calls))):
            parts = c.text_parts(c.cut(c.at(texts, i), cut))
            if c.at(calls, i):
                parts.append(c.tool_call(None, calls[i], None))
            msgs.append(c.output_message(parts, c.finish_at(finish, i)))
        return msgs or None


def _enum_name(v: object, table: tuple[str, ...]) -> str | None:
    if v is None or v == "":
        return None
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(table):
        return table[v]
    return str(v)


FAMILY = Gemini()
