"""Which API family and provider a request belongs to.

Order: (1) an explicit hint (``RequestInfo.hint`` from the gateway, else the hint
request header, default ``x-llmtap-provider``): a provider name or alias, or a family
name such as ``openai.chat_completions``; (2) the upstream host; (3) the path shape,
which also picks the family (the host names the provider, the path the API: Groq's
``/openai/v1/chat/completions`` is the OpenAI chat family served by ``groq``).
Only ``POST`` requests are LLM calls. Nothing here raises: an unrecognised request
gets an Exchange of the ``unknown`` family (see ext/unknown.py).
"""

from __future__ import annotations

import re
from typing import Any

from . import (
    anthropic_complete,
    anthropic_messages,
    bedrock_converse,
    bedrock_invoke,
    cohere_chat,
    cohere_embed,
    gemini,
    ollama_embed,
    ollama_native,
    openai_chat,
    openai_completions,
    openai_embeddings,
    openai_responses,
    unknown,
)
from .exchange import Exchange
from .family import Family, Route
from .request import ExtConfig, RequestInfo

__all__ = ["FAMILIES", "normalise_provider", "provider_for_host", "recognise"]

#: Every family, tried in this order against the path.
FAMILIES: tuple[Family, ...] = (
    openai_chat.FAMILY,
    openai_responses.FAMILY,
    openai_embeddings.FAMILY,
    openai_completions.FAMILY,
    anthropic_messages.FAMILY,
    anthropic_complete.FAMILY,
    gemini.FAMILY,
    bedrock_converse.FAMILY,
    bedrock_invoke.FAMILY,
    ollama_native.CHAT,
    ollama_native.GENERATE,
    ollama_embed.FAMILY,
    cohere_chat.FAMILY,
    cohere_embed.FAMILY,
)
_BY_NAME = {f.name: f for f in FAMILIES}

_EXACT_HOSTS = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "gcp.gemini",
    "aiplatform.googleapis.com": "gcp.vertex_ai",
    "api.groq.com": "groq",
    "api.mistral.ai": "mistral_ai",
    "api.cohere.com": "cohere",
    "api.cohere.ai": "cohere",
    "api.deepseek.com": "deepseek",
    "api.together.xyz": "together_ai",
    "api.together.ai": "together_ai",
    "openrouter.ai": "openrouter",
    "api.x.ai": "x_ai",
    "api.perplexity.ai": "perplexity",
    "api.moonshot.ai": "moonshot_ai",
    "api.moonshot.cn": "moonshot_ai",
    "api.fireworks.ai": "fireworks",
    "ollama.com": "ollama",
}
_HOST_SUFFIXES = (
    (".openai.azure.com", "azure.ai.openai"),
    (".cognitiveservices.azure.com", "azure.ai.openai"),
    (".services.ai.azure.com", "azure.ai.openai"),
    ("-aiplatform.googleapis.com", "gcp.vertex_ai"),
)
_OLLAMA_PORT = 11434

#: Hint aliases -> gen_ai.provider.name.
_ALIASES = {
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "azure.openai": "azure.ai.openai",
    "claude": "anthropic",
    "gemini": "gcp.gemini",
    "google": "gcp.gemini",
    "vertex": "gcp.vertex_ai",
    "vertex_ai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "aws_bedrock": "aws.bedrock",
    "mistral": "mistral_ai",
    "xai": "x_ai",
    "together": "together_ai",
    "moonshot": "moonshot_ai",
}
_HINT_SHAPE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")

# Families by the last segment of the path they match (Family.path_keys), each list in
# FAMILIES order; a family that declares none is tried on every path.
_ANYWHERE = tuple(f for f in FAMILIES if not f.path_keys)
_BY_KEY = {
    key: tuple(f for f in FAMILIES if not f.path_keys or key in f.path_keys)
    for key in sorted({k for f in FAMILIES for k in f.path_keys})
}

# Recognition is a pure function of the path, the authority and the hint: a bounded
# cache per input makes a repeat call one dict lookup. Clearing when full bounds
# memory even when every request has a new path (keys longer than the cap are not kept).
_MAX_CACHED = 1024
_MAX_KEY = 512
_routes: dict[str, tuple[Family | None, Route | None, str]] = {}
_hosts: dict[tuple[str, str], tuple[str, int | None, str | None]] = {}
_hints: dict[str, str | None] = {}
# (family, route, provider, operation, host, port) of a request
_Recognised = tuple[Family, Route, str, str, str, "int | None"]
_recognised: dict[tuple[str, str, str, str, str | None], _Recognised] = {}
_NO_ROUTE = Route()


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _MAX_CACHED:
        cache.clear()
    cache[key] = value


