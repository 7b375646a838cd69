"""Shared by the OpenAI-shaped families (chat, completions, embeddings, responses):
URL matching (incl. Azure), OpenAI-compatible usage paths and their fold.
"""

from __future__ import annotations

from typing import Any

import msgspec

from . import content as c
from .azure_openai import azure_route
from .family import Route

__all__ = [
    "COMPAT_USAGE_NUMBERS",
    "COMPAT_USAGE_PATHS",
    "ResponseFormat",
    "match_suffix",
    "openai_parts",
    "output_type_of",
    "plain_text",
    "stop_list",
]

#: Usage as OpenAI and the OpenAI-compatible providers report it. Variants: Groq
#: streams put it under ``x_groq.usage``; Mistral counts cache hits in
#: ``num_cached_tokens``, DeepSeek in ``prompt_cache_hit_tokens``.
COMPAT_USAGE_PATHS = {
    "in": "usage.prompt_tokens",
    "out": "usage.completion_tokens",
    "cached": "usage.prompt_tokens_details.cached_tokens",
    "audio_in": "usage.prompt_tokens_details.audio_tokens",
    "reasoning": "usage.completion_tokens_details.reasoning_tokens",
    "audio_out": "usage.completion_tokens_details.audio_tokens",
    "mistral_cached": "usage.num_cached_tokens",
    "deepseek_cached": "usage.prompt_cache_hit_tokens",
    "groq_in": "x_groq.usage.prompt_tokens",
    "groq_out": "x_groq.usage.completion_tokens",
    "groq_cached": "x_groq.usage.prompt_tokens_details.cached_tokens",
    "groq_reasoning": "x_groq.usage.completion_tokens_details.reasoning_tokens",
}


class ResponseFormat(msgspec.Struct):
    type: str | None = None


def output_type_of(fmt: ResponseFormat | None, modalities: list[str] | None = None) -> str | None:
    """``gen_ai.output.type`` from an OpenAI-style ``response_format``/``modalities``."""
    if modalities and "audio" in modalities:
        return "speech"
    if fmt is None or not fmt.type:
        return None
    if fmt.type in ("json_object", "json_schema", "json"):
        return "json"
    if fmt.type == "text":
        return "text"
    return None


def stop_list(stop: str | list[str] | None) -> list[str] | None:
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    return [s for s in stop if isinstance(s, str)] or None


def match_suffix(path: str, query: str, suffix: str) -> Route | None:
    """Route for an OpenAI-shaped path ending in ``suffix`` (any prefix: proxies,
    ``/openai/v1`` on Groq, Azure deployments)."""
    if not path.endswith(suffix):
        return None
    return azure_route(path, query) or Route(provider="openai")


#: Record fields from COMPAT_USAGE_PATHS (a ``Family.numbers`` table).
COMPAT_USAGE_NUMBERS = {
    "input_tokens": ("in", "groq_in"),
    "output_tokens": ("out", "groq_out"),
    "cache_read_tokens": ("cached", "deepseek_cached", "mistral_cached", "groq_cached"),
    "reasoning_tokens": ("reasoning", "groq_reasoning"),
    "audio_input_tokens": ("audio_in",),
    "audio_output_tokens": ("audio_out",),
}


# -- content (capture only) -------------------------------------------------------------


def openai_parts(content: Any) -> list[c.Part]:
    """Message content of the chat and Responses APIs: a string, or a list of typed
    parts (``text``/``input_text``/``output_text``, ``image_url``/``input_image``,
    ``input_audio``, ``file``/``input_file``, ``refusal``)."""
    if not isinstance(content, list):
        return c.text_parts(content)
    parts: list[c.Part] = []
    for p in content:
        if isinstance(p, str):
            parts.append(c.text(p))
            continue
        if not isinstance(p, dict):
            continue
        kind = p.get("type")
        if kind in ("text", "input_text", "output_text"):
            parts.append(c.text(p.get("text") or ""))
        elif kind == "refusal":
            parts.append(c.text(p.get("refusal") or ""))
        elif kind == "image_url":
            img = p.get("image_url")
            parts.append(c.image_url(img.get("url") if isinstance(img, dict) else img))
        elif kind == "input_image":
            if p.get("file_id"):
                parts.append(c.file_part("image", None, p["file_id"]))
            else:
                parts.append(c.image_url(p.get("image_url")))
        elif kind == "input_audio":
            audio = c.obj(p.get("input_audio"), p)
            fmt = audio.get("format")
            parts.append(c.blob("audio", f"audio/{fmt}" if fmt else None, audio.get("data")))
        elif kind in ("file", "input_file"):
            f = c.obj(p.get("file"), p)
            if f.get("file_id"):
                parts.append(c.file_part("document", None, f["file_id"]))
            elif isinstance(f.get("file_data"), str):
                parts.append(c.image_url(f["file_data"], "document"))
            else:
                parts.append(c.uri("document", None, f.get("file_url")))
        else:
            parts.append(c.generic(kind))
    return parts


def plain_text(content: Any) -> Any:
    """A tool result as the caller sent it: a string, or the text of its text parts."""
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        if texts and all(isinstance(t, str) for t in texts):
            return "".join(t for t in texts if isinstance(t, str))
    return content
