"""OpenAI embeddings, ``POST .../embeddings`` (also Azure deployments, Mistral,
Together and other OpenAI-compatible servers). One plain JSON body; usage counts
input only.
"""

from __future__ import annotations

import msgspec

from .family import Family, Route
from .openai_common import match_suffix
from .record import CallRecord

__all__ = ["FAMILY", "EmbeddingsRequest"]


class EmbeddingsRequest(msgspec.Struct):
    model: str | None = None
    encoding_format: str | None = None
    dimensions: int | None = None


class OpenAIEmbeddings(Family):
    name = "openai.embeddings"
    path_keys = ("embeddings",)
    operation = "embeddings"
    provider = "openai"
    request = EmbeddingsRequest
    paths = {
        "model": "model",
        "id": "id",
        "in": "usage.prompt_tokens",
    }

    def match(self, method: str, path: str, query: str) -> Route | None:
        return match_suffix(path, query, "/embeddings")

    def read_request(self, req: EmbeddingsRequest, rec: CallRecord, route: Route) -> None:
        rec.request_model = req.model or route.model
        rec.encoding_formats = [req.encoding_format] if req.encoding_format else None
        rec.embedding_dimensions = req.dimensions

    texts = {"response_model": ("model",), "response_id": ("id",)}
    numbers = {"input_tokens": ("in",)}


FAMILY = OpenAIEmbeddings()
