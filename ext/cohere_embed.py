"""Cohere embeddings, ``POST /v1/embed`` and ``POST /v2/embed``. One JSON body; the
only count Cohere returns is ``meta.billed_units.input_tokens``, used as input tokens.
"""

from __future__ import annotations

import msgspec

from .family import Family, Route
from .record import CallRecord

__all__ = ["FAMILY", "CohereEmbedRequest"]


class CohereEmbedRequest(msgspec.Struct):
    model: str | None = None
    embedding_types: list[str] | None = None
    output_dimension: int | None = None


class CohereEmbed(Family):
    name = "cohere.embed"
    path_keys = ("embed",)
    operation = "embeddings"
    provider = "cohere"
    request = CohereEmbedRequest
    paths = {"id": "id", "in": "meta.billed_units.input_tokens"}

    def match(self, method: str, path: str, query: str) -> Route | None:
        if path.endswith(("/v1/embed", "/v2/embed")):
            return Route(provider="cohere")
        return None

    def read_request(self, req: CohereEmbedRequest, rec: CallRecord, route: Route) -> None:
        rec.request_model = req.model
        rec.encoding_formats = req.embedding_types or None
        rec.embedding_dimensions = req.output_dimension

    texts = {"response_id": ("id",)}
    numbers = {"input_tokens": ("in",)}


FAMILY = CohereEmbed()
