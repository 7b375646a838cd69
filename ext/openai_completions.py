"""OpenAI legacy completions, ``POST .../completions`` (also Azure deployments and
OpenAI-compatible servers). Plain JSON or SSE; one finish reason per choice, batch
prompts give ``n * len(prompt)`` choices.
"""

from __future__ import annotations

import msgspec

from .family import Family, Route, Scan
from .openai_common import COMPAT_USAGE_PATHS, fold_compat_usage, match_suffix, stop_list
from .record import CallRecord

__all__ = ["FAMILY", "CompletionRequest"]


class CompletionRequest(msgspec.Struct):
    model: str | None = None
    stream: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: float | None = None
    seed: int | None = None
    n: int | None = None
    stop: str | list[str] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None


class OpenAICompletions(Family):
    name = "openai.completions"
    operation = "text_completion"
    provider = "openai"
    request = CompletionRequest
    paths = {
        "model": "model",
        "id": "id",
        "fingerprint": "system_fingerprint",
        **COMPAT_USAGE_PATHS,
        "idx": "choices[*].index",
        "finish": "choices[*].finish_reason",
        "text": "?choices[*].text",
    }
    folds = {"finish": ("keyed", "idx")}
    outputs = (("text", "text"),)

    def match(self, method: str, path: str, query: str) -> Route | None:
        if path.endswith("/chat/completions"):
            return None
        return match_suffix(path, query, "/completions")

    def read_request(self, req: CompletionRequest, rec: CallRecord, route: Route) -> None:
        rec.request_model = req.model or route.model
        rec.stream = req.stream
        rec.max_tokens = req.max_tokens
        rec.temperature = req.temperature
        rec.top_p = req.top_p
        rec.top_k = req.top_k
        rec.seed = req.seed
        rec.choice_count = req.n
        rec.stop_sequences = stop_list(req.stop)
        rec.frequency_penalty = req.frequency_penalty
        rec.presence_penalty = req.presence_penalty

    def fold(self, s: Scan, rec: CallRecord) -> None:
        rec.response_model = s.text("model")
        rec.response_id = s.text("id")
        rec.system_fingerprint = s.text("fingerprint")
        fold_compat_usage(s, rec)

    def stream_complete(self, s: Scan) -> bool:
        return s.done_sentinel or any(r is not None for r in self.finish_reasons(s))


FAMILY = OpenAICompletions()
