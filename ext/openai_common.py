"""Shared by the OpenAI-shaped families (chat, completions, embeddings, responses):
URL matching (incl. Azure), OpenAI-compatible usage paths and their fold.
"""

from __future__ import annotations

import msgspec

from .azure_openai import azure_route
from .family import Route, Scan
from .record import CallRecord

__all__ = [
    "COMPAT_USAGE_PATHS",
    "ResponseFormat",
    "fold_compat_usage",
    "match_suffix",
    "output_type_of",
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


def fold_compat_usage(s: Scan, rec: CallRecord) -> None:
    rec.input_tokens = s.num("in", "groq_in")
    rec.output_tokens = s.num("out", "groq_out")
    rec.cache_read_tokens = s.num("cached", "deepseek_cached", "mistral_cached", "groq_cached")
    rec.reasoning_tokens = s.num("reasoning", "groq_reasoning")
    rec.audio_input_tokens = s.num("audio_in")
    rec.audio_output_tokens = s.num("audio_out")
