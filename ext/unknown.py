"""Requests no family recognises. They still get a record: provider from the hint or
host (else ``unknown``), operation guessed from the path (``chat``,
``text_completion``, ``embeddings``, ``generate_content``; else ``unknown``).

When the operation could be guessed the body is read best-effort with the common
OpenAI-style fields (model, id, usage); otherwise nothing is read.
"""

from __future__ import annotations

import msgspec

from .family import Family, Route
from .record import CallRecord

__all__ = ["GUESSING", "SILENT", "guess_operation"]

_GUESSES = (
    ("generatecontent", "generate_content"),
    ("chat", "chat"),
    ("messages", "chat"),
    ("responses", "chat"),
    ("complet", "text_completion"),
    ("generate", "text_completion"),
    ("embed", "embeddings"),
)


def guess_operation(path: str) -> str | None:
    p = path.lower()
    for key, op in _GUESSES:
        if key in p:
            return op
    return None


class _ModelOnly(msgspec.Struct):
    model: str | None = None
    stream: bool | None = None


class Unknown(Family):
    """Reads nothing: not an LLM call as far as llmtap can tell."""

    name = "unknown"
    scans = False


class Guessing(Family):
    """An LLM-looking path of an API llmtap does not know: read the usual fields."""

    name = "unknown"
    request = _ModelOnly
    paths = {
        "model": "model",
        "id": "id",
        "in": "usage.prompt_tokens",
        "out": "usage.completion_tokens",
        "in2": "usage.input_tokens",
        "out2": "usage.output_tokens",
    }

    def read_request(self, req: _ModelOnly, rec: CallRecord, route: Route) -> None:
        rec.request_model = req.model
        rec.stream = req.stream

    texts = {"response_model": ("model",), "response_id": ("id",)}
    numbers = {"input_tokens": ("in", "in2"), "output_tokens": ("out", "out2")}


SILENT = Unknown()
GUESSING = Guessing()