def normalise_provider(hint: str) -> str | None:
    """A provider name from a hint value: aliases mapped, other sane names kept."""
    try:
        return _hints[hint]
    except KeyError:
        pass
    h = hint.strip().lower()
    h = _ALIASES.get(h, h)
    p = h if _HINT_SHAPE.match(h) else None
    if len(hint) <= _MAX_KEY:
        _remember(_hints, hint, p)
    return p


def provider_for_host(host: str, explicit_port: int | None = None) -> str | None:
    """The provider an upstream host belongs to, if llmtap knows it."""
    p = _EXACT_HOSTS.get(host)
    if p is not None:
        return p
    for suffix, provider in _HOST_SUFFIXES:
        if host.endswith(suffix):
            return provider
    if host.startswith("bedrock-runtime") and ".amazonaws.com" in host:
        return "aws.bedrock"
    if explicit_port == _OLLAMA_PORT:
        return "ollama"
    return None


def _explicit_port(authority: str) -> int | None:
    _, sep, port = authority.rpartition(":")
    return int(port) if sep and port.isdigit() and "]" not in port else None


def _host(info: RequestInfo) -> tuple[str, int | None, str | None]:
    """(host, port, provider the host names) of the request's authority."""
    key = (info.authority, info.scheme)
    hit = _hosts.get(key)
    if hit is None:
        try:
            host, port = info.host_port()
        except Exception:
            host, port = "", None
        try:
            explicit = _explicit_port(info.authority.strip())
        except ValueError:  # digits int() does not take: not a port
            explicit = None
        hit = (host, port, provider_for_host(host, explicit))
        if len(info.authority) <= _MAX_KEY:
            _remember(_hosts, key, hit)
    return hit


def _route(full_path: str) -> tuple[Family | None, Route | None, str]:
    """(family, route, path without the query) of a POST to ``full_path``."""
    hit = _routes.get(full_path)
    if hit is None:
        path, _, query = full_path.partition("?")
        key = path.rpartition("/")[2].rpartition(":")[2]
        family: Family | None = None
        route: Route | None = None
        for f in _BY_KEY.get(key, _ANYWHERE):
            r = f.match("POST", path, query)
            if r is not None:
                family, route = f, r
                break
        hit = (family, route, path)
        if len(full_path) <= _MAX_KEY:
            _remember(_routes, full_path, hit)
    return hit


def recognise(info: RequestInfo, config: Any = None) -> Exchange:
    """The Exchange for one request; unknown requests get provider ``unknown``."""
    cfg = config if config.__class__ is ExtConfig else ExtConfig.of(config)
    hint = info.hint or info.headers.get(cfg.hint_header)
    # the whole answer depends on these alone: one lookup for a request seen before
    key = (info.method, info.path, info.authority, info.scheme, hint)
    hit = _recognised.get(key)
    if hit is None:
        hit = _recognise(info, hint)
        if (
            len(info.path) <= _MAX_KEY
            and len(info.authority) <= _MAX_KEY
            and (hint is None or len(hint) <= _MAX_KEY)
        ):
            _remember(_recognised, key, hit)
    family, route, provider, operation, host, port = hit
    return Exchange(family, route, provider, operation, cfg, host, port)


def _recognise(info: RequestInfo, hint: str | None) -> _Recognised:
    method = info.method
    if method != "POST":
        method = method.upper()
    host, port, host_provider = _host(info)

    family: Family | None = None
    route: Route | None = None
    provider: str | None = None
    path = ""
    if hint:
        named = _BY_NAME.get(hint.strip().lower())
        if named is not None:
            path, _, query = info.path.partition("?")
            family, route = named, named.match(method, path, query) or Route()
        else:
            provider = normalise_provider(hint)

    if family is None:
        if method == "POST":
            family, route, path = _route(info.path)
        else:
            path = info.path.partition("?")[0]

    provider = (
        provider
        or host_provider
        or (route.provider if route is not None else None)
        or (family.provider if family is not None else "unknown")
    )
    if provider == "azure.ai.openai" and path.startswith("/models/"):
        provider = "azure.ai.inference"  # Azure AI Foundry's model inference API

    if family is None or route is None:
        op = unknown.guess_operation(path) if method == "POST" else None
        family = unknown.GUESSING if op else unknown.SILENT
        return family, _NO_ROUTE, provider, op or "unknown", host, port
    return family, route, provider, family.operation, host, port
