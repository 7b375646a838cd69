"""Ollama's native embeddings: ``POST /api/embed`` (input counted in
``prompt_eval_count``) and the older ``POST /api/embeddings`` (no counts). One JSON body.
"""

from __future__ import annotations

import msgspec

from .family import Family, Route
from .record import CallRecord

__all__ = ["FAMILY", "EmbedRequest"]


class EmbedRequest(msgspec.Struct):
    model: str | None = None
    dimensions: int | None = None


class OllamaEmbed(Family):
    name = "ollama.embed"
    path_keys = ("embed", "embeddings")
    operation = "embeddings"
    provider = "ollama"
    request = EmbedRequest
    paths = {"model": "model", "in": "prompt_eval_count"}

    def match(self, method: str, path: str, query: str) -> Route | None:
        if path.endswith(("/api/embed", "/api/embeddings")):
            return Route(provider="ollama")
        return None

    def read_request(self, req: EmbedRequest, rec: CallRecord, route: Route) -> None:
        rec.request_model = req.model
        rec.embedding_dimensions = req.dimensions

    texts = {"response_model": ("model",)}
    numbers = {"input_tokens": ("in",)}


FAMILY = OllamaEmbed()
