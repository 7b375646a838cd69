"""Message content in the GenAI JSON shapes, built only when capture is on.

``gen_ai.input.messages`` is a list of ``{"role", "parts"}``, ``gen_ai.output.messages``
the same with a ``finish_reason``, ``gen_ai.system_instructions`` a list of parts
(semantic conventions v1.41 JSON schemas). Parts: ``text``, ``reasoning``,
``tool_call`` (``id``, ``name``, ``arguments``), ``tool_call_response`` (``id``,
``response``), ``blob`` / ``uri`` / ``file`` (``modality``, ``mime_type``), or a
generic part carrying the provider's own ``type``.

Families turn their request and response shapes into these with the helpers below.
The result is a :class:`MessageContent`: a mapping that builds itself the first time
it is read, so an exchange whose span is never sampled never pays for it. Nothing
here masks secrets or caps sizes: the gateway does both (``gateway/content.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import msgspec

__all__ = [
    "CUT",
    "INPUT",
    "OUTPUT",
    "SYSTEM",
    "MessageContent",
    "arguments",
    "blob",
    "file_part",
    "generic",
    "image_url",
    "message",
    "obj",
    "output_message",
    "reasoning",
    "text",
    "tool_call",
    "tool_response",
    "uri",
]

SYSTEM = "gen_ai.system_instructions"
INPUT = "gen_ai.input.messages"
OUTPUT = "gen_ai.output.messages"
#: Marks text llmtap kept only the start of (a streamed text past the scanner's cap).
CUT = "…"

Part = dict[str, Any]

_decode = msgspec.json.Decoder().decode


class MessageContent(Mapping[str, Any]):
    """The content attributes of one call, built by ``build`` on first access.

    A failure to build is not an error of the call: the content is then empty.
    """

    __slots__ = ("_build", "_data")

    def __init__(self, build: Callable[[], dict[str, Any]]) -> None:
        self._build: Callable[[], dict[str, Any]] | None = build
        self._data: dict[str, Any] | None = None

    def _get(self) -> dict[str, Any]:
        data = self._data
        if data is None:
            build, self._build = self._build, None
            try:
                data = build() if build is not None else {}
            except Exception:  # content is best effort; the span must not suffer
                data = {}
            self._data = data = {k: v for k, v in data.items() if v}
        return data

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return f"MessageContent({self._get()!r})"


# -- parts ----------------------------------------------------------------------------------


def text(content: Any) -> Part:
    return {"type": "text", "content": content if isinstance(content, str) else str(content)}


def reasoning(content: str) -> Part:
    return {"type": "reasoning", "content": content}


def tool_call(id: Any, name: Any, args: Any) -> Part:
    part: Part = {"type": "tool_call"}
    if id:
        part["id"] = id
    part["name"] = name if isinstance(name, str) else ""
    part["arguments"] = arguments(args)
    return part


def tool_response(id: Any, response: Any) -> Part:
    part: Part = {"type": "tool_call_response"}
    if id:
        part["id"] = id
    part["response"] = response
    return part


def blob(modality: str, mime_type: Any, content: Any) -> Part:
    part: Part = {"type": "blob", "modality": modality}
    if isinstance(mime_type, str) and mime_type:
        part["mime_type"] = mime_type
    part["content"] = content if isinstance(content, str) else ""
    return part


def uri(modality: str, mime_type: Any, value: Any) -> Part:
    part: Part = {"type": "uri", "modality": modality}
    if isinstance(mime_type, str) and mime_type:
        part["mime_type"] = mime_type
    part["uri"] = value if isinstance(value, str) else ""
    return part


def file_part(modality: str, mime_type: Any, file_id: Any) -> Part:
    part: Part = {"type": "file", "modality": modality}
    if isinstance(mime_type, str) and mime_type:
        part["mime_type"] = mime_type
    part["file_id"] = file_id if isinstance(file_id, str) else ""
    return part


def generic(type: Any, **fields: Any) -> Part:
    """A part of a kind the conventions do not name, under the provider's type."""
    return {"type": str(type or "unknown"), **{k: v for k, v in fields.items() if v is not None}}


def modality_of(mime_type: Any, default: str = "image") -> str:
    if isinstance(mime_type, str):
        head = mime_type.partition("/")[0].lower()
        if head in ("image", "video", "audio"):
            return head
        if head in ("application", "text"):
            return "document"
    return default


def image_url(url: Any, modality: str = "image") -> Part:
    """A ``data:`` URL becomes a blob (its base64 payload), anything else a uri part."""
    if isinstance(url, str) and url.startswith("data:"):
        head, _, payload = url.partition(",")
        mime = head[5:].partition(";")[0]
        return blob(modality_of(mime, modality), mime, payload)
    return uri(modality, None, url)


def arguments(raw: Any) -> Any:
    """Tool arguments as JSON: a string that parses becomes the object; a string that
    does not (a stream cut mid-arguments) stays as it is."""
    if isinstance(raw, str):
        if not raw:
            return None
        try:
            return _decode(raw)
        except (msgspec.DecodeError, RecursionError):
            return raw
    return raw


def message(role: Any, parts: list[Part], name: Any = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": role if isinstance(role, str) and role else "user"}
    msg["parts"] = parts
    if isinstance(name, str) and name:
        msg["name"] = name
    return msg


def output_message(parts: list[Part], finish: str | None, role: Any = "assistant") -> dict:
    """An output message; ``finish_reason`` as the provider said it (absent if unknown)."""
    msg = message(role or "assistant", parts)
    if finish:
        msg["finish_reason"] = finish
    return msg


def finish_at(finish: list[str] | None, i: int) -> str | None:
    return finish[i] if finish is not None and 0 <= i < len(finish) else None


def text_parts(content: Any) -> list[Part]:
    """A plain string becomes one text part; None none."""
    if content is None or content == "":
        return []
    return [text(content)]


def cut(value: Any, capped: bool) -> Any:
    """Mark a streamed text the scanner kept only the start of."""
    return value + CUT if capped and isinstance(value, str) else value


def obj(v: Any, default: Any = None) -> dict[str, Any]:
    """``v`` if it is a JSON object, else ``default`` (or an empty one)."""
    if isinstance(v, dict):
        return v
    return default if isinstance(default, dict) else {}


def at(values: Any, i: int) -> Any:
    """Entry ``i`` of a folded list (None when absent)."""
    return values[i] if isinstance(values, list) and 0 <= i < len(values) else None


def exchange_content(
    family: Any,
    rec: Any,
    request: bytes | None,
    body: bytes | None,
    streamed: bool,
    scan: Any,
) -> MessageContent:
    """A record's content, built from what its exchange kept when (if ever) it is read:
    the request body, a plain 2xx response body, or the scan of a streamed one."""

    def build() -> dict[str, Any]:
        out: dict[str, Any] = {}
        if request:
            out[SYSTEM], out[INPUT] = family.input_messages(request)
        if body is not None:
            out[OUTPUT] = family.output_messages(body, rec.finish_reasons)
        elif streamed:
            out[OUTPUT] = family.stream_messages(scan, rec.finish_reasons)
        return out

    return MessageContent(build)
