"""OpenAI legacy completions, ``POST .../completions`` (also Azure deployments and
OpenAI-compatible servers). Plain JSON or SSE; one finish reason per choice, batch
prompts give ``n * len(prompt)`` choices.
"""

from __future__ import annotations

from typing import Any

import msgspec

from . import content as c
from .family import Family, Route, Scan, decode_request
from .openai_common import COMPAT_USAGE_NUMBERS, COMPAT_USAGE_PATHS, match_suffix, stop_list
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


class _Prompt(msgspec.Struct):
    prompt: Any = None
    suffix: Any = None


class _Choice(msgspec.Struct):
    text: Any = None
    finish_reason: Any = None


class _Completion(msgspec.Struct):
    choices: list[_Choice] = msgspec.field(default_factory=list)


class OpenAICompletions(Family):
    name = "openai.completions"
    path_keys = ("completions",)
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
    texts = {
        "response_model": ("model",),
        "response_id": ("id",),
        "system_fingerprint": ("fingerprint",),
    }
    numbers = COMPAT_USAGE_NUMBERS
    outputs = (("text", "text"),)
    capture_paths = {"c_text": "choices[*].text"}
    capture_folds = {"c_text": ("concat", "idx")}

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

    def stream_complete(self, s: Scan) -> bool:
        return s.done_sentinel or any(r is not None for r in self.finish_reasons(s))

    # -- content ---------------------------------------------------------------------

    def input_messages(self, req: bytes) -> tuple[list[Any] | None, list[Any] | None]:
        r = decode_request(req, _Prompt)
        if not isinstance(r, _Prompt):
            return None, None
        # a batch is several prompts; token-id prompts have no text to show
        prompts = r.prompt if isinstance(r.prompt, list) else [r.prompt]
        msgs = [c.message("user", [c.text(p)]) for p in prompts if isinstance(p, str)]
        return None, msgs or None

    def output_messages(self, body: bytes, finish: list[str] | None) -> list[Any] | None:
        r = decode_request(body, _Completion)
        if not isinstance(r, _Completion):
            return None
        return [
            c.output_message(
                c.text_parts(ch.text),
                ch.finish_reason if isinstance(ch.finish_reason, str) else c.finish_at(finish, i),
            )
            for i, ch in enumerate(r.choices)
        ]

    def stream_messages(self, s: Scan, finish: list[str] | None) -> list[Any] | None:
        raw, texts, cut = self.finish_reasons(s), s.seq("c_text"), "c_text" in s.capped
        return [
            c.output_message(
                c.text_parts(c.cut(c.at(texts, i), cut)), c.at(raw, i) or c.finish_at(finish, i)
            )
            for i in range(max(len(texts), len(raw)))
        ] or None


FAMILY = OpenAICompletions()
